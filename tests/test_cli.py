"""The command line: fit / evaluate / report / datasets / demo, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import unsup
from unsup.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_evaluate_report_roundtrip(tmp_path, capsys):
    out = tmp_path / "km"
    code, _, err = run(["fit", "kmeans", "--data", "gmm2d", "--out", out, "--n-clusters", 3,
                        "--n-init", 2, "--random-state", 0, "-q"], capsys)
    assert code == 0, err
    model = unsup.load(out / "model.safetensors")
    assert model.n_clusters == 3 and model.n_init == 2 and model.random_state == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # gmm2d is three well-separated Gaussians: k-means recovers them almost perfectly
    assert metrics["train"]["accuracy"] > 0.95
    assert metrics["train"]["inertia"] == pytest.approx(model.inertia_, rel=1e-5)
    code, text, err = run(["evaluate", out, "--json"], capsys)
    assert code == 0, err
    ev = json.loads(text)
    assert ev["accuracy"] == pytest.approx(metrics["train"]["accuracy"])
    code, _, err = run(["evaluate", out, "--reverse-ais"], capsys)
    assert code == 2 and "reverse AIS" in err and "Traceback" not in err
    code, _, err = run(["report", out], capsys)
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Confusion matrix" in html


def test_fit_gmm_with_test_data_and_npy(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-4, 1, (200, 3)), rng.normal(4, 1, (200, 3))])
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    out = tmp_path / "g"
    code, _, err = run(["fit", "gmm", "--data", tmp_path / "x.npy", "--out", out,
                        "--n-components", 2, "--covariance-type", "diag",
                        "--test-data", tmp_path / "x.npy", "--random-state", 1, "-q"], capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    model = unsup.load(out)
    assert model.covariance_type == "diag"
    assert m["test"]["log_likelihood"] == pytest.approx(model.score(X), rel=1e-6)
    html_code, _, _ = run(["report", out], capsys)
    assert html_code == 0
    assert "EM trace" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["fit", "kmeans", "--data", "no-such-set", "--out", "{d}"], "Unknown dataset"),
        (["fit", "kmeans", "--data", "digits", "--out", "{d}", "--n-clusters", "0"],
         "n_clusters"),
        (["fit", "kmeans", "--data", "digits", "--out", "{d}", "--n-clusters", "5000", "-q"],
         "n_clusters=5000"),
        (["fit", "gmm", "--data", "digits", "--out", "{d}", "--covariance-type", "bogus"],
         "covariance_type"),
        (["fit", "kmeans", "--data", "digits", "--out", "{d}", "--binarize", "maybe"],
         "--binarize"),
        (["evaluate", "{d}/missing"], "no run directory"),
        (["fit", "nosuchmodel", "--data", "digits", "--out", "{d}"], "nosuchmodel"),
    ],
)
def test_bad_input_one_line_error(tmp_path, capsys, args, needle):
    code, _, err = run([a.replace("{d}", str(tmp_path / "o")) for a in args], capsys)
    assert code != 0
    assert needle in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1


def test_a_bug_is_one_line_at_the_cli_and_a_traceback_with_debug(monkeypatch, capsys):
    """An unexpected exception (a bug of ours, not a user error) prints one line and exits 1;
    ``--debug`` re-raises it."""
    import unsup.cli._app as app

    def broken(*args, **kwargs):
        raise KeyError("no such thing")

    monkeypatch.setattr(app.cli, "main", broken)
    code, out, err = run(["models"], capsys)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "internal error (KeyError)" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", "models"])


def test_a_word_parameter_also_takes_a_number(tmp_path, capsys):
    """``n_init`` defaults to the word "auto" (as scikit-learn's); ``--n-init 3`` is the int 3."""
    for value, want in (("3", 3), ("auto", "auto")):
        out = tmp_path / value
        code, _, err = run(["fit", "kmeans", "--data", "digits", "--n-init", value,
                            "--max-iter", 5, "--out", out, "-q"], capsys)
        assert code == 0, err
        assert json.loads((out / "run.json").read_text())["params"]["n_init"] == want


def test_corrupt_model_file_is_refused(tmp_path, capsys):
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    code, _, err = run(["evaluate", tmp_path, "--data", "digits"], capsys)
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_evaluate_wrong_feature_count(tmp_path, capsys):
    out = tmp_path / "km"
    assert run(["fit", "kmeans", "--data", "digits", "--out", out, "--n-clusters", 4,
                "--n-init", 1, "-q"], capsys)[0] == 0
    code, _, err = run(["evaluate", out, "--data", "blobs"], capsys)
    assert code == 2 and "features" in err


def test_fit_options_come_from_estimator_signature(capsys):
    code, text, _ = run(["fit", "gmm", "--help"], capsys)
    assert code == 0
    for opt in ("--n-components", "--covariance-type", "--reg-covar", "--random-state",
                "--device"):
        assert opt in text


def _help_text(cmd, name: str) -> str:
    import click

    return cmd.get_help(click.Context(cmd, info_name=name, terminal_width=100,
                                      max_content_width=100))


def test_fit_help_from_the_cache_equals_the_live_help():
    """Every model's `fit NAME --help` built from its cached description (through JSON, as a
    later process reads it) is the help of the command built from the live class."""
    from unsup.cli.fitting import _make_fit_command, fit_command, fit_description
    from unsup.registry import model_specs

    specs = model_specs()
    assert len(specs) > 20
    for spec in specs:
        desc = fit_description(spec)
        cached = json.loads(json.dumps(desc))
        assert cached == desc, spec.name  # the cache loses nothing
        live = _help_text(_make_fit_command(spec), spec.name)
        assert _help_text(fit_command(cached, None), spec.name) == live, spec.name
        assert "--random-state" in live or "random_state" not in str(desc)


def test_fit_help_answers_without_importing_torch(tmp_path):
    """With a warm cache `unsup fit kmeans --help` imports no model family (no torch) and
    prints what the first (cache-building) call printed; a fit still works after it."""
    code = ("import sys\nfrom unsup.cli import main\nrc = main(sys.argv[1:])\n"
            "print('TORCH', 'torch' in sys.modules, rc)")
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "COLUMNS": "100"}
    env.pop("UNSUP_NO_CACHE", None)
    outs = [subprocess.run([sys.executable, "-c", code, "fit", "kmeans", "--help"], env=env,
                           capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert outs[0].stdout.endswith("TORCH True 0\n"), outs[0].stderr  # built the cache
    assert outs[1].stdout.endswith("TORCH False 0\n"), outs[1].stderr
    assert outs[0].stdout.replace("True", "False") == outs[1].stdout
    assert "--n-clusters INTEGER" in outs[1].stdout and "[default: 8]" in outs[1].stdout
    assert (tmp_path / "cache" / "unsup" / "fit_help.json").exists()
    # an unknown model still fails in one line; a real fit still runs
    r = subprocess.run([sys.executable, "-c", code, "fit", "nosuch", "--help"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert "unknown model 'nosuch'" in r.stderr and r.stdout.endswith("2\n")
    r = subprocess.run([sys.executable, "-c", code, "fit", "kmeans", "--data", "digits",
                        "--out", str(tmp_path / "run"), "--n-clusters", "3", "--n-init", "1",
                        "-q"], env=env, capture_output=True, text=True, timeout=120)
    assert r.stdout.endswith("TORCH True 0\n"), r.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["params"]["n_clusters"] == 3


def test_datasets_lists_embedded(capsys):
    code, text, _ = run(["datasets"], capsys)
    assert code == 0 and "mnist5k" in text and "digits" in text


def test_console_script_entry_point(tmp_path):
    # the installed `unsup` entry point (via python -m to be independent of PATH)
    r = subprocess.run([sys.executable, "-m", "unsup.cli", "fit", "kmeans", "--data", "nope",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and "Traceback" not in r.stderr


def test_demo_quick(tmp_path, capsys):
    code, text, err = run(["demo", "--quick", "--out", tmp_path], capsys)
    assert code == 0, err
    html = (tmp_path / "report.html").read_text()
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert len(rows) >= 3
    # every clustering model beats chance (0.1) by a wide margin on held-out digits
    # clusterers report an accuracy; PCA and autoencoders (codes, no clusters) report None
    assert all(r["test accuracy"] > 0.3 for r in rows if r.get("test accuracy") is not None)
    assert "EM trace" in html and "Cluster centres" in html
    assert "t-SNE map (perplexity 30) of the codes" in html  # the best representation's codes
    for name in ("kmeans", "gmm"):
        assert unsup.load(tmp_path / name) is not None


def test_cli_cf_rbm_held_out_rmse(tmp_path, capsys) -> None:
    """`fit cf-rbm --test-data` scores held-out ratings conditioned on the training ratings."""
    rng = np.random.default_rng(0)
    R = np.clip(np.round(3 + rng.normal(size=(120, 3)) @ rng.normal(size=(3, 20))), 1, 5)
    R[rng.random(R.shape) < 0.4] = 0
    test = np.where(rng.random(R.shape) < 0.2, R, 0)
    train = np.where(test > 0, 0, R)
    np.savetxt(tmp_path / "train.csv", train, delimiter=",", fmt="%d")
    np.savetxt(tmp_path / "test.csv", test, delimiter=",", fmt="%d")
    np.savetxt(tmp_path / "other.csv", train[:50], delimiter=",", fmt="%d")
    run_dir = tmp_path / "run"
    code, _, err = run(["fit", "cf-rbm", "--data", tmp_path / "train.csv",
                        "--test-data", tmp_path / "test.csv", "--out", run_dir,
                        "--n-components", 10, "--n-updates", 300, "--random-state", 0, "-q"],
                       capsys)
    assert code == 0, err
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["test"]["rating_metrics_kind"] == "held-out"
    assert m["test"]["n_ratings_scored"] == int((test > 0).sum())
    assert m["test"]["rmse"] < m["test"]["rmse_item_mean"]
    code, out, err = run(["evaluate", run_dir, "--data", tmp_path / "other.csv"], capsys)
    assert code == 2 and "same users" in err + out
    assert "Traceback" not in err + out


def _sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_dbn_fit_evaluate_report_and_fresh_load(tmp_path, capsys):
    """`fit dbn` measures a typed bound; evaluate reproduces it from the file without
    changing it; a fresh process loads the model."""
    out = tmp_path / "dbn"
    code, _, err = run(["fit", "dbn", "--data", "digits", "--binarize", 0.5, "--out", out,
                        "--layer-sizes", "[16, 8]", "--n-updates", 150, "--bound-samples",
                        "exact", "--random-state", 0, "-q"], capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())["train"]
    lk = m["likelihood"]
    assert lk["kind"] == "lower bound" and "exact log Z" in lk["estimator"]
    assert lk["support"] == "discrete" and lk["n_dims"] == 64
    assert lk["bits_per_dim"] == pytest.approx(-lk["nats"] / (64 * np.log(2)))
    # digits has 64 binary pixels: any sensible bound lies in (-64 log 2, 0)
    assert -64 * np.log(2) < m["log_likelihood"] < 0
    digest = _sha(out / "model.safetensors")
    code, text, err = run(["evaluate", out, "--json"], capsys)
    assert code == 0, err
    assert json.loads(text)["log_likelihood"] == pytest.approx(m["log_likelihood"], abs=1e-6)
    assert _sha(out / "model.safetensors") == digest  # measuring never rewrites the model
    code, _, err = run(["report", out], capsys)
    assert code == 0, err
    html = (out / "report.html").read_text()
    for section in ("First-layer filters", "Gibbs chains", "Log-likelihood",
                    "log-likelihood (nats/sample)"):
        assert section in html, section
    assert "log-density (continuous" not in html
    r = subprocess.run([sys.executable, "-c", "import sys, unsup; "
                        "print(type(unsup.load(sys.argv[1])).__name__)",
                        str(out / "model.safetensors")], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "DBN", r.stderr


def test_cli_dbn_report_shows_pretraining_curves(tmp_path, capsys):
    out = tmp_path / "dbn"
    assert run(["fit", "dbn", "--data", "digits", "--binarize", 0.5, "--out", out,
                "--layer-sizes", "[8, 4]", "--n-updates", 30, "--bound-samples", "exact",
                "--random-state", 0, "-q"], capsys)[0] == 0
    assert run(["report", out], capsys)[0] == 0
    assert "Pre-training" in (out / "report.html").read_text()


def test_cli_dbm_fit_evaluate_report(tmp_path, capsys):
    """`fit dbm` writes a lower bound that `evaluate` reproduces from the saved file; reverse
    AIS goes to metrics.json, never into the model file."""
    out = tmp_path / "dbm"
    code, _, err = run(["fit", "dbm", "--data", "digits", "--binarize", 0.5, "--out", out,
                        "--layer-sizes", "[12, 8]", "--n-updates", 150,
                        "--pretrain-updates", 100, "--random-state", 0, "-q"], capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())["train"]
    assert m["likelihood"]["kind"] == "lower bound"
    assert "exact log Z" in m["likelihood"]["estimator"]
    assert -64 * np.log(2) < m["log_likelihood"] < 0
    code, text, err = run(["evaluate", out, "--json"], capsys)
    assert code == 0, err
    assert json.loads(text)["log_likelihood"] == pytest.approx(m["log_likelihood"], abs=1e-6)
    # reverse AIS from training states lands on the exact log Z of this small model
    digest = _sha(out / "model.safetensors")
    code, text, err = run(["evaluate", out, "--json", "--reverse-ais"], capsys)
    assert code == 0, err
    assert _sha(out / "model.safetensors") == digest
    ev = json.loads(text)
    assert ev["reverse_ais"]["method"] == "reverse AIS"
    assert ev["log_likelihood_reverse_ais"] == pytest.approx(ev["log_likelihood"], abs=0.1)
    assert ev["likelihood_reverse_ais"]["support"] == "discrete"
    stored = json.loads((out / "metrics.json").read_text())["evaluate"]["reverse_ais"]
    assert stored["log_likelihood_reverse_ais"] == ev["log_likelihood_reverse_ais"]
    assert stored["data"] == "digits"
    code, _, err = run(["report", out], capsys)
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "evaluate reverse_ais likelihood_reverse_ais" in html  # from metrics.json
    assert "log Z by reverse AIS" in html
    for section in ("First-layer filters", "Gibbs chains", "Log-likelihood"):
        assert section in html, section


def test_cli_dbm_takes_grey_levels_and_says_it_binarises(tmp_path, capsys):
    """Like scikit-learn's RBM, the energy models take values in [0, 1] as probabilities; the
    likelihood is of the image binarised at 0.5, and the typed record says so."""
    out = tmp_path / "grey"
    code, _, err = run(["fit", "dbm", "--data", "digits", "--out", out, "--layer-sizes",
                        "[6, 4]", "--n-updates", 5, "--pretrain-updates", 5, "--random-state",
                        0, "-q"], capsys)
    assert code == 0, err
    lk = json.loads((out / "metrics.json").read_text())["train"]["likelihood"]
    assert "binaris" in (lk["transform"] or "") and lk["support"] == "discrete"


def test_cli_sequence_default_is_the_estimators(tmp_path, capsys):
    """An option whose default is a tuple (not representable in click) keeps the estimator's
    default when not given, rather than passing None."""
    import unsup
    from unsup.autoencoders import Autoencoder

    out = tmp_path / "ae"
    code, _, err = run(["fit", "autoencoder", "--data", "digits", "--out", out, "--epochs", 1,
                        "--random-state", 0, "-q"], capsys)
    assert code == 0, err
    default = Autoencoder().hidden_layer_sizes
    assert tuple(unsup.load(out).hidden_layer_sizes) == tuple(default)


def test_evaluate_reverse_ais_without_stored_states(tmp_path, capsys):
    """A model file without stored training states (older files) starts the reverse chains
    at the run's training data; the result matches the exact log Z of this small RBM."""
    out = tmp_path / "rbm"
    code, _, err = run(["fit", "rbm", "--data", "digits", "--binarize", 0.5, "--out", out,
                        "--n-components", 8, "--n-updates", 300, "--random-state", 0, "-q"],
                       capsys)
    assert code == 0, err
    model = unsup.load(out / "model.safetensors")
    del model.check_states_
    model.save(out / "model.safetensors")
    digest = _sha(out / "model.safetensors")
    code, text, err = run(["evaluate", out, "--json", "--reverse-ais"], capsys)
    assert code == 0, err
    assert _sha(out / "model.safetensors") == digest
    ev = json.loads(text)
    assert ev["likelihood"]["kind"] == "exact"
    assert ev["log_likelihood_reverse_ais"] == pytest.approx(ev["log_likelihood"], abs=0.1)


# -- unsup sample -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gmm"
    assert main(["fit", "gmm", "--data", "digits", "--out", str(out), "--n-components", "3",
                 "--covariance-type", "diag", "--random-state", "0", "-q"]) == 0
    return out


def test_sample_npy_is_seeded_and_follows_the_model(gmm_run, tmp_path, capsys):
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths[name] = tmp_path / f"{name}.npy"
        code, text, err = run(["sample", gmm_run, "--n", 64, "--out", paths[name],
                               "--seed", seed], capsys)
        assert code == 0, err
    a, b, c = (np.load(paths[k]) for k in "abc")
    assert a.shape == (64, 64)  # the data of GaussianMixture.sample's (X, labels)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    model = unsup.load(gmm_run)
    # the samples come from the mixture: every sample is likelier under the model than noise
    noise = np.random.default_rng(0).uniform(0, 16, a.shape)
    assert model.score_samples(a).mean() > model.score_samples(noise).mean()
    assert model.random_state == 0  # sampling with a seed leaves the model's own seed


def test_sample_png_grid_and_errors(gmm_run, tmp_path, capsys):
    from PIL import Image

    code, _, err = run(["sample", gmm_run, "--n", 16, "--out", tmp_path / "g.png"], capsys)
    assert code == 0, err
    with Image.open(tmp_path / "g.png") as im:
        assert im.format == "PNG" and im.size[0] > 50 and im.size[1] > 50
    for args, needle in ((["--out", tmp_path / "x.txt"], "npy or .png"),
                         (["--out", tmp_path / "x.csv"], ".npy, .png or .txt"),
                         (["--n", 0, "--out", tmp_path / "x.npy"], "--n")):
        code, _, err = run(["sample", gmm_run, *args], capsys)
        assert code == 2 and needle in err and "Traceback" not in err
    km = tmp_path / "km"
    assert run(["fit", "kmeans", "--data", "digits", "--out", km, "--n-clusters", 3,
                "--n-init", 1, "-q"], capsys)[0] == 0
    code, _, err = run(["sample", km, "--out", tmp_path / "k.npy"], capsys)
    assert code == 2 and "cannot sample" in err
    assert not (tmp_path / "k.npy").exists()


def test_sample_rbm_binary_images(tmp_path, capsys):
    out = tmp_path / "rbm"
    assert run(["fit", "rbm", "--data", "digits", "--binarize", 0.5, "--out", out,
                "--n-components", 8, "--n-updates", 100, "--random-state", 0, "-q"],
               capsys)[0] == 0
    code, _, err = run(["sample", out, "--n", 8, "--out", tmp_path / "s.npy", "--seed", 1],
                       capsys)
    assert code == 0, err
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (8, 64) and np.isin(s, (0, 1)).all()
    code, _, err = run(["sample", out, "--n", 8, "--out", tmp_path / "s.png"], capsys)
    assert code == 0, err
