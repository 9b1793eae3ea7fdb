r"""Input affinities of t-SNE: exact k nearest neighbours (chunked GEMMs), perplexity calibration.

For each point ``i`` a Gaussian bandwidth ``β_i = 1/(2σ_i²)`` is found by bisection so that the
conditional distribution over its ``k`` nearest neighbours

.. math::  p_{j|i} = \frac{\exp(-β_i d_{ij}²)}{\sum_{l} \exp(-β_i d_{il}²)}

has perplexity ``2^{H(P_i)}`` equal to the target (entropy in nats: ``H = \log u``). The joint
affinities are ``p_{ij} = (p_{j|i} + p_{i|j}) / 2N`` (van der Maaten & Hinton 2008), held as a
list of edges (sparse, ``O(N k)``).
"""

from __future__ import annotations

import math

import torch

from unsup.ops import chunk_rows, chunks, sq_distances, sq_norms

__all__ = ["knn", "calibrate", "joint_affinities"]


def knn(X: torch.Tensor, k: int, Y: torch.Tensor | None = None
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distances and indices of the ``k`` nearest rows of ``Y`` (default ``X``, self
    excluded) for every row of ``X``, ascending; chunked so no N×N matrix is held."""
    self_query = Y is None
    Y = X if Y is None else Y
    y_sq = sq_norms(Y)
    kk = k + 1 if self_query else k
    D_out = torch.empty(X.shape[0], k, dtype=X.dtype, device=X.device)
    I_out = torch.empty(X.shape[0], k, dtype=torch.long, device=X.device)
    for rows in chunks(X.shape[0], chunk_rows(Y.shape[0], X.shape[0])):
        d = sq_distances(X[rows], Y, c_sq=y_sq)
        if self_query:  # the point itself is not its own neighbour
            r = torch.arange(rows.start, rows.stop, device=X.device)
            d[r - rows.start, r] = float("inf")
        val, idx = torch.topk(d, kk, dim=1, largest=False, sorted=True)
        D_out[rows], I_out[rows] = val[:, :k], idx[:, :k]
    return D_out, I_out


def calibrate(D: torch.Tensor, perplexity: float, *, tol: float = 1e-5, max_steps: int = 200
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditional affinities ``p_{j|i}`` (rows sum to 1) over the given squared distances
    ``D`` (n, k), each row calibrated to ``perplexity`` by bisection on ``β_i``, all rows at
    once. Returns ``(P, beta)``."""
    D = D.double()
    D = D - D[:, :1]  # shift by the nearest distance: exp() cannot underflow for every j
    target = math.log(perplexity)
    lo = torch.zeros(D.shape[0], dtype=D.dtype, device=D.device)
    hi = torch.full_like(lo, float("inf"))
    beta = torch.ones_like(lo)
    for _ in range(max_steps):
        W = torch.exp(-D * beta[:, None])
        s = W.sum(1)
        H = torch.log(s) + beta * (W * D).sum(1) / s
        diff = H - target
        if bool((diff.abs() < tol).all()):
            break
        up = diff > 0  # entropy too high: the kernel is too wide, increase beta
        lo = torch.where(up, beta, lo)
        hi = torch.where(up, hi, beta)
        beta = torch.where(torch.isinf(hi), beta * 2, (lo + hi) / 2)
    W = torch.exp(-D * beta[:, None])
    return W / W.sum(1, keepdim=True), beta


def joint_affinities(P: torch.Tensor, idx: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric joint affinities ``(p_{j|i} + p_{i|j}) / 2N`` as edges ``(rows, cols, p)``,
    both directions stored, summing to 1."""
    n, k = P.shape
    rows = torch.arange(n, device=P.device).repeat_interleave(k)
    cols = idx.reshape(-1)
    vals = P.reshape(-1)
    S = torch.sparse_coo_tensor(torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])]),
                                torch.cat([vals, vals]) / (2 * n), (n, n),
                                check_invariants=False).coalesce()
    i, j = S.indices()
    return i, j, S.values()
