"""The encoder/decoder pair of the autoencoder family, built from :mod:`unsup.nn` stacks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from unsup.nn import ACTIVATIONS, MLP, ConvDecoder, ConvEncoder, infer_image_shape

__all__ = ["ACTIVATIONS", "AENet", "mlp_net", "conv_net"]


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


def mlp_net(sizes: Sequence[int], act: str, code_act: str) -> AENet:
    """Encoder ``sizes[0] → … → sizes[-1]`` (``code_act`` on the code) and its mirror image
    (linear output)."""
    return AENet(MLP(sizes, act, code_act), MLP(list(sizes)[::-1], act, "linear"))


def conv_net(n_features: int, image_shape: Sequence[int] | None, channels: Sequence[int],
             code: int, act: str, code_act: str) -> AENet:
    """Stride-2 3×3 convolutions down to a linear code, and the mirror image up
    (:class:`unsup.nn.ConvEncoder`, :class:`unsup.nn.ConvDecoder`)."""
    try:
        shape = infer_image_shape(n_features, image_shape)
    except ValueError as e:
        raise ValueError(f"architecture='conv': {e}") from None
    return AENet(ConvEncoder(shape, channels, code, act, code_act),
                 ConvDecoder(shape, channels, code, act))
