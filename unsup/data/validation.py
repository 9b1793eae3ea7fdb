"""Input validation: every array that enters an estimator passes through here.

The rule is "a clear error naming the problem, never a silent NaN". Messages stay compatible
with scikit-learn's wording where its conformance checks look for it ("NaN", "inf",
"X has 3 features, but KMeans is expecting 4 features as input").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["check_array", "check_n_features", "check_min_samples", "check_int", "DataError"]


class DataError(ValueError):
    """Bad input data. A ``ValueError``, so scikit-learn-style callers catch it as usual."""


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int >= ``low`` (a call argument such as ``n_samples``; constructor
    parameters are declared in ``_parameter_constraints`` instead). Booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class _NonNumericError(DataError, TypeError):
    """Elements that are not numbers at all (dicts, objects): also a ``TypeError``, as numpy
    and scikit-learn raise for them."""


_TORCH_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _describe_ragged(X: Any) -> str | None:
    rowlike = (list, tuple, np.ndarray)
    if isinstance(X, (list, tuple)) and X and all(isinstance(r, rowlike) for r in X):
        lengths = {len(r) for r in X}
        if len(lengths) > 1:
            return (
                f"rows have different lengths ({sorted(lengths)[:5]}); "
                "every sample must have the same number of features"
            )
    return None


def check_array(
    X: Any,
    *,
    name: str = "X",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    min_samples: int = 1,
    row_numbers: Any = None,
) -> torch.Tensor:
    """Validate ``X`` and return it as a 2-D floating torch tensor on ``device``.

    Accepts numpy arrays (including memory-mapped), torch tensors, lists of lists, and
    pandas-like objects with ``to_numpy``. ``dtype=None`` keeps float32/float64 input as is
    and turns everything else into float32 (so integer pixel data does not double its memory).
    ``row_numbers`` (optional) gives the row of the caller's data set that each row of ``X``
    is, so that errors about a mini-batch name the right row.

    Raises
    ------
    DataError
        If the input is empty, not 2-D, ragged, non-numeric, sparse, or contains NaN or inf.
    """
    if X is None:
        raise DataError(f"{name} is None; expected a 2-D array of shape (n_samples, n_features)")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise DataError(
            f"{name} is a sparse matrix; unsup needs dense input: pass {name}.toarray() "
            "if it fits in memory"
        )
    if isinstance(X, torch.Tensor):
        t = X.detach()
        if t.is_complex():
            raise DataError(f"Complex data not supported: {name} is complex-valued; "
                            "expected real numbers")
        if t.dtype == torch.bool or not t.is_floating_point():
            t = t.to(torch.float32)
    else:
        if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):
            X = X.to_numpy()
        ragged = _describe_ragged(X)
        if ragged is not None:
            raise DataError(f"{name} is ragged: {ragged}")
        try:
            a = np.asarray(X)
        except ValueError as e:  # numpy refuses inhomogeneous nested sequences
            raise DataError(f"{name} is ragged or malformed: {e}") from None
        if a.dtype == object or a.dtype.kind in "USV":
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError) as e:
                err = _NonNumericError if isinstance(e, TypeError) else DataError
                raise err(
                    f"{name} contains non-numeric values (dtype {a.dtype}): {e}; "
                    "expected numbers only"
                ) from None
        if a.dtype.kind == "c":
            raise DataError(f"Complex data not supported: {name} is complex-valued; "
                            "expected real numbers")
        if a.dtype.kind not in "fiub":
            raise DataError(f"{name} has unsupported dtype {a.dtype}")
        if a.dtype.kind != "f" or a.dtype == np.float16:
            a = a.astype(np.float32)
        if not a.flags.writeable or not a.flags.c_contiguous:
            # torch.from_numpy cannot wrap read-only (e.g. memory-mapped) arrays without a warning
            a = np.ascontiguousarray(a).copy() if not a.flags.writeable else np.ascontiguousarray(a)
        t = torch.from_numpy(a)
    if t.dim() == 0:
        raise DataError(
            f"{name} is a scalar; expected a 2-D array of shape (n_samples, n_features)"
        )
    if t.dim() == 1:
        raise DataError(
            f"Expected 2D array, got 1D array instead: {name} has shape {tuple(t.shape)}. "
            "Reshape your data either using X.reshape(-1, 1) if your data has a single feature "
            "or X.reshape(1, -1) if it contains a single sample."
        )
    if t.dim() > 2:
        raise DataError(
            f"{name} has {t.dim()} dimensions (shape {tuple(t.shape)}); expected 2-D "
            "(n_samples, n_features): flatten images with X.reshape(len(X), -1)"
        )
    n, d = t.shape
    if n == 0:
        raise DataError(f"{name} is empty: 0 samples (shape {tuple(t.shape)}); need at least 1")
    if d == 0:
        raise DataError(
            f"{name} has 0 feature(s) (shape=({n}, 0)) while a minimum of 1 is required."
        )
    if n < min_samples:
        raise DataError(f"{name} has {n} sample(s), but at least {min_samples} are required")
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    elif t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    if device is not None:
        t = t.to(device)
    # One reduction first (NaN or inf anywhere makes the sum non-finite); the element-wise
    # check, 4 passes over X, only runs when the sum is not finite (or overflowed).
    finite = None if math.isfinite(float(t.sum(dtype=torch.float64))) else torch.isfinite(t)
    if finite is not None and not bool(finite.all()):
        nan = int(torch.isnan(t).sum())
        inf = int((~finite).sum()) - nan
        where = torch.nonzero(~finite)[0].tolist()
        if row_numbers is not None:
            where[0] = int(row_numbers[where[0]])
        raise DataError(
            f"Input {name} contains NaN or infinity ({nan} NaN, {inf} inf; first at row "
            f"{where[0]}, column {where[1]}); remove or impute them before fitting"
        )
    return t


def check_n_features(X: torch.Tensor, n_features_in: int, estimator_name: str) -> None:
    """Raise if ``X`` does not have the number of features the estimator was fitted on."""
    if X.shape[1] != n_features_in:
        raise DataError(
            f"X has {X.shape[1]} features, but {estimator_name} is expecting "
            f"{n_features_in} features as input"
        )


def check_min_samples(n_samples: int, n_required: int, what: str) -> None:
    """Raise when there are fewer samples than, e.g., clusters."""
    if n_samples < n_required:
        raise DataError(
            f"n_samples={n_samples} should be >= {what}={n_required}: "
            f"cannot fit {n_required} {what.replace('n_', '')} to {n_samples} samples"
        )
