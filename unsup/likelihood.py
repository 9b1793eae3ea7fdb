"""Likelihoods as typed results: a number never travels without what it is.

Every model with the density capability returns, from ``log_likelihood(X)``, a
:class:`Likelihood`: the mean log-likelihood in nats per sample, whether it is exact or a bound or
an estimate, the estimator that produced it, its uncertainty, the counts behind it and the data
transform it assumes. ``score_samples`` stays scikit-learn shaped (one float per row);
:func:`likelihood_of` is what ``unsup evaluate``, the report and the benchmarks use.

Continuous densities (nats relative to Lebesgue measure, which can be positive and are not
comparable with probabilities) and discrete likelihoods (log probability mass, always <= 0)
carry their ``support`` so that they are never put in one column.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Likelihood", "likelihood_of", "LikelihoodUndefined", "KINDS", "SUPPORTS"]

KINDS = ("exact", "lower bound", "upper bound", "stochastic estimate",
         "stochastic lower bound", "stochastic upper bound")
SUPPORTS = ("discrete", "continuous")


class LikelihoodUndefined(ValueError):
    """The model has the density capability but no likelihood in this configuration (e.g. a
    PCA keeping every component: zero noise variance). ``evaluate`` records the reason and goes
    on; asking the model directly still raises."""


@dataclass(frozen=True)
class Likelihood:
    """A measured log-likelihood.

    Attributes
    ----------
    nats : float
        Mean log-likelihood per sample, in nats.
    kind : str
        One of :data:`KINDS`: "exact"; "lower bound" / "upper bound" (certain bounds, e.g. a
        mean-field bound with exact log Z); "stochastic estimate" (e.g. forward AIS, which is a
        lower bound only in expectation); "stochastic lower bound" (e.g. IS-k, ELBO estimated
        on samples).
    estimator : str
        How it was computed: "closed form", "exact enumeration", "forward AIS", "reverse AIS",
        "ELBO", "IS-5000", "mean-field bound + AIS", ...
    support : str
        "discrete" (log probability mass) or "continuous" (log density).
    n_samples : int
        Rows the mean is taken over.
    n_dims : int or None
        Dimensions per sample; gives :attr:`bits_per_dim`.
    stderr : float or None
        Standard error of the mean over rows.
    interval : (float, float) or None
        Interval from the estimator's own uncertainty (e.g. ±3σ of an AIS log Z), in mean nats.
    counts : dict
        The budget behind an estimate: AIS runs and temperatures, importance samples, ...
    transform : str or None
        The data transform the number assumes, e.g. "binarised at 0.5".
    per_sample : numpy.ndarray or None
        The per-row values (not serialised by :meth:`to_dict`).
    """

    nats: float
    kind: str
    estimator: str
    support: str
    n_samples: int
    n_dims: int | None = None
    stderr: float | None = None
    interval: tuple[float, float] | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    transform: str | None = None
    per_sample: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"likelihood kind must be one of {KINDS}, got {self.kind!r}")
        if self.support not in SUPPORTS:
            raise ValueError(f"likelihood support must be one of {SUPPORTS}, got {self.support!r}")

    @property
    def bits_per_dim(self) -> float | None:
        """``-nats / (D ln 2)`` for discrete data (images, text); lower is better.

        ``None`` for continuous densities, whose value depends on the data's scale.
        """
        if not self.n_dims or self.support != "discrete":
            return None
        return -self.nats / (self.n_dims * math.log(2))

    @property
    def column(self) -> str:
        """The table column this value belongs in: densities and masses never share one."""
        return ("log-likelihood (nats/sample)" if self.support == "discrete"
                else "log-density (continuous, nats/sample)")

    @classmethod
    def from_samples(cls, values: Any, *, kind: str = "exact", estimator: str = "closed form",
                     support: str, n_dims: int | None = None, **kw: Any) -> Likelihood:
        """Summarise per-row log-likelihoods: mean, standard error over rows."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size == 0:
            raise ValueError("no rows to measure a likelihood on")
        se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
        return cls(float(v.mean()), kind, estimator, support, int(v.size), n_dims, se,
                   per_sample=v, **kw)

    def shifted(self, delta: float) -> Likelihood:
        """The same result with every value moved by ``delta`` nats (e.g. another log Z)."""
        ps = None if self.per_sample is None else self.per_sample + delta
        iv = None if self.interval is None else (self.interval[0] + delta,
                                                 self.interval[1] + delta)
        return replace(self, nats=self.nats + delta, interval=iv, per_sample=ps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (for metrics.json and reports)."""
        d = asdict(self)
        d.pop("per_sample")
        d["interval"] = None if self.interval is None else [float(t) for t in self.interval]
        d["bits_per_dim"] = self.bits_per_dim
        return d


def likelihood_of(model: Any, X: Any) -> Likelihood | None:
    """The typed log-likelihood of ``model`` on ``X``; ``None`` without the density capability.

    Models that know more than "exact" define ``log_likelihood(X) -> Likelihood``; for the
    others ``score_samples`` is exact, with the support the class declares in
    ``_likelihood_support`` (default "continuous").
    """
    fn = getattr(model, "log_likelihood", None)
    if callable(fn):
        return fn(X)
    if not callable(getattr(model, "score_samples", None)):
        return None
    ll = model.score_samples(X)
    n_dims = int(np.shape(X)[1]) if np.ndim(X) == 2 else None
    return Likelihood.from_samples(ll, support=getattr(model, "_likelihood_support",
                                                       "continuous"), n_dims=n_dims)
