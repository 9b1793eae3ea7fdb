r"""Machinery shared by the RBM family: parameters, the training loop hook-up, inference.

An RBM's math object (``_RBMMath`` subclasses) holds the parameters as tensors and implements
the :class:`~unsup.train.mcmc.MCMCModel` protocol plus free energy, conditionals and the
two AIS callbacks. The estimator (``_BaseRBM`` subclasses) validates, owns the fitted numpy
attributes (scikit-learn's names: ``components_`` is H×D, ``intercept_hidden_``,
``intercept_visible_``) and builds a math object from them for every call.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin

from unsup._io_checks import A
from unsup.base import BaseEstimator, make_generator, report_progress
from unsup.likelihood import Likelihood
from unsup.params import Integral, Interval
from unsup.train.ais import LogPartition, ais, reverse_ais
from unsup.train.mcmc import (
    MCMC_TRAINING,
    SAMPLING,
    SPARSITY,
    MCMCConfig,
    check_int,
    fit_mcmc,
    mcmc_config,
)

__all__ = ["RBM_STATE_SHAPES", "_BaseRBM", "_RBMMath"]

#: the arrays every RBM's model file holds (the RBM classes extend it; see unsup._io_checks)
RBM_STATE_SHAPES = {
    "components_": A("f32", "n_components", "n_features_in_"),
    "intercept_hidden_": A("f32", "n_components"),
    "intercept_visible_": A("f32", "n_features_in_"),
    "base_rate_logits_?": A("f64", "n_features_in_"),
    "hidden_base_rate_logits_?": A("f64", "n_components"),
    "check_states_?": A("u8", "m", "c"),
}

State = tuple[torch.Tensor, ...]


# On CPU, NumPy's PCG64 draws uniforms about twice as fast as torch's MT19937; each torch
# generator gets a NumPy generator seeded from it (deterministic for a given random_state).
_NP_RNG: dict[int, tuple[torch.Generator, np.random.Generator]] = {}


def _uniform(shape: torch.Size | tuple[int, ...], gen: torch.Generator, device: torch.device,
             dtype: torch.dtype, out: torch.Tensor | None = None) -> torch.Tensor:
    """Uniform [0, 1) draws of ``shape`` from ``gen`` (or its NumPy twin on CPU), written
    into ``out`` (contiguous, of that shape) when given."""
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64) or (
            out is not None and not out.is_contiguous()):
        u = torch.rand(shape, generator=gen, device=gen.device, dtype=dtype).to(device)
        return u if out is None else out.copy_(u)
    entry = _NP_RNG.get(id(gen))
    if entry is None or entry[0] is not gen:
        if len(_NP_RNG) > 64:
            _NP_RNG.clear()
        entry = (gen, np.random.default_rng(gen.initial_seed()))
        _NP_RNG[id(gen)] = entry
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    if out is not None:  # same stream as without ``out``: NumPy fills in C order either way
        entry[1].random(dtype=np_dtype, out=out.numpy())
        return out
    return torch.from_numpy(entry[1].random(tuple(shape), dtype=np_dtype))


def _bernoulli(p: torch.Tensor, gen: torch.Generator, out: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Binary draws with probabilities ``p`` (same shape and dtype), into ``out`` if given
    (contiguous, not overlapping ``p``)."""
    u = _uniform(p.shape, gen, p.device, p.dtype, out)
    if u.dtype.is_floating_point and u.device == p.device:
        return u.sub_(p).lt_(0)  # u < p, written in place as 0./1. (one pass, no bool tensor)
    return (u < p).to(p.dtype)


def visible_ais_increment(v: torch.Tensor, x: torch.Tensor, b_minus_a: torch.Tensor,
                          b0: float, b1: float) -> torch.Tensor:
    r""":math:`\log p^*_{\beta_1}(v) - \log p^*_{\beta_0}(v)` (float64 per row) for AIS over
    the visibles from a base-rate model with logits a, hiddens summed out:
    :math:`(\beta_1 - \beta_0)\, v^\top (b - a) + \sum_j [\operatorname{softplus}(\beta_1
    x_j) - \operatorname{softplus}(\beta_0 x_j)]` with x the hidden input of v."""
    xd = x.double()
    return (b1 - b0) * (v.double() @ b_minus_a) + (
        F.softplus(b1 * xd) - F.softplus(b0 * xd)).sum(1)


def unpack_states(packed: Any, n_units: int, device: torch.device,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The binary rows stored bit-packed by :func:`pack_states`."""
    S = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=n_units)
    return torch.as_tensor(S, dtype=dtype, device=device)


def spaced_rows(n: int, k: int = 1000) -> torch.Tensor:
    """Indices of at most ``k`` evenly spaced rows out of ``n`` (deterministic)."""
    return torch.linspace(0, n - 1, min(n, k)).round().long()


def pack_states(S: torch.Tensor) -> np.ndarray:
    """Distinct binary rows of ``S``, bit-packed (uint8) for storing in a model file."""
    return np.packbits(torch.unique(S, dim=0).cpu().numpy().astype(np.uint8), axis=1)


def states_floor(packed: Any, free_energy: Any, n_units: int, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> float | None:
    r"""A certain lower bound on log Z, :math:`\log \sum_{s \in S} e^{-F(s)}`, over the
    bit-packed states ``packed`` (None when there are none): any set of states gives one."""
    if packed is None or len(packed) == 0:
        return None
    neg_f = -free_energy(unpack_states(packed, n_units, device, dtype)).double()
    return float(torch.logsumexp(neg_f, 0))


def check_log_partition(log_z: float, floor: float | None, warn: bool = True) -> str:
    """Compare an AIS estimate of log Z with a certain lower bound; return the verdict.

    AIS underestimates log Z when its runs miss where the mass is; an estimate below a sum
    over known states is certainly wrong, so say so (and warn with a ``RuntimeWarning``)."""
    if floor is None:
        return "not checked (no stored states)"
    if log_z >= floor:
        return (f"passed: AIS log Z {log_z:.3f} >= {floor:.3f}, the certain lower bound from "
                "training states")
    msg = (f"FAILED: AIS log Z {log_z:.3f} is below {floor:.3f}, a certain lower bound "
           "(log-sum over training states): the estimate is too low and every "
           "log-likelihood computed from it too high; use more temperatures/runs")
    if warn:
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return msg


def record_log_partition_check(est: Any, log_z: float, floor: float | None) -> None:
    """Check ``log_z`` against ``floor`` and store the verdict on ``est`` (the explicit
    caching path, :meth:`set_log_partition`): ``log_partition_floor_``,
    ``log_partition_check_`` and a suffix on ``likelihood_kind_`` when it failed."""
    est.log_partition_floor_ = floor
    est.log_partition_check_ = check_log_partition(log_z, floor)
    if est.log_partition_check_.startswith("FAILED"):
        est.likelihood_kind_ = getattr(est, "likelihood_kind_", "") + \
            " (failed check: log Z too low)"


def with_check(res: LogPartition, floor: float | None) -> LogPartition:
    """``res`` with the floor and the verdict of the check filled in (warns if it fails)."""
    from dataclasses import replace

    if res.is_exact:
        return replace(res, floor=floor, check="exact")
    return replace(res, floor=floor, check=check_log_partition(res.log_z, floor, warn=True))


def cache_log_partition(est: Any, res: LogPartition, kind: str) -> None:
    """Store ``res`` on ``est`` (explicit caching: ``set_log_partition``): forward or exact
    results as ``log_partition_*``, reverse ones as ``log_partition_reverse_*``."""
    if res.method == "reverse AIS":
        est.log_partition_reverse_ = float(res.log_z)
        est.log_partition_reverse_interval_ = [float(res.log_z_low), float(res.log_z_high)]
        return
    est.log_partition_ = float(res.log_z)
    est.log_partition_interval_ = [float(res.log_z_low), float(res.log_z_high)]
    est.log_partition_std_ = float(res.log_z_std)
    est.log_partition_method_ = res.method
    est.log_partition_n_runs_ = int(res.n_runs)
    est.log_partition_n_betas_ = int(res.n_betas)
    est.likelihood_kind_ = kind
    if res.is_exact:
        return
    est.log_partition_floor_ = res.floor
    est.log_partition_check_ = res.check if res.check is not None else check_log_partition(
        res.log_z, res.floor)
    if est.log_partition_check_.startswith("FAILED"):
        est.likelihood_kind_ += " (failed check: log Z too low)"


def cached_log_partition(est: Any) -> LogPartition | None:
    """The log Z stored by :func:`cache_log_partition` (None when nothing is cached)."""
    z = getattr(est, "log_partition_", None)
    if z is None:
        return None
    lo, hi = getattr(est, "log_partition_interval_", None) or (z, z)
    method = getattr(est, "log_partition_method_", None) or (
        "exact enumeration" if lo == hi == z else "forward AIS")
    return LogPartition(float(z), float(lo), float(hi),
                        float(getattr(est, "log_partition_std_", 0.0) or 0.0),
                        n_betas=int(getattr(est, "log_partition_n_betas_", 0) or 0),
                        method=method, floor=getattr(est, "log_partition_floor_", None),
                        check=getattr(est, "log_partition_check_", None))


def clear_log_partition(est: Any) -> None:
    """Forget a cached log Z (forward and reverse)."""
    for k in ("log_partition_", "log_partition_interval_", "log_partition_std_",
              "log_partition_method_", "log_partition_n_runs_", "log_partition_n_betas_",
              "log_partition_floor_", "log_partition_check_", "log_partition_reverse_",
              "log_partition_reverse_interval_"):
        est.__dict__.pop(k, None)


def likelihood_from(per_row: np.ndarray, lz: LogPartition, *, support: str, n_dims: int,
                    transform: str | None, bound: str | None = None,
                    bound_exact: bool = True) -> Likelihood:
    """The typed :class:`~unsup.likelihood.Likelihood` of per-row values computed with the log
    Z ``lz`` (already subtracted). ``bound`` names a variational bound ("mean-field lower
    bound", ...); ``bound_exact`` says whether that bound was computed exactly (else sampled).
    """
    if lz.is_exact:
        if bound is None:
            kind, est = "exact", "exact enumeration"
        else:
            kind = "lower bound" if bound_exact else "stochastic lower bound"
            est = f"{bound}, exact log Z"
    else:
        kind = "stochastic estimate"
        est = lz.method if bound is None else f"{bound}, log Z by {lz.method}"
        if lz.failed_check:
            est += " (failed check: log Z too low)"
    like = Likelihood.from_samples(per_row, kind=kind, estimator=est, support=support,
                                   n_dims=n_dims, transform=transform)
    counts: dict[str, Any] = {}
    interval = None
    if not lz.is_exact:
        counts = {"runs": lz.n_runs, "temperatures": int(lz.n_betas)}
        # every row moves with log Z: the mean's interval is the log Z interval, mirrored
        interval = (like.nats - (lz.log_z_high - lz.log_z), like.nats - (lz.log_z_low - lz.log_z))
    from dataclasses import replace

    return replace(like, counts=counts, interval=interval)


def start_rows(X: torch.Tensor | None, packed: Any, n_units: int, n: int,
               gen: torch.Generator, device: torch.device,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` rows drawn at random (with replacement) from ``X`` if given, else from the
    bit-packed states stored at fit: where reverse AIS starts its Gibbs chains."""
    if X is None:
        if packed is None or len(packed) == 0:
            raise ValueError("reverse AIS starts its chains from the training states stored "
                             "at fit (check_states_); this model has none: pass X (training "
                             "rows) or refit it")
        X = unpack_states(packed, n_units, device, dtype)
    idx = torch.randint(X.shape[0], (n,), generator=gen, device=gen.device)
    return X[idx.to(X.device)].to(device=device, dtype=dtype)


def run_reverse_ais(est: Any, step: Any, state: Any, log_z_base: float, betas: Any
                    ) -> LogPartition:
    """Reverse AIS from ``state`` (see :func:`unsup.train.ais.reverse_ais`); returns the result
    without storing it (``est.set_log_partition(result)`` caches it)."""
    return reverse_ais(step, state, log_z_base, betas=betas,
                       progress=lambda k, K: report_progress("reverse AIS", k, K))


class _RBMMath:
    """Parameters ``W`` (H, D), ``b`` (D,), ``c`` (H,) and the binary-hidden conditionals.

    Subclasses define the visible layer: ``_hidden_input``, ``visible_mean``,
    ``sample_visible``, ``free_energy`` and the AIS base model.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> None:
        self.W, self.b, self.c = W, b, c

    # -- engine protocol ------------------------------------------------------------------
    def parameters(self) -> dict[str, torch.Tensor]:
        return {"W": self.W, "b": self.b, "c": self.c}

    def decayed(self) -> tuple[str, ...]:
        return ("W",)

    def positive(self, batch: torch.Tensor, gen: torch.Generator) -> State:
        return (batch, self.hidden_mean_of(batch))

    def init_chains(self, batch: torch.Tensor, n: int, gen: torch.Generator) -> State:
        if n <= batch.shape[0]:
            v = batch[:n]
        else:
            idx = torch.randint(batch.shape[0], (n,), generator=gen, device=gen.device)
            v = batch[idx.to(batch.device)]
        return (v, self.hidden_mean_of(v))

    def gibbs(self, state: State, k: int, gen: torch.Generator) -> tuple[State, State]:
        v, hp = state
        for _ in range(k):
            h = _bernoulli(hp, gen)
            v = self.sample_visible(h, gen, v)
            hp = self.hidden_mean_of(v)
        return (v, hp), (v, hp)

    def stats(self, rows: State, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        v, h = rows
        hw = h * weights.unsqueeze(1)
        return {"W": hw.T @ v, "b": weights @ v, "c": hw.sum(0)}

    def hidden_mean(self, pos: State) -> torch.Tensor:
        return pos[1]

    def sparsity_grads(self, pos: State, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        vbar = pos[0].mean(0)
        return {"c": delta, "W": delta.unsqueeze(1) * vbar.unsqueeze(0)}

    # -- conditionals -----------------------------------------------------------------------
    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        """Total input to the hidden units, :math:`c + W v` (rows)."""
        return torch.addmm(self.c, v, self.W.T)

    def hidden_mean_of(self, v: torch.Tensor) -> torch.Tensor:
        return self.hidden_input(v).sigmoid_()

    def sample_visible(self, h: torch.Tensor, gen: torch.Generator,
                       like: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def visible_mean(self, h: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _to_t(a: Any, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), device=device).to(dtype)


class LogPartitionMixin:
    """log Z as the likelihoods use it, shared by the RBMs and the deep energy models."""

    def log_partition_result(self) -> LogPartition:
        """log Z as used by the likelihoods: the cached one if any, else exact enumeration
        (small models), else a fresh forward-AIS estimate (``ais_runs`` x ``ais_betas``;
        expensive, and not stored: cache it with :meth:`set_log_partition`)."""
        self._check_fitted()  # type: ignore[attr-defined]
        cached = cached_log_partition(self)
        if cached is not None:
            return cached
        exact = self._exact_log_partition()  # type: ignore[attr-defined]
        if exact is not None:
            return LogPartition.exact(exact)
        return self.estimate_log_partition()  # type: ignore[attr-defined]

    def _log_partition(self) -> float:
        return float(self.log_partition_result().log_z)


class _BaseRBM(LogPartitionMixin, TransformerMixin, BaseEstimator):
    """Shared fit / inference for RBMs with binary hidden units (not used directly).

    The loop and chain parameters are the groups :data:`~unsup.train.mcmc.MCMC_TRAINING`,
    :data:`~unsup.train.mcmc.SAMPLING` and :data:`~unsup.train.mcmc.SPARSITY`, checked once
    in ``fit`` with the declared constraints.
    """

    _math_cls: type = _RBMMath
    _stage = "RBM"
    _param_groups = (MCMC_TRAINING, SAMPLING, SPARSITY)
    _parameter_constraints: dict[str, Any] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "ais_runs": [Interval(Integral, 2, None, closed="left")],
        "ais_betas": [Interval(Integral, 2, None, closed="left"), "array-like"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }
    _likelihood_support = "discrete"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are float32 whatever comes in
        return tags

    # -- parameters -------------------------------------------------------------------------
    def _mcmc_config(self, n_samples: int) -> MCMCConfig:
        self._validate_params()
        return mcmc_config(self, n_samples, stage=self._stage)

    # -- subclass hooks -----------------------------------------------------------------------
    def _check_data(self, X: torch.Tensor, fitting: bool) -> torch.Tensor:
        return X

    def _likelihood_input(self, X: Any) -> tuple[torch.Tensor, str | None]:
        """Rows the likelihood is defined on, and the transform that made them (or None)."""
        return self._input(X), None

    def _init_math(self, X: torch.Tensor, gen: torch.Generator) -> _RBMMath:
        raise NotImplementedError

    def _store(self, m: _RBMMath) -> None:
        self.components_ = m.W.detach().cpu().numpy()
        self.intercept_visible_ = m.b.detach().cpu().numpy()
        self.intercept_hidden_ = m.c.detach().cpu().numpy()

    def _math(self, device: torch.device) -> _RBMMath:
        return self._math_cls(_to_t(self.components_, device), _to_t(self.intercept_visible_,
                              device), _to_t(self.intercept_hidden_, device))

    def _prepare(self) -> Any:
        return None

    def _input(self, X: Any, reset: bool = False) -> torch.Tensor:
        X = self._validate(X, reset=reset, dtype=torch.float32)
        return self._check_data(X, fitting=reset)

    # -- fitting ------------------------------------------------------------------------------
    def _reset_fitted(self) -> None:
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)

    def fit(self, X: Any, y: Any = None) -> _BaseRBM:
        """Fit the model to the rows of ``X`` by CD-k or PCD. Returns ``self``."""
        self._reset_fitted()
        self._validate_params()
        Xt = self._input(X, reset=True)
        cfg = self._mcmc_config(Xt.shape[0])
        dev = Xt.device
        gen = make_generator(self.random_state, dev)
        m = self._init_math(Xt, gen)

        def monitor(batch: torch.Tensor, pos: State) -> dict[str, float]:
            recon = m.visible_mean(_bernoulli(pos[1], gen), batch)
            return {"reconstruction_error": float(((batch - recon) ** 2).sum(1).mean())}

        history, chains = fit_mcmc(m, Xt, cfg, gen, prepare=self._prepare(), monitor=monitor,
                                   verbose=bool(getattr(self, "verbose", False)))
        self._store(m)
        self.history_ = history
        self.n_updates_ = cfg.n_updates
        self.n_iter_ = cfg.n_updates * min(cfg.batch_size, Xt.shape[0]) / Xt.shape[0]
        if chains is not None:
            self.h_samples_ = _bernoulli(chains[1], gen).cpu().numpy()
        self._after_fit(Xt)
        return self

    def _after_fit(self, X: torch.Tensor) -> None:
        self.likelihood_kind_ = "exact" if self._exact_possible() else "AIS estimate"

    def _exact_possible(self) -> bool:
        return False

    # -- inference ----------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Hidden probabilities :math:`p(h_j = 1 \\mid v)` (N, H)."""
        Xt = self._input(X)
        m = self._math(Xt.device)
        return m.hidden_mean_of(Xt).cpu().numpy()

    def free_energy(self, X: Any) -> np.ndarray:
        """Free energy :math:`F(v) = -\\log \\sum_h e^{-E(v,h)}` of every row (nats)."""
        Xt = self._input(X)
        return self._math(Xt.device).free_energy(Xt).double().cpu().numpy()

    def reconstruction_error(self, X: Any) -> np.ndarray:
        """Squared error :math:`\\lVert v - E[v \\mid h = p(h \\mid v)]\\rVert^2` per row."""
        Xt = self._input(X)
        m = self._math(Xt.device)
        r = m.visible_mean(m.hidden_mean_of(Xt), Xt)
        return ((Xt - r) ** 2).sum(1).double().cpu().numpy()

    # -- likelihood ---------------------------------------------------------------------------
    def _ais_callbacks(self, m: _RBMMath, gen: torch.Generator) -> tuple[Any, Any]:
        raise NotImplementedError

    def _exact_log_partition(self) -> float | None:
        return None

    def estimate_log_partition(
        self, n_runs: int | None = None, n_betas: Any = None, random_state: Any = None,
    ) -> LogPartition:
        """AIS estimate of log Z (Salakhutdinov & Murray 2008). Never changes the model.

        Parameters
        ----------
        n_runs, n_betas : optional
            Override ``ais_runs`` / ``ais_betas``.
        random_state : optional
            Seed for the annealing runs (default: the estimator's ``random_state``).

        Returns
        -------
        LogPartition
            ``log_z``, the interval ``[log_z_low, log_z_high]`` (±3 standard errors of the
            mean importance weight), ``method="forward AIS"``, the runs and temperatures, and
            the check against the certain lower bound from stored training states
            (``floor``, ``check``; a failed check also warns). Cache it explicitly with
            :meth:`set_log_partition`.
        """
        self._check_fitted()
        runs = check_int("ais_runs", self.ais_runs if n_runs is None else n_runs, 2)
        betas = self.ais_betas if n_betas is None else n_betas
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        init, step = self._ais_callbacks(m, gen)
        res = ais(init, step, n_runs=runs, betas=betas,
                  progress=lambda k, K: report_progress("AIS", k, K))
        return with_check(res, self.log_partition_floor())

    def log_partition_floor(self) -> float | None:
        """A certain lower bound on log Z from known states (None if the model has none)."""
        return None

    def _likelihood_kind(self, res: LogPartition) -> str:
        return "exact" if res.is_exact else "AIS estimate"

    def set_log_partition(self, result: LogPartition) -> _BaseRBM:
        """Cache a log Z result on the model (explicitly: measuring never stores one).

        Forward-AIS or exact results become ``log_partition_`` (with
        ``log_partition_interval_``, ``log_partition_std_``, ``log_partition_method_``,
        ``log_partition_check_``, ...), used by :meth:`score_samples` and
        :meth:`log_likelihood` from then on and saved with the model; reverse-AIS results
        become ``log_partition_reverse_`` / ``log_partition_reverse_interval_`` and are
        never used for likelihoods. Returns ``self``.
        """
        self._check_fitted()
        cache_log_partition(self, result, self._likelihood_kind(result))
        return self

    def clear_log_partition(self) -> _BaseRBM:
        """Forget a cached log Z. Returns ``self``."""
        clear_log_partition(self)
        self.likelihood_kind_ = "exact" if self._exact_possible() else "AIS estimate"
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """log p(v) per row, in nats: :math:`-F(v) - \\log \\hat Z` (one float per row).

        Exact when the smaller layer is small enough to enumerate; otherwise log Z is an AIS
        estimate (cached by :meth:`set_log_partition`, else computed afresh on every call
        and not stored) and every row carries its uncertainty, shifted:
        :meth:`log_likelihood` returns the typed result with the interval. Never changes the
        model.
        """
        Xt, _ = self._likelihood_input(X)
        log_z = self._log_partition()
        return -self._math(Xt.device).free_energy(Xt).double().cpu().numpy() - log_z

    def log_likelihood(self, X: Any) -> Likelihood:
        """The mean log-likelihood of ``X`` as a typed :class:`~unsup.likelihood.Likelihood`:
        exact (enumeration) or a stochastic estimate (forward AIS, with the interval implied
        by log Z's, the runs and temperatures), the support and the data transform assumed.
        Never changes the model."""
        Xt, transform = self._likelihood_input(X)
        lz = self.log_partition_result()
        neg_f = -self._math(Xt.device).free_energy(Xt).double().cpu().numpy()
        return likelihood_from(neg_f - lz.log_z, lz, support=self._likelihood_support,
                               n_dims=int(Xt.shape[1]), transform=transform)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` (average log-likelihood per row, nats)."""
        return float(np.mean(self.score_samples(X)))

    def log_likelihood_interval(self, X: Any) -> tuple[float, float]:
        """Interval of the mean log-likelihood of ``X`` implied by the interval of log Z."""
        mean_neg_f = -float(np.mean(self.free_energy(X)))
        lz = self.log_partition_result()
        return (mean_neg_f - lz.log_z_high, mean_neg_f - lz.log_z_low)

    # -- sampling -------------------------------------------------------------------------------
    def _init_visible(self, m: _RBMMath, n: int, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def gibbs_chain(self, n_chains: int = 16, steps: Any = (1, 10, 100, 1000),
                    random_state: Any = None) -> np.ndarray:
        """Run ``n_chains`` Gibbs chains from random states; return visible means at ``steps``.

        Returns
        -------
        ndarray of shape (len(steps), n_chains, n_features)
            :math:`E[v \\mid h]` after each number of full Gibbs steps in ``steps``.
        """
        self._check_fitted()
        n_chains = check_int("n_chains", n_chains, 1)
        steps = sorted(int(s) for s in steps)
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        v = self._init_visible(m, n_chains, gen)
        out = []
        done = 0
        for s in steps:
            mean = None
            for _ in range(s - done):
                h = _bernoulli(m.hidden_mean_of(v), gen)
                mean = m.visible_mean(h, v)
                v = m.sample_visible(h, gen, v)
            done = s
            if mean is None:
                mean = m.visible_mean(_bernoulli(m.hidden_mean_of(v), gen), v)
            out.append(mean.cpu().numpy())
        return np.stack(out)

    def sample(self, n_samples: int = 1, *, burn_in: int = 1000, thinning: int = 1,
               n_chains: int = 100, return_means: bool = False,
               random_state: Any = None) -> np.ndarray:
        """Draw visible vectors from Gibbs chains.

        ``min(n_samples, n_chains)`` chains start from the AIS base model (independent
        units), run ``burn_in`` full steps, then each contributes one sample every
        ``thinning`` steps until ``n_samples`` are collected.

        Parameters
        ----------
        n_samples : int
        burn_in : int, default=1000
        thinning : int, default=1
        n_chains : int, default=100
        return_means : bool, default=False
            Return :math:`E[v \\mid h]` of the last step instead of the sampled v.
        random_state : optional
            Seed (default: the estimator's ``random_state``).

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        self._check_fitted()
        n = check_int("n_samples", n_samples, 1)
        burn_in = check_int("burn_in", burn_in, 0)
        thinning = check_int("thinning", thinning, 1)
        C = min(n, check_int("n_chains", n_chains, 1))
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        v = self._init_visible(m, C, gen)
        got: list[torch.Tensor] = []
        total = 0
        step = 0
        while total < n:
            h = _bernoulli(m.hidden_mean_of(v), gen)
            mean = m.visible_mean(h, v)
            v = m.sample_visible(h, gen, v)
            step += 1
            if step > burn_in and (step - burn_in) % thinning == 0:
                take = (mean if return_means else v)[: n - total]
                got.append(take.clone())
                total += take.shape[0]
        return torch.cat(got).cpu().numpy()
