"""The estimator protocol shared by every unsup model.

scikit-learn's conventions are the contract: ``__init__`` stores its arguments unchanged,
``fit`` validates and returns ``self``, learned state lives in attributes ending in ``_``
(numpy arrays, so fitted models look like scikit-learn's), and ``get_params`` /
``set_params`` / ``clone`` come from :class:`sklearn.base.BaseEstimator`.

On top of that every estimator takes ``device`` ("auto" | "cpu" | "cuda") and
``random_state``, accepts numpy arrays or torch tensors, and saves to a safe file
(:mod:`unsup.io`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import sklearn.base
import torch
from sklearn.exceptions import NotFittedError

from unsup.data.validation import check_array, check_n_features
from unsup.params import ParamsMixin

__all__ = ["BaseEstimator", "resolve_device", "make_generator", "NotFittedError",
           "progress_callback", "current_progress_callback", "report_progress"]

# A progress sink set by front ends (the CLI's progress bar); engines call report_progress.
_PROGRESS: contextvars.ContextVar[Callable[..., None] | None] = contextvars.ContextVar(
    "unsup_progress", default=None
)


@contextlib.contextmanager
def progress_callback(fn: Callable[..., None]) -> Iterator[None]:
    """Within the block, engines report ``fn(stage, step, total, **metrics)`` as they train."""
    token = _PROGRESS.set(fn)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def current_progress_callback() -> Callable[..., None] | None:
    """The progress sink set by :func:`progress_callback` in this context, if any (for an
    engine that hands work to other threads, whose contexts start without it)."""
    return _PROGRESS.get()


def report_progress(stage: str, step: int, total: int | None, **metrics: float) -> None:
    """Tell the active progress sink (if any) that ``step`` of ``total`` is done."""
    fn = _PROGRESS.get()
    if fn is not None:
        fn(stage, step, total, **metrics)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Map ``"auto"`` to CUDA when available, else CPU; validate explicit choices."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r} is not understood; use 'auto', 'cpu' or 'cuda'") from e
    if dev.type not in ("cpu", "cuda"):  # the statistics and objectives are kept in float64,
        # which MPS lacks; other backends are untested
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA device is available; "
                         "use device='auto' or 'cpu'")
    return dev


def make_generator(random_state: Any, device: torch.device) -> torch.Generator:
    """A torch generator seeded deterministically from a scikit-learn style ``random_state``
    (see :func:`unsup.train.seeding.make_generator`, the one seeding helper)."""
    from unsup.train.seeding import make_generator as _make_generator

    return _make_generator(random_state, device)


class BaseEstimator(ParamsMixin, sklearn.base.BaseEstimator):
    """Base class for all unsup estimators.

    Subclasses declare their parameters in ``__init__`` (stored unchanged) and implement
    ``fit``. Shared parameter groups (``_param_groups``) and declared constraints
    (``_parameter_constraints``, checked by ``self._validate_params()`` in ``fit``) come from
    :class:`unsup.params.ParamsMixin`. Helpers here handle device choice, seeding, input
    validation and saving.
    """

    # Fitted attributes that hold arrays are saved as tensors; everything else that ends in
    # ``_`` and is JSON-serialisable goes into the JSON metadata. Subclasses may list extra
    # non-array fitted attributes to skip.
    _save_exclude: tuple[str, ...] = ()

    # -- helpers for subclasses ---------------------------------------------------------
    def _device(self) -> torch.device:
        return resolve_device(getattr(self, "device", "auto"))

    def _validate(
        self,
        X: Any,
        *,
        reset: bool,
        dtype: torch.dtype | None = None,
        min_samples: int = 1,
    ) -> torch.Tensor:
        """Validate ``X``; on ``reset`` record ``n_features_in_``, else check it matches."""
        if not reset:
            self._check_fitted()
        if getattr(self, "_densify_sparse", False) and hasattr(X, "toarray"):
            X = X.toarray()  # a model that reads sparse counts densely (declared on the class)
        t = check_array(X, dtype=dtype, device=self._device(), min_samples=min_samples)
        if reset:
            self.n_features_in_ = int(t.shape[1])
        else:
            check_n_features(t, self.n_features_in_, type(self).__name__)
        return t

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Save the fitted estimator to ``path`` (safetensors + JSON; see :mod:`unsup.io`)."""
        from unsup.io import save

        save(self, path)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Split the fitted state into arrays and JSON-able values."""
        arrays: dict[str, np.ndarray] = {}
        values: dict[str, Any] = {}
        for k, v in vars(self).items():
            if not k.endswith("_") or k.startswith("_") or k in self._save_exclude:
                continue
            if isinstance(v, torch.Tensor):
                v = v.detach().cpu().numpy()
            if isinstance(v, np.ndarray) and v.dtype != object:
                arrays[k] = v
            elif isinstance(v, np.generic):
                values[k] = v.item()
            else:
                values[k] = v
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        for k, v in {**values, **arrays}.items():
            setattr(self, k, v)
