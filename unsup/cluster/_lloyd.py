"""Hard-EM engine shared by the k-means estimators: k-means++ seeding and Lloyd passes.

Several restarts (``n_init``) run *together*: their centres are stacked into one
``(R·K) × D`` matrix, so one GEMM computes the distances of a chunk of points to the centres of
every run, and one GEMM with a one-hot matrix accumulates every run's sufficient statistics
(per-cluster sums and counts). Data are processed in row chunks, so memory stays bounded and no
N×K×D tensor is ever formed. Under ``torchrun`` the statistics are summed across ranks
(:mod:`unsup.distributed`), which makes the sharded fit equal to the single-process one.
"""

from __future__ import annotations

import math

import torch

from unsup import distributed as ud
from unsup.ops import chunk_rows, chunks, min_index, sq_distances, sq_norms

__all__ = ["kmeans_plusplus", "lloyd_pass", "sample_rows", "farthest_points", "global_count"]


def global_count(n_local: int, device: torch.device) -> int:
    t = torch.tensor([n_local], dtype=torch.float64, device=device)
    ud.all_reduce_sum(t)
    return int(t.item())


def sample_rows(X: torch.Tensor, weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Draw rows of the (possibly sharded) data by inverse-CDF sampling.

    ``weights`` is R×N_local (non-negative), ``u`` is R×L uniforms in [0, 1) drawn identically
    on every rank. Returns the R×L×D sampled rows, identical on every rank.
    """
    R, L = u.shape
    w = weights.to(torch.float64)
    cum = torch.cumsum(w, dim=1)  # R × N
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


def kmeans_plusplus(
    X: torch.Tensor, n_clusters: int, n_runs: int, generator: torch.Generator,
    x_sq: torch.Tensor | None = None, n_local_trials: int | None = None,
) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007) for ``n_runs`` runs at once.

    Each new centre is the best of ``2 + ln K`` candidates drawn with probability proportional to
    D(x)², the squared distance to the closest centre chosen so far (scikit-learn's variant).
    Returns an R×K×D tensor. Uniform draws come from a CPU generator, so the result does not
    depend on the device or on how the data are sharded.
    """
    N, D = X.shape
    R, K = n_runs, n_clusters
    L = n_local_trials or 2 + int(math.log(K))
    if x_sq is None:
        x_sq = sq_norms(X)
    step = chunk_rows(R * L, N)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, dtype=torch.float64).to(X.device)

    centers = torch.empty(R, K, D, dtype=X.dtype, device=X.device)
    centers[:, 0] = sample_rows(X, torch.ones(R, N, device=X.device), rand(R, 1))[:, 0]
    closest = torch.empty(R, N, dtype=X.dtype, device=X.device)
    for s in chunks(N, step):
        closest[:, s] = sq_distances(X[s], centers[:, 0], x_sq[s]).T
    for k in range(1, K):
        cand = sample_rows(X, closest, rand(R, L))  # R × L × D
        flat = cand.reshape(R * L, D)
        c_sq = sq_norms(flat)
        pot = torch.zeros(R, L, dtype=torch.float64, device=X.device)
        for s in chunks(N, step):
            d = sq_distances(X[s], flat, x_sq[s], c_sq).T.reshape(R, L, -1)
            pot += torch.minimum(d, closest[:, None, s]).sum(-1, dtype=torch.float64)
        ud.all_reduce_sum(pot)
        best = pot.argmin(1)
        chosen = cand[torch.arange(R, device=X.device), best]  # R × D
        centers[:, k] = chosen
        ch_sq = sq_norms(chosen)
        for s in chunks(N, step):
            d = sq_distances(X[s], chosen, x_sq[s], ch_sq).T
            torch.minimum(closest[:, s], d, out=closest[:, s])
    return centers


def lloyd_pass(
    X: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, *, need_stats: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One assignment pass for R runs (``centers`` is R×K×D).

    Returns ``(sums R×K×D, counts R×K, inertia R, labels R×N, min_dist R×N)``; sums, counts
    and inertia are summed over ranks. The sums are accumulated as ``onehot(labels)ᵀ X``, a GEMM.
    """
    R, K, D = centers.shape
    N = X.shape[0]
    flat = centers.reshape(R * K, D)
    c_sq = sq_norms(flat)
    acc = torch.float64 if X.dtype == torch.float64 else torch.float32
    sums = torch.zeros(R * K, D, dtype=acc, device=X.device)
    counts = torch.zeros(R * K, dtype=torch.float64, device=X.device)
    inertia = torch.zeros(R, dtype=torch.float64, device=X.device)
    labels = torch.empty(R, N, dtype=torch.long, device=X.device)
    mind = torch.empty(R, N, dtype=X.dtype, device=X.device)
    offs = (torch.arange(R, device=X.device) * K).unsqueeze(0)
    for s in chunks(N, chunk_rows(R * K, N)):
        d = sq_distances(X[s], flat, x_sq[s], c_sq).reshape(-1, R, K)
        md, lab = min_index(d)  # n × R
        labels[:, s] = lab.T
        mind[:, s] = md.T
        inertia += md.sum(0, dtype=torch.float64)
        if need_stats:
            onehot = torch.zeros(lab.shape[0], R * K, dtype=X.dtype, device=X.device)
            onehot.scatter_(1, lab + offs, 1.0)
            sums += (onehot.T @ X[s]).to(acc)
            counts += onehot.sum(0, dtype=torch.float64)
    ud.all_reduce_sum(sums, counts, inertia)
    return sums.reshape(R, K, D), counts.reshape(R, K), inertia, labels, mind


def farthest_points(X: torch.Tensor, min_dist: torch.Tensor, m: int) -> torch.Tensor:
    """The ``m`` points (m×D) farthest from their centre, across all ranks."""
    m_loc = min(m, X.shape[0])
    vals, idx = torch.topk(min_dist, m_loc)
    vals = ud.all_gather_cat(vals.to(torch.float64))
    pts = ud.all_gather_cat(X[idx])
    top = torch.topk(vals, min(m, vals.shape[0])).indices
    return pts[top]
