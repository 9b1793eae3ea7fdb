r"""The (general, fully connected) Boltzmann machine with binary units."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin

from unsup._io_checks import A
from unsup.base import BaseEstimator, make_generator
from unsup.data.validation import DataError
from unsup.energy.rbm import likelihood_input
from unsup.likelihood import Likelihood
from unsup.params import Integral, Interval
from unsup.registry import register_model
from unsup.train.ais import binary_states
from unsup.train.mcmc import MCMC_TRAINING, check_int, fit_mcmc, mcmc_config

__all__ = ["BoltzmannMachine"]

State = tuple[torch.Tensor, ...]


class _BMMath:
    r""":math:`E(x) = -\tfrac12 x^\top W x - b^\top x`, W symmetric with zero diagonal."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, n_visible: int, n_pos_sweeps: int
                 ) -> None:
        self.W, self.b, self.nv, self.n_pos = W, b, n_visible, n_pos_sweeps
        self.n = W.shape[0]

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"W": self.W, "b": self.b}

    def decayed(self) -> tuple[str, ...]:
        return ("W",)

    def sweep(self, x: torch.Tensor, units: range, gen: torch.Generator) -> torch.Tensor:
        """One systematic-scan Gibbs sweep over ``units``:
        :math:`p(x_i = 1 \\mid x_{-i}) = \\sigma(b_i + \\sum_j W_{ij} x_j)`."""
        u = torch.rand((x.shape[0], len(units)), generator=gen, device=gen.device,
                       dtype=x.dtype).to(x.device)
        for k, i in enumerate(units):
            a = torch.mv(x, self.W[:, i]) + self.b[i]
            x[:, i] = (u[:, k] < torch.sigmoid(a)).to(x.dtype)
        return x

    def _with_hidden(self, v: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x = torch.zeros(v.shape[0], self.n, dtype=v.dtype, device=v.device)
        x[:, : self.nv] = v
        if self.n > self.nv:
            x[:, self.nv:] = (torch.rand((v.shape[0], self.n - self.nv), generator=gen,
                                         device=gen.device, dtype=v.dtype).to(v.device) < 0.5
                              ).to(v.dtype)
            for _ in range(self.n_pos):
                self.sweep(x, range(self.nv, self.n), gen)
        return x

    def positive(self, batch: torch.Tensor, gen: torch.Generator) -> State:
        return (self._with_hidden(batch, gen),)

    def init_chains(self, batch: torch.Tensor, n: int, gen: torch.Generator) -> State:
        idx = torch.randint(batch.shape[0], (n,), generator=gen, device=gen.device)
        return (self._with_hidden(batch[idx.to(batch.device)], gen),)

    def gibbs(self, state: State, k: int, gen: torch.Generator) -> tuple[State, State]:
        x = state[0].clone()
        for _ in range(k):
            self.sweep(x, range(self.n), gen)
        return (x,), (x,)

    def stats(self, rows: State, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        x = rows[0]
        dW = (x * weights.unsqueeze(1)).T @ x
        dW.fill_diagonal_(0.0)
        return {"W": dW, "b": weights @ x}

    def hidden_mean(self, pos: State) -> None:
        return None

    def sparsity_grads(self, pos: State, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def neg_energy(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x @ self.W) * x).sum(1) + x @ self.b


@register_model('boltzmann-machine', family='energy', aliases=('bm',),
                summary='fully connected Boltzmann machine (exact likelihood up to 20 units)')
class BoltzmannMachine(TransformerMixin, BaseEstimator):
    r"""Fully connected Boltzmann machine with binary units, visible and (optionally) hidden.

    .. math::

        E(x) = -\sum_{i<j} U_{ij} x_i x_j - b^\top x = -\tfrac12 x^\top W x - b^\top x,
        \qquad p(x) = e^{-E(x)}/Z,

    with :math:`W = U + U^\top` symmetric, zero diagonal (stored as ``weights_``), and
    :math:`x = (v, h)`. Each unit's conditional is logistic,
    :math:`p(x_i = 1 \mid x_{-i}) = \sigma(b_i + \sum_j W_{ij} x_j)`; Gibbs sampling updates
    the units one at a time (systematic scan), vectorised over chains.

    Learning follows :math:`\Delta W_{ij} \propto \langle x_i x_j\rangle_{data} -
    \langle x_i x_j\rangle_{model}` (Ackley, Hinton & Sejnowski 1985): the positive phase
    clamps v to a minibatch and samples h by ``n_gibbs_positive`` sweeps over the hidden
    units; the negative phase runs ``n_gibbs`` sweeps of ``n_chains`` persistent chains (or
    chains restarted at the positive states with ``persistent=False``). The minibatch loop,
    momentum, weight decay and learning-rate schedule are those of the shared engine
    (:mod:`unsup.train.mcmc`).

    With at most 20 units, the log-likelihood is exact by enumeration:
    :math:`\log p(v) = \operatorname{logsumexp}_h(-E(v,h)) - \log Z`.

    Parameters
    ----------
    n_hidden : int, default=0
        Hidden units.
    learning_rate : float, default=0.05
    batch_size : int, default=50
    n_iter : int or None, default=None
        Epochs; None trains for ``n_updates`` updates.
    n_updates : int, default=2000
    n_gibbs : int, default=1
        Negative-phase Gibbs sweeps per update.
    n_gibbs_positive : int, default=5
        Hidden-unit sweeps with v clamped (positive phase; unused without hidden units).
    persistent : bool, default=True
    n_chains : int, default=100
    momentum : float, default=0.5
    weight_decay : float, default=0.0
    lr_schedule : {"linear", "cosine", "constant"}, default="linear"
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    weights_ : ndarray (n_units, n_units)
        Symmetric, zero diagonal.
    biases_ : ndarray (n_units,)
    n_visible_ : int
    history_ : list of dict
    likelihood_kind_ : str
        "exact" (enumeration; models with more than 20 units have no likelihood here).

    References
    ----------
    Ackley, Hinton & Sejnowski (1985), A learning algorithm for Boltzmann machines.
    Cognitive Science 9. Tieleman (2008) for persistent chains.
    """

    _test_data = "binary"

    _param_groups = (MCMC_TRAINING,)
    _parameter_constraints: dict[str, Any] = {
        "n_hidden": [Interval(Integral, 0, None, closed="left")],
        "n_gibbs": [Interval(Integral, 1, None, closed="left")],
        "n_gibbs_positive": [Interval(Integral, 1, None, closed="left")],
        "persistent": ["boolean"],
        "n_chains": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    _test_params: dict[str, Any] = {"n_hidden": 2, "n_updates": 20, "n_chains": 10,
                                    "device": "cpu", "random_state": 0}
    _likelihood_support = "discrete"

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"weights_": A("f64", "n_features_in_ + n_hidden", "n_features_in_ + n_hidden"),
                     "biases_": A("f64", "n_features_in_ + n_hidden"),
                     "__equal__": [("n_visible_", "n_features_in_")]}

    def __init__(
        self,
        n_hidden: int = 0,
        *,
        learning_rate: float = 0.05,
        batch_size: int = 50,
        n_updates: int = 2000,
        n_gibbs: int = 1,
        n_gibbs_positive: int = 5,
        persistent: bool = True,
        n_chains: int = 100,
        momentum: float = 0.5,
        weight_decay: float = 0.0,
        device: str = "auto",
        random_state: Any = None,
    ) -> None:
        self.n_hidden = n_hidden
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_updates = n_updates
        self.n_gibbs = n_gibbs
        self.n_gibbs_positive = n_gibbs_positive
        self.persistent = persistent
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _math(self, dev: torch.device) -> _BMMath:
        W = torch.as_tensor(self.weights_, device=dev, dtype=torch.float64)
        b = torch.as_tensor(self.biases_, device=dev, dtype=torch.float64)
        return _BMMath(W, b, self.n_visible_, int(self.n_gibbs_positive))

    def fit(self, X: Any, y: Any = None) -> BoltzmannMachine:
        """Fit to the rows of ``X`` (binary, or probabilities in [0, 1] used as mean-field
        input to the positive phase). Returns ``self``."""
        self._validate_params()
        nh = int(self.n_hidden)
        Xt = self._validate(X, reset=True, dtype=torch.float64)
        N, D = Xt.shape
        cfg = mcmc_config(self, N, stage="BoltzmannMachine", cd_k=int(self.n_gibbs),
                          persistent=bool(self.persistent), n_chains=int(self.n_chains))
        cfg.monitor_every = max(1, cfg.n_updates // 50)
        gen = make_generator(self.random_state, Xt.device)
        n = D + nh
        W = torch.zeros(n, n, dtype=torch.float64, device=Xt.device)
        if nh:
            W[:D, D:] = 0.01 * torch.randn(D, nh, generator=gen, device=gen.device,
                                           dtype=torch.float64).to(Xt.device)
            W[D:, :D] = W[:D, D:].T
        p = Xt.mean(0).clamp(1e-3, 1 - 1e-3)
        b = torch.zeros(n, dtype=torch.float64, device=Xt.device)
        b[:D] = torch.log(p) - torch.log1p(-p)
        m = _BMMath(W, b, D, int(self.n_gibbs_positive))

        def monitor(batch: torch.Tensor, pos: State) -> dict[str, float]:
            return {"mean_neg_energy_data": float(m.neg_energy(pos[0]).mean())}

        self.history_, _ = fit_mcmc(m, Xt, cfg, gen, monitor=monitor)
        self.weights_ = m.W.cpu().numpy()
        self.biases_ = m.b.cpu().numpy()
        self.n_visible_ = D
        self.n_updates_ = cfg.n_updates
        self.likelihood_kind_ = "exact"
        return self

    # -- inference --------------------------------------------------------------------------
    def _check_small(self) -> None:
        n = self.weights_.shape[0]
        if n > 20:
            raise ValueError(f"exact log-likelihood enumerates 2**{n} states; only models with "
                             "at most 20 units are supported")

    def log_partition(self) -> float:
        """Exact :math:`\\log Z = \\operatorname{logsumexp}_x [\\tfrac12 x^\\top W x + b^\\top x]`
        over all :math:`2^n` states (at most 20 units)."""
        self._check_fitted()
        self._check_small()
        m = self._math(torch.device("cpu"))
        return float(torch.logsumexp(m.neg_energy(binary_states(m.n)), 0))

    def _too_big(self) -> str | None:
        w = getattr(self, "weights_", None)
        if w is not None and w.shape[0] > 20:
            return (f"this BoltzmannMachine has {w.shape[0]} units; the exact "
                    "log-likelihood needs at most 20 units")
        return None

    def _when_small(self, method: Any) -> Any:
        """``method`` for a model of at most 20 units, else AttributeError: the exact
        likelihood's methods are absent beyond that, so generic code that looks for them
        (evaluation, reports) skips a large model instead of failing."""
        msg = self._too_big()
        if msg:
            raise AttributeError(msg)
        return method

    @property
    def score_samples(self) -> Any:
        """Exact log p(v) per row (nats), hidden units summed out by enumeration.

        Present only for models with at most 20 units (so generic evaluation code that looks
        for ``score_samples`` skips larger ones instead of failing). Defined for binary rows:
        non-binary X is binarised at 0.5 (:meth:`log_likelihood` says so).
        """
        return self._when_small(self._score_samples)

    @property
    def log_likelihood(self) -> Any:
        """Typed exact log-likelihood (:class:`~unsup.likelihood.Likelihood`, kind "exact",
        estimator "exact enumeration"); present only for models with at most 20 units."""
        return self._when_small(self._log_likelihood)

    def _log_likelihood(self, X: Any) -> Likelihood:
        ll, transform = self._score(X)
        return Likelihood.from_samples(ll, kind="exact", estimator="exact enumeration",
                                       support="discrete", n_dims=int(self.n_visible_),
                                       transform=transform)

    def _score_samples(self, X: Any) -> np.ndarray:
        return self._score(X)[0]

    def _score(self, X: Any) -> tuple[np.ndarray, str | None]:
        Xt = self._validate(X, reset=False, dtype=torch.float64).cpu()
        Xt, transform = likelihood_input(Xt, None)
        self._check_small()
        m = self._math(torch.device("cpu"))
        nh = m.n - self.n_visible_
        hs = binary_states(nh) if nh else torch.zeros(1, 0, dtype=torch.float64)
        out = torch.empty(Xt.shape[0], dtype=torch.float64)
        for s in range(0, Xt.shape[0], 256):
            v = Xt[s:s + 256]
            x = torch.cat([v.unsqueeze(1).expand(-1, hs.shape[0], -1),
                           hs.unsqueeze(0).expand(v.shape[0], -1, -1)], 2).reshape(-1, m.n)
            out[s:s + 256] = torch.logsumexp(m.neg_energy(x).reshape(v.shape[0], -1), 1)
        return (out - self.log_partition()).numpy(), transform

    @property
    def score(self) -> Any:
        """Mean exact log p(v) (nats); present only for models with at most 20 units, as
        :attr:`score_samples` (``unsup fit``'s evaluation then reports no likelihood instead
        of failing after the fit)."""
        return self._when_small(self._mean_score)

    def _mean_score(self, X: Any, y: Any = None) -> float:
        return float(np.mean(self._score_samples(X)))

    def transform(self, X: Any) -> np.ndarray:
        """Hidden-unit marginals :math:`p(h_j = 1 \\mid v)`: exact by enumerating the hidden
        states when there are at most 12 hidden units, else estimated by 50 Gibbs sweeps
        with v clamped. v in [0, 1] enters as given (mean-field input)."""
        Xt = self._validate(X, reset=False, dtype=torch.float64)
        m = self._math(Xt.device)
        if m.n == m.nv:
            raise DataError("this BoltzmannMachine has no hidden units to transform into")
        nh = m.n - m.nv
        if nh <= 12:  # p(h | v) ∝ exp(v^T W_vh h + 1/2 h^T W_hh h + b_h^T h), enumerated
            hs = binary_states(nh, dtype=Xt.dtype, device=Xt.device)  # (S, nh)
            Wvh, Whh, bh = m.W[: m.nv, m.nv:], m.W[m.nv:, m.nv:], m.b[m.nv:]
            logits = Xt @ Wvh @ hs.T + (0.5 * ((hs @ Whh) * hs).sum(1) + hs @ bh)
            return (torch.softmax(logits, 1) @ hs).cpu().numpy()
        gen = make_generator(self.random_state, Xt.device)
        acc = torch.zeros(Xt.shape[0], m.n - m.nv, dtype=torch.float64, device=Xt.device)
        x = m._with_hidden(Xt, gen)
        for _ in range(50):
            m.sweep(x, range(m.nv, m.n), gen)
            acc += x[:, m.nv:]
        return (acc / 50).cpu().numpy()

    def sample(self, n_samples: int = 1, *, burn_in: int = 200, thinning: int = 1,
               random_state: Any = None) -> np.ndarray:
        """Visible states from ``n_samples`` independent Gibbs chains after ``burn_in`` sweeps
        (``thinning`` is kept for API symmetry: one sample per chain)."""
        self._check_fitted()
        n = check_int("n_samples", n_samples, 1)
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        x = (torch.rand((n, m.n), generator=gen, device=gen.device, dtype=torch.float64)
             .to(dev) < 0.5).to(torch.float64)
        for _ in range(check_int("burn_in", burn_in, 0) + check_int("thinning", thinning, 1)):
            m.sweep(x, range(m.n), gen)
        return x[:, : m.nv].cpu().numpy()
