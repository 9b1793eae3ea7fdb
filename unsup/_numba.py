"""numba's ``njit`` for unsup's compiled kernels (the LDA and HDP Gibbs sweeps, the
left-to-right estimator, t-SNE's attraction, k-means' bounds), and the thread blocks that run
a GIL-free kernel on several torch threads (``row_blocks`` / ``run_blocks``).

numba is a runtime dependency; the guard below only keeps ``import unsup`` working on a
platform without a numba wheel, where the kernels then run as plain Python (the same chain
for a seed, ~100x slower) and ``HAVE_NUMBA`` is False.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

try:
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; a platform without a wheel
    HAVE_NUMBA = False

    def njit(*args: Any, **kwargs: Any) -> Any:
        return args[0] if args and callable(args[0]) else (lambda f: f)

__all__ = ["njit", "HAVE_NUMBA", "row_blocks", "run_blocks", "one_blas_thread", "one_torch_thread"]

#: rows (or items) per thread below which a pass stays on one thread (a task costs tens of µs)
MIN_ROWS_PER_THREAD = 16384
_POOL: ThreadPoolExecutor | None = None
_BLAS: Any = None  # threadpoolctl's controller, made once (scanning the libraries: ~1.4 ms)


def row_blocks(n: int, min_rows: int = MIN_ROWS_PER_THREAD) -> list[slice]:
    """Split n rows (or items) into one contiguous block per torch thread: the compiled
    kernels release the GIL (``nogil=True``), so the blocks run in parallel on a thread pool;
    at least ``min_rows`` per block, and one per thread at most ``torch.get_num_threads()``."""
    T = max(1, min(torch.get_num_threads(), n // min_rows))
    edges = np.linspace(0, n, T + 1).astype(np.int64)
    return [slice(int(edges[i]), int(edges[i + 1])) for i in range(T)]


def run_blocks(fn: Callable[[slice], Any], blocks: list[slice]) -> list[Any]:
    """``[fn(b) for b in blocks]``, on a thread pool when there are several."""
    global _POOL
    if len(blocks) == 1:
        return [fn(blocks[0])]
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    return list(_POOL.map(fn, blocks))


class _OneThread:
    """A process-wide "one thread" setting held while any block is inside it: the first block
    to enter saves the setting and sets one thread, the last to leave restores it, so blocks
    on several threads (fits run side by side, or in a user's thread pool) that end in any
    order leave it as they found it; a save and restore per block would leave a late block's
    "1" behind."""

    def __init__(self, hold: Callable[[], Callable[[], Any]]) -> None:
        self._hold = hold  # sets one thread; returns the restore
        self._lock = threading.Lock()
        self._users = 0
        self._restore: Callable[[], Any] | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._restore = self._hold()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._restore is not None:
                    restore, self._restore = self._restore, None
                    restore()


def _hold_blas() -> Callable[[], Any]:
    global _BLAS
    if _BLAS is None:
        import scipy.linalg.cython_blas  # noqa: F401  (numba's BLAS: loaded before the scan)
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas").restore_original_limits


def _hold_torch() -> Callable[[], Any]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    return lambda: torch.set_num_threads(n)


#: ``with one_blas_thread():`` limits the BLAS libraries numpy and scipy load (the GEMM a
#: compiled kernel calls through ``np.dot`` is scipy's) to one thread, restored when the last
#: such block ends: a kernel running on one thread of a block would otherwise start BLAS's own
#: threads on every core the other blocks use. torch's MKL, linked statically in the pip
#: wheels, is not affected; a torch built against a shared MKL would be limited too.
one_blas_thread = _OneThread(_hold_blas)
#: ``with one_torch_thread():`` torch's intra-op threads set to one, process-wide (threads
#: started inside see it too), restored when the last such block ends
one_torch_thread = _OneThread(_hold_torch)
