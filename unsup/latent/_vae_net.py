"""The VAE's network: a Gaussian encoder q(z|x) and a decoder p(x|z), MLP or convolutional,
with optional stochastic layers above z (a learned hierarchical prior, Burda et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unsup.latent._common import output_dist
from unsup.nn import MLP, ConvDecoder, ConvEncoder, infer_image_shape

# log-variances of q(z|x) are kept in a range where exp() is finite in float32 and gradients
# stay meaningful (a clamp only bites on a diverging encoder)
LOGVAR_RANGE = (-16.0, 10.0)
# a learned decoder σ floor: constant pixels would otherwise drive σ -> 0, log p -> +inf
MIN_LOG_SCALE = -7.0


def gaussian_params(net: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(μ, log σ²)`` from a network whose output is their concatenation."""
    mu, logvar = net(h).chunk(2, dim=-1)
    return mu, logvar.clamp(*LOGVAR_RANGE)


class VAENet(nn.Module):
    """``encoder(x) -> (μ, log σ²)`` of q(z|x); ``decoder(z)`` -> raw outputs of p(x|z).

    ``dist(out)`` turns the decoder's outputs into the output distribution (Bernoulli,
    continuous Bernoulli or Gaussian with a fixed or learned per-feature scale).

    With ``prior_layers = (d2, d3, ...)``, ``up[l]`` maps z_{l+1} to (μ, log σ²) of
    q(z_{l+2} | z_{l+1}) and ``down[l]`` maps z_{l+2} to those of p(z_{l+1} | z_{l+2})
    (Gaussian; z numbered from 1 at the data); the top layer's prior is N(0, I).
    """

    def __init__(self, n_features: int, latent: int, hidden: Sequence[int], act: str,
                 decoder: str, decoder_scale: float | None, architecture: str = "mlp",
                 conv_channels: Sequence[int] = (32, 64),
                 image_shape: Sequence[int] | None = None, dropout: float = 0.0,
                 prior_layers: Sequence[int] = (), prior_hidden: Sequence[int] = (100, 100)
                 ) -> None:
        super().__init__()
        self.kind, self.latent = decoder, int(latent)
        if architecture == "conv":
            shape = infer_image_shape(n_features, image_shape)
            self.encoder = ConvEncoder(shape, list(conv_channels), 2 * latent, act)
            self.decoder = ConvDecoder(shape, list(conv_channels), latent, act)
        else:
            self.encoder = MLP([n_features, *hidden, 2 * latent], act, dropout=dropout)
            self.decoder = MLP([latent, *reversed(list(hidden)), n_features], act,
                               dropout=dropout)
        dims = [int(latent), *(int(d) for d in prior_layers)]
        ph = [int(h) for h in prior_hidden]
        self.dims = dims
        pairs = list(zip(dims[:-1], dims[1:], strict=True))
        self.up = nn.ModuleList(MLP([a, *ph, 2 * b], act) for a, b in pairs)
        self.down = nn.ModuleList(MLP([b, *reversed(ph), 2 * a], act) for a, b in pairs)
        if decoder == "gaussian" and decoder_scale is None:
            self.log_scale = nn.Parameter(torch.zeros(n_features))
        elif decoder == "gaussian":
            self.register_buffer("log_scale", torch.full((n_features,),
                                                         float(torch.tensor(decoder_scale).log())))
        else:
            self.log_scale = None

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian_params(self.encoder, x)

    def dist(self, out: torch.Tensor) -> Any:
        ls = None if self.log_scale is None else self.log_scale.clamp(min=MIN_LOG_SCALE)
        return output_dist(self.kind, out, ls)

    def decode(self, z: torch.Tensor) -> Any:
        """p(x | z) for a batch of codes of any leading shape ``(..., latent)``."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, self.latent))
        return self.dist(out.reshape(*lead, out.shape[-1]))

    def code_mean(self, z_top: torch.Tensor) -> torch.Tensor:
        """z1 from a top-layer code by the means of p(z_l | z_{l+1}) (z_top itself with one
        stochastic layer)."""
        z = z_top
        for down in reversed(self.down):
            z = gaussian_params(down, z)[0]
        return z

    def ancestral(self, n: int, gen: torch.Generator, device: Any) -> torch.Tensor:
        """z1 drawn from the (hierarchical) prior."""
        z = torch.randn((n, self.dims[-1]), generator=gen, device=device)
        for down in reversed(self.down):
            mu, logvar = gaussian_params(down, z)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen,
                                                            device=device)
        return z
