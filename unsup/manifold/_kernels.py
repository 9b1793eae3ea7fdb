"""Compiled (numba) loops of the t-SNE gradient on the CPU: one pass, no temporaries.

- ``spread`` / ``interpolate``: the point ↔ grid steps of the FFT interpolation
  (:func:`unsup.manifold._gradient.kernel_sums_fft`), cubic Lagrange weights computed on the fly
  for the ``4^d`` nodes around each point, written straight into the zero-padded FFT grid. The
  torch version materialises (n, 4^d) index and weight tensors and gathers them; at 100,000
  points that was ~80 ms of a ~115 ms gradient, this is a few ms.
- ``attraction_edges``: ``Σ_j p_ij w_ij (y_i − y_j)`` with the row's sum kept in registers
  (edges are sorted by row; any order is still correct).
- ``log_w_edges``: ``Σ p_ij log(1 + ‖y_i − y_j‖²)`` for the KL.

With numba absent these run as (slow) Python; callers use the torch paths instead.
"""

from __future__ import annotations

import numpy as np

from unsup._numba import njit

__all__ = ["spread", "interpolate", "attraction_edges", "log_w_edges"]


@njit(cache=True, nogil=True)
def _stencil(u, M, base, w):  # noqa: ANN001, ANN201
    """Base node ``floor(u) − 1`` per dimension and the cubic Lagrange weights ``w[a, 0..3]``
    of nodes ``base .. base + 3`` (as ``unsup.manifold._gradient._weights``)."""
    for a in range(u.shape[0]):
        x = min(max(u[a], 1.0), M - 3.0)  # round-off must not step off the grid
        b = np.floor(x)
        t = x - b
        base[a] = int(b) - 1
        w[a, 0] = -t * (t - 1) * (t - 2) / 6
        w[a, 1] = (t + 1) * (t - 1) * (t - 2) / 2
        w[a, 2] = -(t + 1) * t * (t - 2) / 2
        w[a, 3] = (t + 1) * t * (t - 1) / 6


@njit(cache=True, nogil=True)
def spread(Y, origin, step, M, P, grid):  # noqa: ANN001, ANN201
    """Add the charges ``[1, y]`` of every row of ``Y`` to ``grid`` (d + 1, P^d), flat
    row-major over a padded grid of side ``P`` (nodes ``0 .. M − 1`` used)."""
    n, d = Y.shape
    base = np.empty(d, dtype=np.int64)
    w = np.empty((d, 4))
    u = np.empty(d)
    for i in range(n):
        for a in range(d):
            u[a] = (Y[i, a] - origin[a]) / step
        _stencil(u, M, base, w)
        for c in range(4**d):
            flat = 0
            wt = 1.0
            r = c
            stride = 1
            for a in range(d - 1, -1, -1):  # digit a of c in base 4, last dimension fastest
                o = r % 4
                r //= 4
                wt *= w[a, o]
                flat += (base[a] + o) * stride
                stride *= P
            grid[0, flat] += wt
            for a in range(d):
                grid[a + 1, flat] += wt * Y[i, a]


@njit(cache=True, nogil=True)
def interpolate(T, origin, step, M, P, pots, out):  # noqa: ANN001, ANN201
    """``out[i, ch] = Σ_nodes w_i(node) pots[ch, node]`` for every row of ``T``; ``pots``
    (channels, P^d) flat as in :func:`spread`."""
    n, d = T.shape
    nch = pots.shape[0]
    base = np.empty(d, dtype=np.int64)
    w = np.empty((d, 4))
    u = np.empty(d)
    acc = np.empty(nch)
    for i in range(n):
        for a in range(d):
            u[a] = (T[i, a] - origin[a]) / step
        _stencil(u, M, base, w)
        acc[:] = 0.0
        for c in range(4**d):
            flat = 0
            wt = 1.0
            r = c
            stride = 1
            for a in range(d - 1, -1, -1):
                o = r % 4
                r //= 4
                wt *= w[a, o]
                flat += (base[a] + o) * stride
                stride *= P
            for ch in range(nch):
                acc[ch] += wt * pots[ch, flat]
        for ch in range(nch):
            out[i, ch] = acc[ch]


@njit(cache=True, nogil=True)
def attraction_edges(Y, Y_src, rows, cols, p, out):  # noqa: ANN001, ANN201
    """``out[i] += Σ_e p_e w_e (y_i − y_src_j)`` over the edges ``e = (i, j)``; a row's sum
    stays in registers while consecutive edges share it (float64 accumulation)."""
    d = Y.shape[1]
    acc = np.zeros(d)
    yi = np.empty(d)
    cur = -1
    for e in range(rows.shape[0]):
        i = rows[e]
        if i != cur:
            if cur >= 0:
                for a in range(d):
                    out[cur, a] += acc[a]
            cur = i
            for a in range(d):
                acc[a] = 0.0
                yi[a] = Y[i, a]
        j = cols[e]
        d2 = 0.0
        for a in range(d):
            z = yi[a] - Y_src[j, a]
            d2 += z * z
        q = p[e] / (1.0 + d2)
        for a in range(d):
            acc[a] += q * (yi[a] - Y_src[j, a])
    if cur >= 0:
        for a in range(d):
            out[cur, a] += acc[a]
    return out


@njit(cache=True, nogil=True)
def log_w_edges(Y, rows, cols, p):  # noqa: ANN001, ANN201
    """``Σ_e p_e (log p_e + log(1 + ‖y_i − y_j‖²))`` over the edges with ``p_e > 0``."""
    s = 0.0
    d = Y.shape[1]
    for e in range(rows.shape[0]):
        if p[e] <= 0:
            continue
        i = rows[e]
        j = cols[e]
        d2 = 0.0
        for a in range(d):
            z = Y[i, a] - Y[j, a]
            d2 += z * z
        s += p[e] * (np.log(p[e]) + np.log1p(d2))
    return s
