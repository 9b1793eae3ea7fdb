"""Checkpoint and exact resume inside the EM engine and the MCMC (energy) engine (issue 10 §2).

A fit killed with SIGKILL after a checkpoint and resumed gives the model of a fit never stopped,
bit for bit: both runs use one thread (this module's ``one_thread``; ``OMP_NUM_THREADS=1`` and
``torch.set_num_threads(1)`` in the killed process), so every reduction sums in the same order.
Damaged checkpoints, checkpoints of another run and of another engine are clear errors.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _interrupt import Crash, checkpoint_meta, crash_after, hang_site, kill_when_hanging
from conftest import bars, test_params_for, toy_data_for

import unsup.train._em_checkpoint as emc
import unsup.train._mcmc_checkpoint as mcc
from unsup.cluster import GaussianMixture, KMeans
from unsup.energy import DBM, BernoulliRBM
from unsup.registry import model_specs
from unsup.train.checkpoint import CHECKPOINT_NAME
from unsup.train.em import EMEngine

pytestmark = pytest.mark.usefixtures("one_thread")

# The killed process: the fit of argv[1] (JSON), with one thread like this process.
_CHILD = textwrap.dedent("""
    import importlib, json, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    spec = json.loads(sys.argv[1])
    cls = getattr(importlib.import_module(spec["module"]), spec["cls"])
    cls(**spec["params"], checkpoint_dir=spec["dir"],
        checkpoint_every=spec["every"]).fit(np.load(spec["data"]))
    print("FINISHED")
""")


def _fitted(est: object) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in vars(est).items()
            if k.endswith("_") and not k.startswith("_") and isinstance(v, np.ndarray)}


def _assert_same_model(a: object, b: object) -> None:
    fa, fb = _fitted(a), _fitted(b)
    assert fa.keys() == fb.keys() and fa
    for k in fa:
        assert np.array_equal(fa[k], fb[k]), k  # bit for bit
    assert getattr(a, "history_", None) == getattr(b, "history_", None)


def _kill_after_checkpoint(tmp_path: Path, cls: type, params: dict, X: np.ndarray,
                           every: int, hang_at: int = 3) -> Path:
    """Run the fit in a child process, SIGKILL it at its `hang_at`-th checkpoint; its directory."""
    d, data = tmp_path / "ckpt", tmp_path / "X.npy"
    np.save(data, X)
    spec = {"module": cls.__module__, "cls": cls.__name__, "params": params, "dir": str(d),
            "every": every, "data": str(data)}
    env, marker = hang_site(tmp_path, hang_at, (emc.__name__, mcc.__name__))
    p = kill_when_hanging([sys.executable, "-c", _CHILD, json.dumps(spec)], env, marker, 120)
    assert "FINISHED" not in p.stdout
    return d


# -- kill -9, then resume ------------------------------------------------------------------------
def test_killed_cli_gaussian_mixture_run_resumes_bit_for_bit(tmp_path):
    """`unsup fit gmm` (restarts; the mixture's previous responsibilities and the NumPy
    RandomState of its k-means seeding are per-fit state) killed with SIGKILL after a
    checkpoint, then `--resume`: the model of a run never stopped."""
    import unsup
    from unsup import runs
    from unsup.cli import main

    args = ["gmm", "--data", "digits", "--n-components", "4", "--n-init", "3", "--max-iter",
            "12", "--tol", "0", "--covariance-type", "diag", "--checkpoint-every", "2", "-q"]
    a, b = tmp_path / "a", tmp_path / "b"
    env, marker = hang_site(tmp_path)
    kill_when_hanging([sys.executable, "-m", "unsup.cli", "fit", *args, "--out", str(a)], env,
                      marker, 120)
    assert runs.list_runs(tmp_path)[0]["status"] == "killed"
    assert not checkpoint_meta(a / "checkpoints")["state"]["finished"]
    with pytest.warns(Warning):  # tol=0 never converges, as in the uninterrupted run
        assert main(["fit", *args, "--out", str(a), "--resume"]) == 0
    seed = json.loads((a / "run.json").read_text())["seed"]
    with pytest.warns(Warning):
        assert main(["fit", *args, "--out", str(b), "--random-state", str(seed)]) == 0
    _assert_same_model(unsup.load(a), unsup.load(b))


def test_killed_pcd_rbm_resumes_bit_for_bit(tmp_path):
    X = bars(120)
    kw = {"n_components": 8, "persistent": True, "n_chains": 15, "n_updates": 300,
          "batch_size": 20, "sparsity_target": 0.2, "random_state": 0, "device": "cpu"}
    d = _kill_after_checkpoint(tmp_path, BernoulliRBM, kw, X, every=25)
    stage = checkpoint_meta(d)["stages"][0]
    assert not stage["done"] and 0 < stage["t"] < 300 and stage["n_chains"] == 2
    resumed = BernoulliRBM(**kw, checkpoint_dir=str(d), resume=True).fit(X)
    ref = BernoulliRBM(**kw).fit(X)
    _assert_same_model(resumed, ref)  # weights, biases, chains' h samples, check states


def test_killed_dbm_resumes_bit_for_bit_across_its_stages(tmp_path):
    # pre-training of both layers, then joint training: three engine stages in one file
    X = bars(120)
    kw = {"layer_sizes": [6, 4], "n_updates": 120, "pretrain_updates": 60, "batch_size": 20,
          "random_state": 0, "device": "cpu"}
    d = _kill_after_checkpoint(tmp_path, DBM, kw, X, every=10, hang_at=9)
    stages = checkpoint_meta(d)["stages"]
    assert not stages[-1]["done"]
    resumed = DBM(**kw, checkpoint_dir=str(d), resume=True).fit(X)
    ref = DBM(**kw).fit(X)
    _assert_same_model(resumed, ref)
    assert resumed.pretrain_history_ == ref.pretrain_history_


# -- every EM and MCMC model: a crash after the k-th checkpoint, in process (fast) -------------
# every registered model on the EM engine that keeps checkpoints (no list to edit)
EM_MODELS = sorted(s.cls.__name__ for s in model_specs() if issubclass(s.cls, EMEngine)
                   and getattr(s.cls, "_keeps_checkpoints", True))
MCMC_MODELS = ["BernoulliRBM", "GaussianBernoulliRBM", "ReplicatedSoftmaxRBM",
               "BoltzmannMachine", "CollaborativeFilteringRBM", "DBM", "DBN"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", EM_MODELS + MCMC_MODELS)
def test_crash_then_resume_equals_the_uninterrupted_fit(tmp_path, monkeypatch, name):
    cls = {s.cls.__name__: s.cls for s in model_specs()}[name]
    X, params = toy_data_for(cls), test_params_for(cls)
    if name in ("KMeans", "GaussianMixture"):
        params.update(n_init=2, tol=0.0)
    module = emc if name in EM_MODELS else mcc
    for k in (1, 3):
        d = tmp_path / f"k{k}"
        with monkeypatch.context() as m:
            crash_after(m, module, k)
            with pytest.raises(Crash):
                cls(**params, checkpoint_dir=str(d), checkpoint_every=2).fit(X)
        resumed = cls(**params, checkpoint_dir=str(d), checkpoint_every=2, resume=True).fit(X)
        _assert_same_model(resumed, cls(**params).fit(X))


def test_resuming_a_finished_fit_returns_it_without_training(tmp_path, monkeypatch):
    from unsup.energy.rbm import _BernoulliMath

    X = bars(60)
    kw = {"n_components": 4, "n_updates": 30, "batch_size": 20, "random_state": 0}
    a = BernoulliRBM(**kw, checkpoint_dir=str(tmp_path)).fit(X)
    assert checkpoint_meta(tmp_path)["stages"][0] | {"history": 0} == {
        **checkpoint_meta(tmp_path)["stages"][0], "done": True, "t": 30, "history": 0}

    def no_update(*args, **kwargs):
        raise AssertionError("a finished stage was trained again")

    monkeypatch.setattr(_BernoulliMath, "accumulate", no_update)
    b = BernoulliRBM(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X)
    _assert_same_model(a, b)


# -- damaged, foreign and mismatched checkpoints --------------------------------------------------
def _kmeans_checkpoint(d: Path) -> tuple[np.ndarray, dict]:
    X = bars(60)
    kw = {"n_clusters": 3, "n_init": 2, "random_state": 0}
    KMeans(**kw, checkpoint_dir=str(d)).fit(X)
    return X, kw


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_is_a_clear_error_not_a_fresh_start(tmp_path, damage):
    X, kw = _kmeans_checkpoint(tmp_path)
    path = tmp_path / CHECKPOINT_NAME
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(len(data)),
                      "empty": b""}[damage])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        KMeans(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        BernoulliRBM(4, n_updates=5, checkpoint_dir=str(tmp_path), resume=True).fit(X)


def test_a_checkpoint_with_missing_tensors_or_bad_metadata_is_named_damaged(tmp_path):
    from safetensors.torch import load_file, save_file

    X = bars(60)
    kw = {"n_components": 4, "n_updates": 40, "batch_size": 20, "random_state": 0}
    with pytest.MonkeyPatch.context() as m:
        crash_after(m, mcc, 1)
        with pytest.raises(Crash):
            BernoulliRBM(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=10).fit(X)
    path = tmp_path / CHECKPOINT_NAME
    tensors, meta = load_file(str(path)), checkpoint_meta(tmp_path)
    del tensors["s0.v.W"]
    save_file(tensors, str(path), metadata={"format": "unsup-checkpoint",
                                            "json": json.dumps(meta)})
    with pytest.raises(ValueError, match="checkpoint is damaged.*s0.v.W"):
        BernoulliRBM(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X)
    save_file(tensors, str(path), metadata={"format": "unsup-checkpoint", "json": "{oops"})
    with pytest.raises(ValueError, match="metadata is damaged"):
        BernoulliRBM(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X)


def test_a_checkpoint_of_another_run_or_engine_is_refused_by_name(tmp_path):
    X, kw = _kmeans_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"different run \(param n_clusters: 3 there, 4 now"):
        KMeans(**{**kw, "n_clusters": 4}, checkpoint_dir=str(tmp_path), resume=True).fit(X)
    with pytest.raises(ValueError, match="different run.*data"):
        KMeans(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X[::-1])
    with pytest.raises(ValueError, match="random_state: 0 there, 1 now"):
        KMeans(**{**kw, "random_state": 1}, checkpoint_dir=str(tmp_path), resume=True).fit(X)
    with pytest.raises(ValueError, match="written by the em engine, not the mcmc engine"):
        BernoulliRBM(4, n_updates=5, checkpoint_dir=str(tmp_path), resume=True).fit(X)
    rbm = tmp_path / "rbm"
    BernoulliRBM(4, n_updates=20, batch_size=20, random_state=0,
                 checkpoint_dir=str(rbm)).fit(X)
    with pytest.raises(ValueError, match="n_updates: 20 there, 30 now"):
        BernoulliRBM(4, n_updates=30, batch_size=20, random_state=0, checkpoint_dir=str(rbm),
                     resume=True).fit(X)
    with pytest.raises(ValueError, match="written by the mcmc engine, not the em engine"):
        KMeans(**kw, checkpoint_dir=str(rbm), resume=True).fit(X)


def test_resume_needs_a_checkpoint_dir_and_starts_fresh_without_a_file(tmp_path):
    X = bars(60)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        KMeans(3, resume=True).fit(X)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        BernoulliRBM(4, n_updates=5, resume=True).fit(X)
    a = KMeans(3, random_state=0, checkpoint_dir=str(tmp_path / "new"), resume=True).fit(X)
    _assert_same_model(a, KMeans(3, random_state=0).fit(X))
    assert (tmp_path / "new" / CHECKPOINT_NAME).exists()


def test_checkpoint_parameters_are_every_models_and_checked(tmp_path):
    for cls in (KMeans, GaussianMixture, BernoulliRBM, DBM):
        assert {"checkpoint_dir", "checkpoint_every", "resume"} <= set(cls().get_params())
    for est in (KMeans(3, checkpoint_every=0, checkpoint_dir=str(tmp_path)),
                BernoulliRBM(4, n_updates=5, checkpoint_every=0, checkpoint_dir=str(tmp_path))):
        with pytest.raises(ValueError, match="checkpoint_every"):
            est.fit(bars(30))


def test_checkpoint_tensors_are_not_pickled(tmp_path):
    _kmeans_checkpoint(tmp_path)
    head = (tmp_path / CHECKPOINT_NAME).read_bytes()[:8]
    n = int.from_bytes(head, "little")  # safetensors: an 8-byte header length, JSON, tensors
    header = json.loads((tmp_path / CHECKPOINT_NAME).read_bytes()[8:8 + n])
    assert header["__metadata__"]["format"] == "unsup-checkpoint"
    assert json.loads(header["__metadata__"]["json"])["engine"] == "em"
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed


def test_the_cli_passes_its_checkpoint_directory_to_em_and_energy_models(tmp_path):
    from unsup.cli import main

    for model, extra in (("kmeans", ["--n-clusters", "3", "--n-init", "2"]),
                         ("rbm", ["--n-components", "8", "--n-updates", "40"])):
        out = tmp_path / model
        assert main(["fit", model, "--data", "digits", "--out", str(out), "-q", *extra]) == 0
        meta = checkpoint_meta(out / "checkpoints")
        assert meta["engine"] == ("em" if model == "kmeans" else "mcmc")
