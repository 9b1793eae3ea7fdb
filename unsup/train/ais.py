r"""Partition functions of energy-based models: exact enumeration and AIS (estimator math,
next to the MCMC engine :mod:`unsup.train.mcmc`; :mod:`unsup.metrics.likelihood` re-exports it).

Exact
-----
For an RBM with energy :math:`E(v, h) = -b^\top v - c^\top h - v^\top W h` over binary
:math:`v \in \{0,1\}^D`, :math:`h \in \{0,1\}^H`, summing out the larger layer analytically
leaves a sum over the smaller one:

.. math::

    \log Z = \operatorname{logsumexp}_{h \in \{0,1\}^H}
             \Big[c^\top h + \sum_i \operatorname{softplus}(b_i + (W h)_i)\Big]

(and symmetrically over :math:`v` when :math:`D < H`). :func:`rbm_log_partition_exact`
evaluates it in float64, in chunks of states (one GEMM per chunk), with a running log-sum-exp,
so :math:`2^{20}` states never form one tensor.

Annealed importance sampling
----------------------------
:func:`ais` estimates :math:`\log Z_B` of a target model from a tractable base model
:math:`p_A` through intermediate distributions
:math:`p_k^*(x) = p_A^*(x)^{1-\beta_k}\, p_B^*(x)^{\beta_k}`,
:math:`0 = \beta_0 < \beta_1 < \dots < \beta_K = 1` (Neal 2001). Each of ``n_runs``
independent runs draws :math:`x_1 \sim p_A`, then alternates a weight update and a transition
that leaves :math:`p_k` invariant:

.. math::

    \log w = \sum_{k=1}^{K} \big[\log p_k^*(x_k) - \log p_{k-1}^*(x_k)\big],
    \qquad x_{k+1} \sim T_k(x_k \to \cdot),

and :math:`\hat Z_B / Z_A = \frac1M \sum_m w^{(m)}` is unbiased. The model supplies one
function, ``step(state, beta_prev, beta, last)``, returning the weight increment and the next
state; RBMs do both with one GEMM each way (Salakhutdinov & Murray 2008).

The uncertainty reported is the paper's: with :math:`\hat r` the mean weight and
:math:`\hat\sigma` the standard error of the mean,
:math:`[\log(\hat r - 3\hat\sigma), \log(\hat r + 3\hat\sigma)] + \log Z_A` (the lower end is
:math:`-\infty` when the weights are too spread to bound it), plus the delta-method standard
deviation :math:`\hat\sigma / \hat r` of :math:`\log \hat r`. Because
:math:`E[\log \hat Z] \le \log Z` (Jensen), AIS tends to *underestimate* log Z and so to
*overestimate* log-likelihoods when it has too few intermediate distributions.

Reverse AIS and the sandwich
----------------------------
:func:`reverse_ais` runs the same chain backwards (Grosse, Ghahramani & Adams 2015,
"bidirectional Monte Carlo"): start from samples :math:`x_K \sim p_B`, accumulate
:math:`\log w' = \sum_k [\log p_{k-1}^*(x_k) - \log p_k^*(x_k)]` while stepping
:math:`\beta` down to 0; then :math:`E[w'] = Z_A / Z_B`, and
:math:`\log Z_A - \log \frac1M\sum_m w'^{(m)}` overestimates log Z in expectation.
With exact samples of :math:`p_B` the forward and reverse estimates sandwich log Z and their
gap bounds the error of both; their meeting is the convergence test. Exact samples of an
RBM or DBM are not available, so the models start the reverse chains from long Gibbs runs
begun at training data: then the reverse estimate is a heuristic upper value (it is too low
when the chains have not visited all of :math:`p_B`'s mass), and the gap is a diagnostic,
not a certificate.

References
----------
Neal (2001), Annealed importance sampling. Statistics and Computing 11.
Grosse, Ghahramani & Adams (2015), Sandwiching the marginal likelihood using bidirectional
Monte Carlo. arXiv:1511.02543.
Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief networks. ICML.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "AISResult",
    "LogPartition",
    "ais",
    "reverse_ais",
    "beta_schedule",
    "binary_states",
    "rbm_log_partition_exact",
    "logmeanexp",
]


@dataclass
class LogPartition:
    r"""An estimate (or the exact value) of log Z: a result, returned, never stored by itself.

    Estimators return it from ``estimate_log_partition`` / ``estimate_log_partition_reverse``
    without touching the model; caching it is explicit (``model.set_log_partition(result)``).

    Attributes
    ----------
    log_z : float
        The value: for AIS :math:`\log Z_A + \log \frac1M \sum_m w^{(m)}`.
    log_z_low, log_z_high : float
        ±3 standard errors of the mean importance weight, mapped to log Z (``log_z_low`` may
        be ``-inf`` for forward AIS, ``log_z_high`` ``+inf`` for reverse AIS); both equal
        ``log_z`` when exact.
    log_z_std : float
        Delta-method standard deviation of ``log_z``: :math:`\hat\sigma / \hat r` (0 exact).
    log_z_base : float or None
        log Z of the AIS base model (None when exact).
    log_weights : ndarray of shape (n_runs,) or None
        Final log importance weights (without ``log_z_base``).
    n_betas : int
        Number of inverse temperatures, including 0 and 1 (0 when exact).
    method : str
        "exact enumeration", "forward AIS" or "reverse AIS".
    floor : float or None
        A certain lower bound on log Z from stored training states, when the model has one.
    check : str or None
        The verdict of comparing ``log_z`` with ``floor`` ("passed: ...", "FAILED: ...", "not
        checked (...)"); None when nobody checked.
    """

    log_z: float
    log_z_low: float
    log_z_high: float
    log_z_std: float
    log_z_base: float | None = None
    log_weights: np.ndarray | None = field(default=None, repr=False)
    n_betas: int = 0
    method: str = "forward AIS"
    floor: float | None = None
    check: str | None = None

    @classmethod
    def exact(cls, log_z: float) -> LogPartition:
        """An exactly computed log Z (enumeration)."""
        z = float(log_z)
        return cls(z, z, z, 0.0, method="exact enumeration")

    @property
    def is_exact(self) -> bool:
        return self.method == "exact enumeration"

    @property
    def n_runs(self) -> int:
        return 0 if self.log_weights is None else int(np.size(self.log_weights))

    @property
    def interval(self) -> tuple[float, float]:
        return (float(self.log_z_low), float(self.log_z_high))

    @property
    def failed_check(self) -> bool:
        return bool(self.check and self.check.startswith("FAILED"))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (no per-run weights): for metrics files and reports."""
        return {"log_z": self.log_z, "log_z_low": self.log_z_low,
                "log_z_high": self.log_z_high, "log_z_std": self.log_z_std,
                "method": self.method, "n_runs": self.n_runs, "n_betas": int(self.n_betas),
                "floor": self.floor, "check": self.check}

    to_dict = as_dict


AISResult = LogPartition  # the name of earlier versions


def logmeanexp(a: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log(mean(exp(a)))`` along ``dim``, computed stably."""
    return torch.logsumexp(a, dim=dim) - math.log(a.shape[dim])


def beta_schedule(n_betas: int | str | Any = 10000) -> np.ndarray:
    """Inverse temperatures from 0 to 1.

    Parameters
    ----------
    n_betas : int or array-like
        An int gives Salakhutdinov & Murray's schedule scaled to ``n_betas`` points: uniform
        steps on [0, 0.5] (5% of the points), [0.5, 0.9] (40%) and [0.9, 1] (55%), which
        spends most of the work near β = 1 where the distributions change fastest. An array is
        taken as the schedule itself (must increase from 0 to 1).

    Returns
    -------
    ndarray of float64, increasing, first 0 and last 1.
    """
    if isinstance(n_betas, (int, np.integer)) and not isinstance(n_betas, bool):
        n = int(n_betas)
        if n < 2:
            raise ValueError(f"n_betas must be >= 2, got {n}")
        n1 = max(1, round(0.05 * n))
        n2 = max(1, round(0.40 * n))
        n3 = max(1, n - 1 - n1 - n2)
        b = np.concatenate([
            np.linspace(0.0, 0.5, n1, endpoint=False),
            np.linspace(0.5, 0.9, n2, endpoint=False),
            np.linspace(0.9, 1.0, n3 + 1),
        ])
        return b
    b = np.asarray(n_betas, dtype=np.float64).reshape(-1)
    if b.size < 2 or b[0] != 0.0 or b[-1] != 1.0 or np.any(np.diff(b) <= 0):
        raise ValueError("a beta schedule must increase strictly from 0 to 1")
    return b


def ais(
    init: Callable[[int], tuple[Any, float]],
    step: Callable[[Any, float, float, bool], tuple[torch.Tensor, Any]],
    *,
    n_runs: int = 100,
    betas: int | Any = 10000,
    progress: Callable[[int, int], None] | None = None,
) -> AISResult:
    """Annealed importance sampling estimate of log Z of a target model.

    Parameters
    ----------
    init : callable ``n_runs -> (state, log_z_base)``
        Exact samples from the base model :math:`p_A` and its log partition function.
    step : callable ``(state, beta_prev, beta, last) -> (dlogw, state)``
        :math:`\\log p^*_{\\beta}(x) - \\log p^*_{\\beta_{prev}}(x)` at the current state
        (float64, one per run), and the state after a transition that leaves
        :math:`p_\\beta` invariant (may be skipped when ``last``).
    n_runs : int, default=100
        Independent annealing runs M.
    betas : int or array-like, default=10000
        Number of inverse temperatures, or the schedule (see :func:`beta_schedule`).
    progress : callable ``(k, K)``, optional
        Called every few hundred temperatures.

    Returns
    -------
    AISResult
    """
    if isinstance(n_runs, bool) or int(n_runs) != n_runs or n_runs < 2:
        raise ValueError(f"n_runs must be an integer >= 2, got {n_runs!r}")
    bs = beta_schedule(betas)
    state, log_z_a = init(int(n_runs))
    lw = _anneal(step, state, bs, progress)
    return _summarise(lw, float(log_z_a), len(bs))


def _anneal(step: Callable[[Any, float, float, bool], tuple[torch.Tensor, Any]], state: Any,
            bs: np.ndarray, progress: Callable[[int, int], None] | None) -> torch.Tensor:
    """Sum of the weight increments along the temperatures ``bs`` (either direction)."""
    log_w: torch.Tensor | None = None
    K = len(bs) - 1
    for k in range(1, K + 1):
        d, state = step(state, float(bs[k - 1]), float(bs[k]), k == K)
        log_w = d if log_w is None else log_w + d
        if progress is not None and (k % 500 == 0 or k == K):
            progress(k, K)
    assert log_w is not None
    return log_w.detach().double().cpu()


def reverse_ais(
    step: Callable[[Any, float, float, bool], tuple[torch.Tensor, Any]],
    state: Any,
    log_z_base: float,
    *,
    betas: int | Any = 10000,
    progress: Callable[[int, int], None] | None = None,
) -> AISResult:
    r"""Reverse AIS: an estimate of log Z that is too *high* in expectation (given exact
    samples of the target), the other side of :func:`ais`'s sandwich.

    Parameters
    ----------
    step : callable
        The same transition as :func:`ais`'s; it is called with the temperatures decreasing,
        ``step(x, beta_k, beta_{k-1}, last)``, which returns
        :math:`\log p^*_{k-1}(x) - \log p^*_k(x)` and a state moved at :math:`\beta_{k-1}`.
    state :
        Samples of the target model (one per run), e.g. from long Gibbs chains.
    log_z_base : float
        log Z of the base model.
    betas : int or array-like, default=10000
        The forward schedule (see :func:`beta_schedule`); it is walked from 1 down to 0.
    progress : callable ``(k, K)``, optional

    Returns
    -------
    AISResult
        ``log_z`` :math:`= \log Z_A - \log \frac1M \sum_m w'^{(m)}`, with the interval
        mapped through the same ±3 standard errors of the mean reverse weight (its *upper*
        end is ``+inf`` when the weights are too spread); ``log_weights`` are the reverse
        log-weights :math:`\log w'`.
    """
    bs = beta_schedule(betas)[::-1].copy()
    lw = _anneal(step, state, bs, progress)
    if lw.numel() < 2:
        raise ValueError("reverse AIS needs at least 2 runs (samples of the target)")
    r = _summarise(lw, 0.0, len(bs))
    return LogPartition(log_z=log_z_base - r.log_z, log_z_low=log_z_base - r.log_z_high,
                        log_z_high=log_z_base - r.log_z_low, log_z_std=r.log_z_std,
                        log_z_base=log_z_base, log_weights=r.log_weights, n_betas=len(bs),
                        method="reverse AIS")


def _summarise(lw: torch.Tensor, log_z_a: float, n_betas: int) -> AISResult:
    M = lw.numel()
    log_r = float(logmeanexp(lw))
    # standard error of the mean weight, relative to the mean (all in a shifted scale)
    rel = torch.exp(lw - log_r)  # w / r_hat, mean 1
    sd_rel = float(rel.std(unbiased=True)) / math.sqrt(M) if M > 1 else float("inf")
    hi = log_r + math.log1p(3 * sd_rel)
    lo = log_r + math.log(1 - 3 * sd_rel) if 3 * sd_rel < 1 else float("-inf")
    return LogPartition(log_z=log_z_a + log_r, log_z_low=log_z_a + lo,
                        log_z_high=log_z_a + hi, log_z_std=sd_rel, log_z_base=log_z_a,
                        log_weights=lw.numpy(), n_betas=n_betas)


def binary_states(n: int, start: int = 0, stop: int | None = None,
                  dtype: torch.dtype = torch.float64,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Rows ``start..stop-1`` of the table of all ``2**n`` binary vectors (bit i = unit i)."""
    stop = 2**n if stop is None else stop
    idx = torch.arange(start, stop, device=device, dtype=torch.int64)
    bits = torch.arange(n, device=device, dtype=torch.int64)
    return ((idx.unsqueeze(1) >> bits) & 1).to(dtype)


def rbm_log_partition_exact(
    W: Any, b: Any, c: Any, *, max_units: int = 25, chunk: int = 2**14
) -> float:
    """Exact log Z of a binary RBM by enumerating the smaller layer.

    Parameters
    ----------
    W : array-like (D, H)
        Weights.
    b : array-like (D,)
        Visible biases.
    c : array-like (H,)
        Hidden biases.
    max_units : int, default=25
        Refuse to enumerate more than ``2**max_units`` states.
    chunk : int, default=16384
        States per GEMM.

    Returns
    -------
    float
        :math:`\\log Z = \\operatorname{logsumexp}_h [c^\\top h +
        \\sum_i \\operatorname{softplus}(b_i + (W h)_i)]` (or the same over v).
    """
    W = torch.as_tensor(np.asarray(W) if not isinstance(W, torch.Tensor) else W).double()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).double()
    c = torch.as_tensor(np.asarray(c) if not isinstance(c, torch.Tensor) else c).double()
    W, b, c = W.cpu(), b.cpu().reshape(-1), c.cpu().reshape(-1)
    if W.shape != (b.numel(), c.numel()):
        raise ValueError(f"W has shape {tuple(W.shape)}, expected ({b.numel()}, {c.numel()})")
    if W.shape[0] < W.shape[1]:  # enumerate the visible layer instead
        W, b, c = W.T, c, b
    n = W.shape[1]
    if n > max_units:
        raise ValueError(f"exact log Z needs 2**{n} states (> 2**{max_units}); use AIS")
    acc = torch.tensor(float("-inf"), dtype=torch.float64)
    for s in range(0, 2**n, chunk):
        h = binary_states(n, s, min(2**n, s + chunk))
        vals = h @ c + torch.nn.functional.softplus(h @ W.T + b).sum(1)
        acc = torch.logaddexp(acc, torch.logsumexp(vals, 0))
    return float(acc)
