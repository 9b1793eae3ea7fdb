"""Directed latent-variable models: the VAE (β-VAE, IWAE bound) and the Helmholtz machine.

Generative models ``p(x, h) = p(h) p(x | h)`` with a recognition model ``q(h | x)``: trained by
backpropagation through the ELBO or the importance-weighted bound (VAE, IWAE), or by wake-sleep
and reweighted wake-sleep (Helmholtz machine) on the gradient engine's phases. Likelihoods are
importance-sampled with q as the proposal (:mod:`unsup.latent._common`), typed as stochastic
lower bounds. The family's report sections live in :mod:`unsup.latent._report`. See
``docs/latent.md``.
"""

from unsup.latent import _report  # noqa: E402,F401,I001  (registers the report sections)
from unsup.latent.helmholtz import HelmholtzMachine
from unsup.latent.iwae import IWAE
from unsup.latent.vae import VAE

__all__ = ["VAE", "IWAE", "HelmholtzMachine"]
