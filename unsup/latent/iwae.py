r"""The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016).

The same generative model and encoder as :class:`unsup.latent.VAE`, trained on the k-sample
importance-weighted bound instead of the ELBO:

.. math::

    \mathcal L_k(x) = E_{z_1, \dots, z_k \sim q_φ(\cdot|x)}
    \Big[\log \frac1k \sum_{i=1}^k \frac{p_θ(x, z_i)}{q_φ(z_i \mid x)}\Big],
    \qquad \mathcal L_1 = \text{ELBO} \le \mathcal L_k \le \mathcal L_{k+1} \le \log p_θ(x).

Its gradient weights each sample's gradient by its normalised importance weight
:math:`\tilde w_i = w_i / \sum_j w_j`, so q is no longer penalised for covering several modes
of the posterior and the decoder learns a better density. ``IWAE(n_importance_samples=1)`` is
the VAE exactly (same code path, same draws).

References
----------
.. [1] Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
"""

from __future__ import annotations

from typing import Any

from unsup.latent.vae import VAE
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC

__all__ = ["IWAE"]


@register_model("iwae", family="latent", aliases=("importance-weighted-autoencoder",),
                summary="importance-weighted autoencoder (k-sample bound; k=1 is the VAE)")
class IWAE(VAE):
    __doc__ = (VAE.__doc__ or "").replace(
        "Variational autoencoder with a Gaussian encoder and a decoder that follows the data.",
        "Importance-weighted autoencoder: a :class:`VAE` trained on the k-sample bound.").replace(
        "n_importance_samples : int, default=1", "n_importance_samples : int, default=5")

    _stage_name = "IWAE"
    _test_params: dict[str, Any] = {**VAE._test_params, "n_importance_samples": 3}

    _param_defaults = {"n_importance_samples": 5}  # the VAE's signature, k = 5


IWAE.__doc__ = (IWAE.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
