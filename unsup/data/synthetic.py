"""Synthetic data sets with known ground truth.

Every generator returns ``(X, y)`` with ``X`` a C-contiguous ``float32`` array of shape
``(n_samples, n_features)`` and ``y`` the ``int64`` index of the component each sample was drawn
from. Samples are shuffled, and the same ``random_state`` always gives the same data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.data.validation import DataError

__all__ = ["make_gaussian_mixture", "make_blobs", "make_rings", "gmm2d_params"]

RandomState = int | np.random.Generator | None


def _rng(random_state: RandomState) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _check_n_samples(n_samples: int) -> int:
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise DataError(f"n_samples must be a positive integer, got {n_samples!r}")
    return int(n_samples)


def _full_covariances(covariances: Any, k: int, d: int) -> np.ndarray:
    """Expand spherical / diagonal / full covariance specs to a ``(k, d, d)`` array."""
    c = np.asarray(covariances, dtype=np.float64)
    if c.ndim == 0:
        c = np.broadcast_to(c, (k,))
    if c.ndim == 1:
        if c.shape != (k,):
            raise DataError(
                f"spherical covariances must have one variance per component: expected shape "
                f"({k},), got {c.shape}"
            )
        if np.any(c < 0):
            raise DataError("variances must be non-negative")
        return c[:, None, None] * np.eye(d)[None]
    if c.ndim == 2:
        if c.shape != (k, d):
            raise DataError(
                f"diagonal covariances must have shape (n_components, n_features) = ({k}, {d}), "
                f"got {c.shape}"
            )
        if np.any(c < 0):
            raise DataError("variances must be non-negative")
        return np.einsum("kd,de->kde", c, np.eye(d))
    if c.ndim == 3:
        if c.shape != (k, d, d):
            raise DataError(
                f"full covariances must have shape (n_components, n_features, n_features) = "
                f"({k}, {d}, {d}), got {c.shape}"
            )
        return c.copy()
    raise DataError(f"covariances has {c.ndim} dimensions; expected 0, 1, 2 or 3")


def make_gaussian_mixture(
    n_samples: int,
    means: Any,
    covariances: Any,
    weights: Any = None,
    random_state: RandomState = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw samples from a Gaussian mixture with given parameters.

    Parameters
    ----------
    n_samples : int
        Total number of samples.
    means : array-like of shape (n_components, n_features)
        Component means.
    covariances : array-like
        Component covariances, in one of these forms:

        * shape ``(n_components, n_features, n_features)``: full covariance matrices
          (symmetric positive semi-definite);
        * shape ``(n_components, n_features)``: diagonal variances;
        * shape ``(n_components,)``: one spherical variance per component;
        * a scalar: the same spherical variance for every component.
    weights : array-like of shape (n_components,), optional
        Mixing proportions; non-negative, normalised to sum to 1. Uniform by default.
    random_state : int, numpy Generator or None
        Seed for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
        Samples, shuffled.
    y : ndarray of shape (n_samples,), int64
        Index of the component each sample came from.

    Raises
    ------
    DataError
        If the shapes disagree, a covariance is not symmetric positive semi-definite, or the
        weights are negative or sum to zero.
    """
    n = _check_n_samples(n_samples)
    mu = np.asarray(means, dtype=np.float64)
    if mu.ndim == 1:
        mu = mu[:, None]
    if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
        raise DataError(f"means must have shape (n_components, n_features), got {mu.shape}")
    k, d = mu.shape
    cov = _full_covariances(covariances, k, d)
    if weights is None:
        w = np.full(k, 1.0 / k)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (k,):
            raise DataError(f"weights must have one entry per component ({k}), got shape {w.shape}")
        if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise DataError(f"weights must be non-negative and sum to a positive number, got {w}")
        w = w / w.sum()
    factors = np.empty_like(cov)
    for i in range(k):
        c = cov[i]
        if not np.allclose(c, c.T, atol=1e-8):
            raise DataError(f"covariance of component {i} is not symmetric")
        vals, vecs = np.linalg.eigh(c)
        if vals.min() < -1e-8 * max(1.0, abs(vals.max())):
            raise DataError(
                f"covariance of component {i} is not positive semi-definite "
                f"(smallest eigenvalue {vals.min():.3g})"
            )
        factors[i] = vecs * np.sqrt(np.clip(vals, 0.0, None))
    rng = _rng(random_state)
    counts = rng.multinomial(n, w)
    X = np.empty((n, d), dtype=np.float64)
    y = np.empty(n, dtype=np.int64)
    start = 0
    for i, c in enumerate(counts):
        z = rng.standard_normal((c, d))
        X[start : start + c] = mu[i] + z @ factors[i].T
        y[start : start + c] = i
        start += c
    order = rng.permutation(n)
    return np.ascontiguousarray(X[order], dtype=np.float32), y[order]


def make_blobs(
    n_samples: int = 300,
    n_features: int = 2,
    centers: int | Any = 3,
    cluster_std: float | Any = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
    random_state: RandomState = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs of (nearly) equal size.

    Parameters
    ----------
    n_samples : int
        Total number of samples, split as evenly as possible between the blobs.
    n_features : int
        Dimension, used when ``centers`` is a number.
    centers : int or array-like of shape (n_centers, n_features)
        Number of blobs (centres drawn uniformly from ``center_box``) or the centres themselves.
    cluster_std : float or array-like of shape (n_centers,)
        Standard deviation of each blob.
    center_box : (float, float)
        Bounding box for random centres.
    random_state : int, numpy Generator or None
        Seed for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), int64
        Blob index of each sample.
    """
    n = _check_n_samples(n_samples)
    rng = _rng(random_state)
    if np.ndim(centers) == 0:
        k = int(centers)
        if k < 1 or n_features < 1:
            raise DataError(f"need centers >= 1 and n_features >= 1, got {centers}, {n_features}")
        lo, hi = center_box
        c = rng.uniform(lo, hi, size=(k, n_features))
    else:
        c = np.asarray(centers, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] == 0:
            raise DataError(f"centers must have shape (n_centers, n_features), got {c.shape}")
        k = c.shape[0]
    std = np.broadcast_to(np.asarray(cluster_std, dtype=np.float64), (k,))
    if np.any(std < 0):
        raise DataError("cluster_std must be non-negative")
    counts = np.full(k, n // k)
    counts[: n % k] += 1
    y = np.repeat(np.arange(k, dtype=np.int64), counts)
    X = c[y] + rng.standard_normal((n, c.shape[1])) * std[y, None]
    order = rng.permutation(n)
    return np.ascontiguousarray(X[order], dtype=np.float32), y[order]


def make_rings(
    n_samples: int = 500,
    n_rings: int = 2,
    radii: Any = None,
    noise: float = 0.05,
    random_state: RandomState = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Concentric noisy circles in 2-D (a classic failure case for k-means).

    Parameters
    ----------
    n_samples : int
        Total number of samples, split as evenly as possible between the rings.
    n_rings : int
        Number of rings, used when ``radii`` is None (radii ``1/n_rings, 2/n_rings, ..., 1``).
    radii : array-like of shape (n_rings,), optional
        Ring radii.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.
    random_state : int, numpy Generator or None
        Seed for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float32
    y : ndarray of shape (n_samples,), int64
        Ring index of each sample (in the order of ``radii``).
    """
    n = _check_n_samples(n_samples)
    if radii is None:
        if n_rings < 1:
            raise DataError(f"n_rings must be >= 1, got {n_rings}")
        r = np.arange(1, n_rings + 1, dtype=np.float64) / n_rings
    else:
        r = np.asarray(radii, dtype=np.float64).reshape(-1)
        if r.size == 0 or np.any(r < 0):
            raise DataError(f"radii must be a non-empty list of non-negative numbers, got {radii}")
    if noise < 0:
        raise DataError(f"noise must be non-negative, got {noise}")
    rng = _rng(random_state)
    k = r.size
    counts = np.full(k, n // k)
    counts[: n % k] += 1
    y = np.repeat(np.arange(k, dtype=np.int64), counts)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    X = np.stack([r[y] * np.cos(theta), r[y] * np.sin(theta)], axis=1)
    X += noise * rng.standard_normal((n, 2))
    order = rng.permutation(n)
    return np.ascontiguousarray(X[order], dtype=np.float32), y[order]


def gmm2d_params() -> dict[str, np.ndarray]:
    """Ground-truth parameters of the named ``gmm2d`` data set.

    Returns
    -------
    dict
        ``means`` (3, 2), ``covariances`` (3, 2, 2) full matrices and ``weights`` (3,).
    """
    return {
        "means": np.array([[0.0, 0.0], [6.0, 4.0], [5.0, -4.0]]),
        "covariances": np.array(
            [
                [[1.0, 0.5], [0.5, 1.0]],
                [[1.5, -0.6], [-0.6, 0.8]],
                [[0.5, 0.0], [0.0, 2.0]],
            ]
        ),
        "weights": np.array([0.5, 0.3, 0.2]),
    }
