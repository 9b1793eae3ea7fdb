"""The collapsed Gibbs sampler of :class:`~unsup.cluster.DirichletProcessMixture`: cluster
statistics, the Normal-Gamma marginal likelihoods and predictives, a Gibbs sweep and a
split-merge move (the math is in :mod:`unsup.cluster.dp_mixture`'s docstring)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from unsup._numba import njit

__all__ = ["_Stats", "_Prior", "_sweep", "_split_merge", "_resample_alpha", "_resample_rate"]

_LOG_2PI = math.log(2 * math.pi)


class _Stats:
    """Sufficient statistics (count, sum, sum of squares) of the clusters of one partition."""

    def __init__(self, D: int) -> None:
        self.n = np.zeros(0)
        self.s = np.zeros((0, D))
        self.ss = np.zeros((0, D))

    def add(self, k: int, x: np.ndarray, sign: float = 1.0) -> None:
        if k == len(self.n):  # a new cluster
            self.n = np.append(self.n, 0.0)
            self.s = np.vstack([self.s, np.zeros_like(x)])
            self.ss = np.vstack([self.ss, np.zeros_like(x)])
        self.n[k] += sign
        self.s[k] += sign * x
        self.ss[k] += sign * x * x

    def drop(self, k: int) -> None:
        keep = np.arange(len(self.n)) != k
        self.n, self.s, self.ss = self.n[keep], self.s[keep], self.ss[keep]


class _Prior:
    """The Normal-Gamma prior and its closed-form marginal likelihoods."""

    def __init__(self, m0: np.ndarray, kappa0: float, a0: float, b0: np.ndarray) -> None:
        self.m0, self.kappa0, self.a0, self.b0 = m0, kappa0, a0, b0

    def posterior(self, n: np.ndarray, s: np.ndarray, ss: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(n, κ_n, a_n, b_n) per cluster (rows) and dimension: the Normal-Gamma posterior of
        clusters given by their statistics; n (returned as a column) may be 0."""
        n = np.asarray(n, dtype=np.float64)[:, None]
        kn = self.kappa0 + n
        mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        scatter = np.maximum(ss - n * mean**2, 0.0)
        bn = self.b0 + scatter / 2 + self.kappa0 * n * (mean - self.m0) ** 2 / (2 * kn)
        return n, kn, self.a0 + n / 2, bn

    def log_marginal(self, n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> np.ndarray:
        """log p(X_k) for clusters given by their statistics (rows); n may be 0."""
        n, kn, an, bn = self.posterior(n, s, ss)
        per_d = (gammaln(an) - gammaln(self.a0) + self.a0 * np.log(self.b0) - an * np.log(bn)
                 + 0.5 * np.log(self.kappa0 / kn) - n / 2 * _LOG_2PI)
        return per_d.sum(1)

    def log_predictive(self, st: _Stats, x: np.ndarray) -> np.ndarray:
        """log p(x | X_k) for every cluster k of ``st`` and, last, for a new cluster."""
        n = np.append(st.n, 0.0)
        s = np.vstack([st.s, np.zeros_like(x)])
        ss = np.vstack([st.ss, np.zeros_like(x)])
        return self.log_marginal(n + 1, s + x, ss + x * x) - self.log_marginal(n, s, ss)


# -- the compiled sweep -------------------------------------------------------------------
# Per cluster k the kernel keeps the constants of its Student-t predictive: with the posterior
# (κ_n, m_n, a_n, b_n) of the cluster, the Normal-Gamma update gives
#
#     log p(x | X_k) = C_k − (a_n + ½) Σ_d ln(b_nd + κ_n (x_d − m_nd)² / (2 (κ_n + 1))),
#     C_k = D [lnΓ(a_n + ½) − lnΓ(a_n) + ½ ln(κ_n / (κ_n + 1)) − ½ ln 2π] + a_n Σ_d ln b_nd,
#
# so a point costs one K×D pass (the same values as :meth:`_Prior.log_predictive`, which
# takes two marginal likelihoods per cluster and point).


@njit(cache=True, nogil=True)
def _set_row(k, n, s, ss, kappa0, a0, b0, k0m0, k0m0sq, C, ha, cf, m, b):  # noqa: ANN001, ANN201
    """The predictive constants of cluster k from its statistics (n, s (D,), ss (D,)).
    b_n = b₀ + ½(Σx² + κ₀m₀² − κ_n m_n²): the completed square of the scatter form (≥ b₀ in
    exact arithmetic; the clamp absorbs rounding)."""
    D = s.shape[0]
    kn = kappa0 + n
    an = a0 + n / 2
    logb = 0.0
    for d in range(D):
        md = (k0m0[d] + s[d]) / kn
        bd = max(b0[d] + 0.5 * (ss[d] + k0m0sq[d] - kn * md * md), b0[d])
        m[k, d] = md
        b[k, d] = bd
        logb += math.log(bd)
    cf[k] = kn / (2 * (kn + 1))
    ha[k] = an + 0.5
    C[k] = (D * (math.lgamma(an + 0.5) - math.lgamma(an) + 0.5 * math.log(kn / (kn + 1))
                 - 0.5 * _LOG_2PI) + an * logb)


@njit(cache=True, nogil=True)
def _log_pred(x, k, C, ha, cf, m, b):  # noqa: ANN001, ANN201
    """log p(x | X_k) from row k of the predictive constants."""
    acc = 0.0
    for d in range(x.shape[0]):
        diff = x[d] - m[k, d]
        acc += math.log(b[k, d] + cf[k] * diff * diff)
    return C[k] - ha[k] * acc


@njit(cache=True, nogil=True)
def _sweep_kernel(X, order, u, z, n, s, ss, K, start, kappa0, a0, b0, k0m0,  # noqa: ANN001, ANN201
                  k0m0sq, log_a):
    """Points ``order[start:]`` in turn: out of their cluster, then seated by the CRP
    conditional p(z_i = k | z_−i, X) ∝ n_k p(x_i | X_k), α p(x_i) for a new cluster, with
    the uniform ``u[pos]``. ``n``, ``s``, ``ss`` hold K clusters in their first rows (capacity
    = their length); an emptied cluster is removed and the labels above it shift down.
    Returns (K, the position reached): short of the end when the capacity is full."""
    N, D = X.shape
    cap = n.shape[0]
    C, ha, cf = np.empty(cap + 1), np.empty(cap + 1), np.empty(cap + 1)
    m, b = np.empty((cap + 1, D)), np.empty((cap + 1, D))
    for k in range(K):
        _set_row(k, n[k], s[k], ss[k], kappa0, a0, b0, k0m0, k0m0sq, C, ha, cf, m, b)
    zero = np.zeros(D)  # row cap: the empty cluster's predictive, the prior's
    _set_row(cap, 0.0, zero, zero, kappa0, a0, b0, k0m0, k0m0sq, C, ha, cf, m, b)
    logp = np.empty(cap + 1)
    for pos in range(start, N):
        if K == cap:  # no room for a new cluster: the caller grows the arrays
            return K, pos
        i = order[pos]
        x = X[i]
        k = z[i]
        if k >= 0:
            n[k] -= 1.0
            for d in range(D):
                s[k, d] -= x[d]
                ss[k, d] -= x[d] * x[d]
            if n[k] < 0.5:  # the cluster emptied: the ones above it move down
                for j in range(k, K - 1):
                    n[j] = n[j + 1]
                    C[j], ha[j], cf[j] = C[j + 1], ha[j + 1], cf[j + 1]
                    for d in range(D):
                        s[j, d], ss[j, d] = s[j + 1, d], ss[j + 1, d]
                        m[j, d], b[j, d] = m[j + 1, d], b[j + 1, d]
                K -= 1
                for t in range(N):
                    if z[t] > k:
                        z[t] -= 1
            else:
                _set_row(k, n[k], s[k], ss[k], kappa0, a0, b0, k0m0, k0m0sq, C, ha, cf, m, b)
        top = -np.inf
        for j in range(K):
            logp[j] = _log_pred(x, j, C, ha, cf, m, b) + math.log(n[j])
            top = max(top, logp[j])
        logp[K] = _log_pred(x, cap, C, ha, cf, m, b) + log_a
        top = max(top, logp[K])
        tot = 0.0
        for j in range(K + 1):
            logp[j] = math.exp(logp[j] - top)
            tot += logp[j]
        target = u[pos] * tot
        k = 0
        acc = logp[0]
        while k < K and acc <= target:  # the first k whose cumulative sum exceeds the draw
            k += 1
            acc += logp[k]
        if k == K:  # a new cluster
            n[k] = 0.0
            for d in range(D):
                s[k, d] = 0.0
                ss[k, d] = 0.0
            K += 1
        n[k] += 1.0
        for d in range(D):
            s[k, d] += x[d]
            ss[k, d] += x[d] * x[d]
        _set_row(k, n[k], s[k], ss[k], kappa0, a0, b0, k0m0, k0m0sq, C, ha, cf, m, b)
        z[i] = k
    return K, N


def _sweep(Xn: np.ndarray, z: np.ndarray, st: _Stats, prior: _Prior, log_a: float,
           rng: np.random.Generator) -> None:
    """One collapsed Gibbs sweep in a random order (``z == -1``: not yet seated); updates
    ``z`` and ``st`` in place (compiled: :func:`_sweep_kernel`)."""
    N, D = Xn.shape
    order, u = rng.permutation(N), rng.random(N)
    X = np.ascontiguousarray(Xn, dtype=np.float64)
    m0 = np.asarray(prior.m0, dtype=np.float64)
    b0 = np.asarray(prior.b0, dtype=np.float64)
    k0m0, k0m0sq = prior.kappa0 * m0, prior.kappa0 * m0**2
    K, pos = len(st.n), 0
    while pos < N:  # the capacity doubles when a sweep opens more clusters than it has room for
        cap = max(2 * K, K + 16)
        n, s, ss = np.zeros(cap), np.zeros((cap, D)), np.zeros((cap, D))
        n[:K], s[:K], ss[:K] = st.n, st.s, st.ss
        K, pos = _sweep_kernel(X, order, u, z, n, s, ss, K, pos, float(prior.kappa0),
                               float(prior.a0), b0, k0m0, k0m0sq, float(log_a))
        st.n, st.s, st.ss = n[:K].copy(), s[:K].copy(), ss[:K].copy()


def _one(prior: _Prior, n: float, s: np.ndarray, ss: np.ndarray) -> float:
    return float(prior.log_marginal(np.array([n]), s[None], ss[None])[0])


@njit(cache=True, nogil=True)
def _log_marginal_one(n, s, ss, kappa0, a0, b0, m0):  # noqa: ANN001, ANN201
    """:meth:`_Prior.log_marginal` of one cluster (compiled, for the split-merge proposals)."""
    kn = kappa0 + n
    an = a0 + n / 2
    out = 0.0
    for d in range(s.shape[0]):
        mean = s[d] / n if n > 0 else 0.0
        scatter = max(ss[d] - n * mean * mean, 0.0)
        bn = b0[d] + scatter / 2 + kappa0 * n * (mean - m0[d]) ** 2 / (2 * kn)
        out += (math.lgamma(an) - math.lgamma(a0) + a0 * math.log(b0[d]) - an * math.log(bn)
                + 0.5 * math.log(kappa0 / kn) - n / 2 * _LOG_2PI)
    return out


@njit(cache=True, nogil=True)
def _allocate(X, others, u, split, z, cj, n, s, ss, kappa0, a0, b0, m0):  # noqa: ANN001, ANN201
    """Seat ``others`` one at a time in part 0 (i's) or 1 (j's) with probability ∝
    |part| p(x | part): drawn with ``u`` for a split, replayed from ``z`` (part 1 = cluster
    ``cj``) for a merge. Updates the parts' statistics ``n`` (2,), ``s``, ``ss`` (2, D) in
    place; returns the sides and log q, the proposal's log-probability."""
    D = X.shape[1]
    before = np.array([_log_marginal_one(n[a], s[a], ss[a], kappa0, a0, b0, m0)
                       for a in range(2)])
    after = np.empty(2)
    ts, tss = np.empty(D), np.empty(D)
    side = np.empty(others.shape[0], np.int64)
    log_q = 0.0
    for idx in range(others.shape[0]):
        x = X[others[idx]]
        for a in range(2):
            for d in range(D):
                ts[d] = s[a, d] + x[d]
                tss[d] = ss[a, d] + x[d] * x[d]
            after[a] = _log_marginal_one(n[a] + 1, ts, tss, kappa0, a0, b0, m0)
        lp0 = math.log(n[0]) + after[0] - before[0]
        lp1 = math.log(n[1]) + after[1] - before[1]
        norm = max(lp0, lp1) + math.log1p(math.exp(-abs(lp0 - lp1)))
        lp0 -= norm
        lp1 -= norm
        if split:
            a = 1 if u[idx] >= math.exp(lp0) else 0
        else:
            a = 1 if z[others[idx]] == cj else 0
        side[idx] = a
        log_q += lp1 if a else lp0
        n[a] += 1.0
        for d in range(D):
            s[a, d] += x[d]
            ss[a, d] += x[d] * x[d]
        before[a] = after[a]
    return side, log_q


def _split_merge(Xn: np.ndarray, z: np.ndarray, st: _Stats, prior: _Prior, log_a: float,
                 rng: np.random.Generator) -> bool:
    """One sequentially-allocated split-merge Metropolis-Hastings move (Dahl 2005).

    Single-site Gibbs cannot split a cluster that holds two groups (each point alone prefers to
    stay), so a sampler started badly can stay with too few clusters. Two points i, j are drawn;
    if they share a cluster S, a split is proposed by seating S's other points one at a time in
    the part of i or of j with probability ∝ |part| p(x | part); otherwise the merge of their
    clusters is proposed, with the probability of the reverse split computed the same way. The
    move is accepted with probability min(1, p(z', X) q(z | z') / (p(z, X) q(z' | z))). Returns
    whether it was accepted. The seating loop is compiled (:func:`_allocate`).
    """
    i = int(rng.integers(len(Xn)))
    j = int(rng.integers(len(Xn) - 1))
    j += j >= i  # two distinct points, uniformly
    ci, cj = int(z[i]), int(z[j])
    members = np.nonzero((z == ci) | (z == cj))[0]
    others = rng.permutation(members[(members != i) & (members != j)])
    n = np.array([1.0, 1.0])
    s = np.stack([Xn[i], Xn[j]]).astype(np.float64)
    ss = s**2
    side, log_q = _allocate(np.ascontiguousarray(Xn, dtype=np.float64), others,
                            rng.random(len(others)), ci == cj, z, cj, n, s, ss,
                            float(prior.kappa0), float(prior.a0),
                            np.asarray(prior.b0, dtype=np.float64),
                            np.asarray(prior.m0, dtype=np.float64))
    n_all, s_all, ss_all = n.sum(), s.sum(0), ss.sum(0)
    log_split = (log_a + gammaln(n[0]) + gammaln(n[1]) + _one(prior, n[0], s[0], ss[0])
                 + _one(prior, n[1], s[1], ss[1]))
    log_merged = gammaln(n_all) + _one(prior, n_all, s_all, ss_all)
    u = math.log(rng.random() + 1e-300)
    if ci == cj:  # the split
        if u >= log_split - log_merged - log_q:
            return False
        new = len(st.n)
        z[np.concatenate([[j], others[side == 1]]).astype(np.int64)] = new
        st.n[ci], st.s[ci], st.ss[ci] = n[0], s[0], ss[0]
        st.add(new, np.zeros_like(s[1]), 0.0)
        st.n[new], st.s[new], st.ss[new] = n[1], s[1], ss[1]
        return True
    if u >= log_merged - log_split + log_q:
        return False
    lo, hi = min(ci, cj), max(ci, cj)
    z[z == hi] = lo
    st.n[lo], st.s[lo], st.ss[lo] = n_all, s_all, ss_all
    st.drop(hi)
    z[z > hi] -= 1
    return True


def _resample_alpha(alpha: float, K: int, N: int, shape: float, rate: float,
                    rng: np.random.Generator) -> float:
    """One draw of α from p(α | K, N) ∝ Gamma(α; shape, rate) α^K Γ(α) / Γ(α + N): the
    auxiliary-variable update of Escobar & West (1995, section 6). With η ~ Beta(α + 1, N),

        α | η, K ~ π Gamma(shape + K, rate − ln η) + (1 − π) Gamma(shape + K − 1, rate − ln η),
        π / (1 − π) = (shape + K − 1) / (N (rate − ln η)),

    whose joint with η has p(α | K, N) as its α-marginal (the partition enters only through K,
    the CRP's α^K Γ(α) / Γ(α + N))."""
    eta = rng.beta(alpha + 1.0, N)
    r = rate - math.log(eta)
    odds = (shape + K - 1) / (N * r)
    a = shape + K if rng.random() < odds / (1 + odds) else shape + K - 1
    return float(rng.gamma(a, 1.0 / r))


def _resample_rate(st: _Stats, prior: _Prior, shape: float, rate: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """One draw of the precision prior's rates b₀ (D,) given the partition, under the
    hyperprior b₀d ~ Gamma(shape, rate_d) (Rasmussen 2000's learned scale of the precisions).

    b₀ is not conjugate to the collapsed clusters, so the precisions are brought back for the
    draw (data augmentation): each cluster's τ_kd ~ Gamma(a_n, b_nd), its posterior with μ_k
    integrated out, then b₀d | τ ~ Gamma(shape + K a₀, rate_d + Σ_k τ_kd) (τ_kd ~ Gamma(a₀,
    b₀d) a priori), and τ is dropped again. Both draws are exact conditionals, so the pair is
    a Gibbs update of b₀ that leaves p(z, b₀ | X) invariant."""
    _, _, an, bn = prior.posterior(st.n, st.s, st.ss)
    tau = rng.gamma(an, 1.0 / bn)
    return rng.gamma(shape + len(st.n) * prior.a0, 1.0 / (rate + tau.sum(0)))
