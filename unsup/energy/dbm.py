r"""Deep Boltzmann machine with two layers of binary hidden units (Salakhutdinov & Hinton 2009).

Energy, with :math:`v \in \{0,1\}^D`, :math:`h^1 \in \{0,1\}^{H_1}`,
:math:`h^2 \in \{0,1\}^{H_2}`, :math:`W_1` (H1×D), :math:`W_2` (H2×H1):

.. math::

    E(v, h^1, h^2) = -b^\top v - c_1^\top h^1 - c_2^\top h^2
                     - h^{1\top} W_1 v - h^{2\top} W_2 h^1 .

Conditionals (layers alternate, so each layer is independent given its neighbours):

.. math::

    p(h^1_j = 1 \mid v, h^2) = \sigma(c_{1j} + W_{1,j\cdot} v + W_{2,\cdot j}^\top h^2),\quad
    p(v_i = 1 \mid h^1) = \sigma(b_i + W_{1,\cdot i}^\top h^1),\quad
    p(h^2_k = 1 \mid h^1) = \sigma(c_{2k} + W_{2,k\cdot} h^1).

**Composite RBM.** The graph is bipartite between :math:`u = [v; h^2]` and :math:`h^1`:
the DBM *is* an RBM with "visible" layer :math:`u` (D + H2 units), hidden layer
:math:`h^1`, weights :math:`[W_1,\ W_2^\top]` (H1 × (D+H2)), visible biases :math:`[b; c_2]`
and hidden biases :math:`c_1`. Its partition function is the DBM's, so log Z comes from the
RBM machinery: exact enumeration of the smaller side when it has at most 20 units, else AIS
(Salakhutdinov & Murray 2008; Salakhutdinov & Hinton 2009, §4). The default AIS anneals over
:math:`h^1` alone with :math:`v` and :math:`h^2` summed out analytically, from a factorial base
model with the training marginals of :math:`v`, :math:`q(h^1)` and :math:`q(h^2)`
(``method="h1"``); the RBM AIS over :math:`u` with uniform :math:`h^1` at β = 0 is
``method="composite"``. One Gibbs step of the DBM (sample :math:`h^1 \mid v, h^2`, then
:math:`v, h^2 \mid h^1` in parallel) is one Gibbs step of that RBM.

**Learning** (stochastic approximation, §3): the positive phase replaces the intractable
posterior by the fully factorised mean-field :math:`q(h^1, h^2 \mid v)` found by the
fixed-point iterations

.. math::

    \mu_1 \leftarrow \sigma(W_1 v + W_2^\top \mu_2 + c_1),\qquad
    \mu_2 \leftarrow \sigma(W_2 \mu_1 + c_2),

initialised by the bottom-up pass :math:`\mu_1 = \sigma(2 W_1 v + c_1)`,
:math:`\mu_2 = \sigma(W_2 \mu_1 + c_2)` (each layer update is exact block-coordinate ascent
of the bound below, so it never decreases it); the negative phase uses persistent Gibbs
chains (PCD; Tieleman 2008; Younes 1989). Both phases give sufficient statistics
:math:`\langle h^1 v^\top\rangle, \langle h^2 h^{1\top}\rangle` and the unit means; the update
(momentum, weight decay, learning-rate schedule) is :func:`unsup.train.mcmc.fit_mcmc`.

**Pre-training** (§3.1) greedily trains two modified RBMs. The bottom RBM counts the visibles
twice going up, :math:`p(h^1 \mid v) = \sigma(2 W_1 v + c_1)`, :math:`p(v \mid h^1) =
\sigma(W_1^\top h^1 + b)` (visibles duplicated with tied weights); the top RBM, trained on
:math:`\sigma(2W_1 v + c_1)`, counts its hidden layer twice going down,
:math:`p(h^1 \mid h^2) = \sigma(2 W_2^\top h^2 + a)`, :math:`p(h^2 \mid h^1) =
\sigma(W_2 h^1 + c_2)`. In the composed DBM, :math:`h^1` gets one copy of the bottom-up input
and one of the top-down input, so the weights enter undoubled — the doubled weights of
pre-training are halved — and the two estimates of the first hidden biases are averaged,
:math:`c_1 = (c_1^{bottom} + a)/2`.

**Likelihood.** For the factorial mean-field posterior q,

.. math::

    \log p(v) \ge \mathcal{B}(v) = -E_q[E(v, h^1, h^2)] + \mathcal{H}(q) - \log Z,\qquad
    -E_q[E] = b^\top v + c_1^\top\mu_1 + c_2^\top\mu_2 + \mu_1^\top W_1 v + \mu_2^\top W_2\mu_1,

the gap being :math:`\mathrm{KL}(q \,\|\, p(h \mid v))`. With log Z from AIS the bound is itself
an estimate (AIS tends to underestimate log Z, which inflates the bound).

References
----------
Salakhutdinov & Hinton (2009), Deep Boltzmann machines. AISTATS.
Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief networks. ICML.
Tieleman (2008), Training restricted Boltzmann machines using approximations to the
likelihood gradient. ICML.
Younes (1989), Parametric inference for imperfectly observed Gibbsian fields. PTRF 82.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unsup._io_checks import A
from unsup.base import make_generator, report_progress
from unsup.energy._deep import _DeepEnergy
from unsup.energy._rbm import (
    _bernoulli,
    _to_t,
    pack_states,
    run_reverse_ais,
    spaced_rows,
    start_rows,
    states_floor,
    with_check,
)
from unsup.energy.rbm import _BernoulliMath, binary_input, is_binary, stochastic_prepare
from unsup.likelihood import Likelihood
from unsup.params import Integral, Interval, Real, StrOptions
from unsup.registry import register_model
from unsup.train.ais import LogPartition, ais, binary_states, rbm_log_partition_exact
from unsup.train.mcmc import MCMC_TRAINING, MCMCConfig, check_int, fit_mcmc, mcmc_config

__all__ = ["DBM"]

State = tuple[torch.Tensor, ...]

_EVAL_MF_ITERS = 50  # mean-field iterations at inference (stopped early at _EVAL_MF_TOL)
_EVAL_MF_TOL = 1e-6
_AIS_METHOD = "h1"  # default estimator of log Z (see DBM.estimate_log_partition)
_EXACT_UNITS = 20  # enumerate log Z when the smaller side of the composite RBM is this small


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.double().clamp(1e-3, 1 - 1e-3)
    return torch.log(p) - torch.log1p(-p)


def _entropy(q: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of factorial Bernoulli(q), summed over the columns."""
    q = q.double()
    return -(torch.special.xlogy(q, q) + torch.special.xlogy(1 - q, 1 - q)).sum(1)


class _DBMMath:
    """DBM parameters as tensors and the :class:`~unsup.train.mcmc.MCMCModel` protocol.

    State rows are ``(v, p1, h2)``: sampled visibles, the conditional means
    :math:`p(h^1 = 1 \\mid v, h^2)` (a Rao-Blackwellised :math:`h^1`), sampled :math:`h^2`;
    positive rows are ``(v, mu1, mu2)`` from mean field.
    """

    def __init__(self, W1: torch.Tensor, W2: torch.Tensor, b: torch.Tensor, c1: torch.Tensor,
                 c2: torch.Tensor, mf_iters: int = 10) -> None:
        self.W1, self.W2, self.b, self.c1, self.c2 = W1, W2, b, c1, c2
        self.mf_iters = mf_iters

    # -- engine protocol ----------------------------------------------------------------------
    def parameters(self) -> dict[str, torch.Tensor]:
        return {"W1": self.W1, "W2": self.W2, "b": self.b, "c1": self.c1, "c2": self.c2}

    def decayed(self) -> tuple[str, ...]:
        return ("W1", "W2")

    def positive(self, batch: torch.Tensor, gen: torch.Generator) -> State:
        mu1, mu2 = self.mean_field(batch, self.mf_iters)
        return (batch, mu1, mu2)

    def init_chains(self, batch: torch.Tensor, n: int, gen: torch.Generator) -> State:
        if n <= batch.shape[0]:
            v = batch[:n]
        else:
            idx = torch.randint(batch.shape[0], (n,), generator=gen, device=gen.device)
            v = batch[idx.to(batch.device)]
        _, mu2 = self.mean_field(v, 0)
        h2 = _bernoulli(mu2, gen)
        return (v, self.h1_mean(v, h2), h2)

    def gibbs(self, state: State, k: int, gen: torch.Generator) -> tuple[State, State]:
        v, p1, h2 = state
        for _ in range(k):
            v, p1, h2 = self.gibbs_step(p1, gen)
        return (v, p1, h2), (v, p1, h2)

    def stats(self, rows: State, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        v, h1, h2 = rows
        h1w = h1 * weights.unsqueeze(1)
        h2w = h2 * weights.unsqueeze(1)
        return {"W1": h1w.T @ v, "W2": h2w.T @ h1, "b": weights @ v, "c1": h1w.sum(0),
                "c2": h2w.sum(0)}

    def hidden_mean(self, pos: State) -> None:
        return None

    def sparsity_grads(self, pos: State, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    # -- conditionals -------------------------------------------------------------------------
    def h1_mean(self, v: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.c1, v, self.W1.T).addmm_(h2, self.W2))

    def v_mean(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.b, h1, self.W1))

    def h2_mean(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.c2, h1, self.W2.T))

    def gibbs_step(self, p1: torch.Tensor, gen: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:math:`h^1 \\sim p(h^1 \\mid v, h^2)` (given as ``p1``), then v and :math:`h^2`
        given :math:`h^1`; returns the new (v, p(h^1 | v, h^2), h^2)."""
        h1 = _bernoulli(p1, gen)
        v = _bernoulli(self.v_mean(h1), gen)
        h2 = _bernoulli(self.h2_mean(h1), gen)
        return v, self.h1_mean(v, h2), h2

    def mean_field(self, v: torch.Tensor, iters: int, tol: float = 0.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean-field posterior means (mu1, mu2): doubled bottom-up pass, then ``iters``
        fixed-point sweeps (stopping early once no mean moves by more than ``tol``)."""
        up = torch.addmm(self.c1, v, self.W1.T)  # c1 + W1 v, constant over the sweeps
        mu1 = torch.sigmoid(2 * up - self.c1)
        mu2 = self.h2_mean(mu1)
        for _ in range(iters):
            mu1 = torch.sigmoid(torch.addmm(up, mu2, self.W2))
            new = self.h2_mean(mu1)
            done = tol > 0 and float((new - mu2).abs().max()) < tol
            mu2 = new
            if done:
                break
        return mu1, mu2

    def bound_terms(self, v: torch.Tensor, mu1: torch.Tensor, mu2: torch.Tensor
                    ) -> torch.Tensor:
        """:math:`-E_q[E(v, h)] + \\mathcal{H}(q)` per row (float64), without log Z."""
        d = torch.float64
        v, m1, m2 = v.to(d), mu1.to(d), mu2.to(d)
        W1, W2 = self.W1.to(d), self.W2.to(d)
        neg_e = (v @ self.b.to(d) + m1 @ self.c1.to(d) + m2 @ self.c2.to(d)
                 + ((m1 @ W1) * v).sum(1) + ((m2 @ W2) * m1).sum(1))
        return neg_e + _entropy(m1) + _entropy(m2)

    def composite(self) -> _BernoulliMath:
        """The DBM as an RBM over ``u = [v; h2]`` with hidden ``h1``: W (H1, D+H2)."""
        return _BernoulliMath(torch.cat([self.W1, self.W2.T], 1),
                              torch.cat([self.b, self.c2]), self.c1)


# -- pre-training RBMs ------------------------------------------------------------------------
class _UpDoubledRBM(_BernoulliMath):
    """Bottom RBM of the pre-training: :math:`p(h \\mid v) = \\sigma(2 W v + c)`."""

    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.c, v, self.W.T, alpha=2.0)


class _DownDoubledRBM(_BernoulliMath):
    """Top RBM of the pre-training: :math:`p(v \\mid h) = \\sigma(2 W^\\top h + b)`."""

    def visible_mean(self, h: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.b, h, self.W, alpha=2.0))


@register_model('dbm', family='energy', aliases=('deep-boltzmann-machine',),
                summary='deep Boltzmann machine (2 hidden layers): mean field + PCD, AIS bound')
class DBM(_DeepEnergy):
    r"""Deep Boltzmann machine with two hidden layers, binary units.

    :math:`E(v,h^1,h^2) = -b^\top v - c_1^\top h^1 - c_2^\top h^2 - h^{1\top} W_1 v -
    h^{2\top} W_2 h^1` (Salakhutdinov & Hinton 2009). Optional greedy pre-training with
    doubled weights, then joint training by mean field (positive phase) and persistent Gibbs
    chains (negative phase). ``score_samples`` is the mean-field variational **lower bound**
    on log p(v) with log Z exact (small models) or from AIS over :math:`h^1` with
    :math:`v, h^2` summed out; see :mod:`unsup.energy.dbm` for the math.

    Parameters
    ----------
    layer_sizes : pair of int, default=(500, 1000)
        Hidden layer sizes (H1, H2). Exactly two layers.
    learning_rate : float, default=0.001
        Learning rate of the joint training (mean gradient over a minibatch). Joint training
        is less stable than an RBM's: on binarised MNIST, 0.005 (with momentum 0.9) made the
        persistent chains lose the data and the model degrade within a few hundred updates.
    batch_size : int, default=100
    n_updates : int, default=10000
        Parameter updates of the joint training. Sized so that a default fit of mnist5k takes
        under 10 minutes of one CPU core (20,000, the earlier default, took ~1,150 CPU s);
        the −86.6-nat result of docs/dbm.md used ``n_updates=20000`` (its recipe there).
    n_chains : int or None, default=None
        Persistent chains ("fantasy particles"); default ``batch_size``.
    cd_k : int, default=1
        Gibbs steps of the persistent chains per update.
    mean_field_iters : int, default=10
        Mean-field sweeps of the positive phase (inference runs up to 50, stopping when no
        mean moves by more than 1e-6).
    momentum : float, default=0.9
        Momentum (0.5 for the first 5% of updates).
    weight_decay : float, default=2e-4
        L2 penalty on W1 and W2.
    lr_schedule : {"linear", "cosine", "constant"}, default="linear"
    pretrain : bool, default=True
        Greedy pre-training with doubled weights before joint training (else small random
        weights and base-rate visible biases).
    pretrain_updates : int or pair of int, default=5000
        CD-1 updates of the bottom and top pre-training RBMs.
    pretrain_learning_rate : float, default=0.02
    transform_layers : {"top", "all"}, default="top"
        ``transform`` returns the mean-field :math:`q(h^2)` (N, H2), or
        :math:`[q(h^1), q(h^2)]` (N, H1+H2).
    binarize_input : None, float or "stochastic", default=None
        None requires binary data (else a DataError); a number thresholds ``X > t``;
        "stochastic" draws every minibatch as Bernoulli(X) during fitting and thresholds at
        0.5 for likelihoods and inference.
    ais_runs : int, default=100
    ais_betas : int or array-like, default=10000
        AIS inverse temperatures (or the schedule).
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool or int, default=False

    Attributes
    ----------
    W1_ : ndarray (H1, D)
    W2_ : ndarray (H2, H1)
    intercept_visible_ : ndarray (D,)
    intercept_hidden1_ : ndarray (H1,)
    intercept_hidden2_ : ndarray (H2,)
    base_rate_logits_ : ndarray (D+H2,)
        Logits of the AIS base-rate model over :math:`[v; h^2]`: smoothed training marginals
        of v and the training mean of :math:`q(h^2)`.
    base_rate_logits_h1_ : ndarray (H1,)
        Logits of the AIS base rate of :math:`h^1`: the training mean of :math:`q(h^1)`
        (models without it, e.g. from ``from_weights``, use :math:`c_1 + [W_1, W_2^\top]
        \sigma(a)` with :math:`a` = ``base_rate_logits_``).
    history_ : list of dict
        Mean-field reconstruction error :math:`\lVert v - \sigma(W_1^\top\mu_1 + b)\rVert^2`
        of the current minibatch during joint training.
    n_updates_ : int
    likelihood_kind_ : str
        "lower bound (exact log Z)" or "lower bound (AIS)".
    log_partition_, log_partition_interval_, log_partition_std_ : float, list, float
        log Z, its ±3σ AIS interval and standard deviation, once computed.
    n_features_in_ : int

    References
    ----------
    Salakhutdinov & Hinton (2009), Deep Boltzmann machines. AISTATS.
    Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief networks. ICML.
    """

    _test_data = "binary"

    _param_groups = (MCMC_TRAINING,)
    _parameter_constraints: dict[str, Any] = {
        "n_updates": [Interval(Integral, 0, None, closed="left")],  # 0: pre-training only
        "n_chains": [Interval(Integral, 1, None, closed="left"), None],
        "cd_k": [Interval(Integral, 1, None, closed="left")],
        "mean_field_iters": [Interval(Integral, 0, None, closed="left")],
        "pretrain": ["boolean"],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "transform_layers": [StrOptions({"top", "all"})],
    }
    _test_params: dict[str, Any] = {"layer_sizes": (4, 3), "n_updates": 20,
                                    "pretrain_updates": 10, "ais_runs": 10, "ais_betas": 50,
                                    "device": "cpu", "random_state": 0}

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"W1_": A("f32", "layer_sizes[0]", "n_features_in_"),
                     "W2_": A("f32", "layer_sizes[1]", "layer_sizes[0]"),
                     "intercept_visible_": A("f32", "n_features_in_"),
                     "intercept_hidden1_": A("f32", "layer_sizes[0]"),
                     "intercept_hidden2_": A("f32", "layer_sizes[1]"),
                     "base_rate_logits_?": A("f64", "n_features_in_ + layer_sizes[1]"),
                     "base_rate_logits_h1_?": A("f64", "layer_sizes[0]"),
                     "check_states_?": A("u8", "m", "c")}

    def __init__(
        self,
        layer_sizes: Sequence[int] = (500, 1000),
        *,
        learning_rate: float = 0.001,
        n_updates: int = 10000,
        n_chains: int | None = None,
        cd_k: int = 1,
        mean_field_iters: int = 10,
        weight_decay: float = 2e-4,
        pretrain: bool = True,
        pretrain_updates: Any = 5000,
        pretrain_learning_rate: float = 0.02,
        transform_layers: str = "top",
        binarize_input: Any = None,
        ais_runs: int = 100,
        ais_betas: Any = 10000,
        device: str = "auto",
        random_state: Any = None,
        verbose: Any = False,
    ) -> None:
        self.layer_sizes = layer_sizes
        self.learning_rate = learning_rate
        self.n_updates = n_updates
        self.n_chains = n_chains
        self.cd_k = cd_k
        self.mean_field_iters = mean_field_iters
        self.weight_decay = weight_decay
        self.pretrain = pretrain
        self.pretrain_updates = pretrain_updates
        self.pretrain_learning_rate = pretrain_learning_rate
        self.transform_layers = transform_layers
        self.binarize_input = binarize_input
        self.ais_runs = ais_runs
        self.ais_betas = ais_betas
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- validation -----------------------------------------------------------------------------
    def _sizes(self) -> tuple[int, int]:
        s = self.layer_sizes
        if isinstance(s, (str, bytes)) or not isinstance(s, (Sequence, np.ndarray)):
            raise ValueError(f"layer_sizes must be a pair (H1, H2) of hidden sizes, got {s!r}")
        s = list(s)
        if len(s) != 2:
            raise ValueError("DBM has exactly two hidden layers: layer_sizes must be (H1, H2), "
                             f"got {len(s)} size(s) {s!r}")
        return (check_int("layer_sizes[0]", s[0], 1), check_int("layer_sizes[1]", s[1], 1))

    def _pretrain_updates(self) -> tuple[int, int]:
        p = self.pretrain_updates
        if isinstance(p, (Sequence, np.ndarray)) and not isinstance(p, str):
            p = list(p)
            if len(p) != 2:
                raise ValueError(f"pretrain_updates must be an int or a pair, got {p!r}")
            return (check_int("pretrain_updates", p[0], 0), check_int("pretrain_updates", p[1], 0))
        n = check_int("pretrain_updates", p, 0)
        return (n, n)

    def _config(self, n_samples: int) -> MCMCConfig:
        self._validate_params()
        self._sizes()
        self._pretrain_updates()
        self._transform_layers()
        return mcmc_config(self, n_samples, stage="DBM", persistent=True, sparsity_target=None)

    def _transform_layers(self) -> str:
        if self.transform_layers not in ("top", "all"):
            raise ValueError("transform_layers must be 'top' or 'all', got "
                             f"{self.transform_layers!r}")
        return str(self.transform_layers)

    def _input(self, X: Any, reset: bool = False) -> torch.Tensor:
        """Validated input: values in [0, 1] as given (probabilities, mean-field input) with
        ``binarize_input=None``; thresholded under a threshold, and at 0.5 outside fitting
        under "stochastic"."""
        X = self._validate(X, reset=reset, dtype=torch.float32)
        mode = self._binarize_mode()
        return binary_input(X, mode, "DBM", keep_raw=reset or mode is None)

    def _prepare(self) -> Any:
        return stochastic_prepare(self._binarize_mode())

    # -- parameters as tensors ------------------------------------------------------------------
    def _math(self, device: torch.device, dtype: torch.dtype = torch.float32) -> _DBMMath:
        self._check_fitted()
        return _DBMMath(_to_t(self.W1_, device, dtype), _to_t(self.W2_, device, dtype),
                        _to_t(self.intercept_visible_, device, dtype),
                        _to_t(self.intercept_hidden1_, device, dtype),
                        _to_t(self.intercept_hidden2_, device, dtype),
                        int(self.mean_field_iters))

    def _store(self, m: _DBMMath) -> None:
        self.W1_ = m.W1.detach().cpu().numpy()
        self.W2_ = m.W2.detach().cpu().numpy()
        self.intercept_visible_ = m.b.detach().cpu().numpy()
        self.intercept_hidden1_ = m.c1.detach().cpu().numpy()
        self.intercept_hidden2_ = m.c2.detach().cpu().numpy()

    @classmethod
    def from_weights(cls, W1: Any, W2: Any, b: Any, c1: Any, c2: Any,
                     base_rate_logits: Any = None, **params: Any) -> DBM:
        """A fitted DBM with the given parameters (W1 (H1, D), W2 (H2, H1)), e.g. for tests.

        ``base_rate_logits`` (D+H2,) defaults to ``[b; c2]``, the model without weights.
        """
        W1, W2 = np.asarray(W1, np.float64), np.asarray(W2, np.float64)
        H1, D = W1.shape
        H2 = W2.shape[0]
        if W2.shape != (H2, H1) or np.shape(b) != (D,) or np.shape(c1) != (H1,) or \
                np.shape(c2) != (H2,):
            raise ValueError("shapes must be W1 (H1, D), W2 (H2, H1), b (D,), c1 (H1,), "
                             "c2 (H2,)")
        est = cls(layer_sizes=(H1, H2), **params)
        est.W1_, est.W2_ = W1, W2
        est.intercept_visible_ = np.asarray(b, np.float64)
        est.intercept_hidden1_ = np.asarray(c1, np.float64)
        est.intercept_hidden2_ = np.asarray(c2, np.float64)
        a = np.concatenate([b, c2]) if base_rate_logits is None else base_rate_logits
        est.base_rate_logits_ = np.asarray(a, np.float64)
        est.n_features_in_ = D
        est.n_updates_ = 0
        est.history_ = []
        est.likelihood_kind_ = est._kind_default()
        return est

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> DBM:
        """Pre-train (optionally), then train jointly by mean field + PCD. Returns ``self``."""
        self._reset_fitted()
        self._validate_params()
        H1, H2 = self._sizes()
        Xt = self._input(X, reset=True)
        cfg = self._config(Xt.shape[0])
        dev, dt = Xt.device, Xt.dtype
        D = Xt.shape[1]
        gen = make_generator(self.random_state, dev)
        prepare = self._prepare()
        verbose = bool(self.verbose)

        def randn(*shape: int) -> torch.Tensor:
            return (0.01 * torch.randn(*shape, generator=gen, device=gen.device)).to(dev, dt)

        p = Xt.mean(0)
        W1, W2 = randn(H1, D), randn(H2, H1)
        b = _logit(p).to(dt)
        c1 = torch.zeros(H1, dtype=dt, device=dev)
        c2 = torch.zeros(H2, dtype=dt, device=dev)
        self.pretrain_history_: list[list[dict[str, float]]] = []
        if self.pretrain:
            n1, n2 = self._pretrain_updates()
            pre = MCMCConfig(batch_size=cfg.batch_size, learning_rate=self.pretrain_learning_rate,
                             lr_schedule=cfg.lr_schedule, momentum=cfg.momentum,
                             initial_momentum=cfg.initial_momentum,
                             weight_decay=cfg.weight_decay, cd_k=1, persistent=False)
            if n1 > 0:
                bottom = _UpDoubledRBM(W1, b, c1)
                pre.n_updates, pre.stage = n1, "DBM pre-training 1"
                pre.monitor_every = max(100, n1 // 20)
                h, _ = fit_mcmc(bottom, Xt, pre, gen, prepare=prepare,
                                monitor=_recon_monitor(bottom, gen), verbose=verbose)
                self.pretrain_history_.append(h)
            Q1 = torch.sigmoid(torch.addmm(c1, Xt if prepare is None else (Xt > 0.5).to(dt),
                                           W1.T, alpha=2.0))
            a = _logit(Q1.mean(0)).to(dt)
            if n2 > 0:
                top = _DownDoubledRBM(W2, a, c2)
                pre.n_updates, pre.stage = n2, "DBM pre-training 2"
                pre.monitor_every = max(100, n2 // 20)
                h, _ = fit_mcmc(top, Q1, pre, gen, prepare=lambda q, g: _bernoulli(q, g),
                                monitor=_recon_monitor(top, gen), verbose=verbose)
                self.pretrain_history_.append(h)
            c1.add_(a).mul_(0.5)
            del Q1
        m = _DBMMath(W1, W2, b, c1, c2, int(self.mean_field_iters))

        def monitor(batch: torch.Tensor, pos: State) -> dict[str, float]:
            recon = m.v_mean(pos[1])
            return {"reconstruction_error": float(((batch - recon) ** 2).sum(1).mean())}

        history: list[dict[str, float]] = []
        if cfg.n_updates > 0:
            history, _ = fit_mcmc(m, Xt, cfg, gen, prepare=prepare, monitor=monitor,
                                  verbose=verbose)
        self._store(m)
        self.history_ = history
        self.n_updates_ = cfg.n_updates
        # AIS base rate over u = [v; h2]: data marginals of v, training mean of q(h2)
        # and of h1 (the training mean of q(h1)) for the AIS over h1
        Xb = Xt if is_binary(Xt) else (Xt > 0.5).to(dt)
        mf = [m.mean_field(Xb[s:s + 4096], _EVAL_MF_ITERS, _EVAL_MF_TOL)
              for s in range(0, Xb.shape[0], 4096)]
        q1, q2 = torch.cat([t[0] for t in mf]), torch.cat([t[1] for t in mf])
        self.base_rate_logits_ = torch.cat([_logit(p), _logit(q2.mean(0))]).cpu().numpy()
        self.base_rate_logits_h1_ = _logit(q1.mean(0)).cpu().numpy()
        # up to 1,000 distinct states u = [v; h2 > 0.5] of the training rows (bit-packed):
        # log sum_u e^{-F(u)} over them is a certain lower bound on log Z (AIS check)
        idx = spaced_rows(Xb.shape[0]).to(Xb.device)
        self.check_states_ = pack_states(torch.cat([Xb[idx], (q2[idx] > 0.5).to(dt)], 1))
        self.likelihood_kind_ = self._kind_default()
        return self

    def log_partition_floor(self) -> float | None:
        r"""A certain lower bound on log Z: :math:`\log \sum_{u \in S} e^{-F(u)}` over the
        stored training states :math:`u = [v; h^2]` (h¹ summed out); None without states."""
        self._check_fitted()
        dev = self._device()
        comp = self._math(dev).composite()
        return states_floor(getattr(self, "check_states_", None), comp.free_energy,
                            comp.W.shape[1], dev, comp.W.dtype)

    def _kind_default(self) -> str:
        return ("lower bound (exact log Z)" if self._exact_possible()
                else "lower bound (AIS)")

    # -- inference ------------------------------------------------------------------------------
    def mean_field(self, X: Any, n_iter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean-field posterior means :math:`(\\mu_1, \\mu_2)` of every row.

        ``n_iter`` fixed-point sweeps after the doubled bottom-up pass (default: up to 50,
        stopping when no mean moves by more than 1e-6); ``n_iter=0`` is the bottom-up pass.
        """
        Xt = self._input(X)
        m = self._math(Xt.device)
        if n_iter is None:
            mu1, mu2 = m.mean_field(Xt, _EVAL_MF_ITERS, _EVAL_MF_TOL)
        else:
            mu1, mu2 = m.mean_field(Xt, check_int("n_iter", n_iter, 0))
        return mu1.cpu().numpy(), mu2.cpu().numpy()

    def transform(self, X: Any) -> np.ndarray:
        """Mean-field :math:`q(h^2 = 1 \\mid v)` (N, H2), or :math:`[q(h^1), q(h^2)]`
        (N, H1+H2) with ``transform_layers="all"``."""
        mu1, mu2 = self.mean_field(X)
        return mu2 if self._transform_layers() == "top" else np.concatenate([mu1, mu2], 1)

    def encoder_module(self) -> nn.Sequential:
        """The bottom-up recognition pass as ``nn.Sequential`` (a copy, on the CPU):
        ``Linear(D, H1)`` with weights :math:`2W_1`, bias :math:`c_1`, sigmoid,
        ``Linear(H1, H2)`` with :math:`W_2, c_2`, sigmoid — the pass that initialises mean
        field; :meth:`transform` refines it with the top-down feedback."""
        self._check_fitted()
        H1, D = self.W1_.shape
        H2 = self.W2_.shape[0]
        l1, l2 = nn.Linear(D, H1), nn.Linear(H1, H2)
        with torch.no_grad():
            l1.weight.copy_(torch.as_tensor(2 * np.asarray(self.W1_)))
            l1.bias.copy_(torch.as_tensor(np.asarray(self.intercept_hidden1_)))
            l2.weight.copy_(torch.as_tensor(np.asarray(self.W2_)))
            l2.bias.copy_(torch.as_tensor(np.asarray(self.intercept_hidden2_)))
        return nn.Sequential(l1, nn.Sigmoid(), l2, nn.Sigmoid())

    # -- likelihood -----------------------------------------------------------------------------
    def _exact_possible(self, max_units: int = _EXACT_UNITS) -> bool:
        H1, D = np.shape(self.W1_)
        return min(H1, D + np.shape(self.W2_)[0]) <= max_units

    def log_partition_exact(self, max_units: int = 25) -> float:
        """Exact log Z: the composite RBM's, enumerating its smaller side (H1 or D+H2)."""
        self._check_fitted()
        W = np.concatenate([np.asarray(self.W1_, np.float64),
                            np.asarray(self.W2_, np.float64).T], 1)  # (H1, D+H2)
        bu = np.concatenate([self.intercept_visible_, self.intercept_hidden2_])
        return rbm_log_partition_exact(W.T, bu, self.intercept_hidden1_, max_units=max_units)

    def estimate_log_partition(self, n_runs: int | None = None, n_betas: Any = None,
                               random_state: Any = None, method: str | None = None
                               ) -> LogPartition:
        """AIS estimate of log Z, checked against the stored training states. Never changes
        the model; cache it with :meth:`set_log_partition`.

        Parameters
        ----------
        n_runs, n_betas : int, optional
            AIS runs and temperatures (or schedule); default ``ais_runs``, ``ais_betas``.
        random_state : int, optional
        method : {"h1", "composite"}, default="h1"
            ``"h1"`` (Salakhutdinov & Hinton 2009, §4): the AIS state is :math:`h^1` alone,
            :math:`v` and :math:`h^2` are summed out analytically in the importance weights;
            the base model is factorial over all units, with the logits
            ``base_rate_logits_h1_`` (training mean of :math:`q(h^1)`) on :math:`h^1` and
            ``base_rate_logits_`` on :math:`[v; h^2]`. ``"composite"``: the RBM AIS on the
            composite RBM, state :math:`[v; h^2]` with :math:`h^1` summed out, base rate
            ``base_rate_logits_`` on :math:`[v; h^2]` and uniform :math:`h^1` (the estimator
            of earlier versions).

        Returns
        -------
        LogPartition
            ``log_z`` and its ±3σ interval ``[log_z_low, log_z_high]``, ``floor``, ``check``.
        """
        self._check_fitted()
        method = self._ais_method(method)
        runs = check_int("ais_runs", self.ais_runs if n_runs is None else n_runs, 2)
        betas = self.ais_betas if n_betas is None else n_betas
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        init, step = self._ais_callbacks(self._math(dev), method, gen)
        res = ais(init, step, n_runs=runs, betas=betas,
                  progress=lambda k, K: report_progress("AIS", k, K))
        return with_check(res, self.log_partition_floor())

    @staticmethod
    def _ais_method(method: str | None) -> str:
        method = _AIS_METHOD if method is None else method
        if method not in ("h1", "composite"):
            raise ValueError(f"method must be 'h1' or 'composite', got {method!r}")
        return method

    def _ais_callbacks(self, m: _DBMMath, method: str, gen: torch.Generator
                       ) -> tuple[Any, Any]:
        comp = m.composite()
        a = _to_t(self.base_rate_logits_, m.W1.device, m.W1.dtype)
        if method == "composite":
            return comp.ais_callbacks(a, gen)
        a1 = _to_t(self._h1_base_logits(), m.W1.device, m.W1.dtype)
        return comp.ais_callbacks_hidden(a, a1, gen)

    def estimate_log_partition_reverse(self, n_runs: int | None = None, n_betas: Any = None,
                                       burn_in: int = 5000, random_state: Any = None,
                                       method: str | None = None, X: Any = None
                                       ) -> LogPartition:
        """Reverse AIS, the upper side of the forward/reverse sandwich (Grosse et al. 2015).

        ``n_runs`` block-Gibbs chains start at stored training states :math:`[v; h^2]`
        (``check_states_``), or at rows v of ``X`` with :math:`h^2` from the mean field,
        run ``burn_in`` sweeps at :math:`\\beta = 1` as stand-ins for exact samples, then
        anneal to the base model along the reversed schedule with the transitions of
        ``method`` (as :meth:`estimate_log_partition`). Too high in expectation given exact
        samples, too low when the chains miss part of the mass: the
        gap to the forward estimate is a convergence diagnostic. Never changes the model;
        :meth:`set_log_partition` caches it as ``log_partition_reverse_`` /
        ``log_partition_reverse_interval_`` (the bound keeps using the forward log Z).
        """
        self._check_fitted()
        method = self._ais_method(method)
        runs = check_int("ais_runs", self.ais_runs if n_runs is None else n_runs, 2)
        burn_in = check_int("burn_in", burn_in, 0)
        betas = self.ais_betas if n_betas is None else n_betas
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        D = m.W1.shape[1]
        if X is None:
            u = start_rows(None, getattr(self, "check_states_", None), D + m.W2.shape[0],
                           runs, gen, dev, m.W1.dtype)
            v, h2 = u[:, :D], u[:, D:]
        else:
            v = start_rows(self._likelihood_input(X)[0], None, D, runs, gen, dev, m.W1.dtype)
            h2 = _bernoulli(m.mean_field(v, _EVAL_MF_ITERS)[1], gen)
        p1 = m.h1_mean(v, h2)
        for _ in range(burn_in):
            v, p1, h2 = m.gibbs_step(p1, gen)
        init, step = self._ais_callbacks(m, method, gen)
        state = torch.cat([v, h2], 1) if method == "composite" else _bernoulli(p1, gen)
        return run_reverse_ais(self, step, state, init(2)[1], betas)

    def _h1_base_logits(self) -> np.ndarray:
        r"""Base-rate logits of h1 for AIS: ``base_rate_logits_h1_`` (set by ``fit``), else
        (models from ``from_weights`` or older files) the h1 input at the mean of the
        [v; h2] base rate, :math:`c_1 + [W_1, W_2^\top]\,\sigma(a)`, clipped to ±6.9."""
        a1 = getattr(self, "base_rate_logits_h1_", None)
        if a1 is not None:
            return np.asarray(a1, np.float64)
        W = np.concatenate([np.asarray(self.W1_, np.float64),
                            np.asarray(self.W2_, np.float64).T], 1)
        pu = 1.0 / (1.0 + np.exp(-np.asarray(self.base_rate_logits_, np.float64)))
        return np.clip(np.asarray(self.intercept_hidden1_, np.float64) + W @ pu, -6.9, 6.9)

    def _exact_log_partition(self) -> float | None:
        return self.log_partition_exact() if self._exact_possible() else None

    def lower_bound(self, X: Any, n_iter: int | None = None) -> np.ndarray:
        """:math:`-E_q[E] + \\mathcal{H}(q)` per row, the bound *before* subtracting log Z
        (``n_iter`` as in :meth:`mean_field`; non-binary X is binarised at 0.5 first)."""
        return self._bound_terms(self._likelihood_input(X)[0], n_iter)

    def _bound_terms(self, Xt: torch.Tensor, n_iter: int | None = None) -> np.ndarray:
        m = self._math(Xt.device)
        out = []
        for s in range(0, Xt.shape[0], 4096):
            v = Xt[s:s + 4096]
            if n_iter is None:
                mu1, mu2 = m.mean_field(v, _EVAL_MF_ITERS, _EVAL_MF_TOL)
            else:
                mu1, mu2 = m.mean_field(v, check_int("n_iter", n_iter, 0))
            out.append(m.bound_terms(v, mu1, mu2).cpu())
        return torch.cat(out).numpy()

    def score_samples(self, X: Any) -> np.ndarray:
        """Variational lower bound on log p(v) per row (nats):
        :math:`-E_q[E(v,h)] + \\mathcal{H}(q) - \\log Z`, q the converged mean field.

        A bound with exact log Z when the composite RBM has a side of at most 20 units,
        otherwise an estimate of the bound with log Z from AIS (cached by
        :meth:`set_log_partition`, else computed afresh and not stored;
        :meth:`log_likelihood` carries its interval). Non-binary X is binarised at 0.5
        first. Never changes the model.
        """
        return self.lower_bound(X) - self._log_partition()

    def log_likelihood(self, X: Any) -> Likelihood:
        """The mean of :meth:`score_samples` as a typed :class:`~unsup.likelihood.Likelihood`:
        kind "lower bound" (exact log Z) or "stochastic estimate" (log Z by forward AIS),
        estimator "mean-field lower bound, ..."; never changes the model."""
        Xt, transform = self._likelihood_input(X)
        lz = self.log_partition_result()
        rows = self._bound_terms(Xt) - lz.log_z
        return self._bound_likelihood(rows, lz, n_dims=int(Xt.shape[1]), transform=transform,
                                      bound="mean-field lower bound")

    def log_likelihood_exact(self, X: Any, max_units: int = 20) -> np.ndarray:
        """Exact log p(v) per row by enumerating :math:`h^1` (or :math:`h^2` if smaller),
        summing the other hidden layer analytically; needs exact log Z too (small models).

        .. math::

            \\log p(v) = b^\\top v + \\operatorname{logsumexp}_{h^1}\\Big[c_1^\\top h^1 +
            h^{1\\top} W_1 v + \\sum_k \\operatorname{softplus}(c_2 + W_2 h^1)_k\\Big] - \\log Z
        """
        Xt = self._likelihood_input(X)[0].double().cpu()
        m = self._math(torch.device("cpu"), torch.float64)
        H1, H2 = m.W1.shape[0], m.W2.shape[0]
        if min(H1, H2) > max_units:
            raise ValueError(f"exact log p(v) needs 2**{min(H1, H2)} states (> 2**{max_units})")
        log_z = self.log_partition_exact()
        acc = torch.full((Xt.shape[0],), -math.inf, dtype=torch.float64)
        chunk = 2**12
        if H1 <= H2:
            for s in range(0, 2**H1, chunk):
                h1 = binary_states(H1, s, min(2**H1, s + chunk))
                vals = (Xt @ (h1 @ m.W1).T + (h1 @ m.c1
                        + F.softplus(h1 @ m.W2.T + m.c2).sum(1)))
                acc = torch.logaddexp(acc, torch.logsumexp(vals, 1))
        else:
            up = Xt @ m.W1.T + m.c1  # (N, H1)
            for s in range(0, 2**H2, chunk):
                h2 = binary_states(H2, s, min(2**H2, s + chunk))
                pre = up.unsqueeze(1) + (h2 @ m.W2).unsqueeze(0)  # (N, S, H1)
                vals = F.softplus(pre).sum(2) + h2 @ m.c2
                acc = torch.logaddexp(acc, torch.logsumexp(vals, 1))
        return (acc + Xt @ m.b - log_z).numpy()

    # -- sampling -------------------------------------------------------------------------------
    def _init_state(self, m: _DBMMath, n: int, gen: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(v, p(h1 | v, h2), h2) with v, h2 drawn from the AIS base-rate model."""
        a = _to_t(self.base_rate_logits_, m.W1.device, m.W1.dtype)
        u = _bernoulli(torch.sigmoid(a).expand(n, -1).contiguous(), gen)
        D = m.W1.shape[1]
        v, h2 = u[:, :D], u[:, D:]
        return v, m.h1_mean(v, h2), h2

    def gibbs_chain(self, n_chains: int = 16, steps: Any = (1, 10, 100, 1000),
                    random_state: Any = None) -> np.ndarray:
        """Run ``n_chains`` Gibbs chains from the base-rate model; return visible means
        :math:`E[v \\mid h^1]` after each number of full Gibbs steps in ``steps``.

        Returns
        -------
        ndarray of shape (len(steps), n_chains, n_features)
        """
        self._check_fitted()
        n_chains = check_int("n_chains", n_chains, 1)
        steps = sorted(int(s) for s in steps)
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        _, p1, _ = self._init_state(m, n_chains, gen)
        out, done = [], 0
        for s in steps:
            for _ in range(s - done):
                h1 = _bernoulli(p1, gen)
                v = _bernoulli(m.v_mean(h1), gen)
                p1 = m.h1_mean(v, _bernoulli(m.h2_mean(h1), gen))
            done = s
            out.append(m.v_mean(_bernoulli(p1, gen)).cpu().numpy())
        return np.stack(out)

    def sample(self, n_samples: int = 1, *, burn_in: int = 1000, thinning: int = 1,
               n_chains: int = 100, return_means: bool = False,
               random_state: Any = None) -> np.ndarray:
        """Draw visible vectors by block Gibbs sampling (h1 | v, h2, then v, h2 | h1).

        ``min(n_samples, n_chains)`` chains start from the base-rate model, run ``burn_in``
        steps, then each gives one sample every ``thinning`` steps.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            Sampled v, or :math:`E[v \\mid h^1]` with ``return_means``.
        """
        self._check_fitted()
        n = check_int("n_samples", n_samples, 1)
        burn_in = check_int("burn_in", burn_in, 0)
        thinning = check_int("thinning", thinning, 1)
        C = min(n, check_int("n_chains", n_chains, 1))
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        _, p1, _ = self._init_state(m, C, gen)
        got: list[torch.Tensor] = []
        total = step = 0
        while total < n:
            h1 = _bernoulli(p1, gen)
            mean = m.v_mean(h1)
            v = _bernoulli(mean, gen)
            p1 = m.h1_mean(v, _bernoulli(m.h2_mean(h1), gen))
            step += 1
            if step > burn_in and (step - burn_in) % thinning == 0:
                take = (mean if return_means else v)[: n - total]
                got.append(take.clone())
                total += take.shape[0]
        return torch.cat(got).cpu().numpy()


def _recon_monitor(rbm: _BernoulliMath, gen: torch.Generator) -> Any:
    def monitor(batch: torch.Tensor, pos: State) -> dict[str, float]:
        recon = rbm.visible_mean(_bernoulli(pos[1], gen), batch)
        return {"reconstruction_error": float(((batch - recon) ** 2).sum(1).mean())}
    return monitor
