r"""Restricted Boltzmann machine with binary visible and hidden units."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unsup.data.validation import DataError
from unsup.energy._rbm import (
    RBM_STATE_SHAPES,
    _BaseRBM,
    _bernoulli,
    _RBMMath,
    _to_t,
    pack_states,
    run_reverse_ais,
    spaced_rows,
    start_rows,
    states_floor,
    visible_ais_increment,
)
from unsup.params import Real, StrOptions
from unsup.registry import Demo, register_model
from unsup.train.ais import LogPartition, rbm_log_partition_exact
from unsup.train.mcmc import check_int

__all__ = ["BernoulliRBM"]


class _BernoulliMath(_RBMMath):
    r""":math:`E(v,h) = -b^\top v - c^\top h - h^\top W v`, v and h binary."""

    def visible_mean(self, h: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        return torch.addmm(self.b, h, self.W).sigmoid_()

    def sample_visible(self, h: torch.Tensor, gen: torch.Generator,
                       like: torch.Tensor | None = None) -> torch.Tensor:
        return _bernoulli(self.visible_mean(h), gen)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -(v @ self.b) - F.softplus(self.hidden_input(v)).sum(1)

    def phases(self, batch: torch.Tensor, chains: tuple[torch.Tensor, ...] | None, k: int,
               gen: torch.Generator) -> tuple[tuple[torch.Tensor, ...],
                                              tuple[torch.Tensor, ...],
                                              tuple[torch.Tensor, ...] | None]:
        """Positive and negative phase written straight into stacked (B+M)-row buffers.

        Same draws, in the same order, as :meth:`positive` + :meth:`gibbs` (the engine's
        generic path), without the concatenation; under PCD the positive and negative hidden
        probabilities share one GEMM (both use the current weights).
        """
        B, D = batch.shape
        H = self.W.shape[0]
        M = B if chains is None else chains[1].shape[0]
        V = torch.empty(B + M, D, dtype=batch.dtype, device=batch.device)
        Hp = torch.empty(B + M, H, dtype=batch.dtype, device=batch.device)
        V[:B].copy_(batch)
        if chains is None:  # CD-k: the chain starts at the data
            torch.addmm(self.c, batch, self.W.T, out=Hp[:B]).sigmoid_()
            hp = Hp[:B]
        else:
            hp = chains[1]
        for step in range(k):
            h = _bernoulli(hp, gen)
            vm = self.visible_mean(h)
            if step == k - 1:
                _bernoulli(vm, gen, out=V[B:])  # drawn in place: no temporary, no copy
                break
            hp = self.hidden_mean_of(_bernoulli(vm, gen))
        if chains is None:
            torch.addmm(self.c, V[B:], self.W.T, out=Hp[B:]).sigmoid_()
        else:
            torch.addmm(self.c, V, self.W.T, out=Hp).sigmoid_()
        return (V, Hp), (V[:B], Hp[:B]), (None if chains is None else (V[B:], Hp[B:]))

    def accumulate(self, rows: tuple[torch.Tensor, ...], weights: torch.Tensor,
                   vel: dict[str, torch.Tensor], mom: float, lr: float) -> None:
        """``vel <- mom * vel + lr * stats(rows, weights)``, fused into the GEMMs."""
        v, h = rows
        hw = h * weights.unsqueeze(1)
        vel["W"].addmm_(hw.T, v, beta=mom, alpha=lr)
        vel["b"].addmv_(v.T, weights, beta=mom, alpha=lr)
        vel["c"].mul_(mom).add_(hw.sum(0), alpha=lr)

    # AIS with the base-rate model p_A(v) = prod_i sigmoid(a_i)^v_i (1 - sigmoid(a_i))^(1-v_i)
    def ais_callbacks(self, a: torch.Tensor, gen: torch.Generator) -> tuple[Any, Any]:
        H = self.W.shape[0]
        b_minus_a = (self.b - a).double()

        def init(n: int) -> tuple[torch.Tensor, float]:
            p = torch.sigmoid(a).expand(n, -1)
            log_za = float(F.softplus(a.double()).sum()) + H * float(np.log(2.0))
            return _bernoulli(p.contiguous(), gen), log_za

        def step(v: torch.Tensor, b0: float, b1: float, last: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
            pre = self.hidden_input(v)
            d = visible_ais_increment(v, pre, b_minus_a, b0, b1)
            if last:
                return d, v
            h = _bernoulli(torch.sigmoid(b1 * pre), gen)
            logits = torch.addmm(self.b, h, self.W).mul_(b1).add_(a, alpha=1.0 - b1)
            return d, _bernoulli(torch.sigmoid(logits), gen)

        return init, step

    def ais_callbacks_hidden(self, a: torch.Tensor, a_h: torch.Tensor, gen: torch.Generator
                             ) -> tuple[Any, Any]:
        r"""AIS over the hidden states, the visibles summed out analytically.

        Base model: independent visibles Bernoulli(σ(a)) and hiddens Bernoulli(σ(a_h)).
        Intermediate models :math:`-E_\beta = (1-\beta)(a^\top v + a_h^\top h) - \beta
        E(v, h)`, so

        .. math::

            \log p^*_\beta(h) = ((1-\beta) a_h + \beta c)^\top h + \sum_i
            \operatorname{softplus}((1-\beta) a_i + \beta (b + W^\top h)_i),

        and the transition is one Gibbs sweep at β (v | h, then h | v). Better than the
        visible-side schedule when the hidden layer is the larger one (e.g. a DBN's top RBM).
        """
        W, b, c = self.W, self.b, self.c
        a = a.to(W.dtype)
        a_h = a_h.to(W.dtype)
        c_minus_ah = (c - a_h).double()

        def init(n: int) -> tuple[torch.Tensor, float]:
            h = _bernoulli(torch.sigmoid(a_h).expand(n, -1).contiguous(), gen)
            return h, float(F.softplus(a.double()).sum() + F.softplus(a_h.double()).sum())

        def step(h: torch.Tensor, b0: float, b1: float, last: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.addmm(b, h, W)  # (n, D): b + W^T h
            # softplus(y1) - softplus(y0) = -log1p(σ(y1) expm1(-δ)), δ = (b1 - b0)(x - a):
            # accurate in float32 relative to the small difference; σ(y1) is reused below
            p1 = x.mul(b1).add_(a, alpha=1.0 - b1).sigmoid_()
            sp = x.sub_(a).mul_(b0 - b1).expm1_().mul_(p1).log1p_().sum(1, dtype=torch.float64)
            d = (b1 - b0) * (h.double() @ c_minus_ah) - sp
            if last:
                return d, h
            v = _bernoulli(p1, gen)
            logits = torch.addmm(c, v, W.T).mul_(b1).add_(a_h, alpha=1.0 - b1)
            return d, _bernoulli(logits.sigmoid_(), gen)

        return init, step


def is_binary(X: torch.Tensor) -> bool:
    """Whether every value is exactly 0 or 1 (one cheap pass: x^2 == x)."""
    return bool(torch.equal(X * X, X))


def binarize_mode(b: Any) -> Any:
    """Validated ``binarize_input``: None, "stochastic" or a float threshold."""
    if b is None or b == "stochastic":
        return b
    if isinstance(b, numbers.Real) and not isinstance(b, bool):
        return float(b)
    raise ValueError(f"binarize_input must be None, a threshold or 'stochastic', got {b!r}")


def _check_unit_interval(X: torch.Tensor) -> None:
    if float(X.min()) < 0 or float(X.max()) > 1:
        raise DataError("binarize_input='stochastic' needs values in [0, 1]; X ranges "
                        f"over [{float(X.min()):.4g}, {float(X.max()):.4g}]")


def binary_input(X: torch.Tensor, mode: Any, who: str, keep_raw: bool) -> torch.Tensor:
    """The visible input of a model over binary units, per ``binarize_input`` ``mode``.

    None: values in [0, 1] are probabilities, used as they are (mean-field input, as
    scikit-learn's ``BernoulliRBM`` does; other real values are not refused either, as there);
    for likelihoods (``keep_raw`` false) non-binary rows are thresholded at 0.5 (see
    :func:`likelihood_input`). A threshold t gives ``X > t``. "stochastic" requires values in
    [0, 1] and returns them as they are when ``keep_raw`` (fitting draws Bernoulli(X) per
    minibatch, see :func:`stochastic_prepare`), else thresholded at 0.5."""
    if mode is None:
        if keep_raw or is_binary(X):
            return X
        return (X > 0.5).to(X.dtype)
    if mode == "stochastic":
        _check_unit_interval(X)
        return X if keep_raw else (X > 0.5).to(X.dtype)
    return (X > mode).to(X.dtype)


def likelihood_input(X: torch.Tensor, mode: Any) -> tuple[torch.Tensor, str | None]:
    """Binary rows for a likelihood and the transform that made them (None: X was binary).

    Likelihoods of models over binary units are defined for binary data; a grey-level X is
    binarised at 0.5 (or at the ``binarize_input`` threshold) and the result says so."""
    if mode is None:
        if is_binary(X):
            return X, None
        return (X > 0.5).to(X.dtype), "binarised at 0.5 (X had non-binary values)"
    if mode == "stochastic":
        _check_unit_interval(X)
        return (X > 0.5).to(X.dtype), "binarised at 0.5"
    return (X > mode).to(X.dtype), f"binarised at {mode:g}"


def stochastic_prepare(mode: Any) -> Any:
    """The engine's ``prepare`` for ``binarize_input``: Bernoulli draws under "stochastic"."""
    if mode == "stochastic":
        return lambda batch, gen: _bernoulli(batch, gen)
    return None


@register_model('rbm', family='energy', aliases=('bernoulli-rbm',),
                summary='binary RBM trained by CD-k or PCD; AIS log-likelihood',
                demo=Demo("RBM, 100 binary hidden units, PCD (pixels thresholded at 0.5; "
                          "log-likelihood of the binarised image, AIS estimate)",
                          params={"n_components": 100, "persistent": True,
                                  "binarize_input": 0.5, "n_updates": 1000, "ais_runs": 50,
                                  "ais_betas": 1000, "random_state": 0},
                          quick={"n_updates": 300, "ais_betas": 500}, order=40))
class BernoulliRBM(_BaseRBM):
    r"""Restricted Boltzmann machine with binary visible and hidden units.

    A drop-in for :class:`sklearn.neural_network.BernoulliRBM` (same parameter names
    ``n_components``, ``learning_rate``, ``batch_size``, ``n_iter``, ``verbose``,
    ``random_state``; same fitted attributes ``components_``, ``intercept_hidden_``,
    ``intercept_visible_``, ``h_samples_``; same ``transform`` and ``gibbs``) that adds CD-k,
    PCD, momentum, weight decay, a sparsity target, a learning-rate schedule, sampling, and
    log-likelihoods. Unlike scikit-learn's, ``score_samples`` returns log p(v) (an AIS
    estimate), not the pseudo-likelihood (that is :meth:`pseudo_likelihood`).

    Energy, conditionals and free energy, with :math:`W` = ``components_`` (H×D),
    :math:`b` = ``intercept_visible_``, :math:`c` = ``intercept_hidden_``:

    .. math::

        E(v, h) &= -b^\top v - c^\top h - h^\top W v \\
        p(h_j = 1 \mid v) &= \sigma(c_j + W_{j\cdot} v), \qquad
        p(v_i = 1 \mid h) = \sigma(b_i + W_{\cdot i}^\top h) \\
        F(v) &= -\log \sum_h e^{-E(v,h)} = -b^\top v - \sum_j \operatorname{softplus}(c_j +
        W_{j\cdot} v), \qquad \log p(v) = -F(v) - \log Z.

    Training follows the likelihood gradient
    :math:`\partial \log p(v)/\partial W = \langle h v^\top\rangle_{data} -
    \langle h v^\top\rangle_{model}`, the model term from Gibbs chains: restarted at the data
    and run ``cd_k`` steps (CD-k), or persistent across updates (PCD); see
    :mod:`unsup.train.mcmc` for the update with momentum, weight decay and sparsity.

    The default budget is counted in parameter updates (``n_updates``), not epochs, so the
    defaults behave the same on 5,000 or 60,000 rows; ``n_iter`` (epochs, scikit-learn's
    meaning) overrides it when given.

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units H.
    learning_rate : float, default=0.01
        Learning rate ε for the mean gradient over a minibatch (scikit-learn's meaning).
    batch_size : int, default=100
        Rows per minibatch.
    n_iter : int or None, default=None
        Epochs over the training data; None trains for ``n_updates`` updates instead.
    cd_k : int, default=1
        Gibbs steps per update.
    persistent : bool, default=False
        Persistent chains (PCD) instead of chains restarted at the data (CD-k).
    n_updates : int, default=20000
        Parameter updates when ``n_iter`` is None.
    momentum : float, default=0.9
        Momentum μ (0.5 for the first 5% of updates, as in Hinton's guide).
    weight_decay : float, default=1e-3
        L2 penalty λ on the weights.
    lr_schedule : {"linear", "cosine", "constant"}, default="linear"
        Learning rate over the updates: linear decay to 0, cosine decay to 0, or constant.
    n_chains : int or None, default=None
        Persistent chains for PCD (default ``batch_size``).
    sparsity_target : float or None, default=None
        Target mean activation ρ of the hidden units (None: no sparsity penalty).
    sparsity_cost : float, default=0.1
        Strength κ of the sparsity penalty.
    binarize_input : None, float or "stochastic", default=None
        None uses X as given: values in [0, 1] are probabilities (mean-field input to the
        positive phase and to ``transform``, as in scikit-learn's ``BernoulliRBM``, which
        refuses no real values either); likelihoods are defined for binary data, so
        :meth:`score_samples` / :meth:`log_likelihood` binarise non-binary rows at 0.5 and
        the typed result says so (``transform="binarised at 0.5 ..."``). A number
        thresholds ``X > t`` everywhere; "stochastic" draws every minibatch as Bernoulli(X)
        (values in [0, 1]) during fitting and thresholds at 0.5 for likelihoods
        (``transform`` uses the values as given).
    ais_runs : int, default=100
        AIS runs M for log Z.
    ais_betas : int or array-like, default=10000
        Number of AIS inverse temperatures (or the schedule).
    ais_side : {"auto", "visible", "hidden"}, default="auto"
        Which layer AIS samples (the other is summed out): "visible" anneals from the
        base-rate model of the visibles (Salakhutdinov & Murray 2008); "hidden" from
        independent visibles and hiddens at their training marginals, sampling hidden
        states; "auto" takes the larger layer.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool or int, default=False

    Attributes
    ----------
    components_ : ndarray (H, D)
        Weights W.
    intercept_hidden_ : ndarray (H,)
    intercept_visible_ : ndarray (D,)
    h_samples_ : ndarray (n_chains, H)
        Hidden states of the persistent chains (PCD only).
    base_rate_logits_ : ndarray (D,)
        Visible biases of the AIS base-rate model (smoothed training marginals).
    history_ : list of dict
        Reconstruction error on the current minibatch every max(100, n_updates // 50)
        updates and at the end.
    n_updates_ : int
    n_iter_ : float
        Epochs trained.
    likelihood_kind_ : str
        "AIS estimate" or "exact" (when min(D, H) <= 20, log Z is enumerated).
    log_partition_, log_partition_interval_, log_partition_std_ : float, list, float
        log Z and its ±3σ interval, once cached by :meth:`set_log_partition` (measuring
        never stores them).
    n_features_in_ : int

    References
    ----------
    Smolensky (1986); Hinton (2002), Training products of experts by minimizing contrastive
    divergence. Tieleman (2008), Training RBMs using approximations to the likelihood gradient.
    Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief networks.
    Hinton (2010), A practical guide to training restricted Boltzmann machines.
    """

    _test_data = "binary"

    _math_cls = _BernoulliMath
    _stage = "BernoulliRBM"

    _parameter_constraints: dict[str, Any] = {
        "binarize_input": [None, Real, StrOptions({"stochastic"})],
        "ais_side": [StrOptions({"auto", "visible", "hidden"})],
    }
    _test_params: dict[str, Any] = {"n_components": 4, "n_updates": 20, "ais_runs": 10,
                                    "ais_betas": 50, "device": "cpu", "random_state": 0}

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = RBM_STATE_SHAPES

    def __init__(
        self,
        n_components: int = 256,
        *,
        binarize_input: Any = None,
        ais_runs: int = 100,
        ais_betas: Any = 10000,
        ais_side: str = "auto",
        device: str = "auto",
        random_state: Any = None,
        verbose: Any = False,
    ) -> None:
        self.n_components = n_components
        self.binarize_input = binarize_input
        self.ais_runs = ais_runs
        self.ais_betas = ais_betas
        self.ais_side = ais_side
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- data ---------------------------------------------------------------------------------
    def _binarize_mode(self) -> Any:
        return binarize_mode(self.binarize_input)

    def _check_data(self, X: torch.Tensor, fitting: bool, for_likelihood: bool = False
                    ) -> torch.Tensor:
        return binary_input(X, self._binarize_mode(), type(self).__name__,
                            keep_raw=fitting or not for_likelihood)

    def _likelihood_input(self, X: Any) -> tuple[torch.Tensor, str | None]:
        Xt = self._validate(X, reset=False, dtype=torch.float32)
        return likelihood_input(Xt, self._binarize_mode())

    def _prepare(self) -> Any:
        return stochastic_prepare(self._binarize_mode())

    # -- init ---------------------------------------------------------------------------------
    def _init_math(self, X: torch.Tensor, gen: torch.Generator) -> _BernoulliMath:
        D, H = X.shape[1], int(self.n_components)
        p = X.mean(0)  # under binarize_input="stochastic" also the mean of the Bernoulli draws
        # Hinton's guide: visible biases log(p/(1-p)) of the data, small random weights
        self.base_rate_logits_ = self._base_rate(p).cpu().numpy()
        W = 0.01 * torch.randn(H, D, generator=gen, device=gen.device).to(X.device)
        b = self._base_rate(p).to(X.dtype)
        c = torch.zeros(H, dtype=X.dtype, device=X.device)
        return _BernoulliMath(W.to(X.dtype), b, c)

    @staticmethod
    def _base_rate(p: torch.Tensor) -> torch.Tensor:
        p = p.double().clamp(1e-3, 1 - 1e-3)
        return torch.log(p) - torch.log1p(-p)

    # -- inference ----------------------------------------------------------------------------
    def gibbs(self, v: Any) -> np.ndarray:
        """One Gibbs step from ``v`` (scikit-learn's method): returns a sampled v (bool)."""
        Xt = self._input(v)
        dev = Xt.device
        gen = make_gen(self, dev)
        m = self._math(dev)
        h = _bernoulli(m.hidden_mean_of(Xt), gen)
        return m.sample_visible(h, gen).cpu().numpy().astype(bool)

    def pseudo_likelihood(self, X: Any, *, n_flips: int | None = None,
                          random_state: Any = None) -> np.ndarray:
        r"""Log pseudo-likelihood :math:`\sum_i \log p(v_i \mid v_{-i})` per row.

        :math:`\log p(v_i \mid v_{-i}) = -\operatorname{softplus}(F(v) - F(\tilde v^{(i)}))`
        with :math:`\tilde v^{(i)}` equal to v with bit i flipped.

        Parameters
        ----------
        n_flips : int or None, default=None
            None sums over every bit exactly (D free energies per row, chunked); an integer
            m estimates the sum as D times the mean over m random bits per row (m=1 is
            scikit-learn's ``score_samples``).
        random_state : optional
            Seed for the random bits.

        Like every likelihood here it is defined for binary rows: non-binary X is binarised
        at 0.5 (or at the ``binarize_input`` threshold) first.
        """
        Xt, _ = self._likelihood_input(X)
        m = self._math(Xt.device)
        N, D = Xt.shape
        pre = m.hidden_input(Xt)  # (N, H)
        f0 = -(Xt @ m.b) - F.softplus(pre).sum(1)
        sign = 1.0 - 2.0 * Xt  # +1 where bit is 0 (flip to 1), -1 where 1
        out = torch.empty(N, dtype=torch.float64)
        if n_flips is None:
            H = m.W.shape[0]
            rows = max(1, (2**23) // max(1, D * H))
            for s in range(0, N, rows):
                sl = slice(s, min(N, s + rows))
                # pre of the flipped vectors: pre + sign_i * W[:, i]   -> (n, D, H)
                pf = pre[sl].unsqueeze(1) + sign[sl].unsqueeze(2) * m.W.T.unsqueeze(0)
                f_flip = -((Xt[sl] @ m.b).unsqueeze(1) + sign[sl] * m.b) - F.softplus(pf).sum(2)
                out[sl] = (-F.softplus(f0[sl].unsqueeze(1) - f_flip)).sum(1).double().cpu()
            return out.numpy()
        k = check_int("n_flips", n_flips, 1)
        gen = make_gen(self, Xt.device, random_state)
        idx = torch.randint(D, (N, k), generator=gen, device=gen.device).to(Xt.device)
        s = torch.gather(sign, 1, idx)  # (N, k)
        Wc = m.W.T[idx]  # (N, k, H)
        pf = pre.unsqueeze(1) + s.unsqueeze(2) * Wc
        f_flip = -((Xt @ m.b).unsqueeze(1) + s * m.b[idx]) - F.softplus(pf).sum(2)
        pl = -F.softplus(f0.unsqueeze(1) - f_flip)
        return (D * pl.mean(1)).double().cpu().numpy()

    # -- likelihood ---------------------------------------------------------------------------
    def _after_fit(self, X: torch.Tensor) -> None:
        super()._after_fit(X)
        # up to 1,000 distinct binary training states (bit-packed) for the certain lower
        # bound on log Z that every AIS estimate is checked against, and the hidden marginals
        # on the same rows: the hidden side of the AIS base model (only roughly right needed)
        S = self._check_data(X[spaced_rows(X.shape[0]).to(X.device)], fitting=False,
                             for_likelihood=True)
        self.check_states_ = pack_states(S)
        q = self._math(X.device).hidden_mean_of(S).double()
        self.hidden_base_rate_logits_ = self._base_rate(q.mean(0)).cpu().numpy()

    def log_partition_floor(self) -> float | None:
        r"""A certain lower bound on log Z: :math:`\log \sum_{v \in S} e^{-F(v)}` over the
        distinct binary training states S kept at fit (``check_states_``). None when the model
        keeps no states."""
        self._check_fitted()
        dev = self._device()
        return states_floor(getattr(self, "check_states_", None), self._math(dev).free_energy,
                            int(self.components_.shape[1]), dev)

    def estimate_log_partition_reverse(self, n_runs: int | None = None, n_betas: Any = None,
                                       burn_in: int = 5000, random_state: Any = None,
                                       X: Any = None) -> LogPartition:
        """Reverse AIS (the upper side of the sandwich; ``unsup.train.ais``).

        ``n_runs`` Gibbs chains start at rows of ``X`` (default: the training states stored
        at fit, ``check_states_``), run
        ``burn_in`` full sweeps at :math:`\\beta = 1` as stand-ins for exact model samples,
        then anneal down to the base model along the reversed schedule, on the same side as
        :meth:`estimate_log_partition` (``ais_side``). The estimate is too high in expectation
        given exact samples, and too low when the chains miss part of the model's mass;
        forward and reverse agreeing is the evidence that both converged. Returns a
        :class:`~unsup.train.ais.LogPartition` with ``method="reverse AIS"`` and never changes
        the model; :meth:`set_log_partition` caches it as ``log_partition_reverse_`` and
        ``log_partition_reverse_interval_`` (never used for likelihoods).
        """
        self._check_fitted()
        runs = check_int("ais_runs", self.ais_runs if n_runs is None else n_runs, 2)
        burn_in = check_int("burn_in", burn_in, 0)
        betas = self.ais_betas if n_betas is None else n_betas
        dev = self._device()
        gen = make_gen(self, dev, random_state)
        m = self._math(dev)
        v = start_rows(None if X is None else self._likelihood_input(X)[0],
                       getattr(self, "check_states_", None), int(self.components_.shape[1]),
                       runs, gen, dev, m.W.dtype)
        for _ in range(burn_in):
            v = m.sample_visible(_bernoulli(m.hidden_mean_of(v), gen), gen, v)
        init, step = self._ais_callbacks(m, gen)
        log_z_base = init(2)[1]
        if self._ais_side() == "hidden":
            v = _bernoulli(m.hidden_mean_of(v), gen)
        return run_reverse_ais(self, step, v, log_z_base, betas)

    def _exact_possible(self) -> bool:
        return min(self.components_.shape) <= 20

    def _exact_log_partition(self) -> float | None:
        if self._exact_possible():
            return rbm_log_partition_exact(self.components_.T, self.intercept_visible_,
                                           self.intercept_hidden_)
        return None

    def log_partition_exact(self, max_units: int = 25) -> float:
        """Exact log Z by enumerating the smaller layer (at most ``2**max_units`` states)."""
        self._check_fitted()
        return rbm_log_partition_exact(self.components_.T, self.intercept_visible_,
                                       self.intercept_hidden_, max_units=max_units)

    def _ais_side(self) -> str:
        side = self.ais_side
        if side not in ("auto", "visible", "hidden"):  # also checked in fit
            raise ValueError(f"ais_side must be 'auto', 'visible' or 'hidden', got {side!r}")
        has_h = getattr(self, "hidden_base_rate_logits_", None) is not None
        if side == "hidden" and not has_h:
            raise ValueError("ais_side='hidden' needs hidden_base_rate_logits_ (set by fit)")
        if side == "auto":
            H, D = self.components_.shape
            side = "hidden" if (H > D and has_h) else "visible"
        return side

    def _ais_callbacks(self, m: _RBMMath, gen: torch.Generator) -> tuple[Any, Any]:
        a = _to_t(self.base_rate_logits_, m.W.device, m.W.dtype)
        if self._ais_side() == "hidden":
            a_h = _to_t(self.hidden_base_rate_logits_, m.W.device, m.W.dtype)
            return m.ais_callbacks_hidden(a, a_h, gen)  # type: ignore[attr-defined]
        return m.ais_callbacks(a, gen)  # type: ignore[attr-defined]

    def _init_visible(self, m: _RBMMath, n: int, gen: torch.Generator) -> torch.Tensor:
        a = _to_t(self.base_rate_logits_, m.W.device, m.W.dtype)
        return _bernoulli(torch.sigmoid(a).expand(n, -1).contiguous(), gen)


def make_gen(est: Any, dev: torch.device, random_state: Any = None) -> torch.Generator:
    from unsup.base import make_generator

    return make_generator(est.random_state if random_state is None else random_state, dev)

