"""k-means++ seeding in compiled loops, for the CPU at few dimensions.

The same draws as :func:`._lloyd.kmeans_plusplus` (scikit-learn's greedy variant: each new
centre is the best of L candidates drawn with probability ∝ D(x)², the one that most lowers
the potential Σ_i min(D(x_i)², ‖x_i − c‖²)), from the same uniforms in the same order. The
torch path computes ‖x‖² + ‖c‖² − 2 x·c with a GEMM and five elementwise passes over an
(R·L) × N block per centre; at few dimensions the GEMM is cheap and those passes are the
cost (10,000 × 2, K = 64: 61 % of a k-means fit). Here each squared distance is a sum of
squared differences (differences in X's dtype, squares and sums in float64) over the data
transposed (D × N: every inner loop runs over contiguous rows), so it can differ from the
GEMM's in the last bits: a draw that lands within that rounding of a row's boundary in the
cumulative D(x)² may pick its neighbour.
"""

from __future__ import annotations

import numpy as np
import torch

from unsup._numba import njit, row_blocks, run_blocks

__all__ = ["kmeans_plusplus_compiled"]


def kmeans_plusplus_compiled(X: torch.Tensor, u0: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Seeds (R×K×D) of a CPU ``X`` (N×D) for R runs from the uniforms ``u0`` (R×1, the first
    centre) and ``U`` ((K−1)×R×L, the candidates of centre k at ``U[k − 1]``)."""
    XT = np.ascontiguousarray(X.numpy().T)
    R = u0.shape[0]
    idx = np.empty((R, U.shape[0] + 1), dtype=np.int64)
    u0n, Un = u0.numpy(), U.numpy()

    def runs(b: slice) -> None:  # the kernel releases the GIL: runs in parallel
        for r in range(b.start, b.stop):
            _seed_run(XT, float(u0n[r, 0]), np.ascontiguousarray(Un[:, r]), idx[r])

    run_blocks(runs, row_blocks(R, min_rows=1))  # one block of runs per torch thread
    return X[torch.from_numpy(idx.reshape(-1))].reshape(R, idx.shape[1], -1)


@njit(cache=True, nogil=True, fastmath=True)
def _sq_dist(XT: np.ndarray, j: int, d: np.ndarray) -> None:
    """d[i] ← ‖x_i − x_j‖² for every row i (differences in X's dtype, as the GEMM's inputs;
    sums in float64)."""
    D, N = XT.shape
    d[:] = 0.0
    for q in range(D):
        c = XT[q, j]
        for i in range(N):
            t = np.float64(XT[q, i] - c)
            d[i] += t * t


@njit(cache=True, nogil=True, fastmath=True)
def _seed_run(XT: np.ndarray, u0: float, U: np.ndarray, out: np.ndarray) -> None:
    """One run: the row index of every centre into ``out`` (K). Inverse-CDF draws as
    ``sample_rows``' (``searchsorted(cumsum(w), u · Σw, right=True)``, clamped)."""
    D, N = XT.shape
    L = U.shape[1]
    out[0] = min(int(u0 * N), N - 1)  # uniform weights: the cumulative sum is 1, 2, ..., N
    closest, d, cum = np.empty(N), np.empty(N), np.empty(N)
    _sq_dist(XT, out[0], closest)
    cand = np.empty(L, dtype=np.int64)
    for k in range(1, out.shape[0]):
        s = 0.0
        for i in range(N):
            s += closest[i]
            cum[i] = s
        for l_ in range(L):
            cand[l_] = min(np.searchsorted(cum, U[k - 1, l_] * s, side="right"), N - 1)
        best, best_pot = 0, np.inf
        for l_ in range(L):
            _sq_dist(XT, cand[l_], d)
            pot = 0.0
            for i in range(N):
                pot += min(d[i], closest[i])
            if pot < best_pot:  # the first of equal potentials, as argmin
                best, best_pot = l_, pot
        out[k] = cand[best]
        _sq_dist(XT, out[k], d)
        for i in range(N):
            closest[i] = min(closest[i], d[i])
