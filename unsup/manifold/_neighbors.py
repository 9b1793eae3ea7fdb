r"""Approximate k nearest neighbours for large N: a random-projection forest, then local joins.

The exact search (:func:`unsup.manifold._affinity.knn`) costs ``O(N² D)``: at 100,000 points
in 50 dimensions, ~50 CPU seconds, more than all of openTSNE's fit on one core. For large N
t-SNE uses this approximation, as openTSNE (Annoy) and FIt-SNE (Annoy / VP trees) do:

1. **Forest** (Dasgupta & Freund 2008; Annoy's trees): each of ``n_trees`` trees splits every
   node at the median of the points' projections on the difference of two random points of
   the node, down to leaves of at most ``leaf_size`` points; all nodes of a level are split
   at once (two stable sorts). Within each leaf the distances are one batched GEMM
   (``‖x‖² + ‖y‖² − 2 x·y``) and each point keeps its ``k`` nearest leaf mates.
2. **Merge and refine** (numba, one pass per point): the candidates of all trees are merged
   (duplicates dropped) into a max-heap of the ``k`` best; then ``n_refine`` rounds of the
   local join of NN-descent (Dong, Moses & Li 2011): the neighbours of a point's ``n_join``
   nearest neighbours are candidates too (a neighbour's neighbour is likely a neighbour).

Deterministic: the random points come from a generator with a fixed seed, so the graph is a
function of the data (t-SNE's checkpoints recompute it on resume). Recall against the exact
search is tested on small data; at 100,000 points it is measured in ``bench/results``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from unsup._numba import njit
from unsup.ops import sq_norms

__all__ = ["knn_approx"]


def _leaves(X: torch.Tensor, leaf_size: int, g: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One tree: the points' order after all median splits and the leaves' starts and sizes
    (leaves are contiguous blocks of ``floor`` or ``ceil`` of ``N / 2^depth`` points)."""
    n = X.shape[0]
    depth = max(0, math.ceil(math.log2(n / leaf_size)))
    perm = torch.arange(n)
    starts = torch.zeros(1, dtype=torch.long)
    sizes = torch.tensor([n])
    for _ in range(depth):
        nb = sizes.shape[0]
        # two random members of each block; their difference is the block's split direction
        a = starts + (torch.rand(nb, generator=g) * sizes).long().clamp_max(sizes - 1)
        b = starts + (torch.rand(nb, generator=g) * sizes).long().clamp_max(sizes - 1)
        dirs = X[perm[a]] - X[perm[b]]
        block = torch.repeat_interleave(torch.arange(nb), sizes)
        proj = torch.einsum("nd,nd->n", X[perm], dirs[block])
        order = torch.sort(proj, stable=True).indices
        order = order[torch.sort(block[order], stable=True).indices]  # by block, then proj
        perm = perm[order]
        half = sizes // 2
        starts = torch.stack([starts, starts + half], 1).reshape(-1)
        sizes = torch.stack([half, sizes - half], 1).reshape(-1)
    return perm, starts, sizes


def _leaf_knn(X: torch.Tensor, x_sq: torch.Tensor, perm: torch.Tensor, starts: torch.Tensor,
              sizes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point's ``k`` nearest mates in its leaf (pads: index -1, distance inf)."""
    n = X.shape[0]
    L = int(sizes.max())
    nl = sizes.shape[0]
    pos = torch.arange(L)
    valid = pos[None] < sizes[:, None]  # (leaves, L)
    idx = torch.where(valid, perm[(starts[:, None] + pos[None]).clamp_max(n - 1)],
                      torch.full_like(valid, -1, dtype=torch.long))
    kk = min(k, L - 1)
    I_out = torch.full((n, k), -1, dtype=torch.long)
    D_out = torch.full((n, k), float("inf"), dtype=X.dtype)
    per = max(1, 2**22 // (L * L))  # leaves per batch: a (batch, L, L) block of ~16 MB
    eye = torch.eye(L, dtype=torch.bool)
    for s in range(0, nl, per):
        ib = idx[s:s + per]
        v = ib >= 0
        ic = ib.clamp_min(0)
        Xb, qb = X[ic], x_sq[ic]
        d = torch.baddbmm(qb[:, None, :], Xb, Xb.transpose(1, 2), alpha=-2)
        d.add_(qb[:, :, None]).clamp_(min=0)
        d.masked_fill_(eye[None] | ~v[:, None, :], float("inf"))
        val, j = torch.topk(d, kk, dim=2, largest=False, sorted=False)
        rows = ib[v]
        D_out[rows, :kk] = val[v]
        I_out[rows, :kk] = torch.gather(ib[:, None, :].expand(-1, L, -1), 2, j)[v]
    return D_out, I_out


@njit(cache=True, nogil=True)
def _sift_down(hd, hi, pos, size):  # noqa: ANN001, ANN201
    """Restore the max-heap (by distance) below ``pos``."""
    while True:
        c = 2 * pos + 1
        if c >= size:
            return
        if c + 1 < size and hd[c + 1] > hd[c]:
            c += 1
        if hd[c] <= hd[pos]:
            return
        hd[c], hd[pos] = hd[pos], hd[c]
        hi[c], hi[pos] = hi[pos], hi[c]
        pos = c


@njit(cache=True, nogil=True)
def _heapify(hd, hi):  # noqa: ANN001, ANN201
    for p in range(hd.shape[0] // 2 - 1, -1, -1):
        _sift_down(hd, hi, p, hd.shape[0])


@njit(cache=True, nogil=True, fastmath=True)
def _sqdist(X, i, j):  # noqa: ANN001, ANN201
    s = np.float32(0.0)  # float32 throughout: the loop vectorises
    for a in range(X.shape[1]):
        z = X[i, a] - X[j, a]
        s += z * z
    return s


@njit(cache=True, nogil=True)
def _merge(cand_d, cand_i, k, out_d, out_i, mark):  # noqa: ANN001, ANN201
    """The ``k`` nearest distinct candidates of every point (sorted)."""
    n, c = cand_i.shape
    hd = np.empty(k)
    hi = np.empty(k, dtype=np.int64)
    for i in range(n):
        mark[i] = i
        m = 0
        for t in range(c):
            j = cand_i[i, t]
            if j < 0 or mark[j] == i:
                continue
            mark[j] = i
            d = cand_d[i, t]
            if m < k:
                hd[m] = d
                hi[m] = j
                m += 1
                if m == k:
                    _heapify(hd, hi)
            elif d < hd[0]:
                hd[0] = d
                hi[0] = j
                _sift_down(hd, hi, 0, k)
        for t in range(m, k):  # fewer than k candidates (tiny leaves): pad
            hd[t] = np.inf
            hi[t] = -1
        o = np.argsort(hd)
        for t in range(k):
            out_d[i, t] = hd[o[t]]
            out_i[i, t] = hi[o[t]]


@njit(cache=True, nogil=True)
def _refine(X, nb_d, nb_i, n_join, out_d, out_i, mark):  # noqa: ANN001, ANN201
    """One local join: the neighbours of each point's ``n_join`` nearest neighbours are
    candidates; ``out`` gets the ``k`` best of old and new (sorted)."""
    n, k = nb_i.shape
    hd = np.empty(k)
    hi = np.empty(k, dtype=np.int64)
    for i in range(n):
        # this pass's stamps are negative, distinct from _merge's; a candidate stamped by an
        # earlier pass for the same i is skipped, rightly: it lost then, the bar only rose
        mark[i] = -2 - i
        for t in range(k):
            hd[t] = nb_d[i, t]
            hi[t] = nb_i[i, t]
            if hi[t] >= 0:
                mark[hi[t]] = -2 - i
        _heapify(hd, hi)
        for a in range(min(n_join, k)):
            j = nb_i[i, a]
            if j < 0:
                continue
            for b in range(k):
                c = nb_i[j, b]
                if c < 0 or mark[c] == -2 - i:
                    continue
                mark[c] = -2 - i
                d = _sqdist(X, i, c)
                if d < hd[0]:
                    hd[0] = d
                    hi[0] = c
                    _sift_down(hd, hi, 0, k)
        o = np.argsort(hd)
        for t in range(k):
            out_d[i, t] = hd[o[t]]
            out_i[i, t] = hi[o[t]]


def knn_approx(X: torch.Tensor, k: int, *, n_trees: int = 4, leaf_size: int | None = None,
               n_refine: int = 3, n_join: int = 15, seed: int = 0
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate squared distances and indices of every row's ``k`` nearest other rows,
    ascending, like :func:`unsup.manifold._affinity.knn` (see the module doc).

    ``leaf_size`` defaults to ``max(4 k, 64)``. The distances are exact for the neighbours
    found; a neighbour missed is replaced by a slightly farther point.
    """
    n = X.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k={k} must be in [1, n_samples - 1 = {n - 1}]")
    leaf_size = max(4 * k, 64) if leaf_size is None else int(leaf_size)
    if leaf_size < 2 * (k + 1):  # then every leaf holds at least k + 1 points
        raise ValueError(f"leaf_size={leaf_size} must be at least 2 (k + 1) = {2 * (k + 1)}")
    Xc = X.detach().cpu().float().contiguous()
    g = torch.Generator().manual_seed(seed)
    # rows in the order of one tree's leaves: neighbours lie close in memory (cache-friendly
    # refinement); indices are mapped back at the end
    order = _leaves(Xc, leaf_size, g)[0]
    Xc = Xc[order].contiguous()
    x_sq = sq_norms(Xc)
    cd, ci = [], []
    for _ in range(n_trees):
        d, i = _leaf_knn(Xc, x_sq, *_leaves(Xc, leaf_size, g), k)
        cd.append(d)
        ci.append(i)
    Xn = Xc.numpy()
    mark = np.full(n, -1, dtype=np.int64)
    D = np.empty((n, k))
    Ind = np.empty((n, k), dtype=np.int64)
    _merge(torch.cat(cd, 1).double().numpy(), torch.cat(ci, 1).numpy(), k, D, Ind, mark)
    for _ in range(n_refine):
        D2, I2 = np.empty_like(D), np.empty_like(Ind)
        _refine(Xn, D, Ind, n_join, D2, I2, mark)
        D, Ind = D2, I2
    D_out = torch.empty(n, k, dtype=torch.float64)
    I_out = torch.empty(n, k, dtype=torch.long)
    D_out[order] = torch.from_numpy(D)
    I_out[order] = order[torch.from_numpy(Ind)]
    return D_out.to(device=X.device, dtype=X.dtype), I_out.to(X.device)
