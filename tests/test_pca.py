"""PCA against scikit-learn: same subspace on MNIST, variances, whitening, likelihood."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA as SkPCA

import unsup
from unsup.data import load
from unsup.decomposition import PCA

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mnist() -> np.ndarray:
    return load("mnist5k").X


@pytest.fixture(scope="module")
def sk30(mnist) -> SkPCA:
    # scikit-learn's exact solver for n >> d (numpy's eigh of the covariance); the thin SVD is
    # compared on a subset below
    return SkPCA(30, svd_solver="covariance_eigh").fit(mnist.astype(np.float64))


def test_same_subspace_as_sklearn_on_mnist(mnist, sk30):
    ours = PCA(30, svd_solver="covariance_eigh", device="cpu").fit(mnist)
    assert subspace_angles(ours.components_.T, sk30.components_.T).max() < 1e-3
    np.testing.assert_allclose(ours.explained_variance_, sk30.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(ours.explained_variance_ratio_,
                               sk30.explained_variance_ratio_, rtol=1e-6)
    np.testing.assert_allclose(ours.noise_variance_, sk30.noise_variance_, rtol=1e-6)
    np.testing.assert_allclose(ours.score_samples(mnist[:50]), sk30.score_samples(mnist[:50]),
                               rtol=1e-7)


def test_full_svd_matches_sklearn_on_a_subset(mnist):
    X = mnist[::10]
    sk = SkPCA(30, svd_solver="full").fit(X.astype(np.float64))
    ours = PCA(30, svd_solver="full", device="cpu").fit(X)
    assert subspace_angles(ours.components_.T, sk.components_.T).max() < 1e-3
    np.testing.assert_allclose(ours.singular_values_, sk.singular_values_, rtol=1e-6)
    Z = ours.transform(X)
    np.testing.assert_allclose(np.abs(Z), np.abs(sk.transform(X)), atol=1e-4)


def test_randomized_recovers_a_low_rank_subspace():
    rng = np.random.RandomState(0)
    U = rng.standard_normal((800, 5)) * np.array([10, 8, 6, 4, 2.0])
    X = U @ rng.standard_normal((5, 520)) + 0.01 * rng.standard_normal((800, 520))
    sk = SkPCA(5, svd_solver="full").fit(X)
    ours = PCA(5, svd_solver="randomized", random_state=0, device="cpu").fit(X)
    assert ours.solver_ == "randomized"
    assert subspace_angles(ours.components_.T, sk.components_.T).max() < 1e-6
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_, rtol=1e-6)


def test_whitening_and_inverse_transform(mnist):
    X = mnist[:500].astype(np.float64)
    p = PCA(20, whiten=True, svd_solver="full", device="cpu").fit(X)
    Z = p.transform(X)
    np.testing.assert_allclose(Z.var(0, ddof=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p.inverse_transform(Z), p.reconstruct(X), atol=1e-8)
    full = PCA(None, svd_solver="full", device="cpu").fit(X[:, :50])
    np.testing.assert_allclose(full.inverse_transform(full.transform(X[:, :50])), X[:, :50],
                               atol=1e-8)


def test_reconstruction_error_is_the_discarded_variance(mnist):
    X = mnist[:1000].astype(np.float64)
    p = PCA(30, svd_solver="full", device="cpu").fit(X)
    sse = ((X - p.reconstruct(X)) ** 2).sum(1).mean()
    total = ((X - X.mean(0)) ** 2).sum(1).mean()
    assert sse == pytest.approx(total * (1 - p.explained_variance_ratio_.sum()), rel=1e-6)


def test_save_load_roundtrip(tmp_path, mnist):
    p = PCA(10, random_state=0, device="cpu").fit(mnist[:300])
    p.save(tmp_path / "pca.safetensors")
    q = unsup.load(tmp_path / "pca.safetensors")
    np.testing.assert_allclose(p.transform(mnist[:5]), q.transform(mnist[:5]), atol=1e-5)
    np.testing.assert_array_equal(p.components_, q.components_)


@pytest.mark.parametrize("params,msg", [
    (dict(n_components=100), "n_components"),
    (dict(n_components=0), "n_components"),
    (dict(n_components=3, svd_solver="magic"), "svd_solver"),
])
def test_bad_params(params, msg):
    with pytest.raises(ValueError, match=msg):
        PCA(device="cpu", **params).fit(np.random.rand(20, 5))


def test_bad_input():
    p = PCA(2, device="cpu").fit(np.random.rand(20, 5))
    with pytest.raises(ValueError, match="features"):
        p.transform(np.random.rand(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        PCA(2, device="cpu").fit(np.array([[1.0, np.nan], [0, 1], [1, 1]]))
