"""GaussianMixture: scikit-learn conformance and agreement, the EM identity
ln p = L + KL on every recorded step, monotone likelihood, exact densities against scipy,
sampling, information criteria and clear errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn import mixture as skmixture
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import check_estimator

import unsup.ops
from unsup.cluster import GaussianMixture
from unsup.data import DataError

COV_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def separated() -> np.ndarray:
    """Three well-separated, differently shaped blobs: EM from any sensible start ends at the
    same optimum, so unsup and scikit-learn can be compared."""
    X, _ = make_blobs(400, centers=3, n_features=3, random_state=2, cluster_std=[0.5, 1.0, 0.7])
    A = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, -0.4], [0.2, 0.0, 1.0]])
    return X @ A


@pytest.fixture(scope="module")
def overlapping() -> np.ndarray:
    """Overlapping components: EM needs many iterations, exercising every recorded step."""
    rng = np.random.RandomState(0)
    parts = [rng.multivariate_normal(m, c, n) for m, c, n in [
        ([0, 0], [[1.0, 0.6], [0.6, 1.0]], 150),
        ([1.5, 1.0], [[0.5, -0.2], [-0.2, 0.8]], 100),
        ([-1.0, 2.0], [[0.3, 0.0], [0.0, 1.5]], 100),
    ]]
    return np.concatenate(parts)


def full_covariances(gm: GaussianMixture) -> np.ndarray:
    K, D = gm.means_.shape
    c = gm.covariances_
    return {
        "full": lambda: c,
        "tied": lambda: np.broadcast_to(c, (K, D, D)),
        "diag": lambda: np.stack([np.diag(v) for v in c]),
        "spherical": lambda: np.stack([v * np.eye(D) for v in c]),
    }[gm.covariance_type]()


def sklearn_twin(gm: GaussianMixture) -> skmixture.GaussianMixture:
    """A scikit-learn GaussianMixture holding exactly ``gm``'s fitted parameters."""
    sk = skmixture.GaussianMixture(len(gm.weights_), covariance_type=gm.covariance_type)
    for a in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_",
              "n_features_in_", "converged_", "n_iter_", "lower_bound_"):
        setattr(sk, a, getattr(gm, a))
    return sk


# -- conformance ----------------------------------------------------------------------------


def test_check_estimator():
    # No expected failures: every check of scikit-learn's suite passes.
    check_estimator(GaussianMixture(n_components=2, device="cpu"), expected_failed_checks={},
                    on_skip=None)


def test_grid_search_picks_the_true_number_of_components(separated):
    gs = GridSearchCV(GaussianMixture(random_state=0, device="cpu"),
                      {"n_components": [1, 3], "covariance_type": ["full", "spherical"]},
                      cv=3).fit(separated)
    assert gs.best_params_["n_components"] == 3


# -- agreement with scikit-learn ------------------------------------------------------------


@pytest.mark.parametrize("ct", COV_TYPES)
def test_matches_sklearn(separated, ct):
    X = separated
    ours = GaussianMixture(3, covariance_type=ct, tol=1e-10, max_iter=500, random_state=0,
                           device="cpu").fit(X)
    ref = skmixture.GaussianMixture(3, covariance_type=ct, tol=1e-10, max_iter=500,
                                    random_state=0).fit(X)
    assert ours.converged_
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-6)
    # same optimum: same components up to their order
    perm = [int(np.argmin(((ref.means_ - m) ** 2).sum(1))) for m in ours.means_]
    assert sorted(perm) == [0, 1, 2]
    np.testing.assert_allclose(ours.means_, ref.means_[perm], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.weights_, ref.weights_[perm], rtol=1e-5)
    ref_cov = ref.covariances_ if ct == "tied" else ref.covariances_[perm]
    np.testing.assert_allclose(ours.covariances_, ref_cov, rtol=1e-5, atol=1e-8)
    # the fitted attributes have scikit-learn's shapes and meaning: a scikit-learn model
    # given our parameters computes the same densities, responsibilities and criteria
    twin = sklearn_twin(ours)
    np.testing.assert_allclose(ours.score_samples(X), twin.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), twin.predict_proba(X), atol=1e-10)
    np.testing.assert_allclose(ours.precisions_, twin.precisions_, rtol=1e-12)
    assert ours.bic(X) == pytest.approx(twin.bic(X), rel=1e-10)
    assert ours.aic(X) == pytest.approx(twin.aic(X), rel=1e-10)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-6)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_reaches_the_optimum_with_restarts(separated, init):
    ref = skmixture.GaussianMixture(3, tol=1e-10, random_state=0).fit(separated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a poor restart may not converge
        gm = GaussianMixture(3, init=init, n_init=4, tol=1e-9, max_iter=60, random_state=0,
                             device="cpu").fit(separated)
    assert gm.score(separated) == pytest.approx(ref.score(separated), rel=1e-6)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_information_criteria_formulas(separated, ct):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0, device="cpu").fit(separated)
    N, D = separated.shape
    K = 3
    n_cov = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D,
             "spherical": K}[ct]
    p = n_cov + K * D + K - 1
    log_lik = gm.score_samples(separated).sum()
    assert gm.bic(separated) == pytest.approx(-2 * log_lik + p * np.log(N), rel=1e-12)
    assert gm.aic(separated) == pytest.approx(-2 * log_lik + 2 * p, rel=1e-12)


# -- EM: identity, monotonicity -------------------------------------------------------------


@pytest.mark.parametrize("init", ["kmeans", "random"])
@pytest.mark.parametrize("ct", COV_TYPES)
def test_em_identity_and_monotone_likelihood(overlapping, ct, init):
    X = overlapping
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(3, covariance_type=ct, reg_covar=0.0, tol=1e-12, max_iter=60,
                             init=init, random_state=1, device="cpu").fit(X)
    h = gm.history_
    assert len(h) >= 10, "the test needs a long EM run"
    assert [e["iter"] for e in h] == list(range(len(h)))
    for e in h:
        assert abs(e["log_likelihood"] - (e["bound"] + e["kl"])) < 1e-8, e
        assert e["kl"] >= -1e-12, e
    ll = np.array([e["log_likelihood"] for e in h])
    assert (np.diff(ll) >= -1e-9).all(), np.diff(ll).min()
    assert h[0]["kl"] > 1e-6  # the initial responsibilities are not the posterior
    # EM also never lowers the bound from one E-step to the next
    assert gm.lower_bound_ == ll[-1]
    assert gm.score(X) == pytest.approx(gm.lower_bound_, rel=1e-10)
    assert gm.n_iter_ == h[-1]["iter"]


def test_more_restarts_never_worse(overlapping):
    one = GaussianMixture(3, n_init=1, random_state=3, device="cpu").fit(overlapping)
    three = GaussianMixture(3, n_init=3, random_state=3, device="cpu").fit(overlapping)
    assert three.lower_bound_ >= one.lower_bound_ - 1e-12


def test_convergence_warning(overlapping):
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        gm = GaussianMixture(3, max_iter=2, tol=0.0, random_state=0, device="cpu").fit(
            overlapping)
    assert not gm.converged_ and gm.n_iter_ == 2 and len(gm.history_) == 3


# -- inference -----------------------------------------------------------------------------


@pytest.mark.parametrize("ct", COV_TYPES)
def test_score_samples_equals_scipy_mixture(overlapping, ct):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0, device="cpu").fit(overlapping)
    pts = np.array([[0.0, 0.0], [1.0, -2.0], [-3.0, 4.0], [10.0, 10.0]])
    covs = full_covariances(gm)
    comp = np.stack([np.log(w) + multivariate_normal(m, c).logpdf(pts)
                     for w, m, c in zip(gm.weights_, gm.means_, covs, strict=True)], 1)
    expected = logsumexp(comp, axis=1)
    np.testing.assert_allclose(gm.score_samples(pts), expected, rtol=1e-10)
    proba = gm.predict_proba(pts)
    np.testing.assert_allclose(proba, np.exp(comp - expected[:, None]), atol=1e-12)
    assert gm.score(pts) == pytest.approx(expected.mean(), rel=1e-10)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_predict_proba_and_predict(overlapping, ct):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0, device="cpu").fit(overlapping)
    P = gm.predict_proba(overlapping)
    assert P.shape == (len(overlapping), 3) and (P >= 0).all()
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(gm.predict(overlapping), P.argmax(1))
    np.testing.assert_array_equal(gm.fit_predict(overlapping), gm.predict(overlapping))


@pytest.mark.parametrize("ct", COV_TYPES)
def test_sample(separated, ct):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0, device="cpu").fit(separated)
    S, labels = gm.sample(20000)
    assert S.shape == (20000, 3) and labels.shape == (20000,)
    assert set(np.unique(labels)) <= {0, 1, 2}
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / 20000, gm.weights_, atol=0.02)
    mix_mean = gm.weights_ @ gm.means_
    # standard error of the mean is below sqrt(max var / n) ~ 0.05 here
    np.testing.assert_allclose(S.mean(0), mix_mean, atol=0.15)
    # each component's samples have that component's mean and covariance
    covs = full_covariances(gm)
    k = int(np.argmax(gm.weights_))
    Sk = S[labels == k]
    np.testing.assert_allclose(Sk.mean(0), gm.means_[k], atol=0.1)
    np.testing.assert_allclose(np.cov(Sk.T), covs[k], atol=0.15)
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)


def test_chunked_full_covariance_matches(overlapping, monkeypatch):
    gm = GaussianMixture(3, random_state=0, device="cpu").fit(overlapping)
    ref = gm.score_samples(overlapping)
    monkeypatch.setattr(unsup.ops, "_BLOCK_ELEMS", 64)  # 8 rows of K*D=6 per chunk
    np.testing.assert_allclose(gm.score_samples(overlapping), ref, rtol=1e-13)
    small = GaussianMixture(3, random_state=0, device="cpu").fit(overlapping)
    np.testing.assert_allclose(small.means_, gm.means_, rtol=1e-12)
    assert small.lower_bound_ == pytest.approx(gm.lower_bound_, rel=1e-12)


@pytest.fixture(scope="module")
def wide() -> np.ndarray:
    """Float64 blobs with D = 20: diagonal and spherical fits take the compiled one-pass
    E-step (D >= ROWS_KERNEL_MIN_D, K·D <= ROWS_KERNEL_KD)."""
    X, _ = make_blobs(600, centers=4, n_features=20, random_state=3, cluster_std=2.0,
                      center_box=(-3, 3))  # overlapping: EM takes ~20 iterations
    return X


def _counted_kernel(monkeypatch) -> list[int]:
    import unsup.cluster.gaussian_mixture as gmm

    calls: list[int] = []
    kernel = gmm.e_step_rows

    def counted(*args):
        calls.append(len(args[0]))
        return kernel(*args)

    monkeypatch.setattr(gmm, "e_step_rows", counted)
    return calls


@pytest.mark.parametrize("ct", ["diag", "spherical"])
def test_compiled_e_step_gives_the_gemm_paths_fit(wide, ct, monkeypatch):
    """The compiled pass and the GEMM path compute the same E-step (responsibilities from
    random ones, statistics, the three terms of the bound): the same iterations and fit."""
    import unsup.cluster.gaussian_mixture as gmm

    calls = _counted_kernel(monkeypatch)
    monkeypatch.setattr(gmm, "ROWS_KERNEL_BLOCK", 100)  # the compiled pass at any thread count
    kw = dict(covariance_type=ct, reg_covar=0.0, tol=1e-10, max_iter=25, init="random",
              random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(4, **kw).fit(wide)
        assert sum(calls) == len(a.history_) * len(wide)  # every E-step, every row
        monkeypatch.setattr(gmm, "ROWS_KERNEL_KD", 0)
        b = GaussianMixture(4, **kw).fit(wide)
    assert sum(calls) == len(a.history_) * len(wide)  # the GEMM path did not call it
    assert a.n_iter_ == b.n_iter_ and len(a.history_) > 10
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-9)
    assert a.history_[0]["kl"] > 1e-3  # random responsibilities: the bound's terms differ
    for ea, eb in zip(a.history_, b.history_, strict=True):
        for k in ("log_likelihood", "bound", "kl"):
            assert ea[k] == pytest.approx(eb[k], rel=1e-9, abs=1e-9), (k, ea, eb)
        assert abs(ea["log_likelihood"] - (ea["bound"] + ea["kl"])) < 1e-8


def test_compiled_e_step_on_float32_follows_the_float64_fit(wide, monkeypatch):
    """float32 rows, float64 statistics: the fit stays within float32 rounding of the float64
    one (the compiled pass runs on float32 data from D >= ROWS_KERNEL_F32_MIN_D; lowered here)."""
    import unsup.cluster.gaussian_mixture as gmm

    calls = _counted_kernel(monkeypatch)
    monkeypatch.setattr(gmm, "ROWS_KERNEL_BLOCK", 100)
    monkeypatch.setattr(gmm, "ROWS_KERNEL_F32_MIN_D", 16)
    kw = dict(covariance_type="diag", max_iter=15, tol=0.0, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = GaussianMixture(4, **kw).fit(wide.astype(np.float32))
        assert sum(calls) == len(a.history_) * len(wide)
        b = GaussianMixture(4, **kw).fit(wide)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-4)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-5)


def test_compiled_e_step_thread_blocks_match_one_block(wide, monkeypatch):
    import unsup.cluster.gaussian_mixture as gmm

    calls = _counted_kernel(monkeypatch)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = GaussianMixture(4, covariance_type="diag", random_state=0, device="cpu").fit(wide)
        one = len(calls)
        torch.set_num_threads(2)
        monkeypatch.setattr(gmm, "ROWS_KERNEL_BLOCK", 100)
        b = GaussianMixture(4, covariance_type="diag", random_state=0, device="cpu").fit(wide)
    finally:
        torch.set_num_threads(before)
    assert len(calls) - one == 2 * one  # two blocks per E-step
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-11)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12)


def test_float32_and_tensor_input(overlapping):
    a = GaussianMixture(3, random_state=0, device="cpu").fit(overlapping)
    b = GaussianMixture(3, random_state=0, device="cpu").fit(torch.from_numpy(overlapping))
    np.testing.assert_array_equal(a.means_, b.means_)
    c = GaussianMixture(3, random_state=0, device="cpu").fit(overlapping.astype(np.float32))
    assert c.means_.dtype == np.float64  # EM runs in float64 whatever the input
    np.testing.assert_allclose(c.means_, a.means_, atol=1e-4)
    np.testing.assert_allclose(a.score_samples(torch.from_numpy(overlapping)),
                               a.score_samples(overlapping))


# -- errors ---------------------------------------------------------------------------------


def test_more_components_than_samples():
    with pytest.raises(DataError, match="n_samples=3 should be >= n_components=5"):
        GaussianMixture(5, device="cpu").fit(np.random.rand(3, 2))


@pytest.mark.parametrize("init", ["kmeans", "random"])
@pytest.mark.parametrize("ct", COV_TYPES)
def test_degenerate_data_raises_not_nan(ct, init):
    X = np.ones((20, 3))
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, covariance_type=ct, reg_covar=0.0, init=init, random_state=0,
                        device="cpu").fit(X)
    # with the default regularisation the same data fit, with finite parameters
    gm = GaussianMixture(2, covariance_type=ct, init=init, random_state=0, device="cpu").fit(X)
    assert np.isfinite(gm.score_samples(X)).all()
    assert np.isfinite(gm.covariances_).all()


@pytest.mark.parametrize("params,msg", [
    ({"n_components": 0}, r"'n_components' parameter of GaussianMixture must be an int in the "
                          r"range \[1, inf\)"),
    ({"covariance_type": "bogus"}, "'covariance_type' parameter .* Got 'bogus'"),
    ({"init": "bogus"}, "'init' parameter .* Got 'bogus'"),
    ({"reg_covar": -1.0}, "'reg_covar' parameter"),
    ({"tol": -1.0}, "'tol' parameter"),
    ({"n_init": 0}, "'n_init' parameter"),
    ({"max_iter": -1}, "'max_iter' parameter"),
])
def test_bad_params(params, msg, overlapping):
    with pytest.raises(ValueError, match=msg):
        GaussianMixture(**{"n_components": 2, "device": "cpu", **params}).fit(overlapping)


def test_not_fitted():
    gm = GaussianMixture(2, device="cpu")
    for call in (lambda: gm.predict_proba([[0.0]]), lambda: gm.score_samples([[0.0]]),
                 lambda: gm.sample(3), lambda: gm.bic([[0.0]])):
        with pytest.raises(NotFittedError):
            call()


# -- the k-means initialisation on a subsample of large data ----------------------------------

def test_kmeans_init_subsample_is_the_same_rows_however_the_data_are_sharded(monkeypatch):
    """Every rank draws one uniform per *global* row: the shards' picks, concatenated, are the
    one-process picks (so a sharded fit starts where a one-process fit starts)."""
    import unsup.cluster.gaussian_mixture as gmm

    monkeypatch.setattr(gmm, "INIT_ROWS", 300)
    n_all, K = 1000, 2
    one = gmm._init_rows(n_all, K, torch.Generator().manual_seed(5), torch.device("cpu"))
    assert len(one) == 300 and bool((one[1:] > one[:-1]).all())  # m rows, in their order
    picks, off = [], 0
    for n_local in (333, 0, 667):
        monkeypatch.setattr(gmm.ud, "row_offset", lambda n, device, o=off: (o, n_all))
        local = gmm._init_rows(n_local, K, torch.Generator().manual_seed(5), torch.device("cpu"))
        picks.append(local + off)
        off += n_local
    assert torch.equal(torch.cat(picks), one)
    monkeypatch.undo()
    small = gmm._init_rows(50, K, torch.Generator().manual_seed(5), torch.device("cpu"))
    assert small is None  # few rows: all of them


@pytest.mark.parametrize("ct", ["diag", "full"])
def test_kmeans_init_on_a_subsample_reaches_the_full_init_optimum(ct, monkeypatch):
    """k-means on 400 of 6,000 rows, then every row to its nearest centre, starts EM where
    k-means on every row does: the same optimum, and k-means really saw 400 rows."""
    import unsup.cluster.gaussian_mixture as gmm

    X, _ = make_blobs(6000, centers=5, n_features=4, random_state=3,
                      cluster_std=[0.6, 1.0, 0.8, 1.2, 0.7])
    full = GaussianMixture(5, covariance_type=ct, random_state=0).fit(X)
    seen: list[int] = []
    fit = gmm.KMeans.fit
    monkeypatch.setattr(gmm.KMeans, "fit", lambda self, A, y=None: (seen.append(len(A)),
                                                                     fit(self, A))[1])
    monkeypatch.setattr(gmm, "INIT_ROWS", 400)
    sub = GaussianMixture(5, covariance_type=ct, random_state=0).fit(X)
    assert seen == [400]
    assert sub.score(X) == pytest.approx(full.score(X), rel=1e-4)
    np.testing.assert_allclose(np.sort(sub.weights_), np.sort(full.weights_), atol=1e-3)


def test_second_moment_e_step_gives_the_per_component_fit(wide, monkeypatch):
    """Full covariances through the rows' second moments (one GEMM for the Mahalanobis terms,
    one for Σγxxᵀ; float64, from K >= max(QUAD_MIN_K, D), lowered here) give the per-component
    path's fit: the same iterations, parameters and bound terms, over many row chunks."""
    import unsup.cluster.gaussian_mixture as gmm
    import unsup.train.em as em

    X = wide[:, :4]
    Z = gmm._second_moments(torch.from_numpy(X[:3]))
    i, j = torch.triu_indices(4, 4)
    np.testing.assert_allclose(Z.numpy(), X[:3, i] * X[:3, j], rtol=1e-15)
    monkeypatch.setattr(em, "CACHE_BLOCK_ELEMS", 2**9)  # chunks of ~100 rows
    kw = dict(covariance_type="full", reg_covar=0.0, tol=1e-10, max_iter=25, init="random",
              random_state=0, device="cpu")
    used = []
    orig = gmm._second_moments
    monkeypatch.setattr(gmm, "_second_moments", lambda A: used.append(len(A)) or orig(A))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        monkeypatch.setattr(gmm, "QUAD_MIN_K", 2)
        a = GaussianMixture(4, **kw).fit(X)
        assert sum(used) == len(a.history_) * len(X) and max(used) < len(X)
        monkeypatch.setattr(gmm, "QUAD_MIN_K", 10**9)
        b = GaussianMixture(4, **kw).fit(X)
    assert sum(used) == len(a.history_) * len(X)  # the per-component path did not use it
    assert a.n_iter_ == b.n_iter_ and len(a.history_) > 10
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-9)
    for ea, eb in zip(a.history_, b.history_, strict=True):
        for k in ("log_likelihood", "bound", "kl"):
            assert ea[k] == pytest.approx(eb[k], rel=1e-9, abs=1e-9), (k, ea, eb)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalise_gives_no_subnormal_responsibilities(dtype):
    # ln π p(x|k) spread over 0 .. −800 below the row's best: in float32, entries between
    # about −87 and −103 would give subnormal responsibilities (a GEMM over them is several
    # times slower on x86); in float64 those from −708 to −745.
    from unsup.cluster.gaussian_mixture import _normalise

    K, n = 16, 500
    g = torch.Generator().manual_seed(0)
    wlp = (-800.0 * torch.rand(K, n, generator=g, dtype=torch.float64)).to(dtype)
    wlp[0] = 3.0  # each row's best
    ref_log_norm = torch.logsumexp(wlp.double(), 0)
    ref_log_resp = wlp.double() - ref_log_norm
    resp, log_resp, log_norm = _normalise(wlp.clone())
    tiny = torch.finfo(dtype).tiny
    rtol = 1e-5 if dtype == torch.float32 else 1e-12  # ln γ of magnitude ~100 in float32
    assert not ((resp > 0) & (resp < tiny)).any()
    assert (resp >= tiny).all()
    assert torch.allclose(resp.double(), ref_log_resp.exp(), rtol=rtol,
                          atol=1.01 * math.e * K * tiny)
    torch.testing.assert_close(resp.sum(0).double(), torch.ones(n, dtype=torch.float64),
                               rtol=1e-6, atol=0)
    # ln γ and ln p(x) stay exact (the bound uses ln γ of every component)
    torch.testing.assert_close(log_resp.double(), ref_log_resp, rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(log_norm.double(), ref_log_norm, rtol=1e-6, atol=1e-5)


def test_compiled_e_step_writes_no_subnormal_responsibilities():
    # float32 rows; components 95 and 100 nats below the best give responsibilities of
    # ~1e-42 (subnormal in float32): the kernel counts them as 0, the rest stay exact
    from unsup.cluster._gmm_diag import e_step_rows

    n, w = 9, 6
    XX2 = np.random.default_rng(0).normal(size=(n, w)).astype(np.float32)
    Wt = np.zeros((4, w))
    bias = np.array([0.0, -95.0, -100.0, -3.0])
    q = np.full((4, n), 0.25, dtype=np.float32)
    qlogq = np.zeros(n, dtype=np.float32)
    nk, S, out = np.zeros(4), np.zeros((4, w)), np.zeros(3)
    e_step_rows(XX2, Wt, bias, q, qlogq, 0, nk, S, out, float(np.finfo(np.float32).tiny))
    tiny = np.finfo(np.float32).tiny
    assert not ((q > 0) & (q < tiny)).any()
    gamma = np.exp(bias - np.logaddexp.reduce(bias))
    np.testing.assert_allclose(q[[0, 3]], np.repeat(gamma[[0, 3], None], n, 1), rtol=1e-6)
    assert (q[[1, 2]] == 0).all()
    np.testing.assert_allclose(nk, n * np.where(gamma < tiny, 0, gamma), rtol=1e-6)
    np.testing.assert_allclose(out[0], n * np.logaddexp.reduce(bias), rtol=1e-12)
