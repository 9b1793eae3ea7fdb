r"""The VAE's network: a Gaussian encoder q(z|x) and a decoder p(x|z), MLP or convolutional,
with optional stochastic layers above z (a learned hierarchical prior, Burda et al. 2016) or a
VampPrior (Tomczak & Welling 2018).

The VampPrior is the encoder's aggregate posterior over K learned pseudo-inputs u_k,

.. math::

    p_λ(z) = \frac1K \sum_{k=1}^K q_φ(z \mid u_k)
    = \frac1K \sum_k N(z; μ_φ(u_k), \operatorname{diag} σ_φ^2(u_k)),

an exact, normalised mixture density (:meth:`VAENet.log_prior`), which importance sampling
uses as it would N(0, I). The pseudo-inputs live in [0, 1] (a hard clamp of free parameters,
initialised at 0.05 ± 0.01 as in the paper's MNIST experiments).

References
----------
.. [1] Tomczak & Welling, "VAE with a VampPrior", AISTATS 2018.
"""

from __future__ import annotations

import math
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
_LOG_2PI = math.log(2 * math.pi)
PRIORS = ("normal", "vamp")
# the variances of the stochastic layers above z1, q(z_{l+1} | z_l) and p(z_l | z_{l+1}), under
# prior_layer_variance="softplus": σ² = softplus(a + log(e - 1)) + MIN_UPPER_VAR (σ² = 1 + 10⁻³
# at a = 0). The floor keeps 1/σ² of p(z1 | z2), which scales the one-sample estimate of
# log p(z1|z2) - log q(z1|x) and its gradient, below 1/MIN_UPPER_VAR; "exp" (models saved
# before 2026-12-01) is σ² = exp(a) with a clamped to LOGVAR_RANGE, down to e^-16
PRIOR_LAYER_VARIANCES = ("softplus", "exp")
MIN_UPPER_VAR = 1e-3
_SOFTPLUS_ONE = math.log(math.e - 1)


def kl_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) || N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), over the last axis."""
    return 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(-1)


def gaussian_params(net: nn.Module, h: torch.Tensor, variance: str = "exp"
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(μ, log σ²)`` from a network whose output ``(μ, a)`` is their concatenation:
    ``variance="exp"``: log σ² = a clamped to LOGVAR_RANGE; ``"softplus"``: σ² = softplus(a +
    log(e - 1)) + MIN_UPPER_VAR (a smooth floor: the gradient never vanishes as a clamp's
    does)."""
    mu, a = net(h).chunk(2, dim=-1)
    if variance == "softplus":
        return mu, torch.log(nn.functional.softplus(a + _SOFTPLUS_ONE) + MIN_UPPER_VAR)
    return mu, a.clamp(*LOGVAR_RANGE)


class VAENet(nn.Module):
    """``encoder(x) -> (μ, log σ²)`` of q(z|x); ``decoder(z)`` -> raw outputs of p(x|z).

    ``dist(out)`` turns the decoder's outputs into the output distribution (Bernoulli,
    continuous Bernoulli or Gaussian with a fixed or learned per-feature scale).

    With ``prior_layers = (d2, d3, ...)``, ``up[l]`` maps z_{l+1} to (μ, log σ²) of
    q(z_{l+2} | z_{l+1}) and ``down[l]`` maps z_{l+2} to those of p(z_{l+1} | z_{l+2})
    (Gaussian; z numbered from 1 at the data); the top layer's prior is N(0, I). Their
    variances follow ``upper_variance`` (:func:`gaussian_params`; :meth:`upper_params`).

    With ``n_pseudo_inputs = K > 0`` (one stochastic layer only; :class:`VAE` checks it) the
    prior of z is the VampPrior over the parameter ``pseudo_inputs`` (K, n_features),
    clamped to [0, 1].
    """

    def __init__(self, n_features: int, latent: int, hidden: Sequence[int], act: str,
                 decoder: str, decoder_scale: float | None, architecture: str = "mlp",
                 conv_channels: Sequence[int] = (32, 64),
                 image_shape: Sequence[int] | None = None, dropout: float = 0.0,
                 prior_layers: Sequence[int] = (), prior_hidden: Sequence[int] = (100, 100),
                 n_pseudo_inputs: int = 0, upper_variance: str = "exp") -> None:
        super().__init__()
        self.kind, self.latent = decoder, int(latent)
        self.upper_variance = upper_variance
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
        self.pseudo_inputs = (nn.Parameter(0.05 + 0.01 * torch.randn(int(n_pseudo_inputs),
                                                                      n_features))
                              if n_pseudo_inputs else None)
        if decoder == "gaussian" and decoder_scale is None:
            self.log_scale = nn.Parameter(torch.zeros(n_features))
        elif decoder == "gaussian":
            self.register_buffer("log_scale", torch.full((n_features,),
                                                         float(torch.tensor(decoder_scale).log())))
        else:
            self.log_scale = None

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian_params(self.encoder, x)

    def upper_params(self, net: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z_{l+1} | z_l) (``net`` in ``up``) or p(z_l | z_{l+1}) (in ``down``)."""
        return gaussian_params(net, h, self.upper_variance)

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of the VampPrior's K components, q(z | u_k), each (K, latent)."""
        assert self.pseudo_inputs is not None
        return self.posterior(self.pseudo_inputs.clamp(0.0, 1.0))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        r"""log p(z) of the lowest stochastic layer's prior for codes of shape (..., latent):
        N(0, I), or the VampPrior mixture :math:`\log \frac1K \sum_k N(z; μ_k, σ_k^2)`.

        The mixture's quadratic forms are expanded into matrix products,
        :math:`\sum_l (z_l - μ_{kl})^2 / σ_{kl}^2 = z^2 \cdot σ_k^{-2} - 2 z \cdot μ_k σ_k^{-2}
        + μ_k^2 \cdot σ_k^{-2}`, in float64 (the expansion cancels terms as large as
        z²/σ², up to e¹⁶ z² at the log-variance floor), so no (rows, K, latent) tensor is
        formed; the result is cast back to z's dtype."""
        if self.pseudo_inputs is None:
            return -0.5 * (z * z + _LOG_2PI).sum(-1)
        mu, logvar = self.prior_components()
        lead, L = z.shape[:-1], z.shape[-1]
        zf, m, lv = z.reshape(-1, L).double(), mu.double(), logvar.double()
        prec = torch.exp(-lv)
        quad = (zf * zf) @ prec.T - 2 * zf @ (m * prec).T + (m * m * prec).sum(-1)
        comp = -0.5 * (quad + lv.sum(-1) + L * _LOG_2PI)  # (rows, K)
        out = torch.logsumexp(comp, dim=-1) - math.log(mu.shape[0])
        return out.to(z.dtype).reshape(lead)

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
            z = self.upper_params(down, z)[0]
        return z

    def ancestral(self, n: int, gen: torch.Generator, device: Any) -> torch.Tensor:
        """z1 drawn from the (hierarchical) prior: a uniformly chosen VampPrior component
        and a draw from it, with the VampPrior."""
        z = torch.randn((n, self.dims[-1]), generator=gen, device=device)
        if self.pseudo_inputs is not None:
            mu, logvar = self.prior_components()
            idx = torch.randint(mu.shape[0], (n,), generator=gen, device=device)
            return mu[idx] + torch.exp(0.5 * logvar[idx]) * z
        for down in reversed(self.down):
            mu, logvar = self.upper_params(down, z)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen,
                                                            device=device)
        return z
