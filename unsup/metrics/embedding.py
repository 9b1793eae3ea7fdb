r"""Embedding quality: trustworthiness (Venna & Kaski 2001), memory-bounded.

.. math::  T(k) = 1 - \frac{2}{N k (2N - 3k - 1)} \sum_i \sum_{j ∈ U_i^k} (r(i, j) - k)

where ``U_i^k`` are the ``k`` nearest neighbours of ``i`` in the embedding that are not among
its ``k`` nearest in the input space and ``r(i, j)`` is the rank of ``j`` among ``i``'s input-space
neighbours (1 = nearest). ``r(i, j) - k`` is clipped at 0, so neighbours kept contribute nothing
(scikit-learn's :func:`sklearn.manifold.trustworthiness` computes the same number).

Ranks are counted, not sorted: ``r(i, j) = 1 + #{l ≠ i : ‖x_i - x_l‖ < ‖x_i - x_j‖}``, one
chunk of rows at a time, so memory is ``O(chunk × N)`` and no N×N matrix is held.
"""

from __future__ import annotations

from typing import Any

import torch

from unsup.data.validation import check_array
from unsup.ops import chunk_rows, chunks, sq_distances, sq_norms

__all__ = ["trustworthiness"]


def trustworthiness(X: Any, X_embedded: Any, n_neighbors: int = 5,
                    device: str | torch.device = "cpu") -> float:
    """Trustworthiness of ``X_embedded`` for the input ``X`` with ``k = n_neighbors``.

    Requires ``n_neighbors < N / 2`` (the normalisation's range), as scikit-learn does.
    """
    Xt = check_array(X, dtype=torch.float64, device=device)
    Yt = check_array(X_embedded, name="X_embedded", dtype=torch.float64, device=device)
    n, k = Xt.shape[0], int(n_neighbors)
    if Yt.shape[0] != n:
        raise ValueError(f"X has {n} rows but X_embedded has {Yt.shape[0]}")
    if not 1 <= k < n / 2:
        raise ValueError(f"n_neighbors ({k}) should be at least 1 and less than n_samples / 2 "
                         f"({n / 2})")
    x_sq, y_sq = sq_norms(Xt), sq_norms(Yt)
    total = 0.0
    for rows in chunks(n, chunk_rows(n * 4, n)):
        r = torch.arange(rows.start, rows.stop, device=Xt.device)
        dy = sq_distances(Yt[rows], Yt, c_sq=y_sq)
        dy[r - rows.start, r] = float("inf")
        nb = torch.topk(dy, k, dim=1, largest=False, sorted=True).indices  # embedding kNN
        dx = sq_distances(Xt[rows], Xt, c_sq=x_sq)
        dx[r - rows.start, r] = float("inf")
        # input distance to each embedded neighbour, sorted: s_0 ≤ … ≤ s_{k−1}. Its rank in
        # the input space is 1 + #{i: dx_i < s_j}, and dx_i < s_j iff j ≥ #{m: s_m ≤ dx_i}:
        # one binary search per distance (O(n log k) per row, not an (n, k) comparison)
        s_nb = dx.gather(1, nb).sort(1).values
        pos = torch.searchsorted(s_nb, dx, right=True)  # (chunk, n) in 0..k
        hist = torch.zeros(len(r), k + 1, dtype=torch.float64, device=Xt.device)
        hist.scatter_add_(1, pos, torch.ones_like(dx))
        rank = 1 + hist[:, :k].cumsum(1)  # (chunk, k)
        total += float((rank - k).clamp_min(0).sum())
    return 1.0 - 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)) * total
