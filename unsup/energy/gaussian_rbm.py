r"""RBM with Gaussian visible units (real-valued data) and binary hidden units."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unsup._io_checks import A
from unsup.energy._rbm import RBM_STATE_SHAPES, State, _BaseRBM, _bernoulli, _RBMMath, _to_t
from unsup.likelihood import Likelihood
from unsup.params import Interval, Real, StrOptions
from unsup.registry import register_model
from unsup.train.ais import binary_states

__all__ = ["GaussianBernoulliRBM"]


class _GaussMath(_RBMMath):
    r""":math:`E = \sum_i \frac{(v_i-b_i)^2}{2\sigma_i^2} - c^\top h
    - \sum_{ij} \frac{v_i}{\sigma_i^2} W_{ji} h_j`, with :math:`z = \log\sigma^2`."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, z: torch.Tensor,
                 learn_sigma: bool) -> None:
        super().__init__(W, b, c)
        self.z, self.learn_sigma = z, learn_sigma

    def parameters(self) -> dict[str, torch.Tensor]:
        p = super().parameters()
        if self.learn_sigma:
            p["z"] = self.z
        return p

    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.c, v * torch.exp(-self.z), self.W.T)

    def visible_mean(self, h: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        return torch.addmm(self.b, h, self.W)

    def sample_visible(self, h: torch.Tensor, gen: torch.Generator,
                       like: torch.Tensor | None = None) -> torch.Tensor:
        mu = self.visible_mean(h)
        eps = torch.randn(mu.shape, generator=gen, device=gen.device, dtype=mu.dtype)
        return mu + eps.to(mu.device) * torch.exp(0.5 * self.z)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        quad = (((v - self.b) ** 2) * torch.exp(-self.z)).sum(1) / 2
        return quad - F.softplus(self.hidden_input(v)).sum(1)

    def stats(self, rows: State, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        v, h = rows
        inv = torch.exp(-self.z)
        hw = h * weights.unsqueeze(1)
        out = {"W": hw.T @ (v * inv), "b": weights @ ((v - self.b) * inv), "c": hw.sum(0)}
        if self.learn_sigma:
            g = ((v - self.b) ** 2 / 2 - v * (h @ self.W)) * inv
            out["z"] = weights @ g
        return out

    def sparsity_grads(self, pos: State, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        vbar = (pos[0] * torch.exp(-self.z)).mean(0)
        return {"c": delta, "W": delta.unsqueeze(1) * vbar.unsqueeze(0)}


@register_model('gaussian-rbm', family='energy', aliases=('gbrbm',),
                summary='RBM with Gaussian visible units for real-valued data')
class GaussianBernoulliRBM(_BaseRBM):
    r"""RBM for real-valued data: Gaussian visible units, binary hidden units.

    .. math::

        E(v, h) &= \sum_i \frac{(v_i - b_i)^2}{2\sigma_i^2} - c^\top h
                  - \sum_{i,j} \frac{v_i}{\sigma_i^2} W_{ji} h_j \\
        p(h_j = 1 \mid v) &= \sigma\big(c_j + \textstyle\sum_i W_{ji} v_i / \sigma_i^2\big),
        \qquad p(v_i \mid h) = \mathcal N\big(b_i + \textstyle\sum_j W_{ji} h_j,\ \sigma_i^2\big)

    (the parametrisation of Cho, Ilin & Raiko 2011, whose gradient for
    :math:`z_i = \log\sigma_i^2` is well behaved). Stable defaults: the data are standardised
    per feature (``standardize=True``; ``mean_`` and ``scale_`` are kept and applied to every
    input), σ is fixed to 1 (``sigma=1.0``; ``sigma="learn"`` learns one log-variance per
    feature), and the learning rate is small. Learning uses the shared CD-k / PCD engine.

    The log-likelihood (density of the *original* data, Jacobian of the standardisation
    included) is exact when ``n_components <= 20``: integrating v out,
    :math:`\log Z = \operatorname{logsumexp}_h\big[c^\top h + \sum_i \frac{(b_i + (W^\top h)_i)^2
    - b_i^2}{2\sigma_i^2}\big] + \sum_i \tfrac12\log(2\pi\sigma_i^2)`; otherwise it is an AIS
    estimate from the base model :math:`\mathcal N(b, \sigma^2)` (same visible term, hidden
    input annealed by β).

    Parameters
    ----------
    n_components : int, default=64
    learning_rate : float, default=0.005
    batch_size : int, default=100
    n_iter : int or None, default=None
    cd_k : int, default=1
    persistent : bool, default=False
    n_updates : int, default=10000
    momentum : float, default=0.9
    weight_decay : float, default=1e-4
    lr_schedule : {"linear", "cosine", "constant"}, default="linear"
    n_chains : int or None, default=None
    sparsity_target : float or None, default=None
    sparsity_cost : float, default=0.1
    sigma : float or "learn", default=1.0
        Fixed standard deviation of every visible unit (in standardised units), or "learn".
    standardize : bool, default=True
    ais_runs : int, default=100
    ais_betas : int or array-like, default=10000
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    components_ : ndarray (H, D)
    intercept_hidden_, intercept_visible_ : ndarray
    log_var_ : ndarray (D,)
        :math:`\log \sigma_i^2`.
    mean_, scale_ : ndarray (D,)
        Standardisation (zeros and ones when ``standardize=False``).
    likelihood_kind_ : str

    References
    ----------
    Hinton & Salakhutdinov (2006), Reducing the dimensionality of data with neural networks.
    Cho, Ilin & Raiko (2011), Improved learning of Gaussian-Bernoulli RBMs. ICANN.
    """

    _stage = "GaussianBernoulliRBM"

    _parameter_constraints: dict[str, Any] = {
        "sigma": [Interval(Real, 0, None, closed="neither"), StrOptions({"learn"})],
        "standardize": ["boolean"],
    }
    _test_params: dict[str, Any] = {"n_components": 4, "n_updates": 20, "ais_runs": 10,
                                    "ais_betas": 50, "device": "cpu", "random_state": 0}
    _likelihood_support = "continuous"

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {**RBM_STATE_SHAPES, "log_var_": A("f32", "n_features_in_"),
                     "mean_": A("f32", "n_features_in_"), "scale_": A("f32", "n_features_in_")}

    def __init__(self, n_components: int = 64, *, learning_rate: float = 0.005,
                 n_updates: int = 10000, weight_decay: float = 1e-4, sigma: Any = 1.0,
                 standardize: bool = True, ais_runs: int = 100, ais_betas: Any = 10000,
                 device: str = "auto", random_state: Any = None, verbose: Any = False) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.n_updates = n_updates
        self.weight_decay = weight_decay
        self.sigma = sigma
        self.standardize = standardize
        self.ais_runs = ais_runs
        self.ais_betas = ais_betas
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _learn_sigma(self) -> bool:
        if self.sigma == "learn":
            return True
        if isinstance(self.sigma, (int, float)) and not isinstance(self.sigma, bool) \
                and self.sigma > 0 and math.isfinite(self.sigma):
            return False
        raise ValueError(f"sigma must be a positive number or 'learn', got {self.sigma!r}")

    def _check_data(self, X: torch.Tensor, fitting: bool) -> torch.Tensor:
        if fitting:
            if self.standardize:
                mean, scale = X.mean(0), X.std(0)
                scale = torch.where(scale > 1e-8, scale, torch.ones_like(scale))
            else:
                mean, scale = torch.zeros_like(X[0]), torch.ones_like(X[0])
            self.mean_, self.scale_ = mean.cpu().numpy(), scale.cpu().numpy()
        return (X - _to_t(self.mean_, X.device)) / _to_t(self.scale_, X.device)

    def _init_math(self, X: torch.Tensor, gen: torch.Generator) -> _GaussMath:
        learn = self._learn_sigma()
        D, H = X.shape[1], int(self.n_components)
        s = 1.0 if learn else float(self.sigma)
        z = torch.full((D,), 2 * math.log(s), dtype=X.dtype, device=X.device)
        W = (0.01 * torch.randn(H, D, generator=gen, device=gen.device)).to(X)
        return _GaussMath(W, X.mean(0).clone(), torch.zeros(H, dtype=X.dtype, device=X.device),
                          z, learn)

    def _store(self, m: _RBMMath) -> None:
        super()._store(m)
        self.log_var_ = m.z.detach().cpu().numpy()  # type: ignore[attr-defined]

    def _math(self, device: torch.device) -> _GaussMath:
        return _GaussMath(_to_t(self.components_, device), _to_t(self.intercept_visible_, device),
                          _to_t(self.intercept_hidden_, device), _to_t(self.log_var_, device),
                          False)

    def _exact_possible(self) -> bool:
        return self.components_.shape[0] <= 20

    def _exact_log_partition(self) -> float | None:
        if not self._exact_possible():
            return None
        W = torch.as_tensor(self.components_, dtype=torch.float64)
        b = torch.as_tensor(self.intercept_visible_, dtype=torch.float64)
        c = torch.as_tensor(self.intercept_hidden_, dtype=torch.float64)
        z = torch.as_tensor(self.log_var_, dtype=torch.float64)
        hs = binary_states(W.shape[0])
        mu = hs @ W + b
        vals = hs @ c + (((mu ** 2) - b ** 2) * torch.exp(-z) / 2).sum(1)
        return float(torch.logsumexp(vals, 0) + 0.5 * (math.log(2 * math.pi) + z).sum())

    def _ais_callbacks(self, m: _RBMMath, gen: torch.Generator) -> tuple[Any, Any]:
        D, H = m.W.shape[1], m.W.shape[0]
        z = m.z  # type: ignore[attr-defined]

        def init(n: int) -> tuple[torch.Tensor, float]:
            eps = torch.randn((n, D), generator=gen, device=gen.device).to(m.W)
            log_za = 0.5 * float((math.log(2 * math.pi) + z.double()).sum()) + H * math.log(2)
            return m.b + eps * torch.exp(0.5 * z), log_za

        def step(v: torch.Tensor, b0: float, b1: float, last: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
            pre = m.hidden_input(v)
            pd = pre.double()
            d = (F.softplus(b1 * pd) - F.softplus(b0 * pd)).sum(1)
            if last:
                return d, v
            h = _bernoulli(torch.sigmoid(b1 * pre), gen)
            eps = torch.randn(v.shape, generator=gen, device=gen.device).to(v)
            return d, m.b + b1 * (h @ m.W) + eps * torch.exp(0.5 * z)

        return init, step

    def _init_visible(self, m: _RBMMath, n: int, gen: torch.Generator) -> torch.Tensor:
        eps = torch.randn((n, m.W.shape[1]), generator=gen, device=gen.device).to(m.W)
        return m.b + eps

    def score_samples(self, X: Any) -> np.ndarray:
        """log density of the original (unstandardised) rows, nats; see the class notes."""
        return super().score_samples(X) - float(np.log(self.scale_).sum())

    def log_likelihood(self, X: Any) -> Likelihood:
        """Typed log density of the original rows (support "continuous"; see the class
        notes): exact for ``n_components <= 20``, else a forward-AIS estimate."""
        return super().log_likelihood(X).shifted(-float(np.log(self.scale_).sum()))

    def sample(self, n_samples: int = 1, **kw: Any) -> np.ndarray:
        """Gibbs samples (see :meth:`BernoulliRBM.sample`), in the original data units."""
        S = super().sample(n_samples, **kw)
        return S * self.scale_ + self.mean_

    def transform(self, X: Any) -> np.ndarray:
        """Hidden probabilities :math:`p(h_j = 1 \\mid v)`."""
        return super().transform(X)
