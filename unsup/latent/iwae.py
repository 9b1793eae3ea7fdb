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

from collections.abc import Sequence
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

    def __init__(  # VAE's parameters, with k = 5 (scikit-learn reads the signature)
        self,
        n_components: int = 50,
        *,
        hidden_layer_sizes: Sequence[int] = (200, 200),
        activation: str = "tanh",
        decoder: str = "auto",
        decoder_scale: float | None = None,
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        n_importance_samples: int = 5,
        n_eval_samples: int = 1000,
        binarize_input: Any = None,
        architecture: str = "mlp",
        conv_channels: Sequence[int] = (32, 64),
        image_shape: Sequence[int] | None = None,
        epochs: int = 500,
        batch_size: int = 100,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 20,
    ) -> None:
        super().__init__(
            n_components, hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            decoder=decoder, decoder_scale=decoder_scale, beta=beta,
            kl_warmup_steps=kl_warmup_steps, n_importance_samples=n_importance_samples,
            n_eval_samples=n_eval_samples, binarize_input=binarize_input,
            architecture=architecture, conv_channels=conv_channels, image_shape=image_shape,
            epochs=epochs, batch_size=batch_size, validation_fraction=validation_fraction,
            early_stopping=early_stopping, patience=patience)


IWAE.__doc__ = (IWAE.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
