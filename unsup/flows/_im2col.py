r"""im2col and col2im of a 3x3 "same" convolution on channels-last rows, compiled.

For images held as channels-last rows (``x`` of shape ``N×H×W×C``) and the nine offsets
``d_t = (k_y - 1, k_x - 1)``, ``t = 3 k_y + k_x``, of a 3x3 kernel with zero padding 1,

.. math::

    \mathrm{im2col}(x)[p, (t, c)] = x[p + d_t, c] \quad (0 \text{ outside the image}), \qquad
    \mathrm{col2im}(P)[p, c] = \sum_t P[p - d_t, (t, c)],

an adjoint pair: with them a convolution's pieces are single matrix products with the nine taps
side by side (inner dimension ``9 C``). :mod:`unsup.flows._glow_steps` uses them for the
backward pass of Glow's coupling networks, whose 3x3 convolutions have few channels on one side
(2 → 64 and 64 → 4 on MNIST): there oneDNN pads the small side to a vector's width and runs at
a third to a half of its speed on the same arithmetic as a product. torch's own ``unfold`` /
``fold`` take 0.4-0.7 ms at those sizes (strided copies of C-wide rows); these 0.04-0.16 ms.

One kernel pair is compiled per channel count (a compile-time constant, so the C-wide loops
unroll) and cached on disk by numba. :func:`available` says whether they can run: numba
installed, CPU tensors, float32 or float64.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch

from unsup._numba import HAVE_NUMBA, njit

__all__ = ["available", "im2col3x3", "col2im3x3"]


def available(t: torch.Tensor) -> bool:
    """Whether the compiled kernels can take ``t`` (numba, CPU, float32 / float64)."""
    return HAVE_NUMBA and t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)


@cache
def _kernels(C: int) -> tuple[Any, Any]:
    K = 3 * C  # one kernel row: three taps of C channels, contiguous in both layouts

    @njit(cache=True, nogil=True, boundscheck=False)
    def im2col(x: Any, out: Any) -> None:  # x: N×H×(W·C), out: N×H×W×9C
        n, H, W = out.shape[0], out.shape[1], out.shape[2]
        for i in range(n):
            for y in range(H):
                for ky in range(3):
                    sy = y + ky - 1
                    o = ky * K
                    if sy < 0 or sy >= H:
                        for px in range(W):
                            for j in range(K):
                                out[i, y, px, o + j] = 0.0
                        continue
                    for px in range(W):
                        for kx in range(3):
                            sx = px + kx - 1
                            if 0 <= sx < W:
                                for c in range(C):
                                    out[i, y, px, o + kx * C + c] = x[i, sy, sx * C + c]
                            else:
                                for c in range(C):
                                    out[i, y, px, o + kx * C + c] = 0.0

    @njit(cache=True, nogil=True, boundscheck=False)
    def col2im(P: Any, out: Any) -> None:  # P: N×H×W×9C, out: N×H×(W·C)
        n, H, W = P.shape[0], P.shape[1], P.shape[2]
        acc = np.empty(C, dtype=out.dtype)
        for i in range(n):
            for y in range(H):
                for px in range(W):
                    for c in range(C):
                        acc[c] = 0.0
                    for ky in range(3):
                        sy = y - ky + 1
                        if sy < 0 or sy >= H:
                            continue
                        for kx in range(3):
                            sx = px - kx + 1
                            if 0 <= sx < W:
                                o = (ky * 3 + kx) * C
                                for c in range(C):
                                    acc[c] += P[i, sy, sx, o + c]
                    for c in range(C):
                        out[i, y, px * C + c] = acc[c]

    return im2col, col2im


def im2col3x3(x: torch.Tensor) -> torch.Tensor:
    """``(N·H·W) × 9C`` rows ``[x[p + d_t] for t in 0..8]`` of the channels-last images ``x``
    (``N×H×W×C``, contiguous)."""
    n, H, W, C = x.shape
    out = torch.empty(n * H * W, 9 * C, dtype=x.dtype)
    _kernels(C)[0](x.detach().reshape(n, H, W * C).numpy(), out.numpy().reshape(n, H, W, 9 * C))
    return out


def col2im3x3(P: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """``(N·H·W) × C`` rows ``Σ_t P[p - d_t, (t, ·)]`` of ``P`` (``(N·H·W) × 9C``, contiguous),
    for images of ``size = (N, H, W)``."""
    n, H, W = size
    C = P.shape[1] // 9
    out = torch.empty(n * H * W, C, dtype=P.dtype)
    _kernels(C)[1](P.detach().reshape(n, H, W, 9 * C).numpy(), out.numpy().reshape(n, H, W * C))
    return out
