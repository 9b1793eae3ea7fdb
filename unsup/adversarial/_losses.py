r"""The GAN loss zoo: the discriminator and generator objectives of the seven losses compared by
Lucic et al. (2018, Table 1), as pure functions of the discriminator's outputs.

Notation: :math:`x \sim p_d` real data, :math:`\hat x = G(z) \sim p_g` generated data,
:math:`D(\cdot)` the discriminator. For MM, NS and DRAGAN the network outputs a logit
:math:`a` and :math:`D = σ(a)`; the log-terms are computed with softplus
(:math:`-\log σ(a) = \mathrm{softplus}(-a)`, :math:`-\log(1 - σ(a)) = \mathrm{softplus}(a)`) so
they stay finite. For WGAN, WGAN-GP and LSGAN the output is used as is. For BEGAN the
discriminator is an autoencoder and :math:`D(v) = \sum_j |v_j - \mathrm{AE}(v)_j|^η` (the
reconstruction error summed over features, η = 2 by default).

Each function returns a scalar (the mean over the batch); both players *minimise* their loss.

The table (loss: :math:`L_D`; :math:`L_G`):

- ``mm``: :math:`-E_x[\log D(x)] - E_{\hat x}[\log(1 - D(\hat x))]`;
  :math:`E_{\hat x}[\log(1 - D(\hat x))]`
- ``ns``: :math:`-E_x[\log D(x)] - E_{\hat x}[\log(1 - D(\hat x))]`;
  :math:`-E_{\hat x}[\log D(\hat x)]`
- ``wgan``: :math:`-E_x[D(x)] + E_{\hat x}[D(\hat x)]`, weights clipped to [-c, c];
  :math:`-E_{\hat x}[D(\hat x)]`
- ``wgan-gp``: :math:`L_D^{WGAN} + λ E_{\tilde x}[(\lVert ∇D(\tilde x)\rVert_2 - 1)^2]`;
  :math:`-E_{\hat x}[D(\hat x)]`
- ``lsgan``: :math:`E_x[(D(x) - 1)^2] + E_{\hat x}[D(\hat x)^2]`;
  :math:`E_{\hat x}[(D(\hat x) - 1)^2]`
- ``dragan``: :math:`L_D^{NS} + λ E_{\tilde x}[(\lVert ∇D(\tilde x)\rVert_2 - 1)^2]`;
  :math:`L_G^{NS}`
- ``began``: :math:`D(x) - k_t D(\hat x)`; :math:`D(\hat x)`

WGAN-GP's :math:`\tilde x = αx + (1-α)\hat x`, :math:`α \sim U(0, 1)` per row (Gulrajani et al.
2017); DRAGAN's :math:`\tilde x = x + δ`, :math:`δ \sim N(0, (c\,\mathrm{sd}(x))^2 I)`, a
perturbation around the data (Kodali et al. 2017; :math:`x \sim p_d + N(0, c)` in Lucic et al.).
BEGAN's equilibrium control (Berthelot et al. 2017):
:math:`k_{t+1} = \mathrm{clip}_{[0,1]}(k_t + λ_k(γ D(x) - D(\hat x)))`, convergence measure
:math:`M = D(x) + |γ D(x) - D(\hat x)|`.

Lucic et al.'s table prints the LSGAN discriminator loss as
:math:`-E_x[(D(x) - 1)^2] + E[D(\hat x)^2]`; the minus sign is a typo (with it the
discriminator would push :math:`D(x)` away from 1). Implemented is Mao et al.'s least squares
objective with targets a = 0, b = c = 1 (without the factors ½, which only scale the gradient).

These helpers are shared: :mod:`unsup.adversarial.gan` uses them, and so can other adversarial
models (an adversarial autoencoder's code discriminator, a VAE-GAN's image discriminator).

References
----------
.. [1] Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (MM, NS).
.. [2] Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017.
.. [3] Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
.. [4] Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017.
.. [5] Kodali et al., "On Convergence and Stability of GANs" (DRAGAN), arXiv:1705.07215, 2017.
.. [6] Berthelot, Schumm & Metz, "BEGAN: Boundary Equilibrium Generative Adversarial
   Networks", arXiv:1703.10717, 2017.
.. [7] Lucic et al., "Are GANs Created Equal? A Large-Scale Study", NeurIPS 2018.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "LOSS_NAMES", "discriminator_loss", "generator_loss", "gradient_penalty",
           "interpolates", "perturbed", "began_k_update", "began_convergence",
           "reconstruction_error"]

LOSSES = ("mm", "ns", "wgan", "wgan-gp", "lsgan", "dragan", "began")
LOSS_NAMES = {"mm": "MM-GAN (minimax)", "ns": "NS-GAN (non-saturating)",
              "wgan": "WGAN (weight clipping)", "wgan-gp": "WGAN-GP (gradient penalty)",
              "lsgan": "LSGAN (least squares)", "dragan": "DRAGAN (penalty around the data)",
              "began": "BEGAN (autoencoder discriminator)"}


def _check(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not one of {LOSSES}")


def discriminator_loss(loss: str, d_real: torch.Tensor, d_fake: torch.Tensor,
                       k: float = 0.0) -> torch.Tensor:
    r"""The discriminator's loss :math:`L_D` (without any gradient penalty; see the table above).

    Parameters
    ----------
    loss : str
        One of :data:`LOSSES`.
    d_real, d_fake : Tensor of shape (n,) or (n, 1)
        The discriminator's outputs on real and on generated rows: logits (mm, ns, dragan),
        critic values (wgan, wgan-gp), least-squares outputs (lsgan) or per-row reconstruction
        errors :math:`D(v)` (began).
    k : float
        BEGAN's :math:`k_t` (ignored by the other losses).
    """
    _check(loss)
    if loss in ("mm", "ns", "dragan"):  # -log σ(a) - log(1 - σ(a'))
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if loss in ("wgan", "wgan-gp"):
        return -d_real.mean() + d_fake.mean()
    if loss == "lsgan":
        return (d_real - 1).pow(2).mean() + d_fake.pow(2).mean()
    return d_real.mean() - float(k) * d_fake.mean()  # began


def generator_loss(loss: str, d_fake: torch.Tensor) -> torch.Tensor:
    r"""The generator's loss :math:`L_G` from the discriminator's outputs on generated rows."""
    _check(loss)
    if loss == "mm":  # E log(1 - σ(a)) = -E softplus(a): saturates when D rejects the fakes
        return -F.softplus(d_fake).mean()
    if loss in ("ns", "dragan"):  # -E log σ(a)
        return F.softplus(-d_fake).mean()
    if loss in ("wgan", "wgan-gp"):
        return -d_fake.mean()
    if loss == "lsgan":
        return (d_fake - 1).pow(2).mean()
    return d_fake.mean()  # began


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor],
                     points: torch.Tensor) -> torch.Tensor:
    r""":math:`E[(\lVert ∇_{\tilde x} D(\tilde x) \rVert_2 - 1)^2]` over the rows of ``points``.

    The gradient is taken with ``create_graph=True``, so the penalty is differentiable in the
    critic's parameters (a double backward pass).
    """
    points = points.detach().requires_grad_(True)
    out = critic(points)
    (grad,) = torch.autograd.grad(out.sum(), points, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def interpolates(real: torch.Tensor, fake: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""WGAN-GP's :math:`\tilde x = αx + (1 - α)\hat x`, one :math:`α \sim U(0, 1)` per row."""
    alpha = torch.rand((real.shape[0], *([1] * (real.dim() - 1))), generator=generator,
                       device=real.device, dtype=real.dtype)
    return alpha * real + (1 - alpha) * fake.detach()


def perturbed(real: torch.Tensor, c: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
    r"""DRAGAN's :math:`\tilde x = x + δ`, :math:`δ \sim N(0, (c \cdot \mathrm{sd}(x))^2)` per
    value (sd over the whole batch): points in a neighbourhood of the data."""
    noise = torch.randn(real.shape, generator=generator, device=real.device, dtype=real.dtype)
    return real + float(c) * real.std() * noise


def reconstruction_error(autoencoder: Callable[[torch.Tensor], torch.Tensor],
                         v: torch.Tensor, eta: int = 2) -> torch.Tensor:
    r"""BEGAN's :math:`D(v) = \sum_j |v_j - \mathrm{AE}(v)_j|^η` per row (shape (n,)): the
    pixel-wise loss :math:`L(v) = |v - D(v)|^η` of Berthelot et al. (η ∈ {1, 2}), summed over
    features.

    The sum, not the mean per feature, matters for the k_t control: its gain λ_k = 0.001 acts on
    :math:`γL(x) - L(G(z))`, which for 784 pixels is 784 times larger summed than averaged; with
    the mean, k_t moved by under 1e-4 per step and could not react within a CPU budget of a few
    thousand steps. (Adam is invariant to the loss's scale, so only the control changes.)
    η = 2 is the default: on mnist5k with MLP players η = 1 collapsed where η = 2 did not
    (docs/adversarial.md, "BEGAN")."""
    r = (v - autoencoder(v)).flatten(1)
    return (r.abs() if int(eta) == 1 else r.pow(2)).sum(1)


def began_k_update(k: float, l_real: float, l_fake: float, gamma: float,
                   lambda_k: float) -> float:
    r"""BEGAN's proportional control :math:`k_{t+1} = \mathrm{clip}_{[0,1]}(k_t +
    λ_k(γ D(x) - D(\hat x)))`: k grows while the generator's images are reconstructed too
    well (the discriminator neglects them) and falls otherwise."""
    return min(1.0, max(0.0, float(k) + float(lambda_k) * (float(gamma) * float(l_real)
                                                           - float(l_fake))))


def began_convergence(l_real: float, l_fake: float, gamma: float) -> float:
    r"""BEGAN's global convergence measure :math:`M = D(x) + |γ D(x) - D(\hat x)|`: the real
    rows' reconstruction error plus the distance from equilibrium; it falls as training
    converges."""
    return float(l_real) + abs(float(gamma) * float(l_real) - float(l_fake))
