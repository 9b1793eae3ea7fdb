r"""Dirichlet-process mixture of Gaussians by truncated variational inference (stick-breaking).

The model is :class:`~unsup.cluster.DirichletProcessMixture`'s (diagonal Gaussians, conjugate
Normal-Gamma prior per dimension, DP(α) weights), written with the stick-breaking construction
(Sethuraman 1994) and truncated at T components:

.. math:: v_k \sim \mathrm{Beta}(1, \alpha),\quad \pi_k = v_k \prod_{j<k} (1 - v_j),
          \quad v_T = 1 .

Blei & Jordan (2006) fit the factorised posterior
:math:`q = \prod_{k<T} \mathrm{Beta}(v_k \mid \gamma_{k1}, \gamma_{k2})
\prod_k \mathrm{NG}(\mu_k, \tau_k \mid m_k, \kappa_k, a_k, b_k) \prod_i \mathrm{Cat}(z_i \mid
\phi_i)` by coordinate ascent on the evidence lower bound

.. math:: \mathcal L = \sum_i \log \sum_k \exp\big(\mathbb E[\ln \pi_k]
          + \mathbb E[\ln \mathcal N(x_i \mid \mu_k, \tau_k^{-1})]\big)
          - \sum_{k<T} \mathrm{KL}(q(v_k) \,\|\, p(v_k))
          - \sum_k \mathrm{KL}(q(\mu_k, \tau_k) \,\|\, p(\mu_k, \tau_k)),

where the first sum is the bound at the optimal :math:`\phi` (the E-step:
:math:`\phi_{ik} \propto \exp(\cdot)`), with
:math:`\mathbb E[\ln \pi_k] = \psi(\gamma_{k1}) - \psi(\gamma_{k1} + \gamma_{k2}) +
\sum_{j<k} [\psi(\gamma_{j2}) - \psi(\gamma_{j1} + \gamma_{j2})]` and, per dimension,
:math:`\mathbb E[\ln \mathcal N] = \tfrac12(\psi(a_k) - \ln b_{kd} - \ln 2\pi)
- \tfrac12 (a_k / b_{kd}) (x_d - m_{kd})^2 - 1/(2\kappa_k)`. The M-step, from the statistics
:math:`N_k = \sum_i \phi_{ik}`, :math:`S_k = \sum_i \phi_{ik} x_i`, :math:`Q_k = \sum_i
\phi_{ik} x_i^2`: :math:`\gamma_{k1} = 1 + N_k`, :math:`\gamma_{k2} = \alpha + \sum_{j>k} N_j`,
and the conjugate Normal-Gamma update with weighted counts (:math:`\kappa_k = \kappa_0 + N_k`,
:math:`m_k = (\kappa_0 m_0 + S_k)/\kappa_k`, :math:`a_k = a_0 + N_k/2`,
:math:`b_k = b_0 + \tfrac12 (Q_k + \kappa_0 m_0^2 - \kappa_k m_k^2)`). Each step maximises
:math:`\mathcal L` over its factor, so :math:`\mathcal L` never decreases: the fit runs on the EM
engine (:mod:`unsup.train.em`; chunked, restarts, checkpoints, ``torchrun``), its objective
being :math:`\mathcal L` per sample.

Where the Gibbs sampler of :class:`~unsup.cluster.DirichletProcessMixture` draws partitions,
this fits one deterministic approximation: fast (GEMM-shaped, any device), but mode-seeking and
dependent on its start. The number of clusters is read from q: ``k_posterior_`` is the
distribution of the number of occupied components when z is drawn from q(z)
(``n_k_draws`` draws), and the fitted clusters are the components that are the most probable
one of at least one training point. Predictions use the posterior predictive of q (a Student-t
per component, with weights E_q[π_k]; the mass of the unused components acts as the
new-cluster term, whose predictive is the prior's).

References: Blei & Jordan (2006), "Variational inference for Dirichlet process mixtures",
Bayesian Analysis 1(1); Bishop (2006), PRML §10.2 (the variational Gaussian mixture).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.special import betaln, digamma, gammaln
from sklearn.utils import check_random_state

from unsup import distributed as ud
from unsup._io_checks import A
from unsup.base import make_generator
from unsup.cluster.dp_mixture import DirichletProcessMixture
from unsup.cluster.kmeans import KMeans
from unsup.data.validation import check_min_samples
from unsup.params import Integral, Interval, Real, StrOptions
from unsup.registry import register_model
from unsup.train.em import EMEngine, global_count

__all__ = ["VariationalDPMixture"]

_LOG_2PI = math.log(2 * math.pi)


def _beta_kl(a: np.ndarray, b: np.ndarray, c: float, d: float) -> float:
    """Σ KL(Beta(a, b) ‖ Beta(c, d))."""
    return float(np.sum(betaln(c, d) - betaln(a, b) + (a - c) * digamma(a)
                        + (b - d) * digamma(b) + (c - a + d - b) * digamma(a + b)))


def _normal_gamma_kl(m, kappa, a, b, m0, kappa0, a0, b0) -> float:  # noqa: ANN001
    """Σ over components and dimensions of KL(NG(m, κ, a, b) ‖ NG(m₀, κ₀, a₀, b₀)) (rates)."""
    a = a[:, None]
    gamma_kl = ((a - a0) * digamma(a) - gammaln(a) + gammaln(a0) + a0 * (np.log(b) - np.log(b0))
                + a * (b0 - b) / b)
    r = kappa0 / kappa[:, None]
    normal_kl = 0.5 * (r - 1 - np.log(r) + kappa0 * (a / b) * (m - m0) ** 2)
    return float(np.sum(gamma_kl + normal_kl))


@register_model("dp-mixture-vi", family="cluster", aliases=("dpmm-vi",),
                summary="Dirichlet-process Gaussian mixture by truncated variational inference "
                        "(discovers K)")
class VariationalDPMixture(EMEngine, DirichletProcessMixture):
    """Dirichlet-process mixture of diagonal Gaussians, by truncated stick-breaking VI.

    See the module docstring for the bound and the updates. Same model, prior and predictive
    as :class:`~unsup.cluster.DirichletProcessMixture`; parameters as scikit-learn's
    ``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")`` where
    they mean the same thing.

    Parameters
    ----------
    n_components : int, default=20
        Truncation level T: the most clusters the approximation can use.
    alpha : float, default=1.0
        Concentration of the Dirichlet process.
    max_iter : int, default=200
        Coordinate-ascent iterations per run.
    tol : float, default=1e-4
        Stop when the bound per sample changes by less than this.
    n_init : int, default=1
        Restarts; the run with the highest bound is kept.
    init : {"kmeans", "random"}, default="kmeans"
        Initial responsibilities: one-hot from k-means with T clusters, or random.
    mean_precision_prior, degrees_of_freedom_prior : as for
        :class:`~unsup.cluster.DirichletProcessMixture`.
    variance_prior : float or None, default=None
        Prior mean of a cluster's per-dimension variance; ``None``: the data's variance per
        dimension (broader than the Gibbs sampler's tenth: with a narrow prior the
        approximation keeps spare components of its k-means start as split clusters).
    n_k_draws : int, default=200
        Draws of z from q(z) for ``k_posterior_``.
    device, random_state, verbose : as for :class:`~unsup.cluster.KMeans`.

    Attributes
    ----------
    labels_ : (N,) most probable component of each training point, relabelled 0..K-1.
    n_clusters_ : number of those components.
    means_, variances_ : (K, D) posterior means of each cluster's mean and variance.
    weights_ : (K,) E_q[π_k]; ``new_cluster_weight_`` is 1 − their sum.
    k_posterior_ : probability of each number of occupied components (index = K) under q(z).
    lower_bound_ : the bound per sample at the end; ``history_`` per iteration (with the
        number of components holding at least one point's worth of responsibility).
    n_iter_, converged_ : iterations of the kept run and whether it converged.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"kmeans", "random"})],
        "mean_precision_prior": [Interval(Real, 0, None, closed="neither")],
        "variance_prior": [Interval(Real, 0, None, closed="neither"), None],
        "degrees_of_freedom_prior": [Interval(Real, 1, None, closed="neither")],
        "n_k_draws": [Interval(Integral, 1, None, closed="left")],
    }
    _test_params = {"n_components": 4, "max_iter": 20}
    _state_shapes = {"labels_": A("i64", "n"), "means_": A("f64", "k", "n_features_in_"),
                     "variances_": A("f64", "k", "n_features_in_"), "weights_": A("f64", "k"),
                     "k_posterior_": A("f64", "m"),
                     "prior_mean_": A("f64", "n_features_in_"),
                     "prior_rate_": A("f64", "n_features_in_"),
                     "cluster_counts_": A("f64", "k"),
                     "cluster_sums_": A("f64", "k", "n_features_in_"),
                     "cluster_sumsq_": A("f64", "k", "n_features_in_")}
    _em_objective_name = "elbo"

    def __init__(self, n_components: int = 20, *, alpha: float = 1.0, max_iter: int = 200,
                 tol: float = 1e-4, n_init: int = 1, init: str = "kmeans",
                 mean_precision_prior: float = 0.01, variance_prior: float | None = None,
                 degrees_of_freedom_prior: float = 2.0, n_k_draws: int = 200,
                 device: str = "auto", random_state: Any = None, verbose: bool = False) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.init = init
        self.mean_precision_prior = mean_precision_prior
        self.variance_prior = variance_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.n_k_draws = n_k_draws
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- the EM engine's hooks ---------------------------------------------------------------
    def _em_row_width(self, params: dict[str, torch.Tensor]) -> int:
        return 4 * params["m"].shape[0]

    def _em_initialize(self, X: torch.Tensor, gen: torch.Generator, n_runs: int
                       ) -> dict[str, torch.Tensor]:
        T, D = int(self.n_components), X.shape[1] // 2
        N = X.shape[0]
        if self.init == "kmeans":
            km = KMeans(T, n_init=1, random_state=self._rs, device=str(X.device))
            lab = torch.as_tensor(km.fit(X[:, :D].float().contiguous()).labels_, device=X.device)
            resp = torch.zeros(N, T, dtype=X.dtype, device=X.device)
            resp[torch.arange(N, device=X.device), lab] = 1.0
        else:
            resp = torch.rand(N, T, generator=gen, dtype=torch.float64).to(X.device, X.dtype)
            resp /= resp.sum(1, keepdim=True)
        stats = {"nk": resp.sum(0), "sxq": resp.T @ X}
        ud.all_reduce_sum(*stats.values())
        # the stick-breaking prior favours early sticks: start with the largest first
        order = torch.argsort(stats["nk"], descending=True, stable=True)
        return self._em_m_step({k: v[order] for k, v in stats.items()}, None, X)

    def _em_m_step(self, stats: dict[str, torch.Tensor], params: Any, X: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        nk, sxq = stats["nk"], stats["sxq"]
        D = sxq.shape[1] // 2
        sx, sq = sxq[:, :D], sxq[:, D:]
        k0, a0 = float(self.mean_precision_prior), float(self.degrees_of_freedom_prior)
        m0, b0 = self._m0, self._b0
        kappa = k0 + nk
        m = (k0 * m0 + sx) / kappa[:, None]
        a = a0 + nk / 2
        b = b0 + 0.5 * (sq + k0 * m0**2 - kappa[:, None] * m**2)
        b = torch.maximum(b, b0.expand_as(b))  # ≥ b₀ in exact arithmetic (rounding only)
        tail = torch.flip(torch.cumsum(torch.flip(nk, [0]), 0), [0])  # Σ_{j≥k} N_j
        g1 = 1.0 + nk[:-1]
        g2 = float(self.alpha) + tail[1:]
        return {"m": m, "kappa": kappa, "a": a, "b": b, "g1": g1, "g2": g2}

    def _terms(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """E-step constants: log-weights = [X, X²] @ W + bias (T columns)."""
        if "W" not in p:
            m, kappa, a, b, g1, g2 = (p[k] for k in ("m", "kappa", "a", "b", "g1", "g2"))
            dg = torch.special.digamma
            e_ln_v = dg(g1) - dg(g1 + g2)
            e_ln_1mv = dg(g2) - dg(g1 + g2)
            e_ln_pi = torch.cat([e_ln_v, e_ln_v.new_zeros(1)])
            e_ln_pi[1:] += torch.cumsum(e_ln_1mv, 0)
            prec = a[:, None] / b
            D = m.shape[1]
            bias = (e_ln_pi + 0.5 * (D * dg(a) - torch.log(b).sum(1) - D * _LOG_2PI)
                    - 0.5 * (prec * m**2).sum(1) - 0.5 * D / kappa)
            p["W"] = torch.cat([prec * m, -0.5 * prec], 1).T.contiguous()  # 2D × T
            p["bias"] = bias
        return p

    def _global_kl(self, p: dict[str, torch.Tensor]) -> float:
        n = {k: p[k].cpu().numpy() for k in ("m", "kappa", "a", "b", "g1", "g2")}
        return (_beta_kl(n["g1"], n["g2"], 1.0, float(self.alpha))
                + _normal_gamma_kl(n["m"], n["kappa"], n["a"], n["b"], self._m0.cpu().numpy(),
                                   float(self.mean_precision_prior),
                                   float(self.degrees_of_freedom_prior),
                                   self._b0.cpu().numpy()))

    def _em_e_step(self, X: torch.Tensor, params: dict[str, torch.Tensor], rows: slice
                   ) -> dict[str, torch.Tensor]:
        t = self._terms(params)
        if "kl" not in params:
            params["kl"] = torch.tensor(self._global_kl(params), dtype=torch.float64)
        logw = torch.addmm(t["bias"].unsqueeze(1), t["W"].T, X.T)  # T × n
        log_norm = torch.logsumexp(logw, 0)
        resp = torch.exp(logw - log_norm)
        n = X.shape[0]
        # the global KL is shared out over rows, so that the chunks' sum is the whole bound
        obj = log_norm.sum(dtype=torch.float64) - params["kl"] * (n / self._n_total)
        return {"nk": resp.sum(1), "sxq": resp @ X, "objective": obj.reshape(1)}

    def _em_history(self, stats: dict[str, torch.Tensor], n_total: int, j: int
                    ) -> dict[str, float]:
        return {"n_clusters": int((stats["nk"] >= 1.0).sum())}

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> VariationalDPMixture:
        """Fit q to ``X`` (N×D) by coordinate ascent. Returns ``self``."""
        self._validate_params()
        X = self._validate(X, reset=True).to(torch.float64)
        N = global_count(X.shape[0], X.device)
        check_min_samples(N, 1, "samples")
        mom = torch.stack([X.sum(0), (X * X).sum(0)])
        ud.all_reduce_sum(mom)
        mean = mom[0] / N
        var = (mom[1] / N - mean**2).clamp(min=0).cpu().numpy() if N > 1 else np.ones(X.shape[1])
        var = np.where(var > 0, var, 1.0)
        a0 = float(self.degrees_of_freedom_prior)
        # None: the data's variance (scikit-learn's covariance prior). The Gibbs sampler's
        # tenth over-split here: VI cannot merge the spare components of its k-means start
        # under a narrow prior (BENCHMARKS.md, "DP mixture by VI")
        prior_var = var if self.variance_prior is None else np.full(X.shape[1],
                                                                    self.variance_prior)
        self.prior_mean_ = mean.cpu().numpy()
        self.prior_rate_ = prior_var * (a0 - 1)  # E[σ²] = b₀ / (a₀ − 1)
        Xc = X - mean  # centred: the prior mean is 0 in these coordinates
        Xq = torch.cat([Xc, Xc * Xc], 1)
        self._m0 = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
        self._b0 = torch.as_tensor(self.prior_rate_, device=X.device)
        self._n_total = float(N)
        self._rs = check_random_state(self.random_state)
        gen = make_generator(self._rs, torch.device("cpu"))
        try:
            res = self._em_fit(Xq, n_init=int(self.n_init), max_iter=int(self.max_iter),
                               tol=float(self.tol), generator=gen, stage="DP-VI",
                               verbose=self.verbose)
            self._store(Xq, res.params, mean, gen)
        finally:
            for a in ("_m0", "_b0", "_n_total", "_rs"):
                self.__dict__.pop(a, None)
        self.n_iter_, self.converged_ = int(res.n_iter), bool(res.converged)
        self.lower_bound_, self.history_ = float(res.objective), res.history
        return self

    def _store(self, Xq: torch.Tensor, p: dict[str, torch.Tensor], mean: torch.Tensor,
               gen: torch.Generator) -> None:
        t = self._terms(p)
        T = p["m"].shape[0]
        logw = torch.addmm(t["bias"].unsqueeze(1), t["W"].T, Xq.T).T  # n × T
        resp = torch.softmax(logw, 1)
        hard = resp.argmax(1)
        # components occupied under q(z), by draws of every z_i
        draws = torch.multinomial(resp.cpu().float(), int(self.n_k_draws), replacement=True,
                                  generator=gen)  # n × S
        S = draws.shape[1]
        occ = torch.zeros(S, T, dtype=torch.int64)
        occ.scatter_add_(1, draws.T.contiguous(), torch.ones_like(draws.T))
        ks = (occ > 0).sum(1)
        self.k_posterior_ = (torch.bincount(ks, minlength=int(ks.max()) + 1).double()
                             / S).numpy()
        chosen = torch.bincount(hard, minlength=T).double()
        ud.all_reduce_sum(chosen)  # the same components on every rank
        used = torch.nonzero(chosen > 0).flatten()
        relabel = torch.full((T,), -1, dtype=torch.int64, device=hard.device)
        relabel[used] = torch.arange(len(used), device=hard.device)
        self.labels_ = relabel[hard].cpu().numpy()
        D = Xq.shape[1] // 2
        nk, sxq = resp.sum(0), resp.T @ Xq
        ud.all_reduce_sum(nk, sxq)
        nk, sx, sq = nk[used], sxq[used, :D], sxq[used, D:]
        # back to the data's coordinates: Σφ(x + c) and Σφ(x + c)²
        self.cluster_counts_ = nk.cpu().numpy()
        self.cluster_sums_ = (sx + nk[:, None] * mean).cpu().numpy()
        self.cluster_sumsq_ = (sq + 2 * mean * sx + nk[:, None] * mean**2).cpu().numpy()
        self._summarise(int(self._n_total))
        g1, g2 = p["g1"].cpu().numpy(), p["g2"].cpu().numpy()
        ev = g1 / (g1 + g2)
        e_pi = np.append(ev, 1.0) * np.concatenate([[1.0], np.cumprod(1 - ev)])
        self.weights_ = e_pi[used.cpu().numpy()]

    def _log_weights(self) -> np.ndarray:
        w = np.append(self.weights_, max(0.0, 1.0 - float(np.sum(self.weights_))))
        with np.errstate(divide="ignore"):
            return np.log(w / w.sum())

    @property
    def new_cluster_weight_(self) -> float:
        """Mass E_q[π] of the components no training point chose."""
        return float(max(0.0, 1.0 - np.sum(self.weights_)))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "weights_")
