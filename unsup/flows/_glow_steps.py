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

A run holds only steps whose coupling network is Glow's (:func:`unsup.flows._layers.conv_net`:
3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 conv; steps with any other network are evaluated layer by
layer), and each step is one autograd function (:class:`_Step`) whose backward
is written out: with ``g_y = [g_a, g_b]`` the gradient at the step's output, ``s = σ(r + 2)``
and ``g_ℓ`` the gradient at the log-determinant,

.. math::

    g_b' = g_b ⊙ s, \qquad g_t = g_b, \qquad g_r = (g_b ⊙ b ⊙ s + g_ℓ) ⊙ (1 - s),

then the network's backward gives ``g_a' = g_a + ∂/∂a`` (on the CPU the last 3x3 convolution's
two gradients and the first one's input gradient as matrix products over im2col rows,
:mod:`unsup.flows._im2col`, the first one's weight gradient through ``convolution_backward``,
which does all four elsewhere; the 1x1 one as two matrix products on the channels-last rows,
``g_h = g W_2``, ``g_{W_2} = g^T h``; the ReLUs applied in place in the forward and their masks
in place in the backward, from the saved rectified activations), and the mixing's
``g_x = [g_a', g_b'] W'``, ``g_{W'} = [g_a', g_b']^T x``, ``g_{W' b} = Σ_rows [g_a', g_b']``.
The running log-determinant goes through the function too (no separate sum per step).

Why: each of these layers is a handful of small tensor operations on a few channels, and at
Glow's sizes on a CPU their fixed costs, not the arithmetic, were about a quarter of a
training step (the coupling networks' convolutions are the rest): 2 levels x 8 steps, 64
hidden channels, batch 64 of 28 x 28 images, 2 threads: the fused maps 5-7 % less time per
step, 3.5-6.8 % per epoch; the written-out backward a further ~6 % per step
(``BENCHMARKS.md``); the 3x3 pieces as products a further ~8 % (oneDNN pads the 2- and
4-channel sides of those convolutions to a vector's width).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ._im2col import available, col2im3x3, im2col3x3
from ._layers import ActNorm, AffineCoupling, InvConv1x1

__all__ = ["glow_runs", "glow_run"]

Step = tuple[ActNorm, InvConv1x1, AffineCoupling]
#: the backward's 3x3 pieces as products with :mod:`unsup.flows._im2col` (the last
#: convolution's two gradients, the first one's input gradient) where the kernels can run and
#: that side of the convolution has at most SMALL_CHANNELS channels (oneDNN pads it to AVX2's
#: 8 floats; wider, its own kernels are at speed); False: ``convolution_backward`` for all
FAST_3X3 = True
SMALL_CHANNELS = 8


def _as_products(t: torch.Tensor, channels: int) -> bool:
    """Whether a 3x3 convolution's side of ``channels`` channels (tensors like ``t``) takes the
    product path (see ``FAST_3X3``)."""
    return FAST_3X3 and channels <= SMALL_CHANNELS and available(t)


def _is_step(layers: Sequence[torch.nn.Module], i: int) -> bool:
    if i + 3 > len(layers):
        return False
    an, ic, cp = layers[i:i + 3]
    return (isinstance(an, ActNorm) and isinstance(ic, InvConv1x1)
            and isinstance(cp, AffineCoupling) and cp.mask is None and not cp.flip
            and cp.kind == "sigmoid" and an.loc.numel() % 2 == 0
            and _glow_net(cp.net) is not None)


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


def _glow_net(net: nn.Module) -> tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d] | None:
    """The three convolutions of a :func:`conv_net` (3x3, ReLU, 1x1, ReLU, 3x3), else None."""
    if not isinstance(net, nn.Sequential) or len(net) != 5:
        return None
    c1, r1, c2, r2, c3 = net
    if type(r1) is not nn.ReLU or type(r2) is not nn.ReLU:
        return None
    for c, k in ((c1, 3), (c2, 1), (c3, 3)):
        if (type(c) is not nn.Conv2d or c.bias is None or c.kernel_size != (k, k)
                or c.padding != (k // 2, k // 2) or c.stride != (1, 1) or c.dilation != (1, 1)
                or c.groups != 1 or c.padding_mode != "zeros"):
            return None
    return c1, c2, c3


def _conv_grads(g: torch.Tensor, inp: torch.Tensor, w: torch.Tensor,
                mask: tuple[bool, bool, bool] = (True, True, True)) -> tuple[Any, Any, Any]:
    """``(∂/∂input, ∂/∂weight, ∂/∂bias)`` of a stride-1 "same" convolution given ``g`` (the
    ones ``mask`` asks for; None for the others)."""
    p = w.shape[-1] // 2
    return torch.ops.aten.convolution_backward(g, inp, w, [w.shape[0]], [1, 1], [p, p], [1, 1],
                                               False, [0, 0], 1, list(mask))


def _out_conv_grads(g: torch.Tensor, h: torch.Tensor, w: torch.Tensor,
                    size: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_conv_grads` of the network's last convolution (3x3, hidden → C channels) from
    the gradient rows ``g`` (R × C) and the activations ``h``, as two products with
    ``G = im2col(g)``: with ``t̄`` the tap opposite ``t`` (``d_t̄ = -d_t``),
    ``∂/∂h[p] = Σ_t g[p - d_t] W_t = Σ_t G[p, t̄] W_t`` and
    ``∂/∂W_t = Σ_p g[p] h[p + d_t]^T = Σ_p G[p, t̄] h[p]^T``."""
    R, C = g.shape
    G = im2col3x3(g.view(*size, C))  # R × 9C: rows [g[p + d_t] for t]
    wf = w.flip(2, 3)  # tap t̄ at position t
    gh = (G @ wf.permute(2, 3, 0, 1).reshape(9 * C, -1)).view(*size, -1).permute(0, 3, 1, 2)
    gw = (h.permute(0, 2, 3, 1).reshape(R, -1).T @ G).view(-1, 3, 3, C).flip(1, 2)
    return gh, gw.permute(3, 0, 1, 2), g.sum(0)


def _relu_mask_(g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``g`` zeroed where the rectified activation ``h`` is 0 (the ReLU's backward), in place:
    no new 3 MB buffer per layer."""
    return torch.ops.aten.threshold_backward.grad_input(g, h, 0, grad_input=g)


class _Step(torch.autograd.Function):
    """One Glow step with Glow's coupling network on channels-last rows ``x`` (R x C), adding
    its log-determinant to ``logdet``; the backward of the module docstring."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, logdet: torch.Tensor, W: torch.Tensor,
                bias: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                b2: torch.Tensor, w3: torch.Tensor, b3: torch.Tensor,
                size: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        n, H, Wd = size
        R, C = x.shape
        ca, cb = C - C // 2, C // 2
        a = torch.addmm(bias[:ca], x, W[:ca].T)
        b = torch.addmm(bias[ca:], x, W[ca:].T)
        a4 = a.view(n, H, Wd, ca).permute(0, 3, 1, 2)  # channels-last image, no copy
        h1 = F.conv2d(a4, w1, b1, padding=1).relu_()  # in place: only the rectified kept
        h2 = F.conv2d(h1, w2, b2).relu_()
        o = F.conv2d(h2, w3, b3, padding=1).permute(0, 2, 3, 1).reshape(R, C)
        z = o[:, :cb] + 2.0
        s = torch.sigmoid(z)
        out_ld = logdet + F.logsigmoid(z).view(n, -1).sum(1)
        y = torch.empty_like(x)
        y[:, :ca] = a
        torch.addcmul(o[:, cb:], b, s, out=y[:, ca:])
        ctx.save_for_backward(x, W, a4, b, h1, h2, s, w1, w2, w3)
        ctx.size = size
        return y, out_ld

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gy: torch.Tensor, gld: torch.Tensor) -> tuple[Any, ...]:
        x, W, a4, b, h1, h2, s, w1, w2, w3 = ctx.saved_tensors
        n, H, Wd = ctx.size
        R, C = x.shape
        ca, cb = C - C // 2, C // 2
        gy_b = gy[:, ca:]
        g_mix = torch.empty_like(x)  # at the mixed rows [a, b]
        g_b = torch.mul(gy_b, s, out=g_mix[:, ca:])
        g_net = torch.empty_like(x)  # at the network's output [r, t]
        u = (g_b * b).view(n, -1).add_(gld[:, None]).view(R, cb)
        torch.mul(u, 1.0 - s, out=g_net[:, :cb])
        g_net[:, cb:] = gy_b
        if _as_products(g_net, C):
            gh2, gw3, gb3 = _out_conv_grads(g_net, h2, w3, ctx.size)
        else:
            gh2, gw3, gb3 = _conv_grads(g_net.view(n, H, Wd, C).permute(0, 3, 1, 2), h2, w3)
        # the 1x1 convolution as matrix products on the channels-last rows (no copies; faster
        # than the convolution's backward at these sizes)
        g2 = _relu_mask_(gh2, h2).permute(0, 2, 3, 1).reshape(R, -1)
        w2m = w2.reshape(w2.shape[0], -1)
        gh1 = (g2 @ w2m).view(n, H, Wd, -1).permute(0, 3, 1, 2)
        gw2 = (g2.T @ h1.permute(0, 2, 3, 1).reshape(R, -1)).view_as(w2)
        gb2 = g2.sum(0)
        g1 = _relu_mask_(gh1, h1)
        if _as_products(g1, ca):
            _, gw1, gb1 = _conv_grads(g1, a4, w1, (False, True, True))
            w1m = w1.permute(0, 2, 3, 1).reshape(w1.shape[0], -1)  # hidden × (tap, channel)
            ga = col2im3x3(g1.permute(0, 2, 3, 1).reshape(R, -1) @ w1m, ctx.size)
        else:
            ga4, gw1, gb1 = _conv_grads(g1, a4, w1)
            ga = ga4.permute(0, 2, 3, 1).reshape(R, ca)
        torch.add(gy[:, :ca], ga, out=g_mix[:, :ca])
        return (g_mix @ W, gld, g_mix.T @ x, g_mix.sum(0), gw1, gb1, gw2, gb2, gw3, gb3, None)


def glow_run(h: torch.Tensor, steps: Sequence[Step]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, log|det|)`` per row of the steps ``steps`` applied to the images ``h``
    (N×C×H×W), as calling each layer in turn (whose ActNorms must be initialised)."""
    dev = h.device.type
    if torch.is_autocast_enabled(dev):
        # the written-out backward takes its saved tensors in one dtype; under autocast the
        # forward's products would come out in bf16 / fp16 beside float32 gradients
        with torch.autocast(dev, enabled=False):
            return glow_run(h.float(), steps)
    n, C, H, Wd = h.shape
    nets = [_glow_net(cp.net) for _, _, cp in steps]
    if any(c is None for c in nets):  # a network changed since glow_runs: layer by layer
        logdet = h.new_zeros(n)
        for layer in (m for step in steps for m in step):
            h, a = layer(h)
            logdet = logdet + a
        return h, logdet
    W, bias, const = _affine_maps(steps)
    logdet = h.new_zeros(n)
    x = h.permute(0, 2, 3, 1).reshape(-1, C)  # channels-last rows: a view, no copy
    Ws, biases = W.unbind(0), bias.unbind(0)  # one backward node, not one per step
    for s, convs in enumerate(nets):
        assert convs is not None
        c1, c2, c3 = convs
        x, logdet = _Step.apply(x, logdet, Ws[s], biases[s], c1.weight, c1.bias, c2.weight,
                                c2.bias, c3.weight, c3.bias, (n, H, Wd))
    y = x.view(n, H, Wd, C).permute(0, 3, 1, 2)
    return y, logdet + (H * Wd) * const
