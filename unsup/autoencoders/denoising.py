r"""The denoising autoencoder: reconstruct the clean input from a corrupted copy.

.. math::

    \tilde x \sim q(\tilde x \mid x), \qquad
    \min_{θ, φ}\ \mathbb{E}_{x}\,\mathbb{E}_{\tilde x \sim q}\ \ell\big(x, g_φ(f_θ(\tilde x))\big)

Corruptions ``q``: *masking* (each input set to 0 with probability ν), additive *Gaussian*
noise ``x + σε`` (ε ~ N(0, 1), σ = ``noise_level``), and *salt-and-pepper* (a fraction ν of
inputs set to the minimum or the maximum of the data, with equal probability). The loss
compares the reconstruction with the clean ``x`` [1]_. Noise is drawn from the estimator's own
generator, so training is reproducible and resumes exactly. At evaluation (``transform``,
``score``, validation) the input is not corrupted.

References
----------
.. [1] Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust features with
   denoising autoencoders", ICML 2008.
.. [2] Vincent et al., "Stacked denoising autoencoders", JMLR 11, 2010.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from unsup.autoencoders.autoencoder import Autoencoder
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC

__all__ = ["DenoisingAutoencoder", "corrupt", "NOISES"]

NOISES = ("masking", "gaussian", "salt_and_pepper")


def corrupt(x: torch.Tensor, noise: str, level: float, generator: torch.Generator,
            low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Corrupt ``x`` with ``noise`` at ``level`` (ν for masking / salt-and-pepper, σ for
    gaussian), drawing from ``generator``."""
    if noise == "masking":
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= level
        return x * keep
    if noise == "gaussian":
        return x + level * torch.randn(x.shape, generator=generator, device=x.device,
                                       dtype=x.dtype)
    if noise == "salt_and_pepper":
        u = torch.rand(x.shape, generator=generator, device=x.device)
        hit = u < level
        salt = u < level / 2  # half of the hits go to the maximum
        return torch.where(hit, torch.where(salt, torch.full_like(x, high),
                                            torch.full_like(x, low)), x)
    raise ValueError(f"noise={noise!r} is not one of {NOISES}")


@register_model('denoising-autoencoder', family='autoencoders', aliases=('dae',),
                summary='denoising autoencoder (masking, Gaussian, salt-and-pepper noise)')
class DenoisingAutoencoder(Autoencoder):
    """Autoencoder trained to undo a corruption of its input (Vincent et al., 2008).

    Parameters
    ----------
    n_components : int
        Size of the code (may exceed the input: the corruption prevents the identity map).
    noise : {"masking", "gaussian", "salt_and_pepper"}
        Corruption process.
    noise_level : float
        ν, the corrupted fraction (masking, salt_and_pepper; in [0, 1)) or σ (gaussian).
    hidden_layer_sizes : sequence of int
        Hidden layers of the MLP encoder (mirrored in the decoder).
    activation : str
        Hidden-unit non-linearity.
    code_activation : str
        Non-linearity of the code layer.
    loss : {"auto", "bce", "mse"}
        Reconstruction loss ("auto": "bce" for data in [0, 1], else "mse").
    architecture : {"mlp", "conv"}
        Fully connected or convolutional.
    conv_channels : sequence of int
        Channels of the convolutional encoder.
    image_shape : sequence of int or None
        Image shape for architecture="conv".
    {train_params}

    Attributes
    ----------
    loss_ : str
        The loss used.
    noise_range_ : list of float
        [min, max] of the training data (the salt-and-pepper values).
    history_ : list of dict
        Per-epoch loss.
    n_features_in_ : int
        Number of input features.
    """

    _test_params: dict[str, Any] = {"n_components": 2, "hidden_layer_sizes": (8,),
                                   "epochs": 2, "batch_size": 32}

    _allow_overcomplete = True

    def __init__(
        self,
        n_components: int = 32,
        *,
        noise: str = "masking",
        noise_level: float = 0.25,
        hidden_layer_sizes: Sequence[int] = (256,),
        activation: str = "relu",
        code_activation: str = "linear",
        loss: str = "auto",
        architecture: str = "mlp",
        conv_channels: Sequence[int] = (16, 32),
        image_shape: Sequence[int] | None = None,
    ) -> None:
        self.noise = noise
        self.noise_level = noise_level
        super().__init__(
            n_components, hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            code_activation=code_activation, loss=loss, architecture=architecture,
            conv_channels=conv_channels, image_shape=image_shape)

    def _prepare(self, X: Any) -> None:
        super()._prepare(X)
        if self.noise not in NOISES:
            raise ValueError(f"noise={self.noise!r} is not one of {NOISES}")
        lvl = self.noise_level
        if not isinstance(lvl, (int, float)) or lvl < 0 or (
                self.noise != "gaussian" and lvl >= 1):
            raise ValueError(f"noise_level={lvl!r} must be in [0, 1) for {self.noise} noise "
                             "(>= 0 for gaussian)")
        lo, hi = self._range(X)
        self.noise_range_ = [lo, hi]

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch
        if self.module_.training and self.noise_level > 0:
            lo, hi = self.noise_range_
            x = corrupt(batch, self.noise, float(self.noise_level), self._gen, lo, hi)
        _, out = self.module_(x)
        return self._mean_recon_loss(out, batch)


DenoisingAutoencoder.__doc__ = (DenoisingAutoencoder.__doc__ or "").replace(
    "{train_params}", TRAIN_PARAMS_DOC)
