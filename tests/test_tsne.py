"""t-SNE (issue 15, §2): gradients against autograd and each other, perplexity calibration,
KL against scikit-learn's, trustworthiness against scikit-learn's, transform for new points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import blobs
from sklearn.manifold import _t_sne as sk_tsne
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier

from unsup.manifold import TSNE
from unsup.manifold._affinity import calibrate, joint_affinities, knn
from unsup.manifold._gradient import (
    attraction,
    exact_gradient,
    fft_repulsion,
    kernel_sums_exact,
    kernel_sums_fft,
)
from unsup.manifold._neighbors import knn_approx
from unsup.metrics import trustworthiness

pytestmark = pytest.mark.usefixtures("one_thread")


def _kl(Y: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """KL(P‖Q) written directly from the definition (for autograd)."""
    n = Y.shape[0]
    W = 1.0 / (1.0 + torch.cdist(Y, Y) ** 2)
    W = W * (1 - torch.eye(n, dtype=Y.dtype))
    Q = W / W.sum()
    m = P > 0
    return (P[m] * torch.log(P[m] / Q[m])).sum()


def _random_P(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(n, n, generator=g, dtype=torch.float64)
    P = (A + A.T) * (1 - torch.eye(n, dtype=torch.float64))
    return P / P.sum()


@pytest.mark.parametrize("d", [1, 2, 3])
def test_exact_gradient_is_autograd_of_kl(d):
    P = _random_P(12, 0)
    Y = torch.randn(12, d, dtype=torch.float64, generator=torch.Generator().manual_seed(d))
    Y.requires_grad_(True)
    _kl(Y, P).backward()
    grad, Z = exact_gradient(Y.detach(), P)
    np.testing.assert_allclose(grad.numpy(), Y.grad.numpy(), rtol=1e-10, atol=1e-12)
    # with exaggeration α the step follows -α Σ p log w + log Z (P scaled, Q not)
    Y.grad = None
    W = 1.0 / (1.0 + torch.cdist(Y, Y) ** 2)
    off = 1 - torch.eye(12, dtype=Y.dtype)
    (-(3.0 * P * torch.log(W) * off).sum() + torch.log((W * off).sum())).backward()
    g3, _ = exact_gradient(Y.detach(), P, alpha=3.0)
    np.testing.assert_allclose(g3.numpy(), Y.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert Z == pytest.approx(float((W * off).sum().detach()))


def _opentsne_repulsion(Y: np.ndarray) -> tuple[np.ndarray, float] | None:
    """openTSNE's FFT repulsion ``Σ_j q_ij w_ij (y_i − y_j)`` and Z at its defaults, if
    installed (a bench peer)."""
    try:
        from openTSNE import _tsne
    except ImportError:
        return None
    kw = dict(n_interpolation_points=3, min_num_intervals=50, ints_in_interval=1, dof=1)
    g = np.zeros(Y.shape)
    if Y.shape[1] == 1:
        g1 = np.zeros(len(Y))
        Z = _tsne.estimate_negative_gradient_fft_1d(Y.ravel().copy(), g1, **kw)
        g[:, 0] = g1
    else:
        Z = _tsne.estimate_negative_gradient_fft_2d(Y.copy(), g, **kw)
    return -g, float(Z)


@pytest.mark.parametrize("d, scale", [(1, 20.0), (2, 3.0), (2, 30.0)])
def test_fft_gradient_matches_exact(d, scale):
    """Attraction + FFT-interpolated repulsion against the exact gradient, and at least as
    accurate as openTSNE's FFT gradient on the same map."""
    g = torch.Generator().manual_seed(0)
    n = 1500
    Y = torch.randn(n, d, dtype=torch.float64, generator=g) * scale
    X = torch.randn(n, 5, dtype=torch.float64, generator=g)
    D, idx = knn(X, 15)
    rows, cols, p = joint_affinities(calibrate(D, 5.0)[0], idx)
    P = torch.zeros(n, n, dtype=torch.float64)
    P[rows, cols] = p
    exact, Z_exact = exact_gradient(Y, P)
    phi0, phi1, phiy = kernel_sums_fft(Y, Y)
    Z = float((phi0 - 1).sum())
    rep, Z2 = fft_repulsion(Y)  # the fit's path: Z by Parseval, equal to Σ φ0 - N
    assert Z2 == pytest.approx(Z, rel=1e-9)
    np.testing.assert_allclose(rep.numpy(), (phi1[:, None] * Y - phiy).numpy(), atol=1e-9)
    approx = 4 * (attraction(Y, rows, cols, p) - rep / Z)
    assert abs(Z - Z_exact) / Z_exact < 1.5e-2
    assert float((approx - exact).norm() / exact.norm()) < 5e-2
    e0, e1, ey = kernel_sums_exact(Y, Y)
    rep_e = (e1[:, None] * Y - ey) / Z_exact
    err = float((rep / Z - rep_e).norm() / rep_e.norm())
    theirs = _opentsne_repulsion(Y.numpy())
    if theirs is not None:  # the default grid (spacing 1/2, cubic) vs theirs (1/3, quadratic)
        assert err <= float(np.linalg.norm(theirs[0] - rep_e.numpy()) / rep_e.norm())
        assert abs(Z - Z_exact) <= abs(theirs[1] - Z_exact)
    # cubic interpolation: halving the grid spacing divides the error by about 2^4
    errs = []
    for h in (1 / 3, 1 / 6):
        _, a1, ay = kernel_sums_fft(Y, Y, h=h, min_nodes=1)
        errs.append(float(((a1[:, None] * Y - ay) / Z_exact - rep_e).norm() / rep_e.norm()))
    assert errs[0] < 2e-2 and errs[1] < errs[0] / 8


def test_calibrated_perplexities_equal_the_target():
    X = torch.as_tensor(blobs(200, d=8)[0], dtype=torch.float64)
    for perp in (5.0, 20.0):
        D, _ = knn(X, int(3 * perp))
        P, _ = calibrate(D, perp)
        H = -(P * torch.log(P.clamp_min(1e-300))).sum(1)
        np.testing.assert_allclose(torch.exp(H).numpy(), perp, rtol=1e-4)
        np.testing.assert_allclose(P.sum(1).numpy(), 1.0, rtol=1e-12)


def test_knn_is_exact():
    X = np.random.default_rng(0).normal(size=(300, 6))
    D, idx = knn(torch.as_tensor(X), 7)
    full = pairwise_distances(X, squared=True)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(idx.numpy(), np.argsort(full, 1, kind="stable")[:, :7])
    np.testing.assert_allclose(D.numpy(), np.sort(full, 1)[:, :7], rtol=1e-9, atol=1e-12)


def test_approximate_knn_recall_and_exact_distances():
    """The forest + local joins against brute force: recall >= 0.9 on clustered data with
    leaves far smaller than N (so the search is really approximate), distances exact for the
    neighbours found, ascending, no self or duplicate; deterministic; and with one leaf
    holding every point it is the exact search."""
    X = torch.as_tensor(blobs(3000, d=20, k=6, seed=2)[0], dtype=torch.float32)
    k = 15
    D, idx = knn_approx(X, k, leaf_size=64)
    De, Ie = knn(X, k)
    recall = np.mean([len(set(a) & set(b)) / k
                      for a, b in zip(idx.tolist(), Ie.tolist(), strict=True)])
    assert recall >= 0.9
    only_forest = knn_approx(X, k, leaf_size=64, n_refine=0)[1]
    assert np.mean([len(set(a) & set(b)) / k for a, b in zip(only_forest.tolist(),
                                                               Ie.tolist(), strict=True)]) < recall
    true = ((X[:, None, :] - X[idx]) ** 2).sum(-1)
    np.testing.assert_allclose(D.numpy(), true.numpy(), rtol=1e-4, atol=1e-4)
    assert bool((D[:, 1:] >= D[:, :-1]).all())
    assert not bool((idx == torch.arange(len(X))[:, None]).any())
    assert all(len(set(r)) == k for r in idx.tolist())
    D2, idx2 = knn_approx(X, k, leaf_size=64)
    assert torch.equal(idx, idx2) and torch.equal(D, D2)
    _, Iall = knn_approx(X[:500], k, leaf_size=1000, n_refine=0)
    np.testing.assert_array_equal(Iall.numpy(), knn(X[:500], k)[1].numpy())
    with pytest.raises(ValueError, match="leaf_size"):
        knn_approx(X, k, leaf_size=20)


def test_fit_with_approximate_neighbours_matches_exact_neighbours():
    X, _ = blobs(800, d=10, k=4, seed=3)
    kw = dict(perplexity=10, n_iter=200, early_exaggeration_iter=80, method="fft",
              random_state=0, device="cpu")
    ex = TSNE(neighbors="exact", **kw).fit(X)
    ap = TSNE(neighbors="approx", **kw).fit(X)
    assert abs(ap.kl_divergence_ - ex.kl_divergence_) < 0.02 * ex.kl_divergence_
    assert abs(trustworthiness(X, ap.embedding_, 10) - trustworthiness(X, ex.embedding_, 10)
               ) < 0.01


def test_reported_kl_equals_sklearn_kl_at_our_map():
    """Exact method: our P is scikit-learn's exact P, and KL_ is its KL at our embedding."""
    X, _ = blobs(90, d=6)
    X = X.astype(np.float64)
    m = TSNE(perplexity=10, method="exact", n_iter=300, random_state=0, device="cpu").fit(X)
    P = sk_tsne._joint_probabilities(pairwise_distances(X, squared=True), 10, 0)
    Y = m.embedding_.astype(np.float64)
    kl_sk, _ = sk_tsne._kl_divergence(Y.ravel(), P, 1, len(X), 2)
    assert m.kl_divergence_ == pytest.approx(kl_sk, rel=1e-4)
    assert m.kl_history_[-1][1] >= m.kl_divergence_ - 1e-3


def test_fit_is_deterministic_and_any_dimension():
    X, y = blobs(150, d=10)
    kw = dict(perplexity=10, n_iter=250, early_exaggeration_iter=100, random_state=0,
              device="cpu")
    a = TSNE(**kw).fit_transform(X)
    np.testing.assert_array_equal(a, TSNE(**kw).fit_transform(X))
    Y3 = TSNE(3, **kw).fit_transform(X)
    assert Y3.shape == (150, 3)
    for Y in (a, Y3):  # the blobs stay separated
        assert KNeighborsClassifier(5).fit(Y, y).score(Y, y) == 1.0
        assert trustworthiness(X, Y, 10) > 0.9


def test_fft_method_reaches_the_exact_methods_kl():
    X, _ = blobs(600, d=10, k=5)
    kw = dict(perplexity=20, n_iter=300, random_state=0, device="cpu")
    ex = TSNE(method="exact", **kw).fit(X)
    ff = TSNE(method="fft", **kw).fit(X)
    # different P (exact vs 3·perplexity neighbours): compare the FFT map's KL under its own P
    # with the exact fit's loosely, and both maps' trustworthiness tightly
    assert ff.kl_divergence_ < 1.1 * ex.kl_divergence_
    assert abs(trustworthiness(X, ff.embedding_, 10) - trustworthiness(X, ex.embedding_, 10)
               ) < 0.01


def test_transform_places_new_points_in_their_clusters():
    X, y = blobs(260, d=10, k=4, seed=1)
    m = TSNE(perplexity=15, n_iter=300, transform_n_iter=100, random_state=0,
             device="cpu").fit(X[:200])
    Yn = m.transform(X[200:])
    clf = KNeighborsClassifier(5).fit(m.embedding_, y[:200])
    assert clf.score(Yn, y[200:]) == 1.0
    # new points do not interact: transforming a subset gives the same rows
    np.testing.assert_allclose(m.transform(X[200:210]), Yn[:10], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_trustworthiness_equals_sklearn(k):
    rng = np.random.default_rng(k)
    X = rng.normal(size=(120, 8))
    Y = X[:, :2] + 0.5 * rng.normal(size=(120, 2))
    assert trustworthiness(X, Y, k) == pytest.approx(sk_trustworthiness(X, Y, n_neighbors=k),
                                                     abs=1e-12)
    assert trustworthiness(X, X, k) == pytest.approx(1.0)


def test_clear_errors():
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match="n_neighbors"):
        trustworthiness(X, X[:, :2], 10)
    with pytest.raises(ValueError, match="perplexity"):
        TSNE(perplexity=-1).fit(X)
    with pytest.raises(ValueError, match="init"):
        TSNE(init=np.zeros((3, 2)), device="cpu").fit(X)
    assert math.isfinite(TSNE(n_iter=5, device="cpu").fit(X).kl_divergence_)


@pytest.mark.usefixtures("one_thread")
def test_crash_then_resume_gives_the_map_of_a_fit_never_stopped(tmp_path, monkeypatch):
    """Stopped after the k-th checkpoint (at iteration 20 inside early exaggeration, and at
    40, the switch to the second phase with a fresh optimiser), resumed: bit for bit."""
    from _interrupt import Crash, checkpoint_meta, crash_after

    import unsup.train._em_checkpoint as emc

    X = np.random.default_rng(0).normal(size=(300, 10)).astype(np.float32)
    kw = {"n_iter": 120, "early_exaggeration_iter": 40, "random_state": 0, "device": "cpu"}
    ref = TSNE(**kw).fit(X)
    for k in (2, 3):
        d = tmp_path / f"k{k}"
        with monkeypatch.context() as m:
            crash_after(m, emc, k)
            with pytest.raises(Crash):
                TSNE(**kw, checkpoint_dir=str(d), checkpoint_every=20).fit(X)
        assert checkpoint_meta(d)["state"]["batch"]["it"] == 20 * (k - 1)
        got = TSNE(**kw, checkpoint_dir=str(d), checkpoint_every=20, resume=True).fit(X)
        np.testing.assert_array_equal(got.embedding_, ref.embedding_)
        assert got.kl_history_ == ref.kl_history_ and got.kl_divergence_ == ref.kl_divergence_
        assert checkpoint_meta(d)["state"]["finished"]
    # resuming the finished fit takes no optimisation step and returns the same map
    import unsup.manifold.tsne as tsne_module

    def no_step(*a, **k):
        raise AssertionError("a finished fit was optimised again")

    monkeypatch.setattr(tsne_module._Optimizer, "step", no_step)
    again = TSNE(**kw, checkpoint_dir=str(tmp_path / "k2"), resume=True).fit(X)
    np.testing.assert_array_equal(again.embedding_, ref.embedding_)


def test_attraction_threaded_blocks_match_one_thread_and_torch():
    """With two torch threads the compiled attraction runs two blocks of edges on a thread pool,
    each into its own output; the sum must equal the one-thread pass and the torch scatter."""
    rng = np.random.default_rng(5)
    n, m = 3000, 40_000
    Y = torch.as_tensor(rng.normal(size=(n, 2)))
    rows = torch.as_tensor(np.sort(rng.integers(0, n, m)))
    cols = torch.as_tensor(rng.integers(0, n, m))
    p = torch.as_tensor(rng.random(m) / m)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = attraction(Y, rows, cols, p)
        torch.set_num_threads(2)
        two = attraction(Y, rows, cols, p)
    finally:
        torch.set_num_threads(before)
    diff = Y[rows] - Y[cols]
    ref = torch.zeros_like(Y).index_add_(0, rows, (p / (1 + diff.pow(2).sum(1)))[:, None] * diff)
    torch.testing.assert_close(two, one, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(one, ref, rtol=1e-10, atol=1e-14)
