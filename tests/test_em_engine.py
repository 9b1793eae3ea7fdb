"""The EM engine (unsup.train.em) with a toy model, a mixture of Bernoullis, that supplies only
the math: monotone objective, restarts keep the best, chunking and ranks do not change the fit,
convergence bookkeeping, progress. Also runnable as the torchrun worker of the gloo test."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from sklearn.exceptions import ConvergenceWarning

import unsup.distributed as ud
import unsup.train.em as em
from unsup.base import BaseEstimator, progress_callback
from unsup.train.em import EMEngine, EMResult

HERE = Path(__file__).resolve().parent


class BernoulliMixture(EMEngine, BaseEstimator):
    """p(x) = Σ_k π_k Π_d p_kd^x_d (1 − p_kd)^(1−x_d); statistics N_k and Σ_n γ_nk x_n."""

    def __init__(self, n_components=2, *, n_init=1, max_iter=200, tol=1e-10, random_state=0):
        self.n_components, self.n_init, self.max_iter = n_components, n_init, max_iter
        self.tol, self.random_state = tol, random_state

    def fit(self, X, y=None, on_run=None):
        X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
        gen = torch.Generator().manual_seed(self.random_state)
        self.result_ = self._em_fit(X, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                                    generator=gen, stage="bernoulli", on_run=on_run)
        return self

    def _em_initialize(self, X, gen, n_runs):
        p = 0.2 + 0.6 * torch.rand(self.n_components, X.shape[1], generator=gen,
                                   dtype=torch.float64)
        return {"log_w": torch.full((self.n_components,), -math.log(self.n_components),
                                    dtype=torch.float64), "p": p}

    def _em_e_step(self, X, params, rows):
        p = params["p"]
        lp = params["log_w"] + X @ torch.log(p).T + (1 - X) @ torch.log1p(-p).T
        ll = torch.logsumexp(lp, 1)
        r = torch.exp(lp - ll[:, None])
        return {"nk": r.sum(0), "sx": r.T @ X, "objective": ll.sum().reshape(1)}

    def _em_m_step(self, stats, params, X):
        nk = stats["nk"]
        return {"log_w": torch.log(nk / nk.sum()),
                "p": (stats["sx"] / nk[:, None]).clamp(1e-9, 1 - 1e-9)}

    def log_likelihood(self, X) -> float:
        """Mean ln p(x), computed directly (not through the engine)."""
        X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
        p = self.result_.params["p"]
        lp = self.result_.params["log_w"] + X @ torch.log(p).T + (1 - X) @ torch.log1p(-p).T
        return float(torch.logsumexp(lp, 1).mean())


def make_data(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    P = np.array([[0.9] * 4 + [0.1] * 4, [0.1] * 4 + [0.9] * 4, [0.8, 0.2] * 4])
    z = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    return (rng.rand(n, 8) < P[z]).astype(np.float64)


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return make_data()


def test_fit_recovers_the_components_and_reports_the_log_likelihood(X):
    m = BernoulliMixture(3, n_init=4, random_state=1).fit(X)
    res = m.result_
    assert isinstance(res, EMResult) and res.converged
    assert res.objective == pytest.approx(m.log_likelihood(X), rel=1e-10)
    assert res.n_iter == res.history[-1]["iter"] == len(res.history) - 1
    p = res.params["p"].numpy()
    for row in ([0.9] * 4 + [0.1] * 4, [0.1] * 4 + [0.9] * 4, [0.8, 0.2] * 4):
        assert np.abs(p - np.array(row)).max(1).min() < 0.15  # every true component found


def test_objective_never_decreases(X):
    m = BernoulliMixture(3, tol=0.0, max_iter=60, random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X)
    ll = np.array([h["objective"] for h in m.result_.history])
    assert len(ll) == 61
    assert (np.diff(ll) >= -1e-12).all(), np.diff(ll).min()
    assert ll[-1] > ll[0] + 0.1  # and EM made progress


def test_n_init_keeps_the_best_run(X):
    runs: list[EMResult] = []
    with warnings.catch_warnings():  # short runs, so that the restarts end apart
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = BernoulliMixture(3, n_init=6, max_iter=3, tol=0.0, random_state=3).fit(
            X, on_run=runs.append)
    objs = [r.objective for r in runs]
    assert len(runs) == 6 and len(set(np.round(objs, 6))) == 6, objs  # restarts differ
    assert m.result_.objective == max(objs)
    assert m.result_ is runs[int(np.argmax(objs))]


def test_chunked_e_step_equals_one_chunk(X, monkeypatch):
    one = BernoulliMixture(3, random_state=4).fit(X).result_
    calls = []
    orig = BernoulliMixture._em_e_step

    def counting(self, Xc, params, rows):
        calls.append(rows)
        return orig(self, Xc, params, rows)

    monkeypatch.setattr(BernoulliMixture, "_em_e_step", counting)
    monkeypatch.setattr(em, "CACHE_BLOCK_ELEMS", 7)  # 7 rows per chunk (width 1)
    many = BernoulliMixture(3, random_state=4).fit(X).result_
    assert calls[0] == slice(0, 7) and len({(c.start, c.stop) for c in calls}) == 86
    assert many.n_iter == one.n_iter
    np.testing.assert_allclose(many.params["p"], one.params["p"], rtol=1e-12)
    assert many.objective == pytest.approx(one.objective, rel=1e-13)


def test_statistics_are_summed_over_ranks(X, monkeypatch):
    """Two identical ranks (all-reduce doubles every statistic) fit like one process on the
    data stacked twice: the engine all-reduces everything it sums, the row count included."""
    twice = BernoulliMixture(3, random_state=5).fit(np.concatenate([X, X])).result_
    monkeypatch.setattr(ud, "all_reduce_sum", lambda *ts: [t.mul_(2) for t in ts])
    ranks = BernoulliMixture(3, random_state=5).fit(X).result_
    assert ranks.n_iter == twice.n_iter
    np.testing.assert_allclose(ranks.params["p"], twice.params["p"], rtol=1e-10)
    assert ranks.objective == pytest.approx(twice.objective, rel=1e-12)


def test_max_iter_warning_and_progress(X):
    seen = []
    with progress_callback(lambda stage, step, total, **m: seen.append((stage, step, total))):
        with pytest.warns(ConvergenceWarning, match="BernoulliMixture did not converge in "
                                                     "max_iter=3"):
            res = BernoulliMixture(3, max_iter=3, tol=0.0).fit(X).result_
    assert not res.converged and res.n_iter == 3 and len(res.history) == 4
    assert seen == [("bernoulli", t, 3) for t in range(4)]


def test_kmeans_batched_runs_on_the_engine():
    """KMeans runs its restarts on the engine (one batch, or one at a time through its compiled
    loop); each run's inertia never rises."""
    from sklearn.datasets import make_blobs

    from unsup.cluster import KMeans

    Xb, _ = make_blobs(500, centers=6, n_features=3, random_state=0)
    runs: list[EMResult] = []
    km = KMeans(6, n_init=4, random_state=0, device="cpu")
    orig = km._em_fit
    km._em_fit = lambda *a, **k: orig(*a, on_run=runs.append, **k)
    km.fit(Xb)
    assert len(runs) == 4
    for r in runs:
        inertia = np.array([h["inertia"] for h in r.history])
        assert (np.diff(inertia) <= 1e-9 * inertia[0]).all()
    assert km.inertia_ == pytest.approx(min(r.history[-1]["inertia"] for r in runs), rel=1e-12)
    assert km.history_[-1]["inertia"] == pytest.approx(km.inertia_, rel=1e-12)


# -- restarts side by side on threads (_em_concurrent_batches) ---------------------------------


class SideBySide(BernoulliMixture):
    """The toy with every restart allowed at once; records where each E-step ran."""

    seen: list[tuple[int, int]] = []

    def _em_concurrent_batches(self, X, n_batches):
        return n_batches

    def _em_e_step(self, X, params, rows):
        type(self).seen.append((threading.get_ident(), torch.get_num_threads()))
        if getattr(self, "fail", False) and len(type(self).seen) > 5:
            raise ValueError("boom")
        return super()._em_e_step(X, params, rows)


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_restarts_side_by_side_give_the_runs_of_one_at_a_time(X, two_threads):
    """Every run the same as run alone, handed on in run order (so the same one is kept), on
    pool threads that each see one torch thread; the sink hears every iteration of every run;
    the thread count is restored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        alone: list[EMResult] = []
        ref = BernoulliMixture(3, n_init=5, max_iter=4, tol=0.0, random_state=3).fit(
            X, on_run=alone.append)
        SideBySide.seen = []
        both: list[EMResult] = []
        heard = []
        with progress_callback(lambda stage, step, total, **m: heard.append(step)):
            m = SideBySide(3, n_init=5, max_iter=4, tol=0.0, random_state=3).fit(
                X, on_run=both.append)
    assert [r.objective for r in both] == pytest.approx([r.objective for r in alone],
                                                        rel=1e-12)
    assert len({round(r.objective, 8) for r in alone}) == 5  # the runs differ
    assert m.result_.objective == ref.result_.objective and m.result_ is both[
        int(np.argmax([r.objective for r in both]))]
    idents = {i for i, _ in SideBySide.seen}
    assert threading.get_ident() not in idents and len(idents) == 2
    assert {t for _, t in SideBySide.seen} == {1} and torch.get_num_threads() == 2
    assert sorted(heard) == sorted(list(range(5)) * 5)


def test_restarts_side_by_side_restore_the_threads_on_error(X, two_threads):
    m = SideBySide(3, n_init=4, random_state=0)
    m.fail, SideBySide.seen = True, []
    with pytest.raises(ValueError, match="boom"):
        m.fit(X)
    assert torch.get_num_threads() == 2


def test_kmeans_restarts_side_by_side_on_two_threads(two_threads, monkeypatch, tmp_path):
    """KMeans' bounded restarts (rows ≤ FUSED_ROWS) run side by side at 2 threads and give the
    fit of one restart at a time; never with checkpoints."""
    from unsup.cluster import KMeans
    from unsup.cluster import kmeans as km_mod

    rng = np.random.RandomState(0)
    Xk = (rng.randn(3000, 5) + 4 * rng.randint(0, 4, (3000, 1))).astype(np.float32)
    calls = []
    orig = EMEngine._em_batches_at_once
    monkeypatch.setattr(EMEngine, "_em_batches_at_once",
                        lambda self, *a, **k: calls.append(a[4]) or orig(self, *a, **k))
    side = KMeans(6, n_init=3, random_state=0, device="cpu").fit(Xk)
    assert calls == [2]  # workers: min(3 batches, 2 threads)
    monkeypatch.setattr(km_mod.KMeans, "_em_concurrent_batches", lambda self, X, n: 1)
    seq = KMeans(6, n_init=3, random_state=0, device="cpu").fit(Xk)
    assert calls == [2]
    assert side.n_iter_ == seq.n_iter_ and (side.labels_ == seq.labels_).all()
    assert side.inertia_ == pytest.approx(seq.inertia_, rel=1e-6)
    np.testing.assert_allclose(side.cluster_centers_, seq.cluster_centers_, rtol=1e-5)
    monkeypatch.undo()
    monkeypatch.setattr(EMEngine, "_em_batches_at_once", lambda *a, **k: 1 / 0)
    KMeans(6, n_init=3, random_state=0, device="cpu", checkpoint_dir=tmp_path).fit(Xk)


# -- two real processes (gloo) --------------------------------------------------------------


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="torch.distributed with gloo is unavailable")
def test_two_process_gloo_fit_equals_single_process(tmp_path):
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent),
                                                             env.get("PYTHONPATH")]))})
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(Path(__file__).resolve()), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ref = BernoulliMixture(3, n_init=2, random_state=6).fit(make_data(601)).result_
    for r in range(2):
        got = np.load(tmp_path / f"rank{r}.npz")
        assert int(got["n_iter"]) == ref.n_iter
        np.testing.assert_allclose(got["p"], ref.params["p"].numpy(), rtol=1e-10)
        np.testing.assert_allclose(got["history"], [h["objective"] for h in ref.history],
                                   rtol=1e-10)


def _worker(out_dir: str) -> None:
    ud.init(backend="gloo")
    assert ud.is_distributed()
    res = BernoulliMixture(3, n_init=2, random_state=6).fit(ud.shard(make_data(601))).result_
    np.savez(os.path.join(out_dir, f"rank{ud.rank()}.npz"), p=res.params["p"].numpy(),
             n_iter=res.n_iter, history=[h["objective"] for h in res.history])
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1])
