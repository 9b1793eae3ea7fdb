r"""The left-to-right estimator of a topic model's document probability (Wallach et al. 2009).

For topics φ (K × V) and a Dirichlet prior α over a document's topic proportions, the
probability of a document's token sequence w_1..w_N factorises as
:math:`p(w) = \prod_n p(w_n \mid w_{<n})`, and

.. math:: p(w_n \mid w_{<n}) = \mathbb E_{p(z_{<n} \mid w_{<n})}\Big[\sum_k \varphi_{k w_n}
          \frac{N_k(z_{<n}) + \alpha_k}{n - 1 + \sum_k \alpha_k}\Big].

Wallach et al.'s Algorithm 3 keeps R particles z_{<n}; at each position it refreshes every
particle by one (here ``sweeps``) collapsed-Gibbs sweep over its earlier tokens
(:math:`p(z_m = k \mid \cdot) \propto \varphi_{k w_m} (N_k^{-m} + \alpha_k)`), averages the
predictive above over the particles, then extends each particle by drawing z_n from
:math:`\propto \varphi_{k w_n}(N_k + \alpha_k)`. ``resample=False`` skips the refresh: the
particles are then sequential importance samples whose weights are the products of their
predictives, and :math:`\hat p(w) = \frac1R \sum_r \prod_n p(w_n \mid z^r_{<n}, w_{<n})` is
unbiased for p(w) (Wallach's version is not, but has far lower variance).
Cost: O(sweeps R N² K) per document with refreshes, O(R N K) without.

A bag of words has no order: the tokens of each document are put in a seeded random order;
for an exchangeable model the sequence probability is the same in every order.

Compiled with numba when it is installed (as the LDA Gibbs sweep); the uniforms come from
numpy outside the kernel, so a seed gives the same estimate either way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from unsup._numba import njit

__all__ = ["left_to_right_doc"]


@njit(cache=True, nogil=True)
def _draw(phi_w, alpha, cnt, z, p, r, m, u):  # noqa: ANN001, ANN201
    """z[r, m] ~ p(k) ∝ φ_{k,w_m} (N_k + α_k) of particle r (its counts without token m); the
    token is counted back in. Returns the normaliser Σ_k φ_{k,w_m} (N_k + α_k)."""
    K = p.shape[0]
    s = 0.0
    for j in range(K):
        s += phi_w[m, j] * (cnt[r, j] + alpha[j])
        p[j] = s
    t = u * s
    k = 0
    while k < K - 1 and p[k] <= t:
        k += 1
    z[r, m] = k
    cnt[r, k] += 1.0
    return s


@njit(cache=True, nogil=True)
def _doc(phi_w, alpha, u, resample, sweeps):  # noqa: ANN001, ANN201
    """Per position n: log of the particle-mean predictive (resample=True), or per particle
    the log of the product of its predictives (resample=False). ``phi_w`` is φ[:, w] (N × K)
    for the document's tokens in order; ``u`` the uniforms, consumed in order."""
    N, K = phi_w.shape
    R = u.shape[0]
    a_sum = alpha.sum()
    z = np.zeros((R, N), dtype=np.int64)
    cnt = np.zeros((R, K))
    p = np.empty(K)
    log_pn = np.zeros(N)
    log_w = np.zeros(R)
    col = np.zeros(R, dtype=np.int64)  # next unused uniform of each particle
    for n in range(N):
        total = 0.0
        for r in range(R):
            for _ in range(sweeps if resample else 0):
                for m in range(n):
                    cnt[r, z[r, m]] -= 1.0
                    _draw(phi_w, alpha, cnt, z, p, r, m, u[r, col[r]])
                    col[r] += 1
            pred = _draw(phi_w, alpha, cnt, z, p, r, n, u[r, col[r]]) / (n + a_sum)
            col[r] += 1
            total += pred
            log_w[r] += math.log(pred)
        log_pn[n] = math.log(total / R)
    return log_pn, log_w


def left_to_right_doc(phi: np.ndarray, alpha: np.ndarray, words: np.ndarray, n_particles: int,
                      rng: np.random.Generator, resample: bool = True, sweeps: int = 1
                      ) -> float:
    """log p̂(w) of one document given as its token ids in order (see the module docstring)."""
    N = len(words)
    if N == 0:
        return 0.0
    n_u = sweeps * N * (N - 1) // 2 + N if resample else N
    u = rng.random((n_particles, n_u))
    phi_w = np.ascontiguousarray(phi[:, words].T)
    log_pn, log_w = _doc(phi_w, alpha, u, resample, sweeps)
    if resample:
        return float(log_pn.sum())
    m = log_w.max()
    return float(m + math.log(np.mean(np.exp(log_w - m))))


def token_order(row_ids: np.ndarray, row_counts: Any, rng: np.random.Generator) -> np.ndarray:
    """The tokens of a bag of words (ids repeated by count) in a seeded random order."""
    words = np.repeat(row_ids, np.asarray(row_counts, dtype=np.int64))
    return words[rng.permutation(len(words))]
