"""Lloyd's iteration with Hamerly's bounds over row blocks on several threads, and the GEMM
that settles many failing rows at once.

:func:`._hamerly.lloyd_steps` runs whole iterations in one compiled call on one thread. Here
each iteration's E-step (:func:`._hamerly.e_pass`: bounds, the failing rows' distances, their
moves in the statistics) runs on one block of rows per torch thread, the kernels releasing
the GIL; the blocks' statistics (Σx, count, Σ‖x‖² per cluster, float64, each block's kept
across iterations and moved row by row) are summed, and the M-step is
:func:`._hamerly.m_step`: the same arithmetic as the one-thread loop, so the same fit.
"""

from __future__ import annotations

import numpy as np
import torch

from unsup._numba import run_blocks
from unsup.cluster._hamerly import (
    accumulate_rows,
    centre_norms,
    e_pass,
    m_step,
    move_rows,
    settle_rows,
)
from unsup.ops import sq_norms

__all__ = ["settle_by_gemm", "lloyd_steps_blocks"]

#: a GEMM computes every row's distances (no gather) when more than 1/GATHER_MAX of the rows
#: failed their bounds (early iterations; low K)
GATHER_MAX = 4


def settle_by_gemm(X: torch.Tensor, x_sq: torch.Tensor, C: torch.Tensor, c_sq: torch.Tensor,
                   rows: np.ndarray, a: np.ndarray, u: np.ndarray, l: np.ndarray) -> np.ndarray:
    """Exact labels and bounds (:func:`._hamerly.settle_rows`) of the ``rows`` of ``X`` that
    failed their bounds, from one GEMM ‖c‖² − 2 c·x: over those rows gathered, or over all
    rows when more than 1/GATHER_MAX of them failed (cheaper than the gather). Returns the
    rows settled."""
    n, Xf, xf_sq = X.shape[0], X, x_sq
    if len(rows) * GATHER_MAX < n:
        idx = torch.from_numpy(rows)
        Xf, xf_sq = X[idx], x_sq[idx]
    elif len(rows) < n:
        rows = np.arange(n)
    d = torch.addmm(c_sq.unsqueeze(1), C, Xf.T, alpha=-2)
    settle_rows(d.numpy(), xf_sq.numpy(), rows, a, u, l)
    return rows


def settle_moving(X: torch.Tensor, x_sq: torch.Tensor, x_sq64: np.ndarray, C: np.ndarray,
                  rows: np.ndarray, a: np.ndarray, u: np.ndarray, l: np.ndarray,
                  sums: np.ndarray, counts: np.ndarray, sq: np.ndarray) -> None:
    """:func:`settle_by_gemm` for one run, then every row whose label changed moves in the
    statistics (Σx, count, Σ‖x‖²) that the compiled loop keeps across iterations."""
    wide = len(rows) * GATHER_MAX >= X.shape[0]  # every row settled: keep every old label
    prev = a.copy() if wide else a[rows]
    Ct = torch.from_numpy(C)
    done = settle_by_gemm(X, x_sq, Ct, sq_norms(Ct), rows, a, u, l)
    move_rows(X.numpy(), x_sq64, done, prev if not wide else prev[done], a, sums, counts, sq)


def lloyd_steps_blocks(X: torch.Tensor, x_sq: torch.Tensor, x_sq64: np.ndarray, C: np.ndarray,
                       a: np.ndarray, u: np.ndarray, l: np.ndarray, delta: np.ndarray,
                       first: bool, shift: float, max_steps: int, tol: float,
                       blocks: list[slice], gemm_min: int
                       ) -> tuple[list[float], int, float, np.ndarray, np.ndarray]:
    """Up to ``max_steps`` iterations of one run, as :func:`._hamerly.lloyd_steps` (same
    arguments, bounds state updated in place, ``C`` moved in place), the E-step split over
    ``blocks``. Returns ``(objectives, status, shift, Σx, counts)`` with status 0 (every
    M-step done), 1 (converged) or 2 (a cluster empty at the last E-step, whose statistics
    are returned for the caller's M-step)."""
    Xn = X.numpy()
    K, D = C.shape
    stats = {b.start: (np.zeros((1, K, D)), np.zeros((1, K)), np.zeros((1, K))) for b in blocks}
    run_blocks(lambda b: accumulate_rows(Xn[b], x_sq64[b], a[None, b], *stats[b.start]), blocks)
    need = np.empty(len(a), dtype=np.int64)  # each block lists its failing rows in its own part
    z = np.empty(len(a))  # and the bounds' scratch
    c_sq, half = np.empty(K, dtype=Xn.dtype), np.empty(K)
    C64, old = np.empty((K, D)), np.empty((K, D), dtype=Xn.dtype)
    objs: list[float] = []
    status = 0
    for _ in range(max_steps):
        centre_norms(C, c_sq, half)

        def e_step(b: slice) -> int:
            return e_pass(Xn[b], x_sq64[b], C, c_sq, half, a[b], u[b], l[b], delta, need[b],
                          z[b], *(s[0] for s in stats[b.start]), gemm_min)

        found = run_blocks(e_step, blocks)
        handed = [need[b][:-m] + b.start for b, m in zip(blocks, found, strict=True) if m < 0]
        if handed:  # many failing rows: one GEMM (torch's threads) settles them, their moves
            # charged to the first block's statistics (only the sums over blocks are used)
            settle_moving(X, x_sq, x_sq64, C, np.concatenate(handed), a, u, l,
                          *(s[0] for s in stats[blocks[0].start]))
        sums, counts, sq = (sum(s[i][0] for s in stats.values()) for i in range(3))
        status, obj, shift = m_step(C, sums, counts, sq, delta, first, shift, tol, C64, old)
        objs.append(obj)
        first = False
        if status:
            break
    return objs, status, shift, sums, counts
