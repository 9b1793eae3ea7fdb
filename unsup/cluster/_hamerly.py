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

__all__ = ["bounds_pass", "settle_rows", "settle_block", "gemm_settles", "move_rows",
           "accumulate_rows", "half_separation", "inertia_of", "centre_norms", "e_pass",
           "m_step", "lloyd_steps", "row_col_moments"]


@njit(cache=True, nogil=True, fastmath=True)
def bounds_pass(X: np.ndarray, C: np.ndarray, a: np.ndarray, u: np.ndarray, l: np.ndarray,
                delta: np.ndarray, half: np.ndarray, need: np.ndarray) -> np.ndarray:
    """For every run r: move the bounds of the chunk's rows by the centre shifts
    ``delta[r]``, test them and tighten the failing ones; the rows that still fail are written
    to ``need[r]``. Returns the number of those per run."""
    n_need = np.zeros(C.shape[0], dtype=np.int64)
    z = np.empty(X.shape[0])
    for r in range(C.shape[0]):
        n_need[r] = _bounds_one(X, C[r], a[r], u[r], l[r], delta[r], half[r], need[r], z)
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
    kb = np.zeros(m, dtype=np.int32)
    for k in range(K):  # row-major sweep of d, branch-free: contiguous, vectorised
        kk = np.int32(k)
        for j in range(m):
            v = d[k, j]
            kb[j] = kk if v < b1[j] else kb[j]
            b2[j] = min(b2[j], max(b1[j], v))
            b1[j] = min(b1[j], v)
    for j in range(m):
        i = rows[j]
        a[i] = kb[j]
        u[i] = math.sqrt(max(b1[j] + xf_sq[j], 0.0))
        l[i] = math.sqrt(max(b2[j] + xf_sq[j], 0.0))


def settle_block(X: np.ndarray, x_sq: np.ndarray, C: np.ndarray, rows: np.ndarray,
                 a: np.ndarray, u: np.ndarray, l: np.ndarray) -> None:
    """:func:`settle_rows` for one run without a GEMM: the compiled distance loops, faster
    than the gather and GEMM at few dimensions (see ``kmeans.compiled_settle``)."""
    K, D = C.shape
    c_sq = (C.astype(np.float64) ** 2).sum(1).astype(X.dtype)  # as the engine's, within rounding
    scratch = np.zeros((K, D)), np.zeros(K), np.zeros(K)  # statistics: not wanted here
    _settle_block(X, x_sq, C, c_sq, rows, len(rows), a, u, l, *scratch)


@njit(cache=True, nogil=True, fastmath=True)
def move_rows(X: np.ndarray, x_sq: np.ndarray, rows: np.ndarray, old: np.ndarray,
              a: np.ndarray, sums: np.ndarray, counts: np.ndarray, sq: np.ndarray) -> None:
    """Move each row of ``rows`` whose label changed from ``old[j]`` to ``a[row]`` between
    the clusters' statistics (Σx, count, Σ‖x‖²)."""
    for j in range(rows.shape[0]):
        i = rows[j]
        if a[i] != old[j]:
            _move_row(X, x_sq, i, old[j], a[i], sums, counts, sq)


@njit(cache=True, nogil=True, fastmath=True)
def _move_row(X: np.ndarray, x_sq: np.ndarray, i: int, k0: int, k1: int, sums: np.ndarray,
              counts: np.ndarray, sq: np.ndarray) -> None:
    """Row i's x, 1 and ‖x‖² from cluster k0's statistics to k1's."""
    for q in range(X.shape[1]):
        sums[k0, q] -= X[i, q]
        sums[k1, q] += X[i, q]
    counts[k0] -= 1.0
    counts[k1] += 1.0
    sq[k0] -= x_sq[i]
    sq[k1] += x_sq[i]


@njit(cache=True, nogil=True, fastmath=True)
def accumulate_rows(X: np.ndarray, x_sq: np.ndarray, a: np.ndarray, sums: np.ndarray,
                    counts: np.ndarray, sq: np.ndarray) -> None:
    """Add each row to its cluster's Σx, count and Σ‖x‖² (float64), for every run. A
    separate pass: fused into the bounds loop it ran ~8x slower."""
    for r in range(a.shape[0]):
        _accumulate_one(X, x_sq, a[r], sums[r], counts[r], sq[r])


def half_separation(C: torch.Tensor) -> torch.Tensor:
    """s(k) = ½ min_{k'≠k} ‖c_k − c_k'‖ for every run (R×K, float64), by the compiled loop's
    own kernel, so both paths prune with the same numbers."""
    R, K, D = C.shape
    Cn = C.cpu().numpy()
    half, C64 = np.empty((R, K)), np.empty((K, D))
    for r in range(R):
        _half_separation(Cn[r], C64, half[r])
    return torch.from_numpy(half)


def inertia_of(C: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor, sq: torch.Tensor
               ) -> torch.Tensor:
    """Σ_i ‖x_i − c_a(i)‖² per run from the pass's statistics (R×K×D, R×K, R×K)."""
    Cd = C.to(torch.float64)
    return (sq - 2 * (Cd * sums).sum(-1) + counts * (Cd * Cd).sum(-1)).sum(-1)


def row_col_moments(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(‖x_i‖² per row, [Σ_i x_i ; Σ_i x_i²] per column)`` in float64, in one compiled pass
    over a CPU ``X`` with no float64 copy of it (the copy and torch's column ``einsum`` took
    ~0.25 s on 100,000 × 64, against ~7 ms here)."""
    N, D = X.shape
    rows, mom = np.empty(N), np.zeros((2, D))
    _moments(X.numpy(), rows, mom)
    return torch.from_numpy(rows), torch.from_numpy(mom)


@njit(cache=True, nogil=True)  # no fastmath: every square exact in float64, as the GEMM paths'
def _moments(X: np.ndarray, rows: np.ndarray, mom: np.ndarray) -> None:
    for i in range(X.shape[0]):
        s = 0.0
        for j in range(X.shape[1]):
            v = np.float64(X[i, j])
            s += v * v
            mom[0, j] += v
            mom[1, j] += v * v
        rows[i] = s


@njit(cache=True, nogil=True, fastmath=True)
def _settle_block(X: np.ndarray, x_sq: np.ndarray, C: np.ndarray, c_sq: np.ndarray,
                  rows: np.ndarray, m: int, a: np.ndarray, u: np.ndarray, l: np.ndarray,
                  sums: np.ndarray, counts: np.ndarray, sq: np.ndarray) -> None:
    """Exact nearest and second-nearest distances of the rows ``rows[:m]`` from ‖c‖² − 2 c·x
    for every centre; a row whose label changes moves its x, 1 and ‖x‖² from its old
    cluster's statistics to its new one's.

    Rows go in blocks of B, gathered transposed (D × B), so every inner loop runs over B
    contiguous rows in X's dtype: the distances as B-wide multiply-adds (four centres per
    load of a row block), the nearest and second nearest as branch-free minima (a loop
    vectorised over the K centres of one row ran at a third of the speed). At many centres
    (:func:`gemm_settles`) and at least GEMM_SETTLE_MIN_ROWS rows, :func:`_settle_gemm`
    instead, whose BLAS threads the caller limits."""
    K, D = C.shape
    if gemm_settles(K, D) and m >= GEMM_SETTLE_MIN_ROWS:
        _settle_gemm(X, x_sq, C, c_sq, rows, m, a, u, l, sums, counts, sq)
        return
    B = max(8, min(64, 4096 // D))
    C2 = np.empty((K, D), dtype=X.dtype)
    for k in range(K):
        for q in range(D):
            C2[k, q] = C[k, q] * -2
    Xb = np.zeros((D, B), dtype=X.dtype)
    dd = np.empty((4, B), dtype=X.dtype)
    b1, b2 = np.empty(B, dtype=X.dtype), np.empty(B, dtype=X.dtype)
    kb = np.empty(B, dtype=np.int32)
    for j0 in range(0, m, B):
        nb = min(B, m - j0)
        for j in range(nb):
            i = rows[j0 + j]
            for q in range(D):
                Xb[q, j] = X[i, q]
        b1[:] = np.inf
        b2[:] = np.inf
        kb[:] = 0
        for k in range(0, K, 4):
            kn = min(4, K - k)
            for r in range(kn):
                dd[r, :] = c_sq[k + r]
            if kn == 4:  # four centres per load of x: ~0.7x the time at D = K = 64
                for q in range(D):
                    c0, c1, c2, c3 = C2[k, q], C2[k + 1, q], C2[k + 2, q], C2[k + 3, q]
                    for j in range(B):
                        x = Xb[q, j]
                        dd[0, j] += c0 * x
                        dd[1, j] += c1 * x
                        dd[2, j] += c2 * x
                        dd[3, j] += c3 * x
            else:
                for r in range(kn):
                    for q in range(D):
                        c = C2[k + r, q]
                        for j in range(B):
                            dd[r, j] += c * Xb[q, j]
            for r in range(kn):  # in centre order: the first of equal minima, as argmin
                kk = np.int32(k + r)  # (inline: through _take_nearest 1.1-1.5x slower)
                for j in range(B):
                    v = dd[r, j]
                    kb[j] = kk if v < b1[j] else kb[j]
                    b2[j] = min(b2[j], max(b1[j], v))
                    b1[j] = min(b1[j], v)
        _apply_nearest(X, x_sq, rows[j0 : j0 + nb], kb, b1, b2, a, u, l, sums, counts, sq)


@njit(inline="always", fastmath=True)
def _take_nearest(v: np.ndarray, add: np.floating, k: np.int32, b1: np.ndarray, b2: np.ndarray,
                  kb: np.ndarray) -> None:
    """Centre k's values ``v + add`` into each row's nearest (``b1``, ``kb``) and second
    nearest (``b2``): branch-free, vectorised over the rows."""
    for j in range(v.shape[0]):
        x = v[j] + add
        kb[j] = k if x < b1[j] else kb[j]
        b2[j] = min(b2[j], max(b1[j], x))
        b1[j] = min(b1[j], x)


@njit(cache=True, nogil=True, fastmath=True)
def _apply_nearest(X: np.ndarray, x_sq: np.ndarray, rows: np.ndarray, kb: np.ndarray,
                   b1: np.ndarray, b2: np.ndarray, a: np.ndarray, u: np.ndarray,
                   l: np.ndarray, sums: np.ndarray, counts: np.ndarray, sq: np.ndarray) -> None:
    """Row ``rows[j]`` takes centre kb[j] (moving its x, 1 and ‖x‖² between the clusters'
    statistics if that changes its label) and the bounds u, l from ‖c‖² − 2 c·x (b1, b2)."""
    for j in range(rows.shape[0]):
        i = rows[j]
        if kb[j] != a[i]:
            _move_row(X, x_sq, i, a[i], kb[j], sums, counts, sq)
            a[i] = kb[j]
        u[i] = math.sqrt(max(b1[j] + x_sq[i], 0.0))
        l[i] = math.sqrt(max(b2[j] + x_sq[i], 0.0))


#: :func:`_settle_block` hands its distances to BLAS's GEMM from this many centres and
#: dimensions: per failing row (60 % of 10⁴ listed), K = 256: 1.2-1.9x faster at D = 8-64,
#: K = 128 1.1-1.3x, K = 512 1.3-1.7x; K = 64 1.24-1.7x at D = 8-784 and K = 48 1.2-1.3x
#: against the four-centre loops; K = 32 mixed (0.73-1.3x), K = 16 and D ≤ 4 no faster
#: (BENCHMARKS.md)
GEMM_SETTLE_K, GEMM_SETTLE_D = 48, 8
#: rows per GEMM of :func:`_settle_gemm` (their K × rows distances stay in L2); fewer rows
#: than GEMM_SETTLE_MIN_ROWS stay in the loops (a late iteration's few failing rows: no BLAS
#: call, so none where the caller set no thread limit)
GEMM_SETTLE_ROWS, GEMM_SETTLE_MIN_ROWS = 256, 64


@njit(cache=True, nogil=True)
def gemm_settles(K: int, D: int) -> bool:
    """Whether :func:`_settle_block` at K centres and D dimensions goes through BLAS."""
    return K >= GEMM_SETTLE_K and D >= GEMM_SETTLE_D


@njit(cache=True, nogil=True, fastmath=True)
def _settle_gemm(X: np.ndarray, x_sq: np.ndarray, C: np.ndarray, c_sq: np.ndarray,
                 rows: np.ndarray, m: int, a: np.ndarray, u: np.ndarray, l: np.ndarray,
                 sums: np.ndarray, counts: np.ndarray, sq: np.ndarray) -> None:
    """:func:`_settle_block` through BLAS: blocks of rows gathered transposed (D × B), their
    −2 C·x as one GEMM (``np.dot``: scipy's BLAS, 2-3x the multiply-adds per second of the
    loops at many centres), then the same branch-free sweep for the nearest and second
    nearest. The GEMM sums in its own order: a row within rounding of a tie may take the
    other centre."""
    K, D = C.shape
    B = min(GEMM_SETTLE_ROWS, m)  # each GEMM covers B columns, the last block's too
    C2 = np.empty((K, D), dtype=X.dtype)
    for k in range(K):
        for q in range(D):
            C2[k, q] = C[k, q] * -2
    Xt = np.zeros((D, B), dtype=X.dtype)
    b1, b2 = np.empty(B, dtype=X.dtype), np.empty(B, dtype=X.dtype)
    kb = np.empty(B, dtype=np.int32)
    for j0 in range(0, m, B):
        nb = min(B, m - j0)
        for j in range(nb):
            i = rows[j0 + j]
            for q in range(D):
                Xt[q, j] = X[i, q]
        d = np.dot(C2, Xt)  # K × B (columns past nb: stale rows, never read)
        b1[:] = np.inf
        b2[:] = np.inf
        kb[:] = 0
        for k in range(K):  # in centre order: the first of equal minima, as argmin
            _take_nearest(d[k], c_sq[k], np.int32(k), b1, b2, kb)
        _apply_nearest(X, x_sq, rows[j0 : j0 + nb], kb, b1, b2, a, u, l, sums, counts, sq)


@njit(cache=True, nogil=True, fastmath=True)
def _bounds_one(X: np.ndarray, C: np.ndarray, a: np.ndarray, u: np.ndarray, l: np.ndarray,
                delta: np.ndarray, half: np.ndarray, need: np.ndarray, z: np.ndarray) -> int:
    """:func:`bounds_pass` for one run; returns how many rows of ``need`` still fail (``z``:
    N floats of scratch, the candidates' thresholds).

    Two loops: the first moves every row's bounds and lists the rows whose test fails (a
    conditional increment, no branch), the second makes their u exact; one fused loop with a
    D-long distance behind an unpredictable branch ran ~1.4x slower."""
    K, D = C.shape
    m1, m2, k1 = -1.0, -1.0, -1  # largest and second-largest shift
    for k in range(K):
        if delta[k] > m1:
            m2, m1, k1 = m1, delta[k], k
        elif delta[k] > m2:
            m2 = delta[k]
    dl = np.full(K, m1)  # each centre's lower-bound move: the largest other shift
    if k1 >= 0:
        dl[k1] = m2
    c = 0
    for i in range(X.shape[0]):
        ai = a[i]
        ui = u[i] + delta[ai]
        li = l[i] - dl[ai]
        u[i] = ui
        l[i] = li
        zi = max(li, half[ai])  # from a register: reading z[c] back stalled on the store
        z[c] = zi
        need[c] = i
        c += ui > zi
    m = 0
    for j in range(c):
        i = need[j]
        ai = a[i]
        s = 0.0
        for q in range(D):
            t = X[i, q] - C[ai, q]
            s += t * t
        ui = math.sqrt(s)
        u[i] = ui
        need[m] = i
        m += ui > z[j]
    return m


#: rows per chunk of :func:`_bounds_settle` hold about this many elements of X (1 MiB of
#: float32: the rows a chunk's bounds pass tightened are still in L2 when it settles them)
SETTLE_CHUNK_ELEMS = 2**18


@njit(cache=True, nogil=True, fastmath=True)
def _bounds_settle(X: np.ndarray, x_sq: np.ndarray, C: np.ndarray, c_sq: np.ndarray,
                   a: np.ndarray, u: np.ndarray, l: np.ndarray, delta: np.ndarray,
                   half: np.ndarray, need: np.ndarray, z: np.ndarray, sums: np.ndarray,
                   counts: np.ndarray, sq: np.ndarray) -> int:
    """:func:`_bounds_one` then :func:`_settle_block`, chunk by chunk of rows: the same
    labels, bounds and statistics as the two passes over every row, but a failing row is
    settled while its chunk is in cache (10⁶ × 16, K = 8: 29 against 40 ns per row and
    iteration). Returns the number of rows settled."""
    N, D = X.shape
    step = max(256, SETTLE_CHUNK_ELEMS // D)
    total = 0
    for s in range(0, N, step):
        e = min(N, s + step)
        m = _bounds_one(X[s:e], C, a[s:e], u[s:e], l[s:e], delta, half, need, z)
        _settle_block(X[s:e], x_sq[s:e], C, c_sq, need, m, a[s:e], u[s:e], l[s:e], sums,
                      counts, sq)
        total += m
    return total


@njit(cache=True, nogil=True, fastmath=True)
def _accumulate_one(X: np.ndarray, x_sq: np.ndarray, a: np.ndarray, sums: np.ndarray,
                    counts: np.ndarray, sq: np.ndarray) -> None:
    """:func:`accumulate_rows` for one run."""
    D = X.shape[1]
    for i in range(X.shape[0]):
        k = a[i]
        row = sums[k]
        for j in range(D):
            row[j] += X[i, j]
        counts[k] += 1.0
        sq[k] += x_sq[i]


@njit(cache=True, nogil=True, fastmath=True)
def _half_separation(C: np.ndarray, C64: np.ndarray, half: np.ndarray) -> None:
    """s(k) = ½ min_{k'≠k} ‖c_k − c_k'‖ in float64: pairwise loops, or ‖c‖² + ‖c'‖² − 2 c·c'
    from one GEMM when K²·D is large (as ``torch.cdist`` does)."""
    K, D = C.shape
    for k in range(K):
        half[k] = np.inf
        for j in range(D):
            C64[k, j] = C[k, j]
    if K * K * D > 2**21:
        g = np.dot(C64, C64.T)
        for k in range(K):
            for k2 in range(K):
                if k2 != k:
                    s = g[k, k] + g[k2, k2] - 2.0 * g[k, k2]
                    if s < half[k]:
                        half[k] = s
    else:
        for k in range(K):
            for k2 in range(k + 1, K):
                s = 0.0
                for j in range(D):
                    t = C64[k, j] - C64[k2, j]
                    s += t * t
                if s < half[k]:
                    half[k] = s
                if s < half[k2]:
                    half[k2] = s
    for k in range(K):
        half[k] = 0.5 * math.sqrt(max(half[k], 0.0))


@njit(cache=True, nogil=True, fastmath=True)
def centre_norms(C: np.ndarray, c_sq: np.ndarray, half: np.ndarray) -> None:
    """‖c_k‖² in C's dtype (as the engine's) and s(k) (:func:`half_separation`) of one run."""
    K, D = C.shape
    for k in range(K):
        s = C[0, 0] * 0
        for j in range(D):
            s += C[k, j] * C[k, j]
        c_sq[k] = s
    _half_separation(C, np.empty((K, D)), half)


@njit(cache=True, nogil=True, fastmath=True)
def e_pass(X: np.ndarray, x_sq: np.ndarray, C: np.ndarray, c_sq: np.ndarray,
           half: np.ndarray, a: np.ndarray, u: np.ndarray, l: np.ndarray, delta: np.ndarray,
           need: np.ndarray, z: np.ndarray, sums: np.ndarray, counts: np.ndarray,
           sq: np.ndarray, gemm_min: int) -> int:
    """One E-step of one run on a block of rows, as :func:`lloyd_steps`' (bounds, the failing
    rows' distances, their moves in the block's statistics). Returns the number of failing
    rows; when their distances are more than ``gemm_min`` multiply-adds they are left to the
    caller's GEMM, listed in ``need``, and the count is returned negated."""
    K, D = C.shape
    if X.shape[0] * K * D <= gemm_min:  # never handed to a GEMM: settled chunk by chunk
        return _bounds_settle(X, x_sq, C, c_sq, a, u, l, delta, half, need, z, sums, counts,
                              sq)
    m = _bounds_one(X, C, a, u, l, delta, half, need, z)
    if m * K * D > gemm_min:
        return -m
    _settle_block(X, x_sq, C, c_sq, need, m, a, u, l, sums, counts, sq)
    return m


@njit(cache=True, nogil=True, fastmath=True)
def m_step(C: np.ndarray, sums: np.ndarray, counts: np.ndarray, sq: np.ndarray,
           delta: np.ndarray, first: bool, shift: float, tol: float, C64: np.ndarray,
           old: np.ndarray) -> tuple[int, float, float]:
    """The objective −inertia at the centres C from the E-step's statistics, then the
    engine's convergence test and M-step (see :func:`lloyd_steps`); returns ``(status,
    objective, shift)`` with status 0 (centres moved), 1 (converged) or 2 (a cluster is
    empty: nothing moved). ``C64`` and ``old`` are K × D scratch (float64, C's dtype)."""
    K, D = C.shape
    for k in range(K):  # a loop of its own: LLVM computed float(c) * float(c) in float32
        for j in range(D):
            C64[k, j] = C[k, j]
    inertia = 0.0
    for k in range(K):
        dot, cc = 0.0, 0.0
        for j in range(D):
            dot += C64[k, j] * sums[k, j]
            cc += C64[k, j] * C64[k, j]
        inertia += sq[k] - 2.0 * dot + counts[k] * cc
    if not first and shift <= tol:
        return 1, -inertia, shift
    for k in range(K):
        if counts[k] == 0.0:
            return 2, -inertia, shift
    # -- as the engine's: new centres rounded to C's dtype, each move (new − old) in C's
    # dtype, squared in float64 (from an array: LLVM narrowed fpext(t) * fpext(t))
    old[:] = C
    diff = np.empty(D)
    shift = 0.0
    for k in range(K):
        for j in range(D):
            C[k, j] = sums[k, j] / counts[k]
            diff[j] = C[k, j] - old[k, j]
        mv = 0.0
        for j in range(D):
            mv += diff[j] * diff[j]
        delta[k] = math.sqrt(mv)
        shift += mv
    return 0, -inertia, shift


@njit(cache=True, nogil=True, fastmath=True)
def lloyd_steps(X: np.ndarray, x_sq: np.ndarray, C: np.ndarray, a: np.ndarray, u: np.ndarray,
                l: np.ndarray, delta: np.ndarray, first: bool, shift: float,
                max_steps: int, tol: float, objs: np.ndarray, sums: np.ndarray,
                counts: np.ndarray, sq: np.ndarray, need: np.ndarray, settled: bool,
                gemm_min: int) -> tuple[int, int, float]:
    """Up to ``max_steps`` Lloyd iterations of one run, E-step and M-step, in one call (after
    the first pass, which gave every row its bounds).

    Iteration: the bounds pass (as :func:`bounds_pass`, with s(k) from the current centres),
    exact distances for the rows that fail (:func:`_settle_block`; both as :func:`e_pass`,
    chunk by chunk when no GEMM hand-off can happen), the statistics Σx, count
    and Σ‖x‖² in float64 (summed over every row at the start of a call, then moved row by
    row as labels change: late iterations change few), the objective −inertia at these
    centres into ``objs``; then stop if converged (``shift`` of the last M-step ≤ ``tol``,
    never at the ``first`` iteration of a run), else the M-step as the engine's: centres ←
    Σx / count (in X's dtype), ``delta`` ← each centre's move, ``shift`` ← Σ δ².

    When the failing rows' distances are more than ``gemm_min`` multiply-adds (early
    iterations), the loop stops after the bounds pass with status 3 and the failing rows in
    ``need[1 : need[0] + 1]``: a GEMM computes them faster than these loops, and the caller
    settles them, moves them in the statistics (``sums``, ``counts``, ``sq``: kept across
    calls) and calls again with ``settled`` (the first iteration then skips its bounds pass).

    Returns ``(iterations completed, status, shift)``; status 0: ``max_steps`` M-steps done
    (``C`` holds the new centres); 1: converged at the last E-step (no M-step after it); 2: a
    cluster is empty at the last E-step, whose statistics are left in ``sums`` / ``counts``
    (Σx and count; the caller's M-step repairs the cluster); 3: as above, not counted.
    """
    N, D = X.shape
    K = C.shape[0]
    half = np.empty(K)
    if not settled:  # else the caller kept them current (:func:`move_rows`)
        sums[:] = 0.0
        counts[:] = 0.0
        sq[:] = 0.0
        _accumulate_one(X, x_sq, a, sums, counts, sq)
    c_sq, z = np.empty(K, dtype=X.dtype), np.empty(N)  # z: the bounds' scratch, once
    C64, old = np.empty((K, D)), np.empty((K, D), dtype=X.dtype)
    for step in range(max_steps):
        centre_norms(C, c_sq, half)
        if not (settled and step == 0):
            m = e_pass(X, x_sq, C, c_sq, half, a, u, l, delta, need[1:], z, sums, counts, sq,
                       gemm_min)
            if m < 0:  # handed to the caller's GEMM
                need[0] = -m
                return step, 3, shift
        status, objs[step], shift = m_step(C, sums, counts, sq, delta, first, shift, tol,
                                           C64, old)
        first = False
        if status:
            return step + 1, status, shift
    return max_steps, 0, shift
