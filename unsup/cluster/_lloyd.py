"""Hard-EM kernels shared by the k-means estimators: k-means++ seeding and Lloyd passes.

The loop itself is :class:`unsup.train.em.EMEngine`; these are its k-means pieces.

Several restarts (``n_init``) run *together*: their centres are stacked into one
``(R·K) × D`` matrix, so one GEMM computes the distances of a chunk of points to the centres of
every run, and a scatter-add accumulates every run's sufficient statistics (per-cluster sums
and counts). Data are processed in row chunks, so memory stays bounded and no
N×K×D tensor is ever formed. Under ``torchrun`` the statistics are summed across ranks
(:mod:`unsup.distributed`), which makes the sharded fit equal to the single-process one.
"""

from __future__ import annotations

import math

import torch

from unsup import distributed as ud
from unsup._numba import HAVE_NUMBA
from unsup.cluster._kpp import kmeans_plusplus_compiled
from unsup.ops import chunks, sq_norms
from unsup.train.em import em_chunk_rows, global_count

__all__ = ["kmeans_plusplus", "uniforms", "lloyd_pass", "assign", "accumulate", "min_distances",
           "sample_rows", "farthest_points", "global_count"]


def sample_rows(X: torch.Tensor, weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Draw rows of the (possibly sharded) data by inverse-CDF sampling.

    ``weights`` is R×N_local (non-negative), ``u`` is R×L uniforms in [0, 1) drawn identically
    on every rank. Returns the R×L×D sampled rows, identical on every rank.
    """
    R, L = u.shape
    w = weights.to(torch.float64)
    cum = torch.cumsum(w, dim=1)  # R × N
    if ud.world_size() == 1:  # the same draws without the shard bookkeeping (k-means++ calls
        # this once per centre: a dozen fewer small ops each)
        target = u.to(torch.float64) * cum[:, -1:]
        idx = torch.searchsorted(cum, target, right=True).clamp_(max=X.shape[0] - 1)
        return X[idx.reshape(-1)].reshape(R, L, -1)
    local_tot = cum[:, -1].clone()
    totals = ud.all_gather_cat(local_tot.unsqueeze(0))  # world × R
    prefix = torch.cumsum(totals, 0) - totals  # mass of lower ranks
    target = u.to(torch.float64) * totals.sum(0).unsqueeze(1)  # R × L, in [0, total)
    me = ud.rank()
    lo = prefix[me].unsqueeze(1)
    mine = (target >= lo) & (target < lo + local_tot.unsqueeze(1))
    if ud.world_size() > 1:
        # the last rank owns any target that rounding pushed past the total
        if me == ud.world_size() - 1:
            mine |= target >= lo + local_tot.unsqueeze(1)
    else:
        mine[:] = True
    idx = torch.searchsorted(cum, (target - lo).contiguous(), right=True).clamp_(max=X.shape[0] - 1)
    out = X[idx.reshape(-1)].reshape(R, L, -1).clone()
    out[~mine] = 0
    ud.all_reduce_sum(out)
    return out


def uniforms(generator: torch.Generator | list[torch.Generator], R: int, L: int,
             device: torch.device) -> torch.Tensor:
    """R×L uniforms in [0, 1) (float64): from one CPU generator, or row r from ``generator[r]``
    when a list (one per run; see :func:`unsup.train.seeding.run_generators`)."""
    if isinstance(generator, list):
        u = torch.stack([torch.rand(L, generator=g, dtype=torch.float64) for g in generator])
    else:
        u = torch.rand(R, L, generator=generator, dtype=torch.float64)
    return u.to(device)


KEEP_ELEMS = 2**25  # k-means++: largest R·L·N buffer of candidate distances kept (128 MB f32)
#: k-means++ in compiled loops (one process on the CPU) up to KPP_D dimensions, and up to
#: 2·KPP_D with at most KPP_SMALL_ROWS rows: against the GEMM path, 3 runs, D = 16 took
#: 0.42-0.72x the time at 4,096-10,000 rows (2 threads) but 1.05x (2 threads) to 1.45x
#: (1 thread) at 10^5; D = 32 1.2-2.0x from 10^4 rows (BENCHMARKS.md)
KPP_D = 8
KPP_SMALL_ROWS = 2**15


def kmeans_plusplus(
    X: torch.Tensor, n_clusters: int, n_runs: int,
    generator: torch.Generator | list[torch.Generator],
    x_sq: torch.Tensor | None = None, n_local_trials: int | None = None,
) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007) for ``n_runs`` runs at once.

    Each new centre is the best of ``2 + ln K`` candidates drawn with probability proportional to
    D(x)², the squared distance to the closest centre chosen so far (scikit-learn's variant).
    Returns an R×K×D tensor. Uniform draws come from a CPU generator (or one per run), so the
    result does not depend on the device or on how the data are sharded. In one process on
    the CPU at D ≤ KPP_D (or ≤ 2·KPP_D on at most KPP_SMALL_ROWS rows) the same draws run in
    compiled loops (:mod:`._kpp`; 0.24-0.6x the time at D ≤ 8, 0.4-0.9x at D = 16 on
    4,096-10,000 rows), whose distances may differ from the GEMM's in the last bits.
    """
    N, D = X.shape
    R, K = n_runs, n_clusters
    L = n_local_trials or 2 + int(math.log(K))

    def rand(R: int, L: int) -> torch.Tensor:
        return uniforms(generator, R, L, X.device)

    if (X.device.type == "cpu" and HAVE_NUMBA and ud.world_size() == 1
            and (D <= KPP_D or (D <= 2 * KPP_D and N <= KPP_SMALL_ROWS))):
        u0 = rand(R, 1)  # the same uniforms in the same order as below
        U = torch.stack([rand(R, L) for _ in range(1, K)]) if K > 1 else torch.empty(0, R, L)
        return kmeans_plusplus_compiled(X, u0, U.to(torch.float64))
    if x_sq is None:
        x_sq = sq_norms(X)
    step = em_chunk_rows(R * L, N)
    centers = torch.empty(R, K, D, dtype=X.dtype, device=X.device)
    centers[:, 0] = sample_rows(X, torch.ones(R, N, device=X.device), rand(R, 1))[:, 0]
    closest = torch.empty(R, N, dtype=X.dtype, device=X.device)
    for s in chunks(N, step):
        closest[:, s] = sq_distances_t(X[s], centers[:, 0], x_sq[s])
    # every candidate's updated D(x)², kept when it is no wider than a row of X and small
    # enough, so that the chosen one's need not be recomputed: a second pass over X per centre
    # (memory-bound at large D: 10,000 × 784, K = 256, 3 runs: 8.1 → 5.3 s) saved
    kept = R * L <= D and R * L * N <= KEEP_ELEMS
    keep = torch.empty(R, L, N if kept else 0, dtype=X.dtype, device=X.device)
    rows = torch.arange(R, device=X.device)
    for k in range(1, K):
        cand = sample_rows(X, closest, rand(R, L))  # R × L × D
        flat = cand.reshape(R * L, D)
        c_sq = sq_norms(flat)
        pot = torch.zeros(R, L, dtype=torch.float64, device=X.device)
        for s in chunks(N, step):
            d = sq_distances_t(X[s], flat, x_sq[s], c_sq).view(R, L, -1)
            m = torch.minimum(d, closest[:, None, s], out=keep[:, :, s] if keep.numel() else d)
            pot += m.sum(-1, dtype=torch.float64)
        ud.all_reduce_sum(pot)
        best = pot.argmin(1)
        chosen = cand[rows, best]  # R × D
        centers[:, k] = chosen
        if keep.numel():
            closest = keep[rows, best]
            continue
        ch_sq = sq_norms(chosen)
        for s in chunks(N, step):
            torch.minimum(closest[:, s], sq_distances_t(X[s], chosen, x_sq[s], ch_sq),
                          out=closest[:, s])
    return centers


def sq_distances_t(
    X: torch.Tensor, C: torch.Tensor, x_sq: torch.Tensor, c_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared distances, transposed: C×n (centres × rows), clamped ≥ 0. With few centres an
    n×C GEMM output was 2-5× slower in MKL than this layout."""
    if c_sq is None:
        c_sq = sq_norms(C)
    d = torch.addmm(c_sq.unsqueeze(1), C, X.T, alpha=-2)
    return d.add_(x_sq).clamp_(min=0)


def assign(
    X: torch.Tensor, x_sq: torch.Tensor, flat: torch.Tensor, c_sq: torch.Tensor, R: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre of each row of a chunk ``X`` (n×D) for R runs (``flat`` is (R·K)×D).

    Returns ``(min squared distance R×n, label R×n)``. The distances are formed transposed,
    ``‖μ‖² − 2 μ·x`` as an (R·K)×n GEMM, so that the minimum over the K centres of a run is a
    reduction over an *outer* dimension, which vectorises across rows (``argmin`` over a short
    inner dimension does not, and took as long as the GEMM itself). The label is the first
    index attaining the minimum, as ``argmin`` (and scikit-learn) would give.
    """
    K = flat.shape[0] // R
    d = torch.addmm(c_sq.unsqueeze(1), flat, X.T, alpha=-2).view(R, K, -1)
    m = d.amin(1, keepdim=True)  # R × 1 × n
    rank = torch.arange(K, 0, -1, dtype=d.dtype, device=d.device).view(1, K, 1)
    w = d.sub_(m).eq_(0).mul_(rank).amax(1)  # K − (first index of the minimum)
    labels = K - w.to(torch.long)
    return (m.squeeze(1) + x_sq).clamp_(min=0), labels


def accumulate(
    X: torch.Tensor, labels: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor,
) -> None:
    """Add each row of ``X`` to the sum of its cluster, per run (``sums`` R×K×D, ``counts``
    R×K, ``labels`` R×n): a scatter-add of N×D values, not a one-hot GEMM of N×K×D."""
    R, K = counts.shape
    for r in range(R):
        sums[r].index_add_(0, labels[r], X.to(sums.dtype))
    offs = (torch.arange(R, device=X.device) * K).unsqueeze(1)
    counts += torch.bincount((labels + offs).reshape(-1), minlength=R * K).view(R, K)


def lloyd_pass(
    X: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, *, need_stats: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One assignment pass for R runs (``centers`` is R×K×D).

    Returns ``(sums R×K×D, counts R×K, inertia R, labels R×N, min_dist R×N)``; sums, counts
    and inertia are summed over ranks.
    """
    R, K, D = centers.shape
    N = X.shape[0]
    flat = centers.reshape(R * K, D)
    c_sq = sq_norms(flat)
    acc = torch.float64 if X.dtype == torch.float64 else torch.float32
    sums = torch.zeros(R, K, D, dtype=acc, device=X.device)
    counts = torch.zeros(R, K, dtype=torch.float64, device=X.device)
    inertia = torch.zeros(R, dtype=torch.float64, device=X.device)
    labels = torch.empty(R, N, dtype=torch.long, device=X.device)
    mind = torch.empty(R, N, dtype=X.dtype, device=X.device)
    for s in chunks(N, em_chunk_rows(R * K, N)):
        md, lab = assign(X[s], x_sq[s], flat, c_sq, R)
        labels[:, s] = lab
        mind[:, s] = md
        inertia += md.sum(1, dtype=torch.float64)
        if need_stats:
            accumulate(X[s], lab, sums, counts)
    ud.all_reduce_sum(sums, counts, inertia)
    return sums, counts, inertia, labels, mind


def min_distances(X: torch.Tensor, x_sq: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Squared distance of every row to its nearest centre of ``C`` (K×D), chunked."""
    out = torch.empty(X.shape[0], dtype=X.dtype, device=X.device)
    c_sq = sq_norms(C)
    for s in chunks(X.shape[0], em_chunk_rows(C.shape[0], X.shape[0])):
        out[s] = assign(X[s], x_sq[s], C, c_sq, 1)[0][0]
    return out


def farthest_points(X: torch.Tensor, min_dist: torch.Tensor, m: int) -> torch.Tensor:
    """The ``m`` points (m×D) farthest from their centre, across all ranks."""
    m_loc = min(m, X.shape[0])
    vals, idx = torch.topk(min_dist, m_loc)
    vals = ud.all_gather_cat(vals.to(torch.float64))
    pts = ud.all_gather_cat(X[idx])
    top = torch.topk(vals, min(m, vals.shape[0])).indices
    return pts[top]
