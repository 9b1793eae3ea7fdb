"""numba's ``njit`` for unsup's compiled kernels (the LDA and HDP Gibbs sweeps, the
left-to-right estimator, t-SNE's attraction).

numba is a runtime dependency; the guard below only keeps ``import unsup`` working on a
platform without a numba wheel, where the kernels then run as plain Python (the same chain
for a seed, ~100x slower) and ``HAVE_NUMBA`` is False.
"""

from __future__ import annotations

from typing import Any

try:
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; a platform without a wheel
    HAVE_NUMBA = False

    def njit(*args: Any, **kwargs: Any) -> Any:
        return args[0] if args and callable(args[0]) else (lambda f: f)

__all__ = ["njit", "HAVE_NUMBA"]
