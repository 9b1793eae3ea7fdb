"""MLP and convolutional stacks, the networks most models are made of.

The stacks are :class:`torch.nn.Sequential` subclasses, so their layers are indexable and their
``state_dict`` keys are the plain ``"<i>.weight"`` of a ``Sequential`` (saved models stay
loadable when a model switches to them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

__all__ = ["ACTIVATIONS", "activation", "MLP", "ConvEncoder", "ConvDecoder",
           "infer_image_shape"]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "gelu", "leaky_relu", "softplus", "linear")
_TABLE = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU,
          "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus,
          "linear": nn.Identity, "identity": nn.Identity}


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (``"linear"`` is the identity)."""
    if name not in _TABLE:
        raise ValueError(f"activation {name!r} is not one of {ACTIVATIONS}")
    return _TABLE[name]()


def _is_identity(name: str) -> bool:
    return name in ("linear", "identity")


class MLP(nn.Sequential):
    """Linear layers ``sizes[0] → … → sizes[-1]``: ``act`` between, ``last_act`` after the last.

    Parameters
    ----------
    sizes : sequence of int
        Widths, input first (at least two).
    act : str, default="relu"
        Hidden non-linearity (:data:`ACTIVATIONS`).
    last_act : str, default="linear"
        Non-linearity after the last layer (``"linear"``: none, no module added).
    dropout : float, default=0.0
        Dropout probability after each hidden activation (0: no module added).
    """

    def __init__(self, sizes: Sequence[int], act: str = "relu", last_act: str = "linear",
                 dropout: float = 0.0) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"MLP needs at least two positive sizes, got {sizes}")
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            last = i == len(sizes) - 2
            name = last_act if last else act
            if not _is_identity(name):
                layers.append(activation(name))
            if not last and dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)
        self.sizes = sizes

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers, input side first."""
        return [m for m in self if isinstance(m, nn.Linear)]


def infer_image_shape(n_features: int, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``(C, H, W)`` from ``image_shape`` ((H, W) or (C, H, W)) or a square 1-channel guess."""
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"{n_features} features are not a square image: give image_shape")
        return (1, side, side)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features:
        raise ValueError(f"image_shape={tuple(image_shape)} does not match {n_features} features")
    return shape  # type: ignore[return-value]


def _down_sizes(h: int, w: int, n: int) -> list[tuple[int, int]]:
    sizes = [(h, w)]
    for _ in range(n):
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


class ConvEncoder(nn.Sequential):
    """Flat images ``(n, C·H·W)`` → stride-2 3×3 convolutions → a linear code ``(n, code)``.

    Sizes halve (rounding up) at each convolution. ``code_act`` follows the linear code layer.
    """

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], code: int,
                 act: str = "relu", code_act: str = "linear") -> None:
        c, h, w = (int(s) for s in image_shape)
        if not channels:
            raise ValueError("a convolutional stack needs at least one channel count")
        layers: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]
        cin = c
        for ch in channels:
            layers += [nn.Conv2d(cin, ch, 3, stride=2, padding=1), activation(act)]
            cin = ch
        h, w = _down_sizes(h, w, len(channels))[-1]
        layers += [nn.Flatten(), nn.Linear(cin * h * w, code)]
        if not _is_identity(code_act):
            layers.append(activation(code_act))
        super().__init__(*layers)


class ConvDecoder(nn.Sequential):
    """The mirror image of :class:`ConvEncoder`: a code ``(n, code)`` → flat images.

    Transposed stride-2 convolutions use ``output_padding`` to land exactly on each size of the
    encoder; the output is linear (a logit or a mean, for an output distribution).
    """

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], code: int,
                 act: str = "relu") -> None:
        c, h, w = (int(s) for s in image_shape)
        channels = list(channels)
        if not channels:
            raise ValueError("a convolutional stack needs at least one channel count")
        sizes = _down_sizes(h, w, len(channels))
        top_h, top_w = sizes[-1]
        cin = channels[-1]
        layers: list[nn.Module] = [nn.Linear(code, cin * top_h * top_w), activation(act),
                                   nn.Unflatten(1, (cin, top_h, top_w))]
        outs = [*channels[:-1][::-1], c]
        for i, ch in enumerate(outs):
            th, tw = sizes[-2 - i]
            cur_h, cur_w = sizes[-1 - i]
            op = (th - 2 * cur_h + 1, tw - 2 * cur_w + 1)
            layers.append(nn.ConvTranspose2d(channels[::-1][i], ch, 3, stride=2, padding=1,
                                             output_padding=op))
            if i < len(outs) - 1:
                layers.append(activation(act))
        layers.append(nn.Flatten())
        super().__init__(*layers)
