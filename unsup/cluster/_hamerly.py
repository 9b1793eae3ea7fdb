"""Lloyd's iteration with Hamerly's bounds: the same assignments, most distances skipped.

Hamerly (2010), "Making k-means even faster". For each row i assigned to centre a(i), keep an
upper bound u(i) ≥ ‖x_i − c_a(i)‖ and a lower bound l(i) ≤ min_{k≠a(i)} ‖x_i − c_k‖. After the
M-step moves centre k by δ_k (triangle inequality)

    u(i) ← u(i) + δ_a(i),        l(i) ← l(i) − max_{k≠a(i)} δ_k .

With s(k) = ½ min_{k'≠k} ‖c_k − c_k'‖, the row keeps its centre if u(i) ≤ max(l(i), s(a(i)));
otherwise u(i) is made exact (D operations) and the test repeated; only a row that fails twice
needs its distances to all K centres, computed here as one GEMM over the failing rows of a
chunk. The assignments are Lloyd's (up to rounding at exact ties), so the fit is Lloyd's fit;
late iterations, where few rows are near a boundary, cost O(N·D) instead of O(N·K·D).

The statistics of the pass (per-cluster Σx, count, Σ‖x‖²) are accumulated over every row in
float64, so the inertia at the pass's centres follows without the distances:
Σ_k [Σ‖x‖²_k − 2 c_k·Σx_k + n_k ‖c_k‖²].
"""

from __future__ import annotations

import math

import numpy as np
import torch

from unsup._numba import njit

__all__ = ["bounds_pass", "settle_rows", "accumulate_rows", "half_separation", "inertia_of"]


@njit(cache=True, nogil=True, fastmath=True)
def bounds_pass(X: np.ndarray, C: np.ndarray, a: np.ndarray, u: np.ndarray, l: np.ndarray,
                delta: np.ndarray, half: np.ndarray, need: np.ndarray) -> np.ndarray:
    """For every run r: move the bounds of the chunk's rows by the centre shifts
    ``delta[r]``, test them and tighten the failing ones; the rows that still fail are written
    to ``need[r]``. Returns the number of those per run."""
    R, K, D = C.shape
    n_need = np.zeros(R, dtype=np.int64)
    for r in range(R):
        m1, m2, k1 = -1.0, -1.0, -1  # largest and second-largest shift
        for k in range(K):
            if delta[r, k] > m1:
                m2, m1, k1 = m1, delta[r, k], k
            elif delta[r, k] > m2:
                m2 = delta[r, k]
        ar, ur, lr, dr, hr, Cr = a[r], u[r], l[r], delta[r], half[r], C[r]
        m = 0
        for i in range(X.shape[0]):
            ai = ar[i]
            ui = ur[i] + dr[ai]
            li = lr[i] - (m2 if ai == k1 else m1)
            z = max(li, hr[ai])
            if ui > z:
                s = 0.0
                for j in range(D):
                    t = X[i, j] - Cr[ai, j]
                    s += t * t
                ui = math.sqrt(s)
                if ui > z:
                    need[r, m] = i
                    m += 1
            ur[i] = ui
            lr[i] = li
        n_need[r] = m
    return n_need


@njit(cache=True, nogil=True, fastmath=True)
def settle_rows(d: np.ndarray, xf_sq: np.ndarray, rows: np.ndarray, a: np.ndarray,
                u: np.ndarray, l: np.ndarray) -> None:
    """Assign the rows ``rows`` of one run from their K × m block ``d`` of ‖c‖² − 2 c·x
    (``xf_sq`` is their ‖x‖²): nearest centre (the first on ties, as ``argmin``), distance to
    it (u) and to the second nearest (l)."""
    K, m = d.shape
    b1 = np.full(m, np.inf, dtype=d.dtype)
    b2 = np.full(m, np.inf, dtype=d.dtype)
    kb = np.zeros(m, dtype=np.int64)
    for k in range(K):  # row-major sweep of d: contiguous loads
        for j in range(m):
            v = d[k, j]
            if v < b1[j]:
                b2[j] = b1[j]
                b1[j] = v
                kb[j] = k
            elif v < b2[j]:
                b2[j] = v
    for j in range(m):
        i = rows[j]
        a[i] = kb[j]
        u[i] = math.sqrt(max(b1[j] + xf_sq[j], 0.0))
        l[i] = math.sqrt(max(b2[j] + xf_sq[j], 0.0))


@njit(cache=True, nogil=True, fastmath=True)
def accumulate_rows(X: np.ndarray, x_sq: np.ndarray, a: np.ndarray, sums: np.ndarray,
                    counts: np.ndarray, sq: np.ndarray) -> None:
    """Add each row to its cluster's Σx, count and Σ‖x‖² (float64), for every run. A
    separate pass: fused into the bounds loop it ran ~8x slower."""
    D = X.shape[1]
    for r in range(a.shape[0]):
        ar, sr, cr, qr = a[r], sums[r], counts[r], sq[r]
        for i in range(X.shape[0]):
            k = ar[i]
            row = sr[k]
            for j in range(D):
                row[j] += X[i, j]
            cr[k] += 1.0
            qr[k] += x_sq[i]


def half_separation(C: torch.Tensor) -> torch.Tensor:
    """s(k) = ½ min_{k'≠k} ‖c_k − c_k'‖ for every run (R×K, float64)."""
    Cd = C.to(torch.float64)
    dist = torch.cdist(Cd, Cd)
    dist.diagonal(dim1=1, dim2=2).fill_(math.inf)
    return 0.5 * dist.amin(2)


def inertia_of(C: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor, sq: torch.Tensor
               ) -> torch.Tensor:
    """Σ_i ‖x_i − c_a(i)‖² per run from the pass's statistics (R×K×D, R×K, R×K)."""
    Cd = C.to(torch.float64)
    return (sq - 2 * (Cd * sums).sum(-1) + counts * (Cd * Cd).sum(-1)).sum(-1)
