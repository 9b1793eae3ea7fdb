r"""The t-SNE gradient: exact (all pairs, chunked) and FFT-accelerated interpolation.

With the Student-t kernel ``w_{ij} = (1 + ‖y_i - y_j‖²)^{-1}``, ``Z = Σ_{i≠j} w_{ij}`` and
``q_{ij} = w_{ij}/Z``, the gradient of ``KL(P‖Q)`` (van der Maaten & Hinton 2008) splits into
an attractive part over the sparse ``P`` and a repulsive part over all pairs:

.. math::  \frac{∂C}{∂y_i} = 4\Big[\underbrace{\sum_j p_{ij} w_{ij}(y_i - y_j)}_{\text{attraction}}
           - \frac1Z \underbrace{\sum_j w_{ij}^2 (y_i - y_j)}_{\text{repulsion}}\Big]

and the repulsion needs only three kernel sums, ``φ_0 = Σ_j w_{ij}``, ``φ_1 = Σ_j w_{ij}²`` and
``φ_y = Σ_j w_{ij}² y_j``: ``Σ_j w²(y_i - y_j) = φ_1 y_i - φ_y`` and ``Z = Σ_i (φ_0(y_i) - 1)``.

**FFT interpolation** (Linderman et al. 2019, FIt-SNE): the charges (1 and ``y_j``) are spread
onto a regular grid of spacing ``h`` with cubic Lagrange weights (4 nodes per dimension), the
kernel sums between grid nodes are one convolution done by FFT (zero-padded to twice the grid,
so it is not circular), and the node potentials are interpolated back with the same weights:
``O(N 4^d + M^d log M)`` for ``M`` nodes per dimension, any output dimension ``d``, GEMM/FFT
shaped, on CPU or GPU. The error is that of cubic interpolation of a smooth kernel of width 1,
``O(h⁴)``; ``h`` defaults to 1/2, at least 100 intervals per dimension (finer for small maps),
coarser when the grid would exceed ``max_grid`` nodes. At these defaults the repulsion and Z
are at least as accurate as openTSNE's (quadratic interpolation, 3 nodes per unit interval),
tested on the same maps. On the CPU the point ↔ grid steps are numba loops
(:mod:`unsup.manifold._kernels`); the zero-padded FFTs skip the all-zero rows; in the fit
``Z`` comes from the forward spectrum by Parseval (:func:`fft_repulsion`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch

from unsup._numba import HAVE_NUMBA, row_blocks, run_blocks
from unsup.manifold._kernels import attraction_edges, interpolate, log_w_edges, spread
from unsup.ops import chunk_rows, chunks, sq_distances, sq_norms

__all__ = ["exact_gradient", "kernel_sums_exact", "kernel_sums_fft", "fft_repulsion", "fft_fits",
           "attraction", "kl_divergence"]


def _smooth(n: int) -> int:
    """The smallest m >= n whose padded grid 2m has no prime factor above 5 (fast FFTs)."""
    m = n
    while True:
        k = 2 * m
        for f in (2, 3, 5):
            while k % f == 0:
                k //= f
        if k == 1:
            return m
        m += 1


def _side(n: int) -> int:
    """Grid side ``>= n`` from a ladder of 5-smooth sizes ~8% apart: as the map grows the side
    changes rarely, so the kernel's cached FFT is reused."""
    m = 8
    while m < n:
        m = _smooth(m + max(1, m // 12))
    return m


def _grid_size(span: float, d: int, h: float, min_nodes: int, max_grid: int) -> tuple[int, float]:
    """Intervals per dimension and their width: ``h`` (at least ``min_nodes`` intervals, which
    are then narrower), capped so the zero-padded grid ``(2 (n + 4))^d`` has at most
    ``max_grid`` nodes (then wider)."""
    cap = max(8, int(round(max_grid ** (1 / d))) // 2) - 4
    need = math.ceil(span / h)
    if min_nodes < need <= cap:  # the common case: spacing exactly h (the kernel is cached)
        return need, h
    n_int = min(max(min_nodes, need), cap)
    return n_int, max(span, 1e-12) / n_int


_KERNEL_CACHE: dict[tuple[Any, ...], torch.Tensor] = {}


def _kernel_fft(M: int, step: float, d: int, dt: torch.dtype, device: torch.device
                ) -> torch.Tensor:
    """FFTs of the kernels w = 1/(1 + r²) and w² on the node offsets of the zero-padded
    (2M)^d grid (offset m or m − 2M); the last one is kept, as the spacing is usually h."""
    key = (M, step, d, dt, str(device))
    if key not in _KERNEL_CACHE:
        o = torch.arange(2 * M, device=device, dtype=dt)
        o = torch.where(o < M, o, o - 2 * M) * step
        r2 = sum(g**2 for g in torch.meshgrid(*([o] * d), indexing="ij"))
        K1 = 1.0 / (1.0 + r2)
        _KERNEL_CACHE.clear()
        _KERNEL_CACHE[key] = torch.fft.rfftn(torch.stack([K1, K1 * K1]),
                                             dim=tuple(range(1, d + 1)))
    return _KERNEL_CACHE[key]


def fft_fits(span: float, d: int, *, h: float = 1 / 2, min_nodes: int = 100,
             max_grid: int = 2**24) -> bool:
    """Whether a grid of spacing at most ``1.5 h`` over ``span`` fits in ``max_grid`` nodes
    (else the interpolation error grows quickly: callers fall back to exact sums)."""
    return _grid_size(span, d, h, min_nodes, max_grid)[1] <= 1.5 * h


def exact_gradient(Y: torch.Tensor, P: torch.Tensor, alpha: float = 1.0
                   ) -> tuple[torch.Tensor, float]:
    """The exact gradient ``4 Σ_j (α p_ij - q_ij) w_ij (y_i - y_j)`` for a dense ``P`` (N×N,
    zero diagonal) and ``Z``, in one pass over the N×N kernel (small N)."""
    W = 1.0 / (1.0 + sq_distances(Y, Y))
    W.fill_diagonal_(0.0)
    Z = float(W.sum())
    F = alpha * P * W - W * W / Z  # (α p_ij - q_ij) w_ij
    return 4 * (F.sum(1, keepdim=True) * Y - F @ Y), Z


def kernel_sums_exact(T: torch.Tensor, S: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(φ_0, φ_1, φ_y)`` at targets ``T`` from sources ``S`` over all pairs (chunked)."""
    s_sq = sq_norms(S)
    phi0 = torch.empty(T.shape[0], dtype=T.dtype, device=T.device)
    phi1 = torch.empty_like(phi0)
    phiy = torch.empty_like(T)
    for rows in chunks(T.shape[0], chunk_rows(S.shape[0], T.shape[0])):
        W = 1.0 / (1.0 + sq_distances(T[rows], S, c_sq=s_sq))
        phi0[rows] = W.sum(1)
        W2 = W * W
        phi1[rows] = W2.sum(1)
        phiy[rows] = W2 @ S
    return phi0, phi1, phiy


def _weights(U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Base node ``floor(u) - 1`` and cubic Lagrange weights (n, d, 4) of nodes -1, 0, 1, 2."""
    b = torch.floor(U)
    t = U - b
    w = torch.stack([-t * (t - 1) * (t - 2) / 6, (t + 1) * (t - 1) * (t - 2) / 2,
                     -(t + 1) * t * (t - 2) / 2, (t + 1) * t * (t - 1) / 6], dim=-1)
    return b.long() - 1, w


def _stencil(U: torch.Tensor, M: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat grid indices (n, 4^d) and tensor-product weights (n, 4^d) of every point."""
    n, d = U.shape
    base, w = _weights(U.clamp(1, M - 3))  # round-off must not step off the grid
    offs = torch.tensor(list(itertools.product(range(4), repeat=d)), device=U.device)  # (4^d, d)
    node = base[:, None, :] + offs[None]  # (n, 4^d, d)
    strides = torch.tensor([M ** (d - 1 - a) for a in range(d)], device=U.device)
    flat = (node * strides).sum(-1)
    W = torch.ones(n, offs.shape[0], dtype=U.dtype, device=U.device)
    for a in range(d):
        W = W * w[:, a, :][:, offs[:, a]]
    return flat, W


def _rfft_padded(g: torch.Tensor, d: int) -> torch.Tensor:
    """``rfftn`` of the channels ``g`` (c, M, ..., M) zero-padded to side 2M, one dimension at
    a time so the rows that are all zeros are never transformed (~25% fewer operations)."""
    n = 2 * g.shape[1]
    G = torch.fft.rfft(g, n=n, dim=-1)
    for a in range(1, d):
        G = torch.fft.fft(G, n=n, dim=a)
    return G


def _irfft_cropped(spec: torch.Tensor, M: int, d: int) -> torch.Tensor:
    """The inverse of :func:`_rfft_padded` on the first ``M`` nodes per dimension only."""
    for a in range(1, d):
        spec = torch.fft.ifft(spec, dim=a).narrow(a, 0, M)
    return torch.fft.irfft(spec, n=2 * M, dim=-1)[..., :M]


def _fft_sums(T: torch.Tensor, S: torch.Tensor, h: float, min_nodes: int, max_grid: int,
              want_phi0: bool) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, float]:
    """``(φ_0 or None, φ_1, φ_y, Σ_i φ_0(s_i))``; the last only when ``T is S`` (else nan),
    from the spectra by Parseval, so ``φ_0`` itself needs no inverse transform (see
    :func:`fft_repulsion`)."""
    d = S.shape[1]
    dt = torch.float64 if S.dtype == torch.float64 else torch.float32
    lo = torch.minimum(T.min(0).values, S.min(0).values)
    span = float((torch.maximum(T.max(0).values, S.max(0).values) - lo).max())
    n_int, step = _grid_size(span, d, h, min_nodes, max_grid)
    # one node below, two above the last interval (cubic stencil), rounded up to a fast size
    M = _side(n_int + 4)
    origin = lo - step  # node 0; points lie in [node 1, node n_int + 1]
    FK = _kernel_fft(M, step, d, dt, S.device)
    jit = HAVE_NUMBA and S.device.type == "cpu"
    if jit:  # one compiled pass straight into the grid (see _kernels)
        org = origin.double().numpy()
        grid = np.zeros((d + 1, M**d), dtype=np.float64 if dt == torch.float64 else np.float32)
        spread(S.detach().to(dt).contiguous().numpy(), org, step, M, M, grid)
        grid = torch.from_numpy(grid).view(d + 1, *([M] * d))
    else:  # spread charges [1, y] of the sources
        fs, ws = _stencil((S.to(dt) - origin.to(dt)) / step, M)
        q = torch.cat([torch.ones(S.shape[0], 1, dtype=dt, device=S.device), S.to(dt)], 1)
        grid = torch.zeros(M**d, d + 1, dtype=dt, device=S.device)
        grid.index_add_(0, fs.reshape(-1),
                        (ws[:, :, None] * q[:, None, :]).reshape(-1, d + 1))
        grid = grid.T.reshape(d + 1, *([M] * d))
    # zero-padded to side 2M, so the circular convolution is the linear one on the nodes
    G = _rfft_padded(grid, d)
    zsum = float("nan")
    if T is S:  # Σ_i φ0(s_i) = <grid, w ⊛ grid> = Σ_f K̂(f) |Ĝ(f)|² / (2M)^d (Parseval)
        wl = torch.full((M + 1,), 2.0, dtype=torch.float64, device=S.device)
        wl[0] = wl[M] = 1.0  # the half spectrum's bins counted twice, but 0 and Nyquist
        pw = G[0].to(torch.complex128).abs().square() * FK[0].real.double() * wl
        zsum = float(pw.sum()) / (2 * M) ** d
    # φ1 and φy from w² (and φ0 from w if asked): one inverse transform
    spec = torch.cat([G[:1] * FK[0], G * FK[1]], 0) if want_phi0 else G * FK[1]
    pots = _irfft_cropped(spec, M, d)
    nch = pots.shape[0]
    if jit:
        out = np.empty((T.shape[0], nch))
        interpolate(T.detach().to(dt).contiguous().numpy(), org, step, M, M,
                    pots.reshape(nch, -1).contiguous().numpy(), out)
        vals = torch.from_numpy(out)
    else:
        pots = pots.reshape(nch, -1).T
        if T is S:  # the fit's case: targets are the sources, the stencil is the same
            ft, wt = fs, ws
        else:
            ft, wt = _stencil((T.to(dt) - origin.to(dt)) / step, M)
        vals = (pots[ft] * wt[:, :, None]).sum(1)
    vals = vals.to(T.dtype)
    o = 1 if want_phi0 else 0
    return (vals[:, 0] if want_phi0 else None), vals[:, o], vals[:, o + 1:], zsum


def kernel_sums_fft(T: torch.Tensor, S: torch.Tensor, *, h: float = 1 / 2,
                    min_nodes: int = 100, max_grid: int = 2**24
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(φ_0, φ_1, φ_y)`` at targets ``T`` from sources ``S`` by FFT-accelerated interpolation.

    The grid covers both point sets; its spacing is ``h``, refined so there are at least
    ``min_nodes`` per dimension and coarsened so the padded grid has at most ``max_grid``
    nodes.
    """
    phi0, phi1, phiy, _ = _fft_sums(T, S, h, min_nodes, max_grid, True)
    return phi0, phi1, phiy


def fft_repulsion(Y: torch.Tensor, *, h: float = 1 / 2, min_nodes: int = 100,
                  max_grid: int = 2**24) -> tuple[torch.Tensor, float]:
    """The fit's repulsion ``Σ_j w_ij² (y_i − y_j) = φ_1 y_i − φ_y`` and ``Z = Σ_i (φ_0(y_i)
    − 1)``, by FFT interpolation; ``Z`` equals the sum of :func:`kernel_sums_fft`'s ``φ_0``
    (up to rounding) but comes from the forward spectrum, so one channel fewer is inverted."""
    _, phi1, phiy, zsum = _fft_sums(Y, Y, h, min_nodes, max_grid, False)
    return phi1[:, None] * Y - phiy, zsum - Y.shape[0]


def attraction(Y: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, p: torch.Tensor,
               Y_src: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_j p_ij w_ij (y_i - y_j)`` over the edges (sources ``Y_src``, default ``Y``).

    On the CPU with numba installed, one compiled pass over the edges (about 10x faster than
    the gather / scatter of tensors below, which made half of a fit's time); else torch.
    """
    Y_src = Y if Y_src is None else Y_src
    if HAVE_NUMBA and Y.device.type == "cpu":
        Yn, Ys, r, c, pn = (t.detach().numpy() for t in (Y, Y_src, rows, cols, p))

        def part(b: slice) -> np.ndarray:  # one block of edges per thread, its own output
            return attraction_edges(Yn, Ys, r[b], c[b], pn[b], np.zeros((Y.shape[0], Y.shape[1])))

        return torch.from_numpy(sum(run_blocks(part, row_blocks(len(r))))).to(Y.dtype)
    # index_select, not Y[rows]: ~1.5x faster on CPU for millions of edges
    diff = Y.index_select(0, rows) - Y_src.index_select(0, cols)
    w = p / (1.0 + diff.pow(2).sum(1))
    return torch.zeros_like(Y).index_add_(0, rows, w[:, None] * diff)


def kl_divergence(Y: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, p: torch.Tensor,
                  Z: float) -> float:
    """``KL(P‖Q) = Σ p log p - Σ p log w + log Z`` over the edges (``Σ p = 1``)."""
    if HAVE_NUMBA and Y.device.type == "cpu":
        return float(log_w_edges(Y.detach().numpy(), rows.numpy(), cols.numpy(),
                                 p.detach().numpy())) + math.log(Z)
    d2 = (Y.index_select(0, rows) - Y.index_select(0, cols)).pow(2).sum(1)
    pos = p > 0
    return float((p[pos] * (torch.log(p[pos]) + torch.log1p(d2[pos]))).sum() + math.log(Z))
