"""numba when it is installed, else a no-op ``njit``: the compiled kernels run as Python.

The kernels (the LDA and HDP Gibbs sweeps, the left-to-right estimator, t-SNE's attraction)
are written so that the same function is correct either way; numba makes them ~100x faster.
It comes with the ``bench`` extra (``pip install unsup[bench]``).
"""

from __future__ import annotations

from typing import Any

try:
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    HAVE_NUMBA = False

    def njit(*args: Any, **kwargs: Any) -> Any:
        return args[0] if args and callable(args[0]) else (lambda f: f)

__all__ = ["njit", "HAVE_NUMBA"]
