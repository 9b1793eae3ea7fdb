"""Numerical building blocks shared across families: chunking and GEMM-shaped distances."""

from __future__ import annotations

from collections.abc import Iterator

import torch

__all__ = ["chunks", "chunk_rows", "min_index", "sq_norms", "sq_distances", "log_mean_exp"]

# Elements (not bytes) allowed in one temporary block; 2**24 float32s = 64 MiB.
_BLOCK_ELEMS = 2**24


def chunk_rows(n_cols: int, n_rows: int, block_elems: int | None = None) -> int:
    """Rows per chunk so that a chunk × ``n_cols`` temporary stays under ``block_elems``
    (default: the module's ``_BLOCK_ELEMS``, read at call time so it can be tuned)."""
    if block_elems is None:
        block_elems = _BLOCK_ELEMS
    return max(1, min(n_rows, block_elems // max(1, n_cols)))


def chunks(n: int, size: int) -> Iterator[slice]:
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def min_index(d: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, indices)`` of the minimum along ``dim``, like ``d.min(dim)``.

    Computed as ``argmin`` + ``gather``: on CPU ``Tensor.min(dim)`` opens a parallel region
    for every call, however small, which costs milliseconds when the cores are busy.
    """
    idx = d.argmin(dim, keepdim=True)
    return d.gather(dim, idx).squeeze(dim), idx.squeeze(dim)


def sq_norms(X: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,ij->i", X, X)


def sq_distances(
    X: torch.Tensor, C: torch.Tensor, x_sq: torch.Tensor | None = None,
    c_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared Euclidean distances ``||x - c||²`` as ``x² + c² - 2 x·c`` (one GEMM), clamped ≥ 0.

    The caller chunks ``X``; this never forms an N×K×D tensor.
    """
    if x_sq is None:
        x_sq = sq_norms(X)
    if c_sq is None:
        c_sq = sq_norms(C)
    d = torch.addmm(c_sq.unsqueeze(0), X, C.T, beta=1, alpha=-2)
    d.add_(x_sq.unsqueeze(1))
    return d.clamp_(min=0)


def log_mean_exp(a: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``log (1/k) Σ exp(a)`` along ``dim``, stably (importance-sampled likelihoods)."""
    import math

    return torch.logsumexp(a, dim) - math.log(a.shape[dim])
