"""Checkpoint and exact resume of LDA's online-VB and collapsed-Gibbs fits (issue 10 §2).

Batch VB runs on the EM engine (covered by ``tests/test_resume_em_mcmc.py``); the online and
Gibbs loops write the same checkpoint format through ``unsup.train._loop_checkpoint``. A fit
stopped after a checkpoint (an exception in process, or SIGKILL of a real ``unsup fit lda``)
and resumed returns the model of a fit never stopped, bit for bit (one thread).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from _interrupt import Crash, checkpoint_meta, crash_after, hang_site, kill_when_hanging
from conftest import toy_data_for

import unsup.topics._lda_gibbs as lda_gibbs
import unsup.topics.lda as lda_module
import unsup.train._em_checkpoint as emc
from unsup.topics import LDA
from unsup.train._loop_checkpoint import generator_from_state, generator_state
from unsup.train.checkpoint import CHECKPOINT_NAME

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = ["online", "gibbs"]


def _params(method: str) -> dict:
    return {"n_components": 3, "method": method, "max_iter": 10, "evaluate_every": 2,
            "batch_size": 32, "random_state": 0, "device": "cpu"}


def _assert_same_model(a: LDA, b: LDA) -> None:
    for k in ("components_", "doc_topic_", "doc_topic_prior_"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k  # bit for bit
    assert a.history_ == b.history_ and a.n_iter_ == b.n_iter_
    assert a.topic_word_prior_ == b.topic_word_prior_


@pytest.mark.parametrize("optimize_priors", ["none", "both"])
@pytest.mark.parametrize("method", METHODS)
def test_crash_then_resume_equals_the_uninterrupted_fit(tmp_path, monkeypatch, method,
                                                        optimize_priors):
    X = toy_data_for(LDA)
    kw = {**_params(method), "optimize_priors": optimize_priors}
    # Gibbs: priors learned at sweeps 3, 6, 9, so the crash at 4 has learned ones to restore
    monkeypatch.setattr(lda_gibbs, "_PRIOR_EVERY", 3)
    ref = LDA(**kw).fit(X)
    assert len(ref.history_) == 5  # evaluated every 2 of 10 iterations
    # at the start (iteration 0), mid-fit (iteration 4) and inside Gibbs' averaging of the last
    # half of the sweeps (iteration 6: its running sums are restored too)
    for k in (1, 3, 4):
        d = tmp_path / f"k{k}"
        with monkeypatch.context() as m:
            crash_after(m, emc, k)
            with pytest.raises(Crash):
                LDA(**kw, checkpoint_dir=str(d), checkpoint_every=2).fit(X)
        state = checkpoint_meta(d)["state"]
        assert not state["finished"] and state["batch"]["it"] == 2 * (k - 1)
        resumed = LDA(**kw, checkpoint_dir=str(d), checkpoint_every=2, resume=True).fit(X)
        _assert_same_model(resumed, ref)
        assert checkpoint_meta(d)["state"]["finished"]


@pytest.mark.parametrize("method", METHODS)
def test_resuming_a_finished_fit_returns_it_without_training(tmp_path, monkeypatch, method):
    X = toy_data_for(LDA)
    kw = _params(method)
    a = LDA(**kw, checkpoint_dir=str(tmp_path)).fit(X)  # checkpoint_every=None: at the end
    assert checkpoint_meta(tmp_path)["state"]["finished"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fit was trained again")

    monkeypatch.setattr(lda_gibbs, "gibbs_sweep", no_training)
    monkeypatch.setattr(lda_module, "vb_e_step", no_training)
    monkeypatch.setattr(LDA, "_transform", lambda self, docs: a.doc_topic_)  # uses vb_e_step
    b = LDA(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X)
    _assert_same_model(a, b)


def test_a_checkpoint_of_another_method_or_budget_is_refused_by_name(tmp_path):
    X = toy_data_for(LDA)
    LDA(**_params("gibbs"), checkpoint_dir=str(tmp_path)).fit(X)
    with pytest.raises(ValueError, match="different run.*param method: 'gibbs' there, 'online'"):
        LDA(**_params("online"), checkpoint_dir=str(tmp_path), resume=True).fit(X)
    with pytest.raises(ValueError, match="different run.*max_iter: 10 there, 12 now"):
        LDA(**{**_params("gibbs"), "max_iter": 12}, checkpoint_dir=str(tmp_path),
            resume=True).fit(X)
    with pytest.raises(ValueError, match="different run.*data"):
        LDA(**_params("gibbs"), checkpoint_dir=str(tmp_path), resume=True).fit(X[::-1])
    with pytest.raises(ValueError, match="random_state: 0 there, 1 now"):
        LDA(**{**_params("gibbs"), "random_state": 1}, checkpoint_dir=str(tmp_path),
            resume=True).fit(X)


def test_damaged_topic_assignments_are_a_clear_error(tmp_path):
    from safetensors.torch import load_file, save_file

    X = toy_data_for(LDA)
    kw = _params("gibbs")
    with pytest.MonkeyPatch.context() as m:
        crash_after(m, emc, 2)
        with pytest.raises(Crash):
            LDA(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=2).fit(X)
    path = tmp_path / CHECKPOINT_NAME
    tensors, meta = load_file(str(path)), checkpoint_meta(tmp_path)
    z = tensors["batch.params.z"]
    tensors["batch.params.z"] = z + 7  # topics outside 0..K-1
    save_file(tensors, str(path), metadata={"format": "unsup-checkpoint",
                                            "json": json.dumps(meta)})
    with pytest.raises(ValueError, match="checkpoint is damaged.*topic assignments"):
        LDA(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X)


def test_the_numpy_generator_state_round_trips_through_json():
    rng = np.random.default_rng(12345)
    rng.random(7)
    rng.integers(0, 5, 3)
    copy = generator_from_state(json.loads(json.dumps(generator_state(rng))))
    assert np.array_equal(copy.random(100), rng.random(100))
    with pytest.raises(TypeError, match="PCG64 only"):
        generator_state(np.random.Generator(np.random.MT19937(0)))


# -- kill -9 of a real `unsup fit lda`, then --resume -------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("method", METHODS)
def test_killed_cli_lda_run_resumes_bit_for_bit(tmp_path, method):
    import unsup
    from unsup import runs
    from unsup.cli import main

    if method == "gibbs":  # the real corpus: 6,883 speeches (Gibbs sweeps are fast)
        data = "shakespeare"
    else:  # online VB passes over 6,883 documents take seconds each: toy counts
        data = str(tmp_path / "counts.npy")
        np.save(data, toy_data_for(LDA))
    args = ["lda", "--data", data, "--method", method, "--n-components", "5", "--max-iter",
            "12", "--evaluate-every", "3", "--batch-size", "32", "--checkpoint-every", "2", "-q"]
    a, b = tmp_path / "a", tmp_path / "b"
    env, marker = hang_site(tmp_path)  # the 3rd checkpoint: iteration 4
    kill_when_hanging([sys.executable, "-m", "unsup.cli", "fit", *args, "--out", str(a)], env,
                      marker)
    assert runs.list_runs(tmp_path)[0]["status"] == "killed"
    assert not checkpoint_meta(a / "checkpoints")["state"]["finished"]
    assert main(["fit", *args, "--out", str(a), "--resume"]) == 0
    seed = json.loads((a / "run.json").read_text())["seed"]
    assert main(["fit", *args, "--out", str(b), "--random-state", str(seed)]) == 0
    _assert_same_model(unsup.load(a), unsup.load(b))
