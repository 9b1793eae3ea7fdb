r"""Dirichlet-process mixture of Gaussians by collapsed Gibbs sampling (the Chinese restaurant
process): clustering that discovers K.

Model (diagonal Gaussians with a conjugate Normal-Gamma prior per dimension d)::

    G ~ DP(α, H),   (μ_k, τ_k) ~ H:  τ_kd ~ Gamma(a₀, b₀d),  μ_kd | τ_kd ~ N(m₀d, 1/(κ₀ τ_kd))
    x_i | z_i = k ~ N(μ_k, diag(1/τ_k))

Integrating out G gives the Chinese restaurant process over partitions and integrating out
(μ, τ) gives each cluster's marginal likelihood in closed form. With ``n`` points of mean x̄ and
scatter S_d = Σ(x_d − x̄_d)²::

    κ_n = κ₀ + n,  a_n = a₀ + n/2,  b_nd = b₀d + S_d/2 + κ₀ n (x̄_d − m₀d)² / (2 κ_n)
    log p(X_k) = Σ_d [ lnΓ(a_n) − lnΓ(a₀) + a₀ ln b₀d − a_n ln b_nd + ½ ln(κ₀/κ_n) − (n/2) ln 2π ]

A Gibbs sweep visits each point i in a random order, removes it from its cluster and draws

    p(z_i = k | z_−i, X) ∝ n_k^{−i} · p(x_i | X_k^{−i})    (an existing cluster k)
    p(z_i = new | z_−i, X) ∝ α · p(x_i)                     (a new cluster)

where the predictive p(x | X_k) = p(X_k ∪ x) / p(X_k) is a product of Student-t densities
(Neal 2000, algorithm 3; MacEachern 1994). The first sweep starts from no clusters, so it seats
the points one by one by the same rule. Each sweep costs O(N K D), vectorised over clusters and
dimensions (each cluster's predictive constants are cached and updated when a point moves:
one K×D pass per point); the sweep itself is sequential by nature (each draw conditions on
all others). The sampler's pieces are in :mod:`unsup.cluster._dp_gibbs`.
After each sweep, split-merge moves (Dahl 2005; :func:`_split_merge`) move whole groups of
points at once, so that a cluster holding two groups can split.

Two hyper-parameters can be sampled as well, each by an exact conditional draw after a sweep:

* α under a Gamma(shape, rate) prior (``alpha_prior_shape``), by Escobar & West (1995)'s
  auxiliary variable: η ~ Beta(α + 1, N), then α from a two-component Gamma mixture
  (:func:`~unsup.cluster._dp_gibbs._resample_alpha`): the partition enters p(α | z) only
  through K, as α^K Γ(α) / Γ(α + N).
* the precision prior's rates b₀ (``learn_variance_prior``) under an exponential hyperprior
  centred on the data's variance (Rasmussen 2000): draw each cluster's precisions from their
  posterior, then b₀d ~ Gamma(1 + K a₀, 1/((a₀ − 1) var_d) + Σ_k τ_kd), and drop the
  precisions again (:func:`~unsup.cluster._dp_gibbs._resample_rate`).

The posterior over the number of clusters is the histogram of occupied clusters over the sweeps
after ``burn_in`` (``k_posterior_``); the fitted partition is the sample of highest joint
probability p(z, X | α, b₀) seen after burn-in (``labels_``), and predictions use that
partition's posterior predictive (each cluster's Student-t, weighted n_k / (N + α), plus the
new-cluster term α / (N + α)); a sampled α or b₀ enters it as its posterior mean after burn-in.

References: Neal (2000), "Markov chain sampling methods for Dirichlet process mixture models";
Rasmussen (2000), "The infinite Gaussian mixture model"; Escobar & West (1995), "Bayesian
density estimation and inference using mixtures"; Dahl (2005), "Sequentially-allocated
merge-split sampler for conjugate and nonconjugate Dirichlet process mixture models"; Murphy
(2007), "Conjugate Bayesian analysis of the Gaussian distribution" (the Normal-Gamma formulas).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.special import gammaln, logsumexp
from sklearn.base import ClusterMixin, DensityMixin

from unsup._io_checks import A
from unsup.base import BaseEstimator, make_generator, report_progress
from unsup.cluster._dp_gibbs import (
    _Prior,
    _resample_alpha,
    _resample_rate,
    _split_merge,
    _Stats,
    _sweep,
)
from unsup.params import Integral, Interval, Real
from unsup.registry import register_model
from unsup.train._loop_checkpoint import LoopCheckpoint, generator_from_state, generator_state
from unsup.train.em import EM_CHECKPOINTING

__all__ = ["DirichletProcessMixture"]



@register_model("dp-mixture", family="cluster", aliases=("dpmm", "dirichlet-process-mixture"),
                summary="Dirichlet-process Gaussian mixture by collapsed Gibbs sampling "
                        "(discovers K)")
class DirichletProcessMixture(ClusterMixin, DensityMixin, BaseEstimator):
    """Dirichlet-process mixture of diagonal Gaussians, by collapsed Gibbs sampling (CRP).

    The number of clusters is not given: it is inferred, with its posterior distribution
    (``k_posterior_``). See the module docstring for the model and the sampler.

    Parameters
    ----------
    alpha : float, default=1.0
        Concentration of the Dirichlet process: larger values favour more clusters (the prior
        expected number of clusters among N points is about α ln(1 + N/α)). With
        ``alpha_prior_shape`` set, the starting value of the sampled α.
    alpha_prior_shape : float or None, default=None
        Shape of a Gamma(shape, ``alpha_prior_rate``) prior on α, which is then sampled after
        each sweep (Escobar & West 1995); ``None``: α is fixed at ``alpha``.
    alpha_prior_rate : float, default=1.0
        Rate of that Gamma prior (prior mean of α = shape / rate).
    n_sweeps : int, default=100
        Gibbs sweeps over all points.
    burn_in : int or None, default=None
        Sweeps discarded before collecting the posterior; ``None``: half of ``n_sweeps``.
    mean_precision_prior : float, default=0.01
        κ₀: the prior over a cluster's mean is N(m₀, σ²/κ₀) (m₀ = the data mean): small values
        make it broad.
    variance_prior : float or None, default=None
        The prior mean of a cluster's per-dimension variance (with ``learn_variance_prior``,
        the mean of its hyperprior); ``None``: the data's variance in that dimension, or a
        tenth of it when the prior is fixed.
    learn_variance_prior : bool, default=True
        Sample the precision prior's rates b₀ (one per dimension) after each sweep, under an
        exponential hyperprior whose mean is the b₀ of ``variance_prior`` (Rasmussen 2000): the
        scale of the clusters' variances is learned from the clusters rather than fixed from
        the whole data's spread. A fixed tenth of the data's variance is too tight in a
        dimension the clusters do not spread along (it favours small clusters of tail points:
        2 clusters in 2-D found as 3 or more in 2 of 10 seeds; learned: 0 of 10).
    degrees_of_freedom_prior : float, default=2.0
        a₀ of the Gamma prior on each precision (2a₀ degrees of freedom); must exceed 1.
    n_split_merge : int, default=20
        Split-merge Metropolis-Hastings moves after each Gibbs sweep (Dahl 2005): they move
        whole groups of points, which single-site Gibbs cannot; 0 turns them off. The pair of
        points is drawn at random, so a move lands in a given merged pair of K clusters with
        probability ~2/K²: 20 clusters in 10-D were all found within 100 sweeps in 7 of 10
        seeds with 5 moves, 10 of 10 with 20.
    random_state : int, RandomState or None, default=None
        Seed of the sampler.
    device : str, default="cpu"
        Accepted for a uniform API; the sampler is sequential and runs on the CPU.

    Attributes
    ----------
    labels_ : (N,) the partition of highest joint probability after burn-in (0..K-1).
    n_clusters_ : its number of clusters.
    means_, variances_ : (K, D) posterior means of each cluster's mean and variance.
    weights_ : (K,) predictive weights n_k / (N + α); the new-cluster weight is
        α / (N + α) (``new_cluster_weight_``).
    prior_rate_ : (D,) the b₀ of the predictive: fixed, or with ``learn_variance_prior`` its
        posterior mean after burn-in (``prior_rate_trace_``: (n_sweeps, D), b₀ after each
        sweep).
    alpha_ : the α of the predictive: ``alpha``, or with a prior the posterior mean of α over
        the sweeps after burn-in (``alpha_trace_`` has α after each sweep).
    k_trace_ : (n_sweeps,) occupied clusters after each sweep.
    k_posterior_ : (max K + 1,) posterior probability of each number of clusters (index = K),
        from the sweeps after burn-in.
    log_joint_trace_ : (n_sweeps,) log p(z, X) after each sweep.
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "alpha_prior_shape": [Interval(Real, 0, None, closed="neither"), None],
        "alpha_prior_rate": [Interval(Real, 0, None, closed="neither")],
        "n_sweeps": [Interval(Integral, 1, None, closed="left")],
        "burn_in": [Interval(Integral, 0, None, closed="left"), None],
        "mean_precision_prior": [Interval(Real, 0, None, closed="neither")],
        "variance_prior": [Interval(Real, 0, None, closed="neither"), None],
        "degrees_of_freedom_prior": [Interval(Real, 1, None, closed="neither")],
        "learn_variance_prior": ["boolean"],
        "n_split_merge": [Interval(Integral, 0, None, closed="left")],
    }
    _test_params = {"n_sweeps": 4}
    _param_groups = (EM_CHECKPOINTING,)  # checkpoint_dir, checkpoint_every, resume
    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"labels_": A("i64", "n"), "means_": A("f64", "k", "n_features_in_"),
                     "variances_": A("f64", "k", "n_features_in_"), "weights_": A("f64", "k"),
                     "k_trace_": A("i64", "n_sweeps"), "k_posterior_": A("f64", "m"),
                     "log_joint_trace_": A("f64", "n_sweeps"),
                     "alpha_trace_": A("f64", "n_sweeps"),
                     "prior_rate_trace_": A("f64", "n_sweeps", "n_features_in_"),
                     "prior_mean_": A("f64", "n_features_in_"),
                     "prior_rate_": A("f64", "n_features_in_"),
                     "cluster_counts_": A("f64", "k"),
                     "cluster_sums_": A("f64", "k", "n_features_in_"),
                     "cluster_sumsq_": A("f64", "k", "n_features_in_")}

    def __init__(self, alpha: float = 1.0, *, alpha_prior_shape: float | None = None,
                 alpha_prior_rate: float = 1.0, n_sweeps: int = 100, burn_in: int | None = None,
                 mean_precision_prior: float = 0.01, variance_prior: float | None = None,
                 degrees_of_freedom_prior: float = 2.0, learn_variance_prior: bool = True,
                 n_split_merge: int = 20,
                 random_state: Any = None, device: str = "cpu") -> None:
        self.alpha = alpha
        self.alpha_prior_shape = alpha_prior_shape
        self.alpha_prior_rate = alpha_prior_rate
        self.n_sweeps = n_sweeps
        self.burn_in = burn_in
        self.mean_precision_prior = mean_precision_prior
        self.variance_prior = variance_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.learn_variance_prior = learn_variance_prior
        self.n_split_merge = n_split_merge
        self.random_state = random_state
        self.device = device

    # -- the prior -------------------------------------------------------------------------
    def _prior(self) -> _Prior:
        return _Prior(self.prior_mean_, float(self.mean_precision_prior),
                      float(self.degrees_of_freedom_prior), self.prior_rate_)

    def _set_prior(self, X: np.ndarray) -> None:
        a0 = float(self.degrees_of_freedom_prior)
        var = X.var(0) if X.shape[0] > 1 else np.ones(X.shape[1])
        var = np.where(var > 0, var, 1.0)
        if self.variance_prior is not None:
            prior_var = np.full(X.shape[1], float(self.variance_prior))
        else:  # a tenth of the data's spread; a learned scale starts from all of it
            prior_var = var if self.learn_variance_prior else var / 10
        self.prior_mean_ = X.mean(0)
        self.prior_rate_ = prior_var * (a0 - 1)  # E[σ²] = b₀ / (a₀ − 1)

    def _log_joint(self, prior: _Prior, st: _Stats, N: int, a: float) -> float:
        """log p(z, X | α): the CRP's probability of the partition times the clusters'
        evidence."""
        K = len(st.n)
        crp = K * math.log(a) + gammaln(st.n).sum() + gammaln(a) - gammaln(a + N)
        return float(crp + prior.log_marginal(st.n, st.s, st.ss).sum())

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> DirichletProcessMixture:
        """Run ``n_sweeps`` Gibbs sweeps over ``X`` (N×D). Returns ``self``."""
        self._validate_params()
        Xn = self._validate(X, reset=True).cpu().numpy().astype(np.float64)
        N, D = Xn.shape
        burn = self.n_sweeps // 2 if self.burn_in is None else int(self.burn_in)
        if burn >= self.n_sweeps:
            raise ValueError(f"burn_in={burn} leaves no sweeps of the n_sweeps={self.n_sweeps} "
                             "to collect the posterior from")
        self._set_prior(Xn)
        b0_start = self.prior_rate_
        hyper_rate = 1.0 / b0_start  # exponential hyperprior on b₀ with mean b0_start
        T = int(self.n_sweeps)
        lc = LoopCheckpoint(self, torch.from_numpy(Xn), make_generator(0, torch.device("cpu")),
                            n_total=N, max_iter=T, loop="dp-gibbs")
        state = lc.result.params if lc.result is not None else lc.params
        st = _Stats(D)
        if state is None:  # a fresh chain: no clusters, the first sweep seats every point
            rng = np.random.default_rng(_seed(self.random_state))
            z = np.full(N, -1)
            k_trace, lj_trace, a_trace, b_trace = [], [], [], []
            best = (-math.inf, None, None)
        else:  # the statistics as they were (incremental sums: not recomputed)
            rng = generator_from_state(state["rng"])
            z = np.array(state["z"], dtype=np.int64, copy=True)
            st.n, st.s, st.ss = (np.array(state[k], dtype=np.float64, copy=True).reshape(
                shape) for k, shape in (("n", (-1,)), ("s", (-1, D)), ("ss", (-1, D))))
            if z.shape != (N,) or len(st.n) != len(st.s) or z.max(initial=-1) >= len(st.n):
                raise ValueError(f"cannot resume from {lc.ck.path}: the checkpoint is damaged")
            k_trace = [int(k) for k in np.asarray(state["k_trace"]).reshape(-1)]
            lj_trace = [float(v) for v in np.asarray(state["lj_trace"]).reshape(-1)]
            a_trace = [float(v) for v in np.asarray(state["a_trace"]).reshape(-1)]
            b_trace = list(np.array(state["b_trace"], dtype=np.float64).reshape(-1, D))
            b = state["best"]
            best = ((-math.inf, None, None) if b is None else
                    (float(b["lj"]), np.array(b["z"], dtype=np.int64),
                     tuple(np.array(b[k], dtype=np.float64) for k in ("n", "s", "ss"))))

        def snapshot() -> dict[str, Any]:
            b = None if best[1] is None else {"lj": best[0], "z": best[1], "n": best[2][0],
                                               "s": best[2][1], "ss": best[2][2]}
            return {"z": z, "n": st.n, "s": st.s, "ss": st.ss, "best": b,
                    "k_trace": np.asarray(k_trace, dtype=np.int64),
                    "lj_trace": np.asarray(lj_trace, dtype=np.float64),
                    "a_trace": np.asarray(a_trace, dtype=np.float64),
                    "b_trace": np.asarray(b_trace, dtype=np.float64).reshape(-1, D),
                    "rng": generator_state(rng)}

        for sweep in range(lc.it, T) if lc.result is None else ():
            lc.top(sweep, snapshot(), [])
            alpha = a_trace[-1] if a_trace else float(self.alpha)
            log_a = math.log(alpha)
            self.prior_rate_ = b_trace[-1] if b_trace else b0_start
            prior = self._prior()
            _sweep(Xn, z, st, prior, log_a, rng)
            for _ in range(self.n_split_merge if N >= 2 else 0):  # a move needs two points
                _split_merge(Xn, z, st, prior, log_a, rng)
            if self.alpha_prior_shape is not None:
                alpha = _resample_alpha(alpha, len(st.n), N, float(self.alpha_prior_shape),
                                        float(self.alpha_prior_rate), rng)
            if self.learn_variance_prior:
                self.prior_rate_ = _resample_rate(st, prior, 1.0, hyper_rate, rng)
                prior = self._prior()
            lj = self._log_joint(prior, st, N, alpha)
            k_trace.append(len(st.n))
            lj_trace.append(lj)
            a_trace.append(alpha)
            b_trace.append(self.prior_rate_)
            if sweep >= burn and lj > best[0]:
                best = (lj, z.copy(), (st.n.copy(), st.s.copy(), st.ss.copy()))
            report_progress("DP Gibbs", sweep + 1, T, clusters=len(st.n))
        if lc.result is None:
            lc.finish(snapshot(), 0.0, T, [])
        _, self.labels_, (n, s, ss) = best
        self.cluster_counts_, self.cluster_sums_, self.cluster_sumsq_ = n, s, ss
        self.k_trace_ = np.asarray(k_trace, dtype=np.int64)
        self.log_joint_trace_ = np.asarray(lj_trace)
        self.alpha_trace_ = np.asarray(a_trace, dtype=np.float64)
        self.prior_rate_trace_ = np.asarray(b_trace, dtype=np.float64).reshape(-1, D)
        self.prior_rate_ = (self.prior_rate_trace_[burn:].mean(0) if self.learn_variance_prior
                            else b0_start)
        kept = self.k_trace_[burn:]
        self.k_posterior_ = np.bincount(kept, minlength=kept.max() + 1) / kept.size
        self._summarise(N)
        return self

    def _summarise(self, N: int) -> None:
        n = self.cluster_counts_[:, None]
        kn = self.mean_precision_prior + n
        an = self.degrees_of_freedom_prior + n / 2
        mean = self.cluster_sums_ / n
        scatter = np.maximum(self.cluster_sumsq_ - n * mean**2, 0.0)
        bn = (self.prior_rate_ + scatter / 2
              + self.mean_precision_prior * n * (mean - self.prior_mean_) ** 2 / (2 * kn))
        self.means_ = (self.mean_precision_prior * self.prior_mean_ + self.cluster_sums_) / kn
        self.variances_ = bn / (an - 1)
        self.weights_ = self.cluster_counts_ / (N + self.alpha_)

    # derived, not stored: a model file cannot make them disagree with the cluster statistics
    @property
    def n_clusters_(self) -> int:
        """Number of clusters of the fitted partition."""
        return int(len(self.cluster_counts_))

    @property
    def alpha_(self) -> float:
        """α of the predictive: fixed, or the posterior mean after burn-in of the sampled α."""
        trace = getattr(self, "alpha_trace_", None)
        if trace is None or self.alpha_prior_shape is None:
            return float(self.alpha)
        burn = self.n_sweeps // 2 if self.burn_in is None else int(self.burn_in)
        return float(np.mean(trace[burn:]))

    @property
    def new_cluster_weight_(self) -> float:
        """Predictive weight α / (N + α) of a new cluster."""
        return float(self.alpha_ / (self.cluster_counts_.sum() + self.alpha_))

    # -- prediction ------------------------------------------------------------------------
    def _log_resp(self, X: Any) -> np.ndarray:
        """log weight + log predictive of each row under each cluster and a new one (N, K+1)."""
        Xn = self._validate(X, reset=False).cpu().numpy().astype(np.float64)
        prior = self._prior()
        st = _Stats(Xn.shape[1])
        st.n, st.s, st.ss = self.cluster_counts_, self.cluster_sums_, self.cluster_sumsq_
        out = np.empty((Xn.shape[0], self.n_clusters_ + 1))
        for lo in range(0, Xn.shape[0], 1024):  # bounded memory: (chunk, K+1, D)
            xb = Xn[lo:lo + 1024]
            n = np.append(st.n, 0.0)
            s = np.vstack([st.s, np.zeros((1, xb.shape[1]))])
            ss = np.vstack([st.ss, np.zeros((1, xb.shape[1]))])
            base = prior.log_marginal(n, s, ss)
            both = prior.log_marginal(np.tile(n + 1, len(xb)),
                                      (s[None] + xb[:, None]).reshape(-1, xb.shape[1]),
                                      (ss[None] + (xb**2)[:, None]).reshape(-1, xb.shape[1]))
            out[lo:lo + len(xb)] = both.reshape(len(xb), -1) - base
        out += self._log_weights()
        return out

    def _log_weights(self) -> np.ndarray:
        """log predictive weight of each cluster and, last, of a new cluster."""
        w = np.append(self.cluster_counts_, self.alpha_)
        return np.log(w / w.sum())

    def predict(self, X: Any) -> np.ndarray:
        """The most probable existing cluster of each row."""
        return self._log_resp(X)[:, :-1].argmax(1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior probability of each existing cluster (renormalised without the new one)."""
        lr = self._log_resp(X)[:, :-1]
        return np.exp(lr - logsumexp(lr, axis=1, keepdims=True))

    def score_samples(self, X: Any) -> np.ndarray:
        """log posterior predictive density of each row given the fitted partition (nats)."""
        return logsumexp(self._log_resp(X), axis=1)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log predictive density per row."""
        return float(np.mean(self.score_samples(X)))

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_


def _seed(random_state: Any) -> Any:
    if isinstance(random_state, np.random.RandomState):
        return random_state.randint(2**31)
    return random_state
