r"""A diagonal (or spherical) Gaussian mixture's E-step and statistics in one pass over rows.

With rows stored as ``[x, x²]`` (2D columns), the weighted log-density of component k is
linear in them,

.. math::

    \ln π_k + \ln N(x \mid μ_k, \mathrm{diag}(σ_k^2)) = b_k + [x, x^2] \cdot w_k,\qquad
    w_k = [μ_k / σ_k^2,\ -\tfrac12 / σ_k^2],

so the GEMM path computes every ``b_k + [x, x²]·w_k`` (a K×n block), normalises it over k
(log-sum-exp), and sums the statistics ``N_k = Σ_n γ_nk`` and ``Σ_n γ_nk [x_n, x_n²]`` with a
second GEMM. With few components both GEMMs have a K-wide side and run far below the machine's
speed (MNIST PCA-50, K = 10: ~5 GFLOP/s in float64). :func:`e_step_rows` does the same
arithmetic four rows at a time: K dot products of length 2D per row (each weight read once per
block), the log-sum-exp (one ``exp`` per component), the responsibilities, and the block's
rows added into each row of the statistics at once, reading every row of X once.
It also returns the terms of the EM bound that the GEMM path computes (``Σ ln p(x)``,
``Σ q ln γ`` with q the previous responsibilities, ``Σ q ln q``) and writes the new
responsibilities and their ``Σ γ ln γ`` in place of the old.
"""

from __future__ import annotations

import math

import numpy as np

from unsup._numba import njit

__all__ = ["e_step_rows"]

#: reassociation and contraction (vectorised dot products) but no finite-math assumptions
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, nogil=True, fastmath=_FAST)
def _log_densities(X: np.ndarray, i: int, m: int, Wt: np.ndarray, bias: np.ndarray,
                   lp: np.ndarray) -> None:  # pragma: no cover - compiled
    """``lp[k, j] = bias[k] + X[i + j] · Wt[k]`` for the ``m`` (≤ 4) rows from ``i``: each
    weight read once for the rows of the block, four dot products in flight."""
    w = X.shape[1]
    zero = X[i, 0] * 0  # sums in X's dtype, as the GEMM path's (float32: twice the lanes)
    for k in range(Wt.shape[0]):
        wk = Wt[k]
        if m == 4:
            x0, x1, x2, x3 = X[i], X[i + 1], X[i + 2], X[i + 3]
            a0 = a1 = a2 = a3 = zero
            for d in range(w):
                v = wk[d]
                a0 += x0[d] * v
                a1 += x1[d] * v
                a2 += x2[d] * v
                a3 += x3[d] * v
            lp[k, 0], lp[k, 1] = bias[k] + a0, bias[k] + a1
            lp[k, 2], lp[k, 3] = bias[k] + a2, bias[k] + a3
        else:
            for j in range(m):
                x = X[i + j]
                a = zero
                for d in range(w):
                    a += x[d] * wk[d]
                lp[k, j] = bias[k] + a


@njit(cache=True, nogil=True, fastmath=_FAST)
def _add_rows(X: np.ndarray, i: int, m: int, R: np.ndarray, S: np.ndarray
              ) -> None:  # pragma: no cover - compiled
    """``S[k] += Σ_j R[k, j] X[i + j]`` for the ``m`` (≤ 4) rows from ``i``: each row of S
    read and written once per block."""
    w = X.shape[1]
    for k in range(S.shape[0]):
        Sk = S[k]
        if m == 4:
            x0, x1, x2, x3 = X[i], X[i + 1], X[i + 2], X[i + 3]
            r0, r1, r2, r3 = R[k, 0], R[k, 1], R[k, 2], R[k, 3]
            for d in range(w):
                Sk[d] += r0 * x0[d] + r1 * x1[d] + r2 * x2[d] + r3 * x3[d]
        else:
            for j in range(m):
                x = X[i + j]
                r = R[k, j]
                for d in range(w):
                    Sk[d] += r * x[d]


@njit(cache=True, nogil=True, fastmath=_FAST)
def e_step_rows(XX2: np.ndarray, Wt: np.ndarray, bias: np.ndarray, q: np.ndarray,
                qlogq: np.ndarray, r0: int, nk: np.ndarray, S: np.ndarray,
                out: np.ndarray, tiny: float) -> None:  # pragma: no cover - compiled
    """Rows ``XX2`` (n×2D, ``[x, x²]``) are local rows ``r0 … r0+n-1``.

    ``Wt`` (K×2D) and ``bias`` (K) give the log-densities; ``q`` (K×N) holds the previous
    responsibilities and ``qlogq`` (N) their ``Σ_k q ln q``, both replaced by the new ones.
    Adds to ``nk`` (K) and ``S`` (K×2D, float64) and to ``out`` = [Σ ln p(x), Σ q ln γ,
    Σ q ln q (old)]. Responsibilities below ``tiny`` (the smallest normal number of X's
    dtype) count as 0: each moves by less than ``tiny``; ln γ stays exact.
    """
    n = XX2.shape[0]
    K = Wt.shape[0]
    lp = np.empty((K, 4))
    R = np.empty((K, 4), XX2.dtype)  # a block's responsibilities, for the statistics
    E = np.empty(K)
    ll = 0.0
    qlr = 0.0
    h = 0.0
    for i in range(0, n, 4):
        m = min(4, n - i)
        _log_densities(XX2, i, m, Wt, bias, lp)
        for j in range(m):
            top = -np.inf
            for k in range(K):
                top = max(top, lp[k, j])
            s = 0.0
            for k in range(K):
                e = math.exp(lp[k, j] - top)
                E[k] = e
                s += e
            log_s = math.log(s)
            norm = top + log_s
            inv = 1.0 / s
            ll += norm
            row = r0 + i + j
            h += qlogq[row]
            rlr = 0.0
            for k in range(K):
                lr = lp[k, j] - norm
                r = E[k] * inv
                if r < tiny:  # a subnormal (in R's dtype) slows every product it enters
                    r = 0.0
                R[k, j] = r
                qlr += q[k, row] * lr
                rlr += r * lr
                q[k, row] = r
                nk[k] += r
            qlogq[row] = rlr
        _add_rows(XX2, i, m, R, S)
    out[0] += ll
    out[1] += qlr
    out[2] += h
