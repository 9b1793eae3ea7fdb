"""Simple array transforms: numpy in, new ``float32`` numpy array out (inputs are never modified).

NaN cells stay NaN (so the estimators' validation can report them) instead of silently turning
into 0 or 1.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from unsup.data.validation import DataError

__all__ = ["scale_unit", "standardize", "binarize", "binarize_stochastic"]

RandomState = int | np.random.Generator | None


def _as_float(X: Any, name: str = "X") -> np.ndarray:
    a = np.asarray(X)
    if a.dtype == object or a.dtype.kind not in "fiub":
        raise DataError(f"{name} must be numeric, got dtype {a.dtype}")
    return a


def scale_unit(X: Any) -> np.ndarray:
    """Rescale to [0, 1] with one global min and max over the whole array.

    The same affine map is applied to every feature (right for images, where all pixels share
    a scale); use :func:`standardize` for per-feature scaling. A constant array maps to zeros.

    Parameters
    ----------
    X : array-like
        Numeric array of any shape.

    Returns
    -------
    ndarray, float32
        ``(X - min) / (max - min)``, same shape as ``X``.
    """
    a = _as_float(X)
    out = a.astype(np.float64)
    if out.size == 0 or np.all(np.isnan(out)):
        return out.astype(np.float32)
    lo, hi = np.nanmin(out), np.nanmax(out)
    out -= lo
    if hi > lo:
        out /= hi - lo
    return out.astype(np.float32)


def standardize(X: Any) -> np.ndarray:
    """Per-feature standardisation to zero mean and unit variance.

    Features with zero variance become all zeros (never NaN). Statistics ignore NaN cells.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32
    """
    a = _as_float(X)
    if a.ndim != 2:
        raise DataError(f"standardize expects a 2-D array (n_samples, n_features), got {a.shape}")
    out = a.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(out, axis=0)
        std = np.nanstd(out, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    out -= mean
    out /= std
    return out.astype(np.float32)


def binarize(X: Any, threshold: float = 0.5) -> np.ndarray:
    """Deterministic binarisation: 1 where ``X > threshold``, else 0.

    Parameters
    ----------
    X : array-like
    threshold : float

    Returns
    -------
    ndarray, float32 of zeros and ones (NaN stays NaN)
    """
    a = _as_float(X)
    out = (a > threshold).astype(np.float32)
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        if nan.any():
            out[nan] = np.nan
    return out


def binarize_stochastic(X: Any, random_state: RandomState = None) -> np.ndarray:
    """Stochastic binarisation: each cell is a Bernoulli draw with probability ``X``.

    Parameters
    ----------
    X : array-like with values in [0, 1]
        Probabilities, e.g. pixel intensities scaled by :func:`scale_unit`.
    random_state : int, numpy Generator or None
        Seed; the same seed gives the same draws.

    Returns
    -------
    ndarray, float32 of zeros and ones (NaN stays NaN)

    Raises
    ------
    DataError
        If values lie outside [0, 1] (e.g. raw 0..255 pixels).
    """
    a = _as_float(X)
    if a.size:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN input
            lo, hi = np.nanmin(a), np.nanmax(a)
        if lo < 0 or hi > 1:
            raise DataError(
                f"stochastic binarisation needs probabilities in [0, 1], but values range from "
                f"{lo} to {hi}; rescale first (e.g. unsup.data.scale_unit)"
            )
    if isinstance(random_state, np.random.Generator):
        rng = random_state
    else:
        rng = np.random.default_rng(random_state)
    u = rng.random(a.shape, dtype=np.float32)
    out = (u < a).astype(np.float32)
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        if nan.any():
            out[nan] = np.nan
    return out
