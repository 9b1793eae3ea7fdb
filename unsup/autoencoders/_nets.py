"""Encoder/decoder networks shared by the autoencoder family (MLP and convolutional)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "activation", "mlp", "AENet", "conv_net", "infer_image_shape"]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "gelu", "leaky_relu", "softplus", "linear")


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (``"linear"`` is the identity)."""
    table = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU,
             "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus,
             "linear": nn.Identity, "identity": nn.Identity}
    if name not in table:
        raise ValueError(f"activation {name!r} is not one of {ACTIVATIONS}")
    return table[name]()


def mlp(sizes: Sequence[int], hidden_act: str, last_act: str) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]``, ``hidden_act`` between, ``last_act``
    after the last (the identity when ``"linear"``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        act = last_act if i == len(sizes) - 2 else hidden_act
        if act not in ("linear", "identity"):
            layers.append(activation(act))
    return nn.Sequential(*layers)


class AENet(nn.Module):
    """``forward(x) -> (code, decoder output)``; the decoder output is a logit for
    Bernoulli losses and the reconstruction itself for squared error."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return h, self.decoder(h)


def infer_image_shape(n_features: int, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``(C, H, W)`` from ``image_shape`` ((H, W) or (C, H, W)) or a square 1-channel guess."""
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"architecture='conv' needs image_shape: {n_features} features are "
                             "not a square image")
        return (1, side, side)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features:
        raise ValueError(f"image_shape={tuple(image_shape)} does not match {n_features} features")
    return shape  # type: ignore[return-value]


def conv_net(n_features: int, image_shape: Sequence[int] | None, channels: Sequence[int],
             code: int, act: str, code_act: str) -> AENet:
    """Stride-2 3×3 convolutions down, a linear code, and the mirror image up.

    Sizes halve (rounding up) at each convolution; the transposed convolutions use
    ``output_padding`` to land exactly on the input size.
    """
    c, h, w = infer_image_shape(n_features, image_shape)
    sizes = [(h, w)]
    enc: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]
    cin = c
    for ch in channels:
        enc += [nn.Conv2d(cin, ch, 3, stride=2, padding=1), activation(act)]
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
        cin = ch
    flat = cin * h * w
    enc += [nn.Flatten(), nn.Linear(flat, code)]
    if code_act not in ("linear", "identity"):
        enc.append(activation(code_act))
    dec: list[nn.Module] = [nn.Linear(code, flat), activation(act), nn.Unflatten(1, (cin, h, w))]
    outs = [*list(channels[:-1])[::-1], c]
    for i, ch in enumerate(outs):
        th, tw = sizes[-2 - i]
        ch_in = channels[::-1][i]
        cur_h, cur_w = sizes[-1 - i]
        op = (th - 2 * cur_h + 1, tw - 2 * cur_w + 1)
        dec.append(nn.ConvTranspose2d(ch_in, ch, 3, stride=2, padding=1, output_padding=op))
        if i < len(outs) - 1:
            dec.append(activation(act))
    dec.append(nn.Flatten())
    return AENet(nn.Sequential(*enc), nn.Sequential(*dec))
