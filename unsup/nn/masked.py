r"""Masked layers for autoregressive models: MADE's masked linear layers and PixelCNN's masked
convolutions.

**MADE** [1]_. Each input ``d`` gets an order ``m^0(d) ∈ {1..D}``, each hidden unit ``k`` of
layer ``l`` a degree ``m^l(k) ∈ {min_j m^{l-1}(j), …, D-1}``. A hidden unit sees the units of
the layer below whose degree is at most its own, and output ``d`` sees the last hidden units of
degree strictly below ``m^0(d)``:

.. math::

    M^l_{kj} = [m^l(k) \ge m^{l-1}(j)], \qquad M^{out}_{dk} = [m^0(d) > m^L(k)]

so output ``d`` depends only on the inputs that come before it in the order: the network's
Jacobian is strictly triangular in that order, and ``∏_d p(x_d | x_{<d})`` is a normalised
density.

**PixelCNN** [2]_. A ``k×k`` convolution whose kernel is zero below the centre row and to the
right of the centre in the centre row sees only the pixels above and to the left (raster
order). Mask type ``"A"`` (first layer) also zeroes the centre, so an output never sees its
own input pixel; type ``"B"`` (later layers) keeps it.

**Gated PixelCNN** [3]_. Stacked masked convolutions have a blind spot (pixels above and to the
right fall out of the receptive field). :class:`GatedMaskedConv2d` removes it with two stacks:
a *vertical* stack whose ``(k//2+1)×k`` convolution sees the rows up to the current one, and a
*horizontal* stack whose ``1×(k//2+1)`` convolution sees the pixels to the left in the current
row (and the pixel itself, except in the first, type ``"A"``, layer). The vertical features
enter the horizontal stack shifted down one row, so they only bring rows strictly above. Both
use the gated unit ``tanh(a) ⊙ σ(b)``; the horizontal stack is residual after the first layer.

References
----------
.. [1] Germain, Gregor, Murray & Larochelle, "MADE: Masked Autoencoder for Distribution
   Estimation", ICML 2015.
.. [2] van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016.
.. [3] van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional
   Image Generation with PixelCNN Decoders", NeurIPS 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaskedLinear", "MaskedConv2d", "GatedMaskedConv2d", "made_degrees", "made_masks"]


class MaskedLinear(nn.Linear):
    """``y = x (W ⊙ M)ᵀ + b`` with a fixed 0/1 mask ``M`` of shape (out, in) (a buffer)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 mask: torch.Tensor | None = None) -> None:
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))
        if mask is not None:
            self.set_mask(mask)

    def set_mask(self, mask: torch.Tensor) -> None:
        """Replace the mask (shape (out_features, in_features), entries 0 or 1)."""
        mask = torch.as_tensor(mask, dtype=self.weight.dtype)
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape "
                             f"{tuple(self.weight.shape)}")
        self.mask.copy_(mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_degrees(n_inputs: int, hidden_sizes: Sequence[int],
                 order: Sequence[int] | None = None, generator: torch.Generator | None = None,
                 ) -> list[torch.Tensor]:
    """Degrees ``m^0`` (the input order, 1-based) and ``m^l`` of each hidden layer.

    Hidden degrees cycle through ``min(m^{l-1}) … D-1`` (``generator=None``, deterministic) or
    are drawn uniformly from that range (with a generator, as in [1]_).
    """
    D = int(n_inputs)
    m0 = (torch.arange(1, D + 1) if order is None
          else torch.as_tensor(list(order), dtype=torch.long))
    if sorted(m0.tolist()) != list(range(1, D + 1)):
        raise ValueError(f"order must be a permutation of 1..{D}, got {m0.tolist()}")
    degrees = [m0]
    for h in hidden_sizes:
        lo = int(degrees[-1].min()) if D > 1 else 1
        hi = max(D - 1, lo)
        if generator is None:
            d = lo + torch.arange(int(h)) % (hi - lo + 1)
        else:
            d = torch.randint(lo, hi + 1, (int(h),), generator=generator)
        degrees.append(d)
    return degrees


def made_masks(degrees: Sequence[torch.Tensor], n_outputs_per_input: int = 1
               ) -> list[torch.Tensor]:
    """The masks of a MADE with these degrees: one per hidden layer, then the output mask.

    The output layer has ``n_outputs_per_input · D`` units, output ``j`` belonging to input
    ``j mod D`` (e.g. a mean block then a log-scale block).
    """
    masks = [(d[:, None] >= prev[None, :]).float()
             for prev, d in zip(degrees[:-1], degrees[1:], strict=True)]
    out_deg = degrees[0].repeat(int(n_outputs_per_input))
    masks.append((out_deg[:, None] > degrees[-1][None, :]).float())
    return masks


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only the pixels above and to the left (PixelCNN masks).

    Parameters
    ----------
    mask_type : {"A", "B"}
        "A" also hides the centre pixel (first layer); "B" keeps it (later layers).
    in_channels, out_channels, kernel_size :
        As :class:`torch.nn.Conv2d` (odd kernel; padding defaults to ``kernel_size // 2`` so the
        output has the input's size).
    """

    def __init__(self, mask_type: str, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int], padding: int | None = None,
                 **kwargs: object) -> None:
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        pad = (kh // 2, kw // 2) if padding is None else padding
        super().__init__(in_channels, out_channels, (kh, kw), padding=pad, **kwargs)
        self.mask_type = mask_type
        mask = torch.ones(kh, kw)
        ch, cw = kh // 2, kw // 2
        mask[ch, cw + (mask_type == "B"):] = 0
        mask[ch + 1:] = 0
        self.register_buffer("mask", mask[None, None].expand_as(self.weight).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return f"mask_type={self.mask_type!r}, " + super().extra_repr()


class GatedMaskedConv2d(nn.Module):
    """One layer of the gated PixelCNN: ``(v, h) -> (v', h')`` without a blind spot.

    Parameters
    ----------
    mask_type : {"A", "B"}
        "A" (first layer): the horizontal stack does not see the current pixel, and is not
        residual. "B": it does, and ``h' = h + conv1x1(gate)``.
    channels : int
        Feature maps of both stacks (``in_channels`` of the first layer may differ).
    kernel_size : int
        Odd k.
    in_channels : int or None
        Input channels (default ``channels``).
    """

    def __init__(self, mask_type: str, channels: int, kernel_size: int = 3,
                 in_channels: int | None = None) -> None:
        super().__init__()
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        cin = int(in_channels or channels)
        k, c = int(kernel_size), int(channels)
        self.mask_type, self.k = mask_type, k
        self.v_conv = nn.Conv2d(cin, 2 * c, (k // 2 + 1, k))
        self.v_to_h = nn.Conv2d(2 * c, 2 * c, 1)
        self.h_conv = nn.Conv2d(cin, 2 * c, (1, k // 2 + 1))
        self.h_out = nn.Conv2d(c, c, 1)

    @staticmethod
    def _gate(a: torch.Tensor) -> torch.Tensor:
        t, s = a.chunk(2, dim=1)
        return torch.tanh(t) * torch.sigmoid(s)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        H, W = v.shape[-2:]
        k2 = self.k // 2
        # vertical: rows i-k2..i, columns j-k2..j+k2
        v_pre = self.v_conv(F.pad(v, (k2, k2, k2, 0)))
        # shifted down a row: row i now carries rows <= i-1 only
        v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :H]
        # horizontal: columns j-k2..j (type B) or j-k2-1..j-1 (type A), current row only
        if self.mask_type == "A":
            h_in = F.pad(h, (k2 + 1, 0))[..., :W + k2]
        else:
            h_in = F.pad(h, (k2, 0))
        h_pre = self.h_conv(h_in) + self.v_to_h(v_down)
        gated = self.h_out(self._gate(h_pre))
        h_new = gated if self.mask_type == "A" else h + gated
        return self._gate(v_pre), h_new

    def extra_repr(self) -> str:
        return f"mask_type={self.mask_type!r}, kernel_size={self.k}"
