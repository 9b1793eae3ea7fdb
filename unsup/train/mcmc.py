r"""The engine for MCMC-estimated gradients, shared by every energy-based model.

For a model :math:`p(x) = e^{-E(x;\theta)}/Z(\theta)` (latent units included in :math:`x`)
the log-likelihood gradient is a difference of two expectations,

.. math::

    \frac{\partial \log p(v)}{\partial\theta}
    = \Big\langle -\frac{\partial E}{\partial\theta}\Big\rangle_{\text{data}}
    - \Big\langle -\frac{\partial E}{\partial\theta}\Big\rangle_{\text{model}},

the *positive* phase (latents inferred with the visibles clamped to a minibatch) and the
*negative* phase (samples from the model). The negative phase is estimated by Gibbs chains:
CD-k restarts them at the minibatch and runs k steps (Hinton 2002); PCD keeps ``n_chains``
persistent chains across updates (Tieleman 2008). Every energy model here has energy linear in
its parameters, so both phases are weighted sums of *sufficient statistics* of states; the
engine hands the model the positive and negative states stacked, with weights :math:`+1/B` and
:math:`-1/M`, and the model returns the gradient in one GEMM per weight matrix.

The update, per parameter, is classical momentum on the penalised gradient:

.. math::

    \Delta\theta \leftarrow \mu_t\,\Delta\theta + \epsilon_t\,(g - \lambda\,\theta),
    \qquad \theta \leftarrow \theta + \Delta\theta,

with weight decay :math:`\lambda` on weights only, the momentum :math:`\mu_t` ramped from
``initial_momentum`` to ``momentum`` over the first ``momentum_ramp`` fraction of updates, the
learning rate :math:`\epsilon_t` following a schedule (constant, linear decay or cosine), and
an optional sparsity target :math:`\rho`: a running average :math:`q` of the positive-phase
hidden probabilities adds :math:`\kappa(\rho - q)` to the hidden biases (and
:math:`\kappa(\rho - q)\bar v` to the weights) (Lee et al. 2008; Hinton 2010, §11).

A model plugs in by implementing :class:`MCMCModel`. The parameters of the loop and of the
chains are declared once here (:data:`MCMC_TRAINING`, :data:`SAMPLING`, :data:`SPARSITY`,
parameter groups of :mod:`unsup.params`) and composed into the energy estimators; a model with
another default lists that parameter in its own ``__init__``. :func:`mcmc_config` turns an
estimator's (validated) parameters into an :class:`MCMCConfig`.

References
----------
Hinton (2002), Training products of experts by minimizing contrastive divergence.
Tieleman (2008), Training restricted Boltzmann machines using approximations to the
likelihood gradient. ICML.
Hinton (2010), A practical guide to training restricted Boltzmann machines. UTML TR 2010-003.
Lee, Ekanadham & Ng (2008), Sparse deep belief net model for visual area V2. NIPS.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from unsup.base import report_progress
from unsup.params import Integral, Interval, Param, ParamGroup, Real, StrOptions
from unsup.train._mcmc_checkpoint import StageCheckpoint, begin_session
from unsup.train.checkpoint import checkpoint_params

__all__ = ["MCMCModel", "MCMCConfig", "fit_mcmc", "lr_factor", "check_int", "check_float",
           "MCMC_TRAINING", "SAMPLING", "SPARSITY", "LR_SCHEDULES", "mcmc_config"]

LR_SCHEDULES = ("constant", "linear", "cosine")
_pos_int = Interval(Integral, 1, None, closed="left")

MCMC_TRAINING = ParamGroup("mcmc training", [
    Param("learning_rate", 0.01, [Interval(Real, 0, None, closed="neither")],
          "Learning rate for the mean gradient over a minibatch.", "float"),
    Param("batch_size", 100, [_pos_int], "Rows per minibatch.", "int"),
    Param("n_iter", None, [_pos_int, None],
          "Epochs over the training data; None trains for n_updates updates instead.",
          "int or None"),
    Param("n_updates", 20000, [_pos_int], "Parameter updates when n_iter is None.", "int"),
    Param("momentum", 0.9, [Interval(Real, 0, 1, closed="left")],
          "Momentum (0.5, or less if smaller, for the first 5% of updates).", "float"),
    Param("weight_decay", 1e-3, [Interval(Real, 0, None, closed="left")],
          "L2 penalty on the weights.", "float"),
    Param("lr_schedule", "linear", [StrOptions(set(LR_SCHEDULES))],
          "Learning rate over the updates: linear or cosine decay to 0, or constant.",
          '{"linear", "cosine", "constant"}'),
    *checkpoint_params("Checkpoint every this many parameter updates (None: once per pass "
                       "over the data)."),
])

SAMPLING = ParamGroup("sampling", [
    Param("cd_k", 1, [_pos_int], "Gibbs steps per update (CD-k; PCD: steps of the chains).",
          "int"),
    Param("persistent", False, ["boolean"],
          "Persistent chains (PCD) instead of chains restarted at the data (CD-k).", "bool"),
    Param("n_chains", None, [_pos_int, None],
          "Persistent chains for PCD (None: batch_size).", "int or None"),
])

SPARSITY = ParamGroup("sparsity", [
    Param("sparsity_target", None, [Interval(Real, 0, 1, closed="right"), None],
          "Target mean activation of the hidden units (None: no sparsity penalty).",
          "float or None"),
    Param("sparsity_cost", 0.1, [Interval(Real, 0, None, closed="left")],
          "Strength of the sparsity penalty.", "float"),
])


def mcmc_config(est: Any, n_samples: int, *, stage: str, **overrides: Any) -> MCMCConfig:
    """The :class:`MCMCConfig` of an estimator's (already validated) group parameters.

    ``n_iter`` (epochs), when set, overrides ``n_updates``; parameters an estimator lacks keep
    the config's defaults; ``overrides`` win over both.
    """
    get = est.__dict__.get
    bs = int(get("batch_size", 100))
    n_updates = int(get("n_updates", MCMCConfig.n_updates))
    n_iter = get("n_iter")
    if n_iter is not None:  # scikit-learn semantics: epochs over the data
        n_updates = int(n_iter) * max(1, math.ceil(n_samples / min(bs, n_samples)))
    mom = float(get("momentum", MCMCConfig.momentum))
    target = get("sparsity_target")
    kw: dict[str, Any] = dict(
        batch_size=bs, n_updates=n_updates,
        learning_rate=float(get("learning_rate", MCMCConfig.learning_rate)),
        lr_schedule=str(get("lr_schedule", MCMCConfig.lr_schedule)), momentum=mom,
        initial_momentum=min(0.5, mom), weight_decay=float(get("weight_decay", 0.0)),
        cd_k=int(get("cd_k", 1)), persistent=bool(get("persistent", False)),
        n_chains=None if get("n_chains") is None else int(get("n_chains")),
        sparsity_target=None if target is None else float(target),
        sparsity_cost=float(get("sparsity_cost", MCMCConfig.sparsity_cost)),
        monitor_every=max(100, n_updates // 50), stage=stage,
        checkpoint_dir=None if get("checkpoint_dir") is None else str(get("checkpoint_dir")),
        checkpoint_every=get("checkpoint_every"), resume=bool(get("resume", False)))
    kw.update(overrides)
    # the engine's runs that follow in this fit (with one generator) are its stages
    begin_session(kw["checkpoint_dir"], kw["checkpoint_every"], kw["resume"],
                  get("random_state"))
    return MCMCConfig(**kw)

State = tuple[torch.Tensor, ...]


def check_int(name: str, value: Any, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float = math.inf,
                low_open: bool = False) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(float(value)) and low <= value <= high
          and not (low_open and value == low))
    if not ok:
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be a number in {lo}{low}, {high}], got {value!r}")
    return float(value)


class MCMCModel(Protocol):
    """What a model supplies to :func:`fit_mcmc` (all tensors on one device)."""

    def parameters(self) -> dict[str, torch.Tensor]:
        """Parameters updated in place, by name."""

    def decayed(self) -> tuple[str, ...]:
        """Names of the parameters that weight decay applies to (the weights)."""

    def positive(self, batch: torch.Tensor, gen: torch.Generator) -> State:
        """Clamped states of a minibatch: visibles and inferred latents (probabilities)."""

    def init_chains(self, batch: torch.Tensor, n: int, gen: torch.Generator) -> State:
        """Starting states for ``n`` persistent chains (``batch`` may seed them)."""

    def gibbs(self, state: State, k: int, gen: torch.Generator) -> tuple[State, State]:
        """Run ``k`` Gibbs steps; return (chain state to keep, state to take statistics of)."""

    def stats(self, rows: State, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """:math:`\\sum_n w_n\\, (-\\partial E(x_n)/\\partial\\theta)` for every parameter
        (new tensors: the engine updates them in place)."""

    def hidden_mean(self, pos: State) -> torch.Tensor | None:
        """Positive-phase hidden probabilities (B, H) for the sparsity target, or None."""

    def sparsity_grads(self, pos: State, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradient contribution of the sparsity penalty for ``delta = target - q``."""

    # Optional: ``accumulate(rows, weights, vel, mom, lr)`` sets, in place, every velocity
    # ``vel[k] <- mom * vel[k] + lr * stats(rows, weights)[k]`` (one GEMM with beta=mom,
    # alpha=lr per weight matrix); the engine uses it when the model defines it.


@dataclass
class MCMCConfig:
    """Training settings of :func:`fit_mcmc` (validated by the estimators)."""

    batch_size: int = 100
    n_updates: int = 10000
    learning_rate: float = 0.01
    lr_schedule: str = "linear"
    momentum: float = 0.9
    initial_momentum: float = 0.5
    momentum_ramp: float = 0.05
    weight_decay: float = 0.0
    cd_k: int = 1
    persistent: bool = False
    n_chains: int | None = None
    sparsity_target: float | None = None
    sparsity_cost: float = 0.1
    sparsity_decay: float = 0.95
    monitor_every: int = 0
    stage: str = "MCMC"
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    resume: bool = False


def lr_factor(schedule: str, t: int, T: int) -> float:
    """Multiplier of the base learning rate at update ``t`` (0-based) of ``T``."""
    if schedule == "constant":
        return 1.0
    frac = t / max(1, T)
    if schedule == "linear":
        return 1.0 - frac
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ValueError(f"lr_schedule must be 'constant', 'linear' or 'cosine', got {schedule!r}")


def fit_mcmc(
    model: MCMCModel,
    X: torch.Tensor,
    cfg: MCMCConfig,
    gen: torch.Generator,
    *,
    prepare: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    monitor: Callable[[torch.Tensor, State], dict[str, float]] | None = None,
    verbose: bool = False,
) -> tuple[list[dict[str, float]], State | None]:
    """Train ``model`` on the rows of ``X`` with CD-k or PCD; parameters change in place.

    Parameters
    ----------
    model : MCMCModel
    X : tensor (N, D)
        Training data (already validated), on the model's device.
    cfg : MCMCConfig
    gen : torch.Generator
        Source of all randomness (minibatch order and Gibbs sampling).
    prepare : callable, optional
        Maps a raw minibatch to the visible states (e.g. stochastic binarisation).
    monitor : callable ``(batch, positive state) -> metrics``, optional
        Called every ``cfg.monitor_every`` updates; its values go to the history.
    verbose : bool
        Print the monitored values.

    Returns
    -------
    history : list of dict
        One entry per monitoring point: ``step`` (update), ``epoch`` and the monitor's values.
    chains : tuple of tensors or None
        The persistent chains' final state (PCD), else None.

    Checkpoints: inside an estimator's fit with ``checkpoint_dir`` (or with
    ``cfg.checkpoint_dir``), every ``checkpoint_every`` updates (None: once per pass over the
    data) and at the end, the state is written atomically (:mod:`unsup.train._mcmc_checkpoint`);
    with ``resume`` the run continues from it exactly (a finished run returns at once).
    """
    N = X.shape[0]
    B = min(cfg.batch_size, N)
    params = model.parameters()
    names = list(params)
    param_list = [params[k] for k in names]
    vel_list = [torch.zeros_like(p) for p in param_list]
    vel = dict(zip(names, vel_list, strict=True))
    # optional fast path: the model adds its statistics straight into the velocities
    accumulate = getattr(model, "accumulate", None)
    # optional: ``phases(batch, chains or None, k, gen) -> (rows, pos, chains)`` returns the
    # stacked positive and negative rows directly (equal to the generic path's)
    phases = getattr(model, "phases", None)
    decayed = [k for k in model.decayed() if k in params]
    n_chains = cfg.n_chains or B
    chains: State | None = None
    q: torch.Tensor | None = None
    history: list[dict[str, float]] = []
    perm = torch.randperm(N, generator=gen, device=gen.device).to(X.device)
    pos_in_epoch = 0
    w_pos = torch.full((B,), 1.0 / B, dtype=X.dtype, device=X.device)
    w_both = torch.cat([w_pos, -w_pos])  # the usual case: as many chains as rows
    T = cfg.n_updates
    ramp = int(cfg.momentum_ramp * T)
    report_every = max(1, T // 200)
    t0 = 0
    ck = StageCheckpoint.start(model, X, cfg, gen)
    if ck is not None and ck.s.resume:
        saved = ck.restore(vel, X.device)
        if saved is not None and saved["done"]:
            return saved["history"], saved["chains"]
        if saved is not None:
            t0, pos_in_epoch, perm = saved["t"], saved["pos"], saved["perm"]
            chains, q, history = saved["chains"], saved["q"], saved["history"]
    for t in range(t0, T):
        if pos_in_epoch + B > N:
            perm = torch.randperm(N, generator=gen, device=gen.device).to(X.device)
            pos_in_epoch = 0
        idx = perm[pos_in_epoch:pos_in_epoch + B]
        pos_in_epoch += B
        batch = X[idx]
        if prepare is not None:
            batch = prepare(batch, gen)
        if cfg.persistent and chains is None:
            chains = model.init_chains(batch, n_chains, gen)
        if phases is not None:
            # the model builds the stacked [positive; negative] rows itself (no copies)
            rows, pos, new_chains = phases(batch, chains if cfg.persistent else None,
                                           cfg.cd_k, gen)
            if cfg.persistent:
                chains = new_chains
            m = rows[0].shape[0] - B
        else:
            pos = model.positive(batch, gen)
            if cfg.persistent:
                chains, neg = model.gibbs(chains, cfg.cd_k, gen)
            else:
                _, neg = model.gibbs(pos, cfg.cd_k, gen)
            m = neg[0].shape[0]
            rows = tuple(torch.cat([p, n]) for p, n in zip(pos, neg, strict=True))
        if m == B:
            weights = w_both
        else:
            weights = torch.cat([torch.full((B,), 1.0 / B, dtype=X.dtype, device=X.device),
                                 torch.full((m,), -1.0 / m, dtype=X.dtype, device=X.device)])
        lr = cfg.learning_rate * lr_factor(cfg.lr_schedule, t, T)
        mom = cfg.initial_momentum if t < ramp else cfg.momentum
        extra: dict[str, torch.Tensor] = {}
        if cfg.sparsity_target is not None:
            hm = model.hidden_mean(pos)
            if hm is not None:
                cur = hm.mean(0)
                q = cur if q is None else cfg.sparsity_decay * q + (1 - cfg.sparsity_decay) * cur
                extra = model.sparsity_grads(pos, cfg.sparsity_target - q)
        if accumulate is not None:
            # v <- mom * v + lr * g inside the GEMMs (their beta/alpha), saving two passes
            # over every weight matrix and the gradient's allocation
            accumulate(rows, weights, vel, mom, lr)
        else:
            grads = model.stats(rows, weights)
            torch._foreach_mul_(vel_list, mom)
            torch._foreach_add_(vel_list, [grads[k] for k in names], alpha=lr)
        for k, g in extra.items():
            vel[k].add_(g, alpha=lr * cfg.sparsity_cost)
        if cfg.weight_decay:
            for k in decayed:
                vel[k].add_(params[k], alpha=-lr * cfg.weight_decay)
        torch._foreach_add_(param_list, vel_list)  # p <- p + v
        if cfg.monitor_every and monitor is not None and (
                (t + 1) % cfg.monitor_every == 0 or t + 1 == T):
            entry = {"step": float(t + 1), "epoch": (t + 1) * B / N,
                     **monitor(batch, pos)}
            history.append(entry)
            if verbose:
                print("  ".join(f"{k}={v:.5g}" for k, v in entry.items()))
        if (t + 1) % report_every == 0 or t + 1 == T:
            report_progress(cfg.stage, t + 1, T)
        if ck is not None and ck.due(t + 1, T):
            ck.save(t + 1, pos_in_epoch, perm, vel, chains, q, history)
    if ck is not None:
        ck.finish(history, chains)
    return history, chains
