"""The collapsed Gibbs sampler of :class:`~unsup.cluster.DirichletProcessMixture`: cluster
statistics, the Normal-Gamma marginal likelihoods and predictives, a Gibbs sweep and a
split-merge move (the math is in :mod:`unsup.cluster.dp_mixture`'s docstring)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

__all__ = ["_Stats", "_Prior", "_Predictive", "_sweep", "_split_merge"]

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

    def log_marginal(self, n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> np.ndarray:
        """log p(X_k) for clusters given by their statistics (rows); n may be 0."""
        n = np.asarray(n, dtype=np.float64)[:, None]
        kn = self.kappa0 + n
        an = self.a0 + n / 2
        mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        scatter = np.maximum(ss - n * mean**2, 0.0)
        bn = self.b0 + scatter / 2 + self.kappa0 * n * (mean - self.m0) ** 2 / (2 * kn)
        per_d = (gammaln(an) - gammaln(self.a0) + self.a0 * np.log(self.b0) - an * np.log(bn)
                 + 0.5 * np.log(self.kappa0 / kn) - n / 2 * _LOG_2PI)
        return per_d.sum(1)

    def log_predictive(self, st: _Stats, x: np.ndarray) -> np.ndarray:
        """log p(x | X_k) for every cluster k of ``st`` and, last, for a new cluster."""
        n = np.append(st.n, 0.0)
        s = np.vstack([st.s, np.zeros_like(x)])
        ss = np.vstack([st.ss, np.zeros_like(x)])
        return self.log_marginal(n + 1, s + x, ss + x * x) - self.log_marginal(n, s, ss)


class _Predictive:
    """Per-cluster constants of the Student-t predictive, kept current as points move.

    With the posterior (κ_n, m_n, a_n, b_n) of a cluster, the Normal-Gamma update gives

        log p(x | X_k) = C_k − (a_n + ½) Σ_d ln(b_nd + κ_n (x_d − m_nd)² / (2 (κ_n + 1))),
        C_k = D [lnΓ(a_n + ½) − lnΓ(a_n) + ½ ln(κ_n / (κ_n + 1)) − ½ ln 2π] + a_n Σ_d ln b_nd,

    so a point costs one K×D pass (the same values as :meth:`_Prior.log_predictive`, which
    takes two marginal likelihoods per cluster and point). Row K is the empty (new) cluster.
    """

    def __init__(self, prior: _Prior, st: _Stats) -> None:
        self.kappa0, self.a0, self.b0 = prior.kappa0, prior.a0, prior.b0
        self.k0m0 = prior.kappa0 * prior.m0
        self.k0m0sq = prior.kappa0 * prior.m0**2
        K, D = st.s.shape
        self.D = D
        self.C, self.half_a = np.empty(K + 1), np.empty(K + 1)
        self.coef = np.empty(K + 1)
        self.m, self.b = np.empty((K + 1, D)), np.empty((K + 1, D))
        for k in range(K):
            self.set(k, st.n[k], st.s[k], st.ss[k])
        self.set(K, 0.0, np.zeros(D), np.zeros(D))

    def set(self, k: int, n: float, s: np.ndarray, ss: np.ndarray) -> None:
        # b_n = b₀ + ½(Σx² + κ₀m₀² − κ_n m_n²): the completed square of the scatter form
        # (≥ b₀ in exact arithmetic; the clamp absorbs rounding)
        kn, an = self.kappa0 + n, self.a0 + n / 2
        m = (self.k0m0 + s) / kn
        b = np.maximum(self.b0 + 0.5 * (ss + self.k0m0sq - kn * m * m), self.b0)
        self.m[k] = m
        self.b[k] = b
        self.coef[k] = kn / (2 * (kn + 1))
        self.half_a[k] = an + 0.5
        self.C[k] = (self.D * (math.lgamma(an + 0.5) - math.lgamma(an)
                               + 0.5 * math.log(kn / (kn + 1)) - 0.5 * _LOG_2PI)
                     + an * float(np.log(b).sum()))

    def insert(self, k: int) -> None:
        """Room for a new cluster k (before the empty row); its values are set next."""
        for name in ("C", "half_a", "coef", "m", "b"):
            a = getattr(self, name)
            setattr(self, name, np.insert(a, k, a[-1], axis=0))

    def drop(self, k: int) -> None:
        for name in ("C", "half_a", "coef", "m", "b"):
            setattr(self, name, np.delete(getattr(self, name), k, axis=0))

    def log_pred(self, x: np.ndarray) -> np.ndarray:
        q = self.b + self.coef[:, None] * (x - self.m) ** 2
        return self.C - self.half_a * np.log(q).sum(1)


def _sweep(Xn: np.ndarray, z: np.ndarray, st: _Stats, prior: _Prior, log_a: float,
           rng: np.random.Generator) -> None:
    """One collapsed Gibbs sweep in a random order (``z == -1``: not yet seated); updates
    ``z`` and ``st`` in place."""
    pred = _Predictive(prior, st)
    for i in rng.permutation(len(Xn)):
        x = Xn[i]
        k = z[i]
        if k >= 0:
            st.add(k, x, -1.0)
            if st.n[k] < 0.5:  # the cluster emptied: relabel the ones above it
                st.drop(k)
                pred.drop(k)
                z[z > k] -= 1
            else:
                pred.set(k, st.n[k], st.s[k], st.ss[k])
        logp = pred.log_pred(x)
        logp[:-1] += np.log(st.n)
        logp[-1] += log_a
        p = np.exp(logp - logp.max())
        k = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
        k = min(k, len(p) - 1)
        if k == len(st.n):
            pred.insert(k)
        st.add(k, x)
        pred.set(k, st.n[k], st.s[k], st.ss[k])
        z[i] = k


def _one(prior: _Prior, n: float, s: np.ndarray, ss: np.ndarray) -> float:
    return float(prior.log_marginal(np.array([n]), s[None], ss[None])[0])


def _split_merge(Xn: np.ndarray, z: np.ndarray, st: _Stats, prior: _Prior, log_a: float,
                 rng: np.random.Generator) -> bool:
    """One sequentially-allocated split-merge Metropolis-Hastings move (Dahl 2005).

    Single-site Gibbs cannot split a cluster that holds two groups (each point alone prefers to
    stay), so a sampler started badly can stay with too few clusters. Two points i, j are drawn;
    if they share a cluster S, a split is proposed by seating S's other points one at a time in
    the part of i or of j with probability ∝ |part| p(x | part); otherwise the merge of their
    clusters is proposed, with the probability of the reverse split computed the same way. The
    move is accepted with probability min(1, p(z', X) q(z | z') / (p(z, X) q(z' | z))). Returns
    whether it was accepted.
    """
    i, j = rng.choice(len(Xn), 2, replace=False)
    ci, cj = int(z[i]), int(z[j])
    members = np.nonzero((z == ci) | (z == cj))[0]
    others = rng.permutation(members[(members != i) & (members != j)])
    n = np.array([1.0, 1.0])
    s = np.stack([Xn[i], Xn[j]])
    ss = s**2
    side = np.empty(len(others), dtype=np.int64)
    log_q = 0.0
    before = prior.log_marginal(n, s, ss)  # log p(part) of both parts, updated as they grow
    for idx, t in enumerate(others):
        x = Xn[t]
        after = prior.log_marginal(n + 1, s + x, ss + x * x)
        lp = np.log(n) + after - before
        lp -= max(lp) + math.log1p(math.exp(-abs(lp[0] - lp[1])))  # normalise the two sides
        # a split draws the side; a merge replays the current split to price its reverse
        a = int(rng.random() >= math.exp(lp[0])) if ci == cj else int(z[t] == cj)
        side[idx] = a
        log_q += lp[a]
        n[a] += 1
        s[a] += x
        ss[a] += x * x
        before[a] = after[a]
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
