r"""Glow's steps of flow evaluated together: the same map as the layers one by one, fewer ops.

A step of flow on images is ActNorm, invertible 1x1 convolution and channel-split affine
coupling (:mod:`unsup.flows._layers`). Per pixel the first two are one affine map,

.. math::

    W \big((x + b) \odot e^{s}\big) = W' x + W' b, \qquad W' = W \operatorname{diag}(e^{s}),

so here they are one matrix product on the channels-last rows of the image (``N·H·W × C``),
whose two halves come out as separate contiguous tensors: the conditioning half ``x_a`` goes
to the coupling's network without a copy. The coupling then sets
``x_b ← x_b ⊙ σ(r + 2) + t`` with ``(r, t)`` the network's two halves, and the log-determinant
of the step is ``H W (Σ s + Σ log|s_W|) + Σ log σ(r + 2)``. The ``W'`` and ``W' b`` of all the
steps of a run (a level) come from one batched LU product, and their constant log-determinant
terms from one sum.

Why: each of these layers is a handful of small tensor operations on a few channels, and at
Glow's sizes on a CPU their fixed costs, not the arithmetic, were about a quarter of a
training step (the coupling networks' convolutions are the rest): 2 levels x 8 steps, 64
hidden channels, batch 64 of 28 x 28 images, 2 threads: 5-7 % less time per step, 3.5-6.8 %
per epoch (``BENCHMARKS.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._layers import ActNorm, AffineCoupling, InvConv1x1

__all__ = ["glow_runs", "glow_run"]

Step = tuple[ActNorm, InvConv1x1, AffineCoupling]


def _is_step(layers: Sequence[torch.nn.Module], i: int) -> bool:
    if i + 3 > len(layers):
        return False
    an, ic, cp = layers[i:i + 3]
    return (isinstance(an, ActNorm) and isinstance(ic, InvConv1x1)
            and isinstance(cp, AffineCoupling) and cp.mask is None and not cp.flip
            and cp.kind == "sigmoid")


def glow_runs(layers: Sequence[torch.nn.Module]) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of consecutive Glow steps in ``layers``."""
    runs, i = [], 0
    while i < len(layers):
        j = i
        while _is_step(layers, j):
            j += 3
        if j > i:
            runs.append((i, j))
        i = max(j, i + 1)
    return runs


def _affine_maps(steps: Sequence[Step]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W', W' b, Σ s + Σ log|s_W|)`` of every step (S×C×C, S×C, scalar)."""
    an = [s[0] for s in steps]
    ic = [s[1] for s in steps]
    log_scale = torch.stack([a.log_scale for a in an])
    loc = torch.stack([a.loc for a in an])
    log_s = torch.stack([c.log_s for c in ic])
    lower = torch.stack([c.lower for c in ic])
    eye = torch.eye(lower.shape[-1], device=lower.device, dtype=lower.dtype)
    L = torch.tril(lower, -1) + eye
    U = (torch.triu(torch.stack([c.upper for c in ic]), 1)
         + torch.diag_embed(torch.stack([c.sign_s for c in ic]) * log_s.exp()))
    W = torch.stack([c.perm for c in ic]) @ L @ U * log_scale.exp()[:, None, :]
    return W, (W @ loc[..., None]).squeeze(-1), log_scale.sum() + log_s.sum()


def glow_run(h: torch.Tensor, steps: Sequence[Step]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, log|det|)`` per row of the steps ``steps`` applied to the images ``h``
    (N×C×H×W), as calling each layer in turn (whose ActNorms must be initialised)."""
    n, C, H, Wd = h.shape
    ca, cb = C - C // 2, C // 2
    W, bias, const = _affine_maps(steps)
    logdet = h.new_zeros(n)
    x = h.permute(0, 2, 3, 1).reshape(-1, C)  # channels-last rows: a view, no copy
    for s, (_, _, cp) in enumerate(steps):
        a = torch.addmm(bias[s, :ca], x, W[s, :ca].T)
        b = torch.addmm(bias[s, ca:], x, W[s, ca:].T)
        out = cp.net(a.view(n, H, Wd, ca).permute(0, 3, 1, 2))
        r, t = out.permute(0, 2, 3, 1).reshape(-1, C).split(cb, 1)  # one op back: a cat
        z = r + 2.0
        logdet = logdet + F.logsigmoid(z).view(n, -1).sum(1)
        x = torch.cat([a, torch.addcmul(t, b, torch.sigmoid(z))], 1)
    y = x.view(n, H, Wd, C).permute(0, 3, 1, 2)
    return y, logdet + (H * Wd) * const
