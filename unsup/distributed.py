"""All-reduce helpers for the statistics-based engines (EM and Lloyd across ranks).

Under ``torchrun`` each process holds a shard of the data. The EM-style estimators compute
their sufficient statistics on the local shard and sum them across ranks with
:func:`all_reduce_sum`; every rank then performs the same M-step and so holds the same
parameters. With no process group initialised every helper is a no-op, so the same code runs
in one process.

Typical use (CPU, 2 processes)::

    torchrun --nproc_per_node 2 my_script.py

    # my_script.py
    import unsup.distributed as ud
    ud.init()                          # gloo on CPU, nccl on CUDA
    X_local = ud.shard(X)              # this rank's contiguous slice
    km = KMeans(10, random_state=0).fit(X_local)   # same centroids on every rank
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["is_distributed", "rank", "world_size", "init", "shard", "row_offset", "all_reduce_sum",
           "all_gather_cat", "broadcast"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init(backend: str | None = None) -> None:
    """Initialise the default process group from torchrun's environment variables.

    ``backend`` defaults to ``nccl`` when CUDA is available, else ``gloo``. A no-op when
    already initialised or when not launched by torchrun.
    """
    if dist.is_initialized() or "RANK" not in os.environ:
        return
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)


def shard(X: Any) -> Any:
    """This rank's contiguous slice of ``X`` (rows split as evenly as possible)."""
    n, r, w = len(X), rank(), world_size()
    bounds = np.linspace(0, n, w + 1).round().astype(int)
    return X[bounds[r] : bounds[r + 1]]


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Sum each tensor in place across ranks (no-op in one process)."""
    if not is_distributed():
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate along dim 0 the tensors of all ranks, in rank order (sizes may differ)."""
    if not is_distributed():
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes_i = [int(s) for s in sizes]
    m = max(sizes_i)
    padded = torch.zeros((m, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    out = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(out, padded)
    return torch.cat([o[:s] for o, s in zip(out, sizes_i, strict=True)])


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    if is_distributed():
        dist.broadcast(t, src=src)
    return t


def row_offset(n_local: int, device: Any = "cpu") -> tuple[int, int]:
    """``(first global row of this rank's shard, total rows)``: per-row random draws made for
    all rows and sliced here equal a one-process run's (``(0, n_local)`` in one process)."""
    if not is_distributed():
        return 0, int(n_local)
    sizes = all_gather_cat(torch.tensor([n_local], dtype=torch.int64, device=device)).tolist()
    return int(sum(sizes[: rank()])), int(sum(sizes))
