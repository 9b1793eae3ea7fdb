"""The HDP's direct-assignment Gibbs sweep and table-count draws (numba when installed).

See :mod:`unsup.topics.hdp` for the model and the conditionals. The random numbers (one uniform
per token, which also gives a new topic its Beta(1, γ) stick fraction) are drawn by numpy
outside the kernel, so a seed gives the same chain with or without numba.
"""

from __future__ import annotations

import numpy as np

from unsup._numba import njit

__all__ = ["hdp_sweep", "table_counts"]


@njit(cache=True, nogil=True)
def hdp_sweep(doc, word, z, ndk, nwk, nk, active, beta, alpha, eta, v_eta, u, gamma,  # noqa: ANN001, ANN201
              allow_new, retire=True):
    """One sweep over the tokens (in place). ``beta`` has one entry per topic slot plus, last,
    the mass β_u of the topics not yet used; ``active`` marks used slots. A new topic takes the
    lowest free slot and a Beta(1, γ) fraction b of β_u. b needs no draw of its own: given that
    the token's uniform fell in the new-topic interval, its position v there is uniform and
    independent of the choice, and b = 1 − (1 − v)^(1/γ) (the inverse of Beta(1, γ)'s CDF).
    When every slot is in use the token is drawn among the existing topics (the caller keeps
    free slots: it grows the arrays between sweeps). ``allow_new=False, retire=False`` keep the
    topics fixed: the sweep is then LDA's with the asymmetric prior αβ (the tests check it
    against enumeration). Returns the number of topics opened."""
    Kmax = nk.shape[0]
    p = np.empty(Kmax + 1)
    born = 0
    for i in range(doc.shape[0]):
        d = doc[i]
        w = word[i]
        k = z[i]
        ndk[d, k] -= 1
        nwk[w, k] -= 1
        nk[k] -= 1
        if retire and nk[k] == 0:  # the topic emptied: its mass returns to the unused mass
            active[k] = False
            beta[Kmax] += beta[k]
            beta[k] = 0.0
        s = 0.0
        for j in range(Kmax):
            if active[j]:
                s += (ndk[d, j] + alpha * beta[j]) * (nwk[w, j] + eta) / (nk[j] + v_eta)
            p[j] = s
        if allow_new:
            s += alpha * beta[Kmax] / (v_eta / eta)  # a new topic's word probability is 1/V
        p[Kmax] = s
        t = u[i] * s
        k = 0
        while k < Kmax and p[k] <= t:
            k += 1
        if k == Kmax:  # a new topic: the lowest free slot, a Beta(1, γ) share of β_u
            k = -1
            for j in range(Kmax):
                if not active[j]:
                    k = j
                    break
            if k < 0:  # no free slot: draw among the existing topics
                t = u[i] * p[Kmax - 1]
                k = 0
                while k < Kmax - 1 and p[k] <= t:
                    k += 1
                z[i] = k
                ndk[d, k] += 1
                nwk[w, k] += 1
                nk[k] += 1
                continue
            active[k] = True
            v = (t - p[Kmax - 1]) / (s - p[Kmax - 1])
            b = 1.0 - (1.0 - min(max(v, 0.0), 1.0)) ** (1.0 / gamma)
            beta[k] = b * beta[Kmax]
            beta[Kmax] = (1.0 - b) * beta[Kmax]
            born += 1
        z[i] = k
        ndk[d, k] += 1
        nwk[w, k] += 1
        nk[k] += 1
    return born


@njit(cache=True, nogil=True)
def table_counts(ndk, alpha_beta, u):  # noqa: ANN001, ANN201
    """Antoniak draws: m_dk = Σ_{i<n_dk} 1[u < αβ_k / (αβ_k + i)], the number of tables of
    topic k in restaurant d given n_dk customers (Teh et al. 2006, §5.3). ``u`` holds one
    uniform per customer, consumed in (d, k, i) order. Returns m_.k (summed over d)."""
    D, K = ndk.shape
    m = np.zeros(K)
    c = 0
    for d in range(D):
        for k in range(K):
            a = alpha_beta[k]
            for i in range(ndk[d, k]):
                if u[c] < a / (a + i):
                    m[k] += 1.0
                c += 1
    return m
