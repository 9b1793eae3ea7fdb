"""KMeans and MiniBatchKMeans: scikit-learn conformance, agreement with scikit-learn's
results, chunking, dtypes, memory-mapped and streamed fitting, and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn import cluster as skcluster
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import unsup.cluster._hamerly as hamerly
import unsup.cluster._lloyd as lloyd
import unsup.cluster.kmeans as kmeans_module
import unsup.ops
from unsup._numba import row_blocks
from unsup.cluster import GaussianMixture, KMeans, MiniBatchKMeans
from unsup.data import DataError


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    X, _ = make_blobs(600, centers=5, n_features=4, random_state=0)
    return X


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data


# -- scikit-learn conformance -------------------------------------------------------------


@pytest.mark.parametrize(
    "est",
    [KMeans(n_clusters=3, n_init=2, device="cpu"),
     MiniBatchKMeans(n_clusters=3, batch_size=32, device="cpu")],
    ids=["KMeans", "MiniBatchKMeans"],
)
def test_check_estimator(est):
    # No expected failures: every check of scikit-learn's suite passes.
    check_estimator(est, expected_failed_checks={}, on_skip=None)


def test_params_clone_set_params(blobs):
    from sklearn.base import clone

    init = blobs[:3].copy()
    km = KMeans(3, init=init, n_init=1, random_state=7, device="cpu")
    assert km.get_params()["init"] is init  # stored unchanged
    c = clone(km)
    assert c.get_params()["random_state"] == 7 and c.get_params()["n_clusters"] == 3
    np.testing.assert_array_equal(c.init, init)
    km.fit(blobs)
    c2 = clone(km)
    assert not hasattr(c2, "cluster_centers_")
    assert km.set_params(n_clusters=4, init="k-means++") is km
    assert km.n_clusters == 4
    with pytest.raises(ValueError, match="bogus"):
        km.set_params(bogus=1)


def test_pipeline_and_grid_search(blobs):
    pipe = Pipeline([("scale", StandardScaler()),
                     ("km", KMeans(5, n_init=2, random_state=0, device="cpu"))])
    labels = pipe.fit_predict(blobs)
    np.testing.assert_array_equal(labels, pipe.predict(blobs))
    assert pipe.transform(blobs).shape == (len(blobs), 5)
    # score = -inertia, which more clusters always lower: the grid must pick the largest K
    gs = GridSearchCV(KMeans(n_init=2, random_state=0, device="cpu"),
                      {"n_clusters": [2, 3, 5]}, cv=3).fit(blobs)
    assert gs.best_params_ == {"n_clusters": 5}
    assert gs.best_estimator_.cluster_centers_.shape == (5, 4)


# -- KMeans against scikit-learn ----------------------------------------------------------


@pytest.mark.parametrize("data,k", [("blobs", 5), ("digits", 10)])
def test_inertia_matches_sklearn(data, k, request):
    X = request.getfixturevalue(data)
    ours = KMeans(k, n_init=4, random_state=0, device="cpu").fit(X)
    ref = skcluster.KMeans(k, n_init=4, random_state=0).fit(X)
    assert abs(ours.inertia_ / ref.inertia_ - 1) < 0.01
    # inertia_ is the inertia of the returned centres and labels
    d2 = ((X - ours.cluster_centers_[ours.labels_]) ** 2).sum()
    assert ours.inertia_ == pytest.approx(d2, rel=1e-10)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_given_init_reproduces_sklearn_lloyd(digits, dtype, rtol):
    X = digits.astype(dtype)
    init = X[np.random.RandomState(1).choice(len(X), 10, replace=False)]
    ours = KMeans(10, init=init, n_init=1, tol=0.0, device="cpu").fit(X)
    ref = skcluster.KMeans(10, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(X)
    scale = np.abs(ref.cluster_centers_).max()
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=0,
                               atol=rtol * scale)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=rtol)
    assert ours.cluster_centers_.dtype == dtype


def test_same_seed_same_result(blobs):
    a = KMeans(5, n_init=3, random_state=42, device="cpu").fit(blobs)
    b = KMeans(5, n_init=3, random_state=42, device="cpu").fit(blobs)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_
    # a RandomState is accepted, and a fresh one with the same seed reproduces the fit
    c = KMeans(5, n_init=3, random_state=np.random.RandomState(42), device="cpu").fit(blobs)
    d = KMeans(5, n_init=3, random_state=np.random.RandomState(42), device="cpu").fit(blobs)
    np.testing.assert_array_equal(c.cluster_centers_, d.cluster_centers_)


def test_labels_predict_transform_score(blobs):
    km = KMeans(5, n_init=2, random_state=0, device="cpu").fit(blobs)
    np.testing.assert_array_equal(km.labels_, km.predict(blobs))
    np.testing.assert_array_equal(km.labels_, km.fit_predict(blobs))
    D = km.transform(blobs)
    ref = cdist(blobs, km.cluster_centers_)
    np.testing.assert_allclose(D, ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(D.argmin(1), km.labels_)
    assert km.score(blobs) == pytest.approx(-km.inertia_, rel=1e-12)
    Xn = blobs[:50] + 0.3
    assert km.score(Xn) == pytest.approx(-(cdist(Xn, km.cluster_centers_).min(1) ** 2).sum(),
                                         rel=1e-10)


def test_empty_cluster_is_repaired(blobs):
    init = np.array([[1e6] * 4, *blobs[:4]])  # the first centre attracts no point
    km = KMeans(5, init=init, device="cpu").fit(blobs)
    counts = np.bincount(km.labels_, minlength=5)
    assert (counts > 0).all(), counts
    assert np.isfinite(km.cluster_centers_).all()
    assert (km.cluster_centers_ <= blobs.max(0)).all()  # the far centre moved into the data
    ref = skcluster.KMeans(5, n_init=4, random_state=0).fit(blobs)
    assert km.inertia_ < 1.5 * ref.inertia_


def test_chunked_path_matches_unchunked(blobs, monkeypatch):
    monkeypatch.setattr(kmeans_module, "HAVE_NUMBA", False)  # the GEMM path: chunked passes
    monkeypatch.setattr(lloyd, "HAVE_NUMBA", False)  # and chunked k-means++
    full = KMeans(5, n_init=3, random_state=0, device="cpu").fit(blobs)
    D_full = full.transform(blobs)

    n_chunks = []
    orig_chunks = lloyd.chunks

    def counting_chunks(n, size):
        out = list(orig_chunks(n, size))
        n_chunks.append(len(out))
        return iter(out)

    monkeypatch.setattr(unsup.ops, "_BLOCK_ELEMS", 100)
    monkeypatch.setattr(lloyd, "chunks", counting_chunks)
    small = KMeans(5, n_init=3, random_state=0, device="cpu").fit(blobs)
    assert max(n_chunks) >= 50  # 600 rows, 15 centres: 6 rows per chunk
    np.testing.assert_allclose(small.cluster_centers_, full.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(small.labels_, full.labels_)
    assert small.inertia_ == pytest.approx(full.inertia_, rel=1e-12)
    np.testing.assert_array_equal(small.predict(blobs), full.labels_)
    np.testing.assert_allclose(small.transform(blobs), D_full, rtol=1e-12)


def test_float32_float64_and_tensor_input(blobs):
    k64 = KMeans(5, n_init=2, random_state=0, device="cpu").fit(blobs)
    X32 = blobs.astype(np.float32)
    k32 = KMeans(5, n_init=2, random_state=0, device="cpu").fit(X32)
    assert k64.cluster_centers_.dtype == np.float64
    assert k32.cluster_centers_.dtype == np.float32
    np.testing.assert_allclose(k32.cluster_centers_, k64.cluster_centers_, rtol=1e-4, atol=1e-4)
    assert k32.inertia_ == pytest.approx(k64.inertia_, rel=1e-4)
    kt = KMeans(5, n_init=2, random_state=0, device="cpu").fit(torch.from_numpy(blobs))
    np.testing.assert_array_equal(kt.cluster_centers_, k64.cluster_centers_)
    assert isinstance(kt.cluster_centers_, np.ndarray)
    np.testing.assert_array_equal(kt.predict(torch.from_numpy(X32)), k32.predict(X32))
    # lists and integers are accepted (integers become float32)
    kl = KMeans(5, n_init=2, random_state=0, device="cpu").fit(blobs.tolist())
    np.testing.assert_array_equal(kl.cluster_centers_, k64.cluster_centers_)
    ki = KMeans(2, n_init=1, random_state=0, device="cpu").fit(np.array([[0, 0], [0, 1],
                                                                         [9, 9], [9, 8]]))
    assert ki.cluster_centers_.dtype == np.float32
    assert sorted(ki.cluster_centers_[:, 0].tolist()) == [0.0, 9.0]


# -- MiniBatchKMeans ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_blobs() -> np.ndarray:
    X, _ = make_blobs(4000, centers=5, n_features=4, random_state=1, cluster_std=1.0)
    return X.astype(np.float32)


def test_minibatch_on_memmap(big_blobs, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, big_blobs)
    Xm = np.load(path, mmap_mode="r")
    assert isinstance(Xm, np.memmap)
    full = KMeans(5, n_init=3, random_state=0, device="cpu").fit(big_blobs)
    mb = MiniBatchKMeans(5, batch_size=256, random_state=0, device="cpu").fit(Xm)
    assert mb.inertia_ < 1.05 * full.inertia_
    assert mb.labels_.shape == (len(big_blobs),)
    np.testing.assert_array_equal(mb.labels_, mb.predict(big_blobs))
    assert mb.inertia_ == pytest.approx(-mb.score(big_blobs), rel=1e-6)
    assert mb.counts_.sum() == pytest.approx(mb.n_steps_ * 256, rel=0.1)
    # the memory-mapped file gives exactly the fit of the same array in memory
    mem = MiniBatchKMeans(5, batch_size=256, random_state=0, device="cpu").fit(big_blobs)
    np.testing.assert_array_equal(mb.cluster_centers_, mem.cluster_centers_)


def test_minibatch_partial_fit_streams_and_improves(big_blobs):
    full = KMeans(5, n_init=3, random_state=0, device="cpu").fit(big_blobs)
    perm = np.random.RandomState(0).permutation(len(big_blobs))
    mb = MiniBatchKMeans(5, random_state=0, device="cpu")
    scores = []
    for s in range(0, len(perm), 200):
        assert mb.partial_fit(big_blobs[perm[s : s + 200]]) is mb
        scores.append(mb.score(big_blobs))
    assert mb.n_steps_ == 20
    assert scores[-1] > scores[0]  # score = -inertia: higher is better
    assert -scores[-1] < 1.05 * full.inertia_
    assert mb.counts_.sum() == pytest.approx(len(big_blobs))
    with pytest.raises(DataError, match="X has 3 features, but MiniBatchKMeans is expecting 4"):
        mb.partial_fit(big_blobs[:10, :3])


def test_minibatch_partial_fit_first_batch_too_small():
    with pytest.raises(DataError, match=r"3 rows.*n_clusters=8"):
        MiniBatchKMeans(8, device="cpu").partial_fit(np.random.rand(3, 2))


# -- validation through the estimators -----------------------------------------------------

ESTIMATORS = {
    "KMeans": lambda: KMeans(3, n_init=1, random_state=0, device="cpu"),
    "MiniBatchKMeans": lambda: MiniBatchKMeans(3, random_state=0, device="cpu"),
    "GaussianMixture": lambda: GaussianMixture(3, random_state=0, device="cpu"),
}

_rng = np.random.RandomState(0)
_good = _rng.rand(20, 3)
_nan = _good.copy()
_nan[4, 1] = np.nan
_inf = _good.copy()
_inf[7, 2] = np.inf

BAD_INPUTS = {
    "nan": (_nan, r"NaN.*row 4, column 1"),
    "inf": (_inf, r"1 inf"),
    "empty": (np.empty((0, 3)), "empty: 0 samples"),
    "no-features": (np.empty((20, 0)), r"0 feature\(s\)"),
    "1d": (_good[:, 0], "Expected 2D array, got 1D array"),
    "3d": (_good.reshape(20, 3, 1), "3 dimensions"),
    "ragged": ([[1.0, 2.0], [3.0], [4.0, 5.0], [6.0, 7.0]], "ragged"),
    "strings": ([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]], "non-numeric"),
    "complex": (_good + 1j, "Complex data not supported"),
    "none": (None, "None"),
    "too-few": (_good[:2], "n_samples=2 should be >= n_(clusters|components)=3"),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_bad_input_is_refused_with_a_clear_message(name, bad):
    X, msg = BAD_INPUTS[bad]
    with pytest.raises(ValueError, match=msg) as info:
        ESTIMATORS[name]().fit(X)
    assert isinstance(info.value, DataError)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_non_numeric_objects_and_sparse(name):
    import scipy.sparse as sp

    X = _good.astype(object)
    X[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="non-numeric"):
        ESTIMATORS[name]().fit(X)
    with pytest.raises(DataError, match="sparse"):
        ESTIMATORS[name]().fit(sp.csr_matrix(_good))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_predict_checks(name):
    est = ESTIMATORS[name]()
    for method in ("predict", "score"):
        with pytest.raises(NotFittedError):
            getattr(est, method)(_good)
    est.fit(_good)
    with pytest.raises(DataError, match=f"X has 2 features, but {name} is expecting 3 features"):
        est.predict(_good[:, :2])
    with pytest.raises(DataError, match="NaN"):
        est.predict(_nan)
    assert est.predict(_good[:1]).shape == (1,)


@pytest.mark.parametrize("params,msg", [
    ({"n_clusters": 0}, r"'n_clusters' parameter of \w+ must be an int in the range \[1, inf\)"),
    ({"n_clusters": 2.5}, "'n_clusters' parameter .* must be an int"),
    ({"n_clusters": "3"}, "'n_clusters' parameter .* must be an int"),
    ({"n_init": 0}, "'n_init' parameter"),
    ({"max_iter": 0}, "'max_iter' parameter"),
    ({"tol": -1.0}, "'tol' parameter"),
    ({"init": "bogus"}, "'init' parameter .* Got 'bogus'"),
    ({"init": np.zeros((2, 3))}, r"init array has shape \(2, 3\)"),
    ({"device": "cuda" if not torch.cuda.is_available() else "bogus"}, "device="),
])
@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans])
def test_bad_params(cls, params, msg):
    kw = {"n_clusters": 3, "device": "cpu", **params}
    with pytest.raises(ValueError, match=msg):
        cls(**kw).fit(_good)


# -- Hamerly's bounds (the CPU path of KMeans) -------------------------------------------------


def test_hamerly_bounds_hold_and_skip_work():
    """Run Lloyd's iteration with the bounds kernels and check, every iteration, against brute
    force: the labels are the nearest centres, u bounds the own distance from above, l the
    second-nearest from below; and in late iterations most rows skip the K distances."""
    rng = np.random.default_rng(0)
    X = make_blobs(600, centers=5, n_features=3, cluster_std=1.5, random_state=1)[0]
    K, n = 5, len(X)
    C = X[rng.choice(n, K, replace=False)][None].copy()  # 1 run
    x_sq = (X ** 2).sum(1)
    a = np.zeros((1, n), np.int64)
    u, l = np.zeros((1, n)), np.zeros((1, n))
    d = (C[0] ** 2).sum(1)[:, None] - 2 * C[0] @ X.T
    hamerly.settle_rows(np.ascontiguousarray(d), x_sq, np.arange(n), a[0], u[0], l[0])
    need = np.empty((1, n), np.int64)
    skipped = []
    for _ in range(12):
        sums, counts, sq = np.zeros((1, K, 3)), np.zeros((1, K)), np.zeros((1, K))
        hamerly.accumulate_rows(X, x_sq, a, sums, counts, sq)
        true = cdist(X, C[0])
        stats = map(torch.from_numpy, (sums, counts, sq))
        inertia = hamerly.inertia_of(torch.from_numpy(C), *stats)
        assert float(inertia[0]) == pytest.approx((true[np.arange(n), a[0]] ** 2).sum(), rel=1e-9)
        new = sums / counts[..., None]
        delta = np.sqrt(((new - C) ** 2).sum(-1))
        C = new
        half = hamerly.half_separation(torch.from_numpy(C)).numpy()
        m = int(hamerly.bounds_pass(X, C, a, u, l, delta, half, need)[0])
        rows = need[0, :m]
        d = (C[0] ** 2).sum(1)[:, None] - 2 * C[0] @ X[rows].T
        hamerly.settle_rows(np.ascontiguousarray(d), x_sq[rows], rows, a[0], u[0], l[0])
        true = cdist(X, C[0])
        np.testing.assert_array_equal(a[0], true.argmin(1))
        own = true[np.arange(n), a[0]]
        true[np.arange(n), a[0]] = np.inf
        assert np.all(u[0] >= own - 1e-9) and np.all(l[0] <= true.min(1) + 1e-9)
        skipped.append(1 - m / n)
    assert skipped[-1] > 0.9  # converged: almost every row keeps its centre without distances


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_bounds_give_lloyds_fit(monkeypatch, dtype):
    """The bounded E-step changes the work, not the fit: the same iterations, labels, centres,
    inertia and history as the GEMM path (forced by hiding numba)."""
    X = make_blobs(3000, centers=8, n_features=6, cluster_std=3.0, random_state=2)[0].astype(dtype)
    fast = KMeans(8, n_init=3, random_state=0, device="cpu").fit(X)
    monkeypatch.setattr(kmeans_module, "HAVE_NUMBA", False)
    plain = KMeans(8, n_init=3, random_state=0, device="cpu").fit(X)
    assert fast.n_iter_ == plain.n_iter_ > 2
    np.testing.assert_array_equal(fast.labels_, plain.labels_)
    np.testing.assert_allclose(fast.cluster_centers_, plain.cluster_centers_, rtol=1e-5)
    assert fast.inertia_ == pytest.approx(plain.inertia_, rel=1e-5)
    hist = [h["inertia"] for h in fast.history_]
    np.testing.assert_allclose(hist, [h["inertia"] for h in plain.history_], rtol=1e-5)


@pytest.mark.parametrize("handed", [False, True])
def test_kmeans_bounds_threaded_blocks_match_one_thread(monkeypatch, handed):
    """With two torch threads (and more rows than the one-thread compiled loop takes) each
    iteration's E-step runs in two row blocks on a thread pool, their statistics summed
    (``_lloyd_blocks.lloyd_steps_blocks``); the fit must be the one-thread fit (labels,
    iterations; centres to rounding), also when every iteration's failing rows of both blocks
    go to one GEMM (``handed``)."""
    monkeypatch.setattr(kmeans_module, "FUSED_ROWS", 0)
    if handed:
        for name, value in (("GEMM_MIN", -1), ("SETTLE_D", 0), ("SETTLE_KD", 0)):
            monkeypatch.setattr(kmeans_module, name, value)
    X = make_blobs(40_000, centers=4, n_features=3, cluster_std=2.0, random_state=3)[0]
    X = X.astype(np.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = KMeans(4, n_init=2, random_state=0, device="cpu").fit(X)
        torch.set_num_threads(2)
        assert len(row_blocks(len(X))) == 2
        two = KMeans(4, n_init=2, random_state=0, device="cpu").fit(X)
    finally:
        torch.set_num_threads(before)
    assert one.n_iter_ == two.n_iter_ > 2
    np.testing.assert_array_equal(one.labels_, two.labels_)
    np.testing.assert_allclose(one.cluster_centers_, two.cluster_centers_, rtol=1e-6)
    assert one.inertia_ == pytest.approx(two.inertia_, rel=1e-9)


def test_kmeans_bounds_restarts_run_one_at_a_time():
    """The bounds' per-row state (24 bytes per row) is held for one run at a time: with the
    bounds the restarts form batches of one, and the fit is still the best of n_init."""
    X = make_blobs(2000, centers=5, n_features=2, random_state=4)[0]
    est = KMeans(5, n_init=4, random_state=0, device="cpu")
    est._bounded = True
    assert est._em_runs_per_batch(4) == 1
    est._bounded = False  # the GEMM path: every restart in one batch
    assert est._em_runs_per_batch(4) == 4
    fit = KMeans(5, n_init=4, random_state=0, device="cpu").fit(X)
    assert len(fit.history_) == fit.n_iter_ + 1
    ref = skcluster.KMeans(5, n_init=4, random_state=0).fit(X)
    assert fit.inertia_ <= ref.inertia_ * 1.01


def test_n_init_auto_is_scikit_learns():
    """``n_init="auto"`` (the default, as scikit-learn's since 1.4): one run with k-means++, 10
    (k-means) or 3 (mini-batch) with random seeding; the fit equals the explicit count's."""
    from unsup.cluster import MiniBatchKMeans

    X = np.random.default_rng(0).normal(size=(300, 4))
    assert KMeans(3)._n_runs() == 1 and KMeans(3, init="random")._n_runs() == 10
    assert MiniBatchKMeans(3)._n_runs() == 1 and MiniBatchKMeans(3, init="random")._n_runs() == 3
    assert KMeans(3, n_init=4, init=X[:3])._n_runs() == 1  # given centres: one run
    for init, n in (("k-means++", 1), ("random", 10)):
        a = KMeans(3, init=init, n_init="auto", random_state=0, device="cpu").fit(X)
        b = KMeans(3, init=init, n_init=n, random_state=0, device="cpu").fit(X)
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    with pytest.raises(ValueError, match="n_init"):
        KMeans(3, n_init="sometimes").fit(X)


def test_compiled_loop_blocks_do_not_change_the_fit(monkeypatch):
    """The loop without the engine between iterations (``_em_fused``, one compiled call per
    block of iterations) gives the fit the engine's iteration gives, whatever the block sizes:
    one iteration per call, the adaptive blocks, every iteration's failing rows handed to the
    GEMM (status 3), and the GEMM path (numba hidden)."""
    import unsup.train.em as em

    X = make_blobs(3000, centers=6, n_features=5, cluster_std=4.0, random_state=5)[0]
    blocks: list[int] = []
    orig_fused = KMeans._em_fused

    def fused(self, X, params, first, n_steps, tol):
        out = orig_fused(self, X, params, first, n_steps, tol)
        if out is not None:
            blocks.append(len(out.objectives))
        return out

    monkeypatch.setattr(KMeans, "_em_fused", fused)
    ref = KMeans(6, n_init=2, random_state=1, device="cpu").fit(X)
    assert ref.n_iter_ > 5 and max(blocks) > 1
    # every iteration's rows to the GEMM (the compiled distances' D = 5 would keep them)
    monkeypatch.setattr(kmeans_module, "GEMM_MIN", -1)
    monkeypatch.setattr(kmeans_module, "SETTLE_D", 0)
    monkeypatch.setattr(kmeans_module, "SETTLE_KD", 0)
    gemm_calls = []
    by_gemm = kmeans_module.blocks_.settle_by_gemm
    monkeypatch.setattr(kmeans_module.blocks_, "settle_by_gemm",
                        lambda *a: gemm_calls.append(1) or by_gemm(*a))
    handed = KMeans(6, n_init=2, random_state=1, device="cpu").fit(X)
    assert len(gemm_calls) >= handed.n_iter_  # every iteration handed its rows over
    monkeypatch.undo()
    monkeypatch.setattr(KMeans, "_em_fused", fused)
    monkeypatch.setattr(em, "FUSED_MAX_BLOCK", 1)
    monkeypatch.setattr(em, "FUSED_FIRST_BLOCK", 1)
    blocks.clear()
    one = KMeans(6, n_init=2, random_state=1, device="cpu").fit(X)
    assert max(blocks) == 1 and len(blocks) > ref.n_iter_
    monkeypatch.setattr(kmeans_module, "HAVE_NUMBA", False)
    plain = KMeans(6, n_init=2, random_state=1, device="cpu").fit(X)
    for other in (handed, one, plain):
        assert other.n_iter_ == ref.n_iter_
        np.testing.assert_array_equal(other.labels_, ref.labels_)
        np.testing.assert_allclose(other.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
        np.testing.assert_allclose([h["inertia"] for h in other.history_],
                                   [h["inertia"] for h in ref.history_], rtol=1e-10)


def test_chunked_bounds_and_settling_match_the_two_passes():
    """``_bounds_settle`` (bounds and failing rows chunk by chunk, 3 chunks here) leaves the
    same labels, bounds and statistics as the bounds pass over every row then one settling
    pass; and the labels are the nearest centres."""
    rng = np.random.default_rng(0)
    N, D, K = 40_000, 17, 6
    assert N > 2 * (hamerly.SETTLE_CHUNK_ELEMS // D)
    X = rng.normal(size=(N, D)).astype(np.float32)
    x_sq = (X.astype(np.float64) ** 2).sum(1)
    C0 = X[:K].astype(np.float64)
    d = cdist(X, C0)
    a = d.argmin(1).astype(np.int64)
    u = d[np.arange(N), a]
    d[np.arange(N), a] = np.inf
    l = d.min(1)
    sums, counts, sq = np.zeros((K, D)), np.zeros(K), np.zeros(K)
    hamerly.accumulate_rows(X, x_sq, a[None], sums[None], counts[None], sq[None])
    C = (C0 + rng.normal(scale=0.3, size=(K, D))).astype(np.float32)
    delta = np.sqrt(((C - C0) ** 2).sum(1))
    c_sq, half = np.empty(K, np.float32), np.empty(K)
    hamerly.centre_norms(C, c_sq, half)
    need, z = np.empty(N, np.int64), np.empty(N)
    two = [v.copy() for v in (a, u, l, sums, counts, sq)]
    m = hamerly._bounds_one(X, C, two[0], two[1], two[2], delta, half, need, z)
    hamerly._settle_block(X, x_sq, C, c_sq, need, m, *two)
    one = [v.copy() for v in (a, u, l, sums, counts, sq)]
    m1 = hamerly._bounds_settle(X, x_sq, C, c_sq, one[0], one[1], one[2], delta, half, need, z,
                                *one[3:])
    assert m1 == m > 0
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[0], cdist(X, C).argmin(1))
    for x, y in zip(one[1:], two[1:], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12)


@pytest.mark.parametrize("dtype, n_rows", [(np.float32, 700), (np.float64, 700),
                                           (np.float32, 100), (np.float64, 30)])
def test_gemm_settling_gives_nearest_second_nearest_and_moves(dtype, n_rows):
    """At K ≥ GEMM_SETTLE_K the settling goes through BLAS (``_settle_gemm``: 700 rows are
    several row blocks and a partial last one, 100 one block of 100) or, below
    GEMM_SETTLE_MIN_ROWS rows, the loops: for the listed rows, the nearest centre, the exact
    distances to it and to the second nearest, and each moved row's x, 1 and ‖x‖² taken from
    its old cluster's statistics to its new one's; unlisted rows untouched."""
    rng = np.random.default_rng(1)
    N, D, K = 1_000, 9, hamerly.GEMM_SETTLE_K + 3
    assert hamerly.gemm_settles(K, D) and not hamerly.gemm_settles(K, hamerly.GEMM_SETTLE_D - 1)
    X = rng.normal(size=(N, D)).astype(dtype)
    C = rng.normal(size=(K, D)).astype(dtype)
    x_sq = (X.astype(np.float64) ** 2).sum(1)
    c_sq = (C.astype(np.float64) ** 2).sum(1).astype(dtype)
    a = rng.integers(0, K, N)
    u, l = np.full(N, -1.0), np.full(N, -1.0)
    sums, counts, sq = np.zeros((K, D)), np.zeros(K), np.zeros(K)
    hamerly.accumulate_rows(X, x_sq, a[None], sums[None], counts[None], sq[None])
    rows = np.sort(rng.choice(N, n_rows, replace=False))
    assert len(rows) % hamerly.GEMM_SETTLE_ROWS
    assert (n_rows > 2 * hamerly.GEMM_SETTLE_ROWS or n_rows < hamerly.GEMM_SETTLE_ROWS)
    assert (n_rows < hamerly.GEMM_SETTLE_MIN_ROWS) == (n_rows == 30)
    a_old = a.copy()
    hamerly._settle_block(X, x_sq, C, c_sq, rows, len(rows), a, u, l, sums, counts, sq)
    d = np.sort(cdist(X[rows].astype(np.float64), C.astype(np.float64)), axis=1)
    np.testing.assert_array_equal(a[rows], cdist(X[rows], C).argmin(1))
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(u[rows], d[:, 0], rtol=tol)
    np.testing.assert_allclose(l[rows], d[:, 1], rtol=tol)
    rest = np.setdiff1d(np.arange(N), rows)
    assert (a[rest] == a_old[rest]).all() and (u[rest] == -1).all() and (l[rest] == -1).all()
    want = [np.zeros((K, D)), np.zeros(K), np.zeros(K)]
    hamerly.accumulate_rows(X, x_sq, a[None], *(w[None] for w in want))
    for got, w in zip((sums, counts, sq), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-9, atol=1e-9)


def test_one_blas_thread_limits_the_kernels_blas_and_restores_it():
    """``one_blas_thread()``, around the compiled settling's GEMMs, holds every BLAS numpy and
    scipy loaded (numba's ``np.dot`` calls scipy's) to one thread and gives back the counts."""
    from threadpoolctl import threadpool_info

    from unsup._numba import one_blas_thread

    def counts():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = counts()
    with one_blas_thread():
        inside = counts()
    assert inside and all(n == 1 for n in inside)
    assert counts() == before


def test_one_thread_blocks_that_end_out_of_order_restore_the_counts():
    """Two blocks (as two fits side by side in a user's thread pool) entered A, B and left A,
    B: the count stays 1 until the last one leaves, then is the one found before A."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from unsup._numba import one_blas_thread, one_torch_thread

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(2, user_api="blas"):
            for block, count in ((one_torch_thread, torch.get_num_threads),
                                 (one_blas_thread, lambda: max(blas()))):
                found = count()  # 2, or what this machine's BLAS allows
                a, b = block(), block()
                a.__enter__()
                b.__enter__()
                assert count() == 1
                a.__exit__(None, None, None)
                assert count() == 1  # b is still inside
                b.__exit__(None, None, None)
                assert count() == found and found > 1
    finally:
        torch.set_num_threads(old)


def test_blas_settling_only_where_its_threads_are_limited():
    """The compiled settling's BLAS GEMM runs only under ``settle_blas``'s one-thread limit:
    where no limit is set (the compiled settling not chosen: D > SETTLE_D and K·D >
    SETTLE_KD) its loops only ever see failing rows whose K distances fit under GEMM_MIN,
    fewer than GEMM_SETTLE_MIN_ROWS of them at any K, D that ``gemm_settles``."""
    from unsup.cluster import kmeans

    for K in (hamerly.GEMM_SETTLE_K, 64, 256, 1024):
        for D in (kmeans.SETTLE_D + 1, 100, 784, 4096):
            if K * D <= kmeans.SETTLE_KD or not hamerly.gemm_settles(K, D):
                continue
            assert not kmeans.compiled_settle(K, D)
            assert kmeans.settle_blas(K, D).__class__.__name__ == "nullcontext"
            assert hamerly.GEMM_SETTLE_MIN_ROWS * K * D > kmeans.GEMM_MIN
    assert kmeans.settle_blas(hamerly.GEMM_SETTLE_K, 16).__class__.__name__ != "nullcontext"


def test_compiled_steps_statuses():
    """``lloyd_steps`` against brute force: labels, inertia at the given centres, the M-step
    (means, moves, their squared sum); converged when the last shift is within tol; and with
    an empty cluster status 2 with the centres untouched (the engine's M-step repairs them)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    x_sq = (X.astype(np.float64) ** 2).sum(1)

    def state(C):
        d = cdist(X, C)
        a = d.argmin(1).astype(np.int64)
        u = d[np.arange(len(X)), a]
        d[np.arange(len(X)), a] = np.inf
        return a, u, d.min(1)

    def run(C, first, shift, steps, tol=0.0):
        a, u, l = state(C)
        objs, sums, counts = np.empty(steps), np.empty((len(C), 3)), np.empty(len(C))
        delta = np.zeros(len(C))
        C_in = C.copy()
        out = hamerly.lloyd_steps(X, x_sq, C, a, u, l, delta, first, shift, steps, tol, objs,
                                  sums, counts, np.empty(len(C)), np.empty(len(X) + 1, np.int64),
                                  False, 2**40)
        return out, a, C_in, objs, delta, counts

    C = X[:4].copy() + 0.01
    (n, status, shift), a, C_in, objs, delta, _ = run(C, True, np.inf, 1)
    assert (n, status) == (1, 0)
    np.testing.assert_array_equal(a, cdist(X, C_in).argmin(1))
    assert -objs[0] == pytest.approx(((X.astype(np.float64) - C_in[a]) ** 2).sum(), rel=1e-10)
    means = np.stack([X[a == k].astype(np.float64).mean(0) for k in range(4)])
    np.testing.assert_allclose(C, means, rtol=1e-5)
    np.testing.assert_allclose(delta, np.sqrt(((C - C_in).astype(np.float64) ** 2).sum(1)))
    assert shift == pytest.approx((delta ** 2).sum(), rel=1e-12)
    (n, status, _), *_ = run(C, False, 0.0, 5)
    assert (n, status) == (1, 1)  # the shift given is within tol: converged, no M-step
    far = np.vstack([C[:3], [[1e6, 1e6, 1e6]]]).astype(np.float32)
    (n, status, _), _, C_in, _, _, counts = run(far, False, np.inf, 5)
    assert (n, status) == (1, 2) and counts[3] == 0
    np.testing.assert_array_equal(far, C_in)


def test_kmeans_plusplus_keeps_the_chosen_candidates_distances(monkeypatch):
    """The seeding that keeps every candidate's D(x)² (no second pass over X per centre) picks
    exactly the centres of the one that recomputes the chosen centre's distances."""
    X = torch.as_tensor(make_blobs(3000, centers=12, n_features=40, random_state=4)[0])
    kept = lloyd.kmeans_plusplus(X, 12, 3, torch.Generator().manual_seed(1))
    assert 3 * (2 + int(np.log(12))) <= X.shape[1]  # the kept path is the one taken
    monkeypatch.setattr(lloyd, "KEEP_ELEMS", 0)
    again = lloyd.kmeans_plusplus(X, 12, 3, torch.Generator().manual_seed(1))
    assert torch.equal(kept, again)
    assert len({tuple(r) for r in kept[0].tolist()}) == 12  # 12 distinct data rows


def test_sample_rows_in_one_process_draws_the_sharded_paths_rows(monkeypatch):
    """``sample_rows``' one-process shortcut picks the rows the shard-aware path picks (run
    here as rank 0 of a pretended two-rank world that holds every row), zero weights and
    draws next to a row's boundary in the cumulative weights included."""
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(500, 3, generator=gen, dtype=torch.float64)
    w = torch.rand(4, 500, generator=gen, dtype=torch.float64)
    w[:, ::7] = 0.0
    u = torch.rand(4, 9, generator=gen, dtype=torch.float64)
    u[0, 0] = 0.0
    cum = torch.cumsum(w[1], 0)
    u[1, :3] = cum[[10, 200, 498]] / cum[-1]  # exactly on a boundary: the next row
    fast = lloyd.sample_rows(X, w, u)
    monkeypatch.setattr(lloyd.ud, "world_size", lambda: 2)
    sharded = lloyd.sample_rows(X, w, u)
    assert torch.equal(fast, sharded)
    assert torch.equal(fast[1, :3], X[[11, 201, 499]])
    assert not (w[torch.arange(4)[:, None], torch.cdist(fast.reshape(-1, 3), X).argmin(1)
                  .reshape(4, 9)] == 0).any()  # a zero-weight row is never drawn


@pytest.mark.parametrize("D, K, dtype", [(2, 12, np.float32), (5, 8, np.float64),
                                         (8, 30, np.float32), (16, 20, np.float32)])
def test_compiled_kmeans_plusplus_draws_the_torch_paths_centres(monkeypatch, D, K, dtype):
    """k-means++ in compiled loops (one process on the CPU, D ≤ KPP_D) uses the same uniforms
    in the same order as the torch path: the same centres, with one generator for all runs
    and with one per run, on one thread and with the runs split over two."""
    assert D <= lloyd.KPP_D or (D <= 2 * lloyd.KPP_D and 2000 <= lloyd.KPP_SMALL_ROWS)
    X = torch.as_tensor(make_blobs(2000, centers=K, n_features=D, random_state=D)[0]
                        .astype(dtype))
    before = torch.get_num_threads()
    for gens in (lambda: torch.Generator().manual_seed(3),
                 lambda: [torch.Generator().manual_seed(i) for i in range(3)]):
        compiled = lloyd.kmeans_plusplus(X, K, 3, gens())
        try:  # the runs in parallel blocks
            torch.set_num_threads(2)
            threaded = lloyd.kmeans_plusplus(X, K, 3, gens())
        finally:
            torch.set_num_threads(before)
        monkeypatch.setattr(lloyd, "KPP_D", 0)
        plain = lloyd.kmeans_plusplus(X, K, 3, gens())
        monkeypatch.undo()
        assert torch.equal(compiled, plain) and torch.equal(threaded, plain)
        assert all(len({tuple(r) for r in run.tolist()}) == K for run in compiled)


def test_row_col_moments_are_float64_exact():
    """The compiled moments of float32 data equal float64 numpy's to 1e-12 (squares taken in
    float32 would be off by ~1e-7)."""
    X = (np.random.RandomState(0).standard_normal((500, 7)) * 1e3 + 3.3).astype(np.float32)
    rows, mom = hamerly.row_col_moments(torch.from_numpy(X))
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(rows.numpy(), (X64 ** 2).sum(1), rtol=1e-12)
    np.testing.assert_allclose(mom.numpy(), [X64.sum(0), (X64 ** 2).sum(0)], rtol=1e-12)
