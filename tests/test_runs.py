"""Run directories (issue 10 §1-§3): refuse to mix runs, atomic files with run.json last,
failed / interrupted / killed runs marked, resume by default with the recorded seed, refused
parameter changes, checks before work, ``unsup runs``."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import unsup
from unsup import runs
from unsup.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

AE = ["autoencoder", "--data", "digits", "--hidden-layer-sizes", "[8]", "--n-components", "3",
      "--batch-size", "256", "--device", "cpu", "-q"]


def fit(*args: str) -> int:
    return main(["fit", *args])


def test_second_fit_into_a_run_is_refused_and_overwrite_clears_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert fit("kmeans", "--data", "digits", "--out", str(out), "--n-clusters", "3", "-q") == 0
    (out / "probe.json").write_text("{}")  # left by an earlier `evaluate --probe`
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert fit("kmeans", "--data", "digits", "--out", str(out), "-q") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not empty" in err and "--overwrite" in err
    assert fit("kmeans", "--data", "digits", "--out", str(out), "--n-clusters", "4", "-q",
               "--overwrite") == 0
    assert not (out / "probe.json").exists()  # the earlier run's files are gone
    assert (out / "notes.txt").read_text() == "mine"  # files that are not a run's stay
    assert json.loads((out / "run.json").read_text())["params"]["n_clusters"] == 4


def test_overwrite_refuses_a_directory_that_holds_no_run(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("x")
    assert fit("kmeans", "--data", "digits", "--out", str(tmp_path), "-q", "--overwrite") == 2
    assert "not a run directory" in capsys.readouterr().err
    assert (tmp_path / "thesis.tex").exists()


def test_empty_out_and_read_only_out_are_one_line_errors(tmp_path, capsys, monkeypatch):
    assert fit("kmeans", "--data", "digits", "--out", "", "-q") == 2
    assert "--out is empty" in capsys.readouterr().err

    def read_only(self, data):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(pathlib.Path, "write_bytes", read_only)
    assert fit("kmeans", "--data", "digits", "--out", str(tmp_path / "ro"), "-q") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write to" in err and "Read-only" in err


def test_run_json_is_written_last_and_status_json_removed(tmp_path, monkeypatch):
    order = []
    real = runs.write_json

    def spy(path, obj):
        order.append(pathlib.Path(path).name)
        real(path, obj)

    monkeypatch.setattr(runs, "write_json", spy)
    out = tmp_path / "run"
    assert fit("kmeans", "--data", "digits", "--out", str(out), "--n-clusters", "3", "-q") == 0
    assert order[0] == "status.json" and order[-1] == "run.json"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "metrics.json",
                                                     "model.safetensors", "run.json"]


def test_failed_run_is_marked_failed(tmp_path, capsys):
    data = tmp_path / "three.npy"
    np.save(data, np.random.default_rng(0).random((3, 4)).astype(np.float32))
    out = tmp_path / "run"
    assert fit("kmeans", "--data", str(data), "--out", str(out), "--n-clusters", "5",
               "-q") == 2
    assert not (out / "run.json").exists() and not (out / "model.safetensors").exists()
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and status["error"]
    assert [r["status"] for r in runs.list_runs(tmp_path)] == ["failed"]


def test_killed_run_is_listed_as_killed(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # a pid that is gone
    d = tmp_path / "k"
    d.mkdir()
    runs.mark(d, {"model": "vae"}, "running")
    rec = json.loads((d / "status.json").read_text())
    runs.write_json(d / "status.json", {**rec, "pid": p.pid})
    assert runs.list_runs(tmp_path)[0]["status"] == "killed"


def test_ctrl_c_marks_the_run_interrupted_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import unsup.cli.fitting as cli_fit

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_fit, "_progress_fit", interrupted)
    out = tmp_path / "run"
    assert fit("kmeans", "--data", "digits", "--out", str(out), "-q") == 130
    err = capsys.readouterr().err
    assert f"unsup fit kmeans --data digits --out {out} --resume" in err
    assert json.loads((out / "status.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    assert fit("kmeans", "--data", "digits", "--out", str(out), "-q", "--resume") == 0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and len(run["segments"]) == 2


def test_unseeded_run_resumes_bit_for_bit_and_refuses_changed_parameters(tmp_path, capsys):
    """Unseeded (the default): the seed is drawn once and recorded; 2 epochs then a resume to 4
    equals one 4-epoch run with that seed, bit for bit."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert fit(*AE, "--out", str(a), "--epochs", "2") == 0
    run = json.loads((a / "run.json").read_text())
    seed = run["seed"]
    assert isinstance(seed, int) and run["seed_drawn"] and run["params"]["random_state"] == seed
    capsys.readouterr()
    assert fit(*AE, "--out", str(a), "--resume", "--learning-rate", "0.1") == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and "0.1" in err
    assert fit(*AE, "--out", str(a), "--resume", "--epochs", "4") == 0
    run = json.loads((a / "run.json").read_text())
    assert run["params"]["epochs"] == 4 and run["seed"] == seed
    assert [s["budget"]["epochs"] for s in run["segments"]] == [2, 4]
    assert run["fit_seconds"] == pytest.approx(sum(s["seconds"] for s in run["segments"]))
    metrics = json.loads((a / "metrics.json").read_text())
    assert metrics["fit_seconds"] == pytest.approx(run["fit_seconds"])
    assert fit(*AE, "--out", str(b), "--epochs", "4", "--random-state", str(seed)) == 0
    ma, mb = unsup.load(a), unsup.load(b)
    sa, sb = ma.module_.state_dict(), mb.module_.state_dict()
    assert all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)


def test_checks_before_work(tmp_path, capsys, monkeypatch):
    import unsup.cli.fitting as cli_fit

    def never(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(cli_fit, "_progress_fit", never)
    other = tmp_path / "wide.npy"
    np.save(other, np.zeros((5, 10), np.float32))
    out = tmp_path / "run"
    assert fit("kmeans", "--data", "digits", "--test-data", str(other), "--out", str(out),
               "-q") == 2
    assert "10 features" in capsys.readouterr().err
    # declared constraints (unsup.params) are checked before the data is even loaded
    assert fit(*AE, "--data", "no-such-data", "--out", str(out), "--learning-rate", "-1") == 2
    assert "learning_rate" in capsys.readouterr().err
    assert not out.exists()  # a refused run leaves no directory it created behind
    kept = tmp_path / "mine"
    kept.mkdir()  # ... but never removes one the user made
    assert fit("kmeans", "--data", "digits", "--test-data", str(other), "--out", str(kept),
               "-q") == 2
    assert kept.is_dir()


def test_evaluate_on_data_of_the_wrong_width_is_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert fit("kmeans", "--data", "digits", "--out", str(out), "--n-clusters", "3", "-q") == 0
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((5, 10), np.float32))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(wide)]) == 2
    assert "10 features" in capsys.readouterr().err


@pytest.mark.parametrize("name,command", [("run.json", "evaluate"), ("metrics.json", "report")])
def test_malformed_run_files_are_named(tmp_path, capsys, name, command):
    out = tmp_path / "run"
    assert fit("kmeans", "--data", "digits", "--out", str(out), "--n-clusters", "3", "-q") == 0
    (out / name).write_text("{not json")
    capsys.readouterr()
    assert main([command, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(out / name) in err and "not valid JSON" in err


def test_runs_lists_runs_and_json_outputs(tmp_path, capsys):
    assert fit("kmeans", "--data", "digits", "--out", str(tmp_path / "km"), "--n-clusters", "3",
               "-q", "--json") == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["status"] == "complete" and "train" in fitted["metrics"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text("[")
    assert main(["runs", str(tmp_path), "--json"]) == 0
    rows = {pathlib.Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert rows["km"]["model"] == "kmeans" and rows["km"]["status"] == "complete"
    assert rows["km"]["metrics"] and rows["km"]["seed"] == fitted["seed"]
    assert rows["bad"]["status"] == "unreadable" and "run.json" in rows["bad"]["error"]
    assert main(["datasets", "--json"]) == 0
    assert any(d["name"] == "digits" for d in json.loads(capsys.readouterr().out)["datasets"])


def test_models_json_lists_every_registered_model(capsys):
    from unsup.registry import model_specs

    assert main(["models", "--json"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)]
    assert names == [s.name for s in model_specs()]


def test_fit_help_keeps_whole_sentences_and_plain_defaults(capsys):
    from unsup.cli.fitting import _param_docs
    from unsup.registry import model_specs

    assert main(["fit", "autoencoder", "--help"]) == 0
    text = capsys.readouterr().out
    assert "((" not in text and "[default: [256]]" in " ".join(text.split())
    for spec in model_specs():
        for name, doc in _param_docs(spec.cls).items():
            assert "default=" not in doc, (spec.name, name, doc)  # not a bare type line
            if doc and not doc.startswith("{"):
                assert doc.rstrip()[-1] in ".)?!\"'`", (spec.name, name, doc)


def test_cli_start_up_imports_no_numeric_library():
    code = ("import sys, unsup.cli; "
            "print(sorted(m for m in ('numpy', 'torch', 'sklearn', 'rich') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])})
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_runs_on_a_missing_directory_and_an_empty_one(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert "no directory" in capsys.readouterr().err
    assert main(["runs", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_resume_refuses_other_data_and_an_empty_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert fit("kmeans", "--data", "digits", "--out", str(out), "--resume", "-q") == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert fit("kmeans", "--data", "digits", "--out", str(out), "--n-clusters", "3", "-q") == 0
    assert fit("kmeans", "--data", "blobs", "--out", str(out), "--resume", "-q") == 2
    assert "--data was 'digits'" in capsys.readouterr().err


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_killed_or_interrupted_cli_run_resumes_bit_for_bit(tmp_path, capsys, sig):
    """A real `unsup fit` process stopped at its second checkpoint (kill -9, or Ctrl-C) is
    listed as killed / interrupted, and --resume gives the model of a run never stopped."""
    import signal

    from _interrupt import hang_site, kill_when_hanging

    a, b = tmp_path / "a", tmp_path / "b"
    args = [*AE, "--epochs", "40", "--checkpoint-every", "5"]
    # one thread, like this process (one_thread): the steps before the signal and the resumed
    # ones must reduce in the same order as the uninterrupted run to be bit-identical
    env, marker = hang_site(tmp_path, 2, ("unsup.train.engine",))
    p = kill_when_hanging([sys.executable, "-m", "unsup.cli", "fit", *args, "--out", str(a)],
                          env, marker, 120, getattr(signal, sig))
    status = runs.list_runs(tmp_path)[0]["status"]
    if sig == "SIGKILL":
        assert p.returncode == -9 and status == "killed"
    else:
        assert p.returncode == 130 and status == "interrupted" and "--resume" in p.stderr
    assert fit(*AE, "--out", str(a), "--resume") == 0
    seed = json.loads((a / "run.json").read_text())["seed"]
    assert fit(*args, "--out", str(b), "--random-state", str(seed)) == 0
    sa, sb = unsup.load(a).module_.state_dict(), unsup.load(b).module_.state_dict()
    assert all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)
