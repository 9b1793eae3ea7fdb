"""The networks of :class:`unsup.adversarial.gan.GAN`: MLP or DCGAN players in one module.

:class:`GANNet` holds the generator ``G``, the discriminator ``D`` (an autoencoder for BEGAN),
an optional exponential moving average ``G_ema`` of the generator's weights, and buffers that
must travel with the checkpoint for an exact resume and with the saved model: BEGAN's ``k``,
the fixed codes ``fixed_z`` of the sample strips, and the strips themselves (``strips``, the
steps they were drawn at in ``strip_steps``; -1: not drawn yet).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from unsup.nn.conv import DCGANDiscriminator, DCGANGenerator

__all__ = ["GANNet", "N_STRIPS", "STRIP_WIDTH"]

N_STRIPS = 10  # sample strips kept over training
STRIP_WIDTH = 8  # samples per strip


def _mlp(sizes: Sequence[int], act: nn.Module, last: nn.Module | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(copy.deepcopy(act))
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


class GANNet(nn.Module):
    """Generator, discriminator (or BEGAN autoencoder), EMA generator and the run's buffers.

    Parameters
    ----------
    n_features : int
        Width of a data row.
    n_latent : int
        Width of the generator's code z.
    architecture : {"mlp", "dcgan"}
    hidden : sequence of int
        MLP: the generator's hidden widths (code side first); the discriminator mirrors them.
    channels : sequence of int
        DCGAN: the discriminator's convolution widths (image side first).
    image_shape : (C, H, W) or None
        DCGAN only.
    autoencoder : bool
        BEGAN: the discriminator maps a row to a code of ``n_latent`` units and back. The
        decoder's output is linear, as in Berthelot et al.: with a tanh the data's background
        (-1 after scaling) sits on the asymptote, the saturated units pass almost no gradient,
        and the autoencoder cannot raise the error of generated rows there (with tanh the
        generator collapsed onto one digit on every seed; docs/adversarial.md).
    ema : bool
        Keep ``G_ema``, a copy of G updated by the model after every step.
    """

    def __init__(self, n_features: int, n_latent: int, architecture: str,
                 hidden: Sequence[int], channels: Sequence[int],
                 image_shape: Sequence[int] | None, autoencoder: bool, ema: bool) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if architecture == "dcgan":
            if image_shape is None:
                raise ValueError("architecture='dcgan' needs an image shape")
            self.G = DCGANGenerator(n_latent, image_shape, channels)
            if autoencoder:
                self.D = nn.Sequential(
                    DCGANDiscriminator(image_shape, channels, out=n_latent),
                    DCGANGenerator(n_latent, image_shape, channels, batch_norm=False,
                                   last_act="linear"))
            else:
                self.D = DCGANDiscriminator(image_shape, channels)
        else:
            self.G = _mlp([n_latent, *hidden, n_features], nn.ReLU(), nn.Tanh())
            d_sizes = [n_features, *hidden[::-1]]
            if autoencoder:
                self.D = nn.Sequential(
                    _mlp([*d_sizes, n_latent], nn.LeakyReLU(0.2), None),
                    _mlp([n_latent, *hidden, n_features], nn.LeakyReLU(0.2), None))
            else:
                self.D = _mlp([*d_sizes, 1], nn.LeakyReLU(0.2), None)
        if ema:
            self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.register_buffer("k", torch.zeros(1))  # shape (1,): files keep no 0-d arrays
        self.register_buffer("fixed_z", torch.randn(STRIP_WIDTH, n_latent))
        self.register_buffer("strips", torch.zeros(N_STRIPS, STRIP_WIDTH, n_features))
        self.register_buffer("strip_steps", torch.full((N_STRIPS,), -1, dtype=torch.long))

    @property
    def has_ema(self) -> bool:
        return hasattr(self, "G_ema")

    def sampler(self) -> nn.Module:
        """The generator used for samples: the EMA copy when there is one."""
        return self.G_ema if self.has_ema else self.G

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """``θ_ema ← decay · θ_ema + (1 - decay) · θ_G``; buffers (batch-norm statistics) are
        copied."""
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            pe.mul_(decay).add_(p.detach(), alpha=1 - decay)
        for be, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            be.copy_(b)
