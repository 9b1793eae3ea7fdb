"""The deep-energy base shared by :class:`~unsup.energy.DBN` and :class:`~unsup.energy.DBM`.

Both are stacks of binary units over binary (or [0, 1]) data whose likelihood is a variational
lower bound minus the log partition function of an RBM (the DBN's top RBM, the DBM's composite
RBM). What they share lives here: the input policy (``binarize_input``), the log Z contract
(measuring returns a :class:`~unsup.train.ais.LogPartition` and never changes the model;
caching is explicit with :meth:`_DeepEnergy.set_log_partition`), and the typed likelihood
(:meth:`_DeepEnergy._bound_likelihood`). A subclass supplies ``_exact_log_partition``,
``estimate_log_partition`` and ``_kind_default``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin

from unsup.base import BaseEstimator
from unsup.energy._rbm import (
    LogPartitionMixin,
    cache_log_partition,
    clear_log_partition,
    likelihood_from,
)
from unsup.energy.rbm import binarize_mode, likelihood_input
from unsup.likelihood import Likelihood
from unsup.params import Integral, Interval, Real, StrOptions
from unsup.train.ais import LogPartition

__all__ = ["_DeepEnergy"]

_LOG_Z_ATTRS = ("log_partition_", "log_partition_interval_", "log_partition_std_",
                "log_partition_reverse_", "log_partition_reverse_interval_")


class _DeepEnergy(LogPartitionMixin, TransformerMixin, BaseEstimator):
    """Shared input policy, log Z caching and typed likelihoods of DBN and DBM."""

    _likelihood_support = "discrete"
    _parameter_constraints: dict[str, Any] = {
        "binarize_input": [None, Real, StrOptions({"stochastic"})],
        "ais_runs": [Interval(Integral, 2, None, closed="left")],
        "ais_betas": [Interval(Integral, 2, None, closed="left"), "array-like"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are float32 whatever comes in
        return tags

    # -- data ---------------------------------------------------------------------------------
    def _binarize_mode(self) -> Any:
        return binarize_mode(self.binarize_input)

    def _likelihood_input(self, X: Any) -> tuple[torch.Tensor, str | None]:
        """Binary rows the likelihood is defined on, and the transform that made them."""
        Xt = self._validate(X, reset=False, dtype=torch.float32)
        return likelihood_input(Xt, self._binarize_mode())

    # -- fitted state -------------------------------------------------------------------------
    def _reset_fitted(self) -> None:
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)

    def _invalidate_log_z(self) -> None:
        """Forget a cached log Z (the parameters changed): a fitting step, not a measurement."""
        clear_log_partition(self)
        for k in _LOG_Z_ATTRS:
            setattr(self, k, None)
        self.likelihood_kind_ = self._kind_default()

    def _kind_default(self) -> str:
        raise NotImplementedError

    # -- log Z --------------------------------------------------------------------------------
    def _exact_log_partition(self) -> float | None:
        raise NotImplementedError

    def estimate_log_partition(self, *args: Any, **kwargs: Any) -> LogPartition:
        raise NotImplementedError

    def _likelihood_kind(self, res: LogPartition) -> str:
        return self._kind_default() if res.is_exact else self._kind_default().replace(
            "exact log Z", "AIS").replace("exact", "AIS estimate")

    def set_log_partition(self, result: LogPartition) -> _DeepEnergy:
        """Cache a log Z result (explicitly: measuring never stores one). Forward-AIS and
        exact results become ``log_partition_`` (+ ``_interval_``, ``_std_``, ``_method_``,
        ``_check_``, ...), used by the likelihoods and saved with the model; reverse-AIS
        results become ``log_partition_reverse_`` / ``_interval_`` (never used for
        likelihoods). Returns ``self``."""
        self._check_fitted()
        cache_log_partition(self, result, self._likelihood_kind(result))
        return self

    def clear_log_partition(self) -> _DeepEnergy:
        """Forget a cached log Z. Returns ``self``."""
        self._invalidate_log_z()
        return self

    # -- likelihood ---------------------------------------------------------------------------
    def _bound_likelihood(self, per_row: np.ndarray, lz: LogPartition, *, n_dims: int,
                          transform: str | None, bound: str | None,
                          bound_exact: bool = True) -> Likelihood:
        """The typed result of per-row bounds (log Z already subtracted); ``bound`` None means
        the rows are log-likelihoods themselves (e.g. a one-layer DBN)."""
        return likelihood_from(per_row, lz, support=self._likelihood_support, n_dims=n_dims,
                               transform=transform, bound=bound, bound_exact=bound_exact)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` (nats)."""
        return float(np.mean(self.score_samples(X)))  # type: ignore[attr-defined]
