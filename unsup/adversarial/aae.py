r"""The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016).

An autoencoder :math:`z = f_φ(x)`, :math:`\hat x = g_θ(z)` whose aggregated posterior
:math:`q(z) = \int q(z \mid x)\, p_{data}(x)\, dx` is matched to a prior :math:`p(z)` by a
discriminator :math:`D_ψ` on codes, the encoder playing the generator. Every step, on one
minibatch:

1. **reconstruction** — :math:`\min_{φ,θ} \frac1n \sum_i \ell(x_i, g_θ(f_φ(x_i)))`
   (Bernoulli cross-entropy for data in [0, 1], squared error otherwise);
2. **regularisation, discriminator** — :math:`\min_ψ -\frac1n \sum_i [\log D_ψ(z'_i) +
   \log(1 - D_ψ(f_φ(x_i)))]` with :math:`z'_i \sim p(z)` ("positive" samples from the prior);
3. **regularisation, generator** — :math:`\min_φ -\frac1n \sum_i \log D_ψ(f_φ(x_i))`: the
   encoder is updated to fool the discriminator (the non-saturating form).

At the equilibrium :math:`q(z) = p(z)`, so decoding prior draws gives data: :meth:`sample` is
:math:`g_θ(z)`, :math:`z \sim p(z)`. The encoder is deterministic (the paper's choice for its
MNIST results). The priors are the standard Gaussian and, with ``prior="mixture"``, an
equal-weight mixture of ``prior_components`` Gaussians (σ = 0.5) whose means lie on a circle
of radius 2 in the first two code units (the paper's 10-component 2-D mixture).

The three phases run on the gradient engine (:mod:`unsup.train.steps`): one optimiser for the
autoencoder (encoder and decoder, stepped by phases 1 and 3: phase 3's loss reaches the encoder
only, so the decoder has no gradient and is left as it is) and one for the discriminator.

References
----------
.. [1] Makhzani, Shlens, Jaitly, Goodfellow & Frey, "Adversarial Autoencoders", ICLR 2016
   workshop (arXiv:1511.05644).
.. [2] Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from torch import nn

from unsup.adversarial._aae_common import (
    OUTPUTS,
    DecoderMixin,
    apply_output,
    check_choice,
    data_range,
    hidden_sizes,
    recon_loss,
    sample_seed,
)
from unsup.nn import ACTIVATIONS, MLP
from unsup.params import Interval, StrOptions
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC, GradientEstimator, OptimizerSpec, Phase

__all__ = ["AdversarialAutoencoder"]

_pos = Interval(Integral, 1, None, closed="left")
MIXTURE_RADIUS, MIXTURE_STD = 2.0, 0.5


def prior_means(n_components: int, k: int) -> torch.Tensor:
    """Means of the mixture prior: ``k`` points on a circle of radius 2 in the first two of
    ``n_components`` units (evenly spaced on [-2, 2] for a 1-D code)."""
    mu = torch.zeros(k, n_components)
    if n_components == 1:
        mu[:, 0] = torch.linspace(-MIXTURE_RADIUS, MIXTURE_RADIUS, k)
    else:
        a = 2 * math.pi * torch.arange(k) / k
        mu[:, 0], mu[:, 1] = MIXTURE_RADIUS * torch.cos(a), MIXTURE_RADIUS * torch.sin(a)
    return mu


class AAENet(nn.Module):
    """``encoder`` (x -> z), ``decoder`` (z -> raw output), ``discriminator`` (z -> logit)."""

    def __init__(self, n_features: int, code: int, hidden: Sequence[int],
                 disc_hidden: Sequence[int], act: str) -> None:
        super().__init__()
        self.encoder = MLP([n_features, *hidden, code], act)
        self.decoder = MLP([code, *reversed(list(hidden)), n_features], act)
        self.discriminator = MLP([code, *disc_hidden, 1], act)


@register_model("aae", family="adversarial", aliases=("adversarial-autoencoder",),
                summary="adversarial autoencoder (codes matched to a Gaussian or mixture prior)")
class AdversarialAutoencoder(DecoderMixin, TransformerMixin, GradientEstimator):
    """Adversarial autoencoder: reconstruction plus a discriminator matching codes to a prior.

    Parameters
    ----------
    n_components : int, default=8
        Size of the code z.
    hidden_layer_sizes : sequence of int, default=(512, 512)
        Hidden layers of the encoder; the decoder mirrors them.
    discriminator_hidden_sizes : sequence of int, default=(512, 512)
        Hidden layers of the discriminator on codes.
    activation : str, default="relu"
        Hidden non-linearity of the three networks.
    prior : {"gaussian", "mixture"}, default="gaussian"
        p(z): N(0, I), or an equal mixture of ``prior_components`` Gaussians (σ = 0.5) with
        means on a circle of radius 2 in the first two units.
    prior_components : int, default=10
        Components of the mixture prior.
    loss : {"auto", "bce", "mse"}, default="auto"
        Reconstruction loss: Bernoulli cross-entropy (data in [0, 1]) or squared error;
        "auto" follows the data.
    discriminator_learning_rate : float or None, default=None
        Learning rate of the discriminator (None: ``learning_rate``).
    epochs : int, default=50
    batch_size : int, default=100
    {train_params}

    Attributes
    ----------
    module_ : AAENet
        ``encoder``, ``decoder``, ``discriminator``.
    output_ : str
        "sigmoid" (Bernoulli cross-entropy, outputs in [0, 1]) or "linear" (squared error).
    history_ : list of dict
        Per epoch: ``loss`` (sum of the phases), ``loss_reconstruction``,
        ``loss_discriminator``, ``loss_generator``.
    n_features_in_ : int
    """

    _parameter_constraints: dict[str, Any] = {
        "n_components": [_pos],
        "hidden_layer_sizes": ["array-like"],
        "discriminator_hidden_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "prior": [StrOptions({"gaussian", "mixture"})],
        "prior_components": [_pos],
        "loss": [StrOptions({"auto", "bce", "mse"})],
        "discriminator_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
    }
    _test_params: dict[str, Any] = {"n_components": 2, "hidden_layer_sizes": (8,),
                                    "discriminator_hidden_sizes": (8,), "epochs": 2,
                                    "batch_size": 32}
    _stage_name = "AdversarialAutoencoder"

    def __init__(
        self,
        n_components: int = 8,
        *,
        hidden_layer_sizes: Sequence[int] = (512, 512),
        discriminator_hidden_sizes: Sequence[int] = (512, 512),
        activation: str = "relu",
        prior: str = "gaussian",
        prior_components: int = 10,
        loss: str = "auto",
        discriminator_learning_rate: float | None = None,
        epochs: int = 50,
        batch_size: int = 100,
    ) -> None:
        super().__init__()
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.discriminator_hidden_sizes = discriminator_hidden_sizes
        self.activation = activation
        self.prior = prior
        self.prior_components = prior_components
        self.loss = loss
        self.discriminator_learning_rate = discriminator_learning_rate
        self.epochs = epochs
        self.batch_size = batch_size

    def _prepare(self, X: Any) -> None:
        hidden_sizes(self.hidden_layer_sizes)
        hidden_sizes(self.discriminator_hidden_sizes, "discriminator_hidden_sizes")
        lo, hi = data_range(X)
        inside = lo >= 0.0 and hi <= 1.0
        if self.loss == "bce" and not inside:
            raise ValueError(f"loss='bce' needs data in [0, 1], but X ranges over "
                             f"[{lo:.4g}, {hi:.4g}]: scale the data or use loss='mse'")
        self.output_ = "sigmoid" if self.loss == "bce" or (self.loss == "auto" and inside) \
            else "linear"

    def _build_module(self) -> nn.Module:
        check_choice("output_", self.output_, OUTPUTS)
        return AAENet(self.n_features_in_, int(self.n_components),
                      hidden_sizes(self.hidden_layer_sizes),
                      hidden_sizes(self.discriminator_hidden_sizes,
                                   "discriminator_hidden_sizes"), self.activation)

    # -- the prior ----------------------------------------------------------------------------
    def _prior_draw(self, n: int, gen: torch.Generator, device: Any) -> torch.Tensor:
        L = int(self.n_components)
        eps = torch.randn((n, L), generator=gen, device=device)
        if self.prior == "gaussian":
            return eps
        k = int(self.prior_components)
        comp = torch.randint(0, k, (n,), generator=gen, device=device)
        return prior_means(L, k).to(device)[comp] + MIXTURE_STD * eps

    # -- the phases ---------------------------------------------------------------------------
    def _optimizers(self) -> dict[str, OptimizerSpec]:
        m = self.module_
        return {"autoencoder": OptimizerSpec([*m.encoder.parameters(),
                                              *m.decoder.parameters()]),
                "discriminator": OptimizerSpec(list(m.discriminator.parameters()),
                                               learning_rate=self.discriminator_learning_rate)}

    def _phases(self) -> list[Phase]:
        return [Phase("reconstruction", self._recon_loss, "autoencoder"),
                Phase("discriminator", self._disc_loss, "discriminator"),
                Phase("generator", self._gen_loss, "autoencoder")]

    def _recon_loss(self, batch: torch.Tensor) -> torch.Tensor:
        return recon_loss(self.module_.decoder(self.module_.encoder(batch)), batch, self.output_)

    def _disc_loss(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fake = self.module_.encoder(batch)
        real = self._prior_draw(batch.shape[0], self._gen, batch.device)
        d_real = self.module_.discriminator(real)
        d_fake = self.module_.discriminator(fake)
        return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))

    def _gen_loss(self, batch: torch.Tensor) -> torch.Tensor:
        d = self.module_.discriminator(self.module_.encoder(batch))
        return F.binary_cross_entropy_with_logits(d, torch.ones_like(d))

    def _val_loss(self, batch: torch.Tensor) -> torch.Tensor:
        return self._recon_loss(batch)

    def _run(self, X: Any, cfg: Any, callbacks: Any = (), loss: Any = None, val_loss: Any = None,
             module: Any = None) -> Any:
        return super()._run(X, cfg, callbacks, loss, val_loss or self._val_loss, module)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are float32 whatever comes in
        return tags

    # -- public API ---------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Codes z = f(x), shape (n_samples, n_components)."""
        return self._map_batches(self.module_.encoder, X)

    def sample_prior(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draws z ~ p(z) from the prior the codes were matched to."""
        self._check_fitted()
        g = torch.Generator(device=self._device())
        g.manual_seed(sample_seed(random_state, self.random_state))
        return self._prior_draw(int(n_samples), g, self._device()).cpu().numpy()

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Decoded prior draws g(z), z ~ p(z) (decoder means)."""
        z = torch.as_tensor(self.sample_prior(n_samples, random_state), device=self._device())
        return self._decode(z)

    def reconstruct(self, X: Any) -> np.ndarray:
        """g(f(x)) for each row of X."""
        return self._map_batches(lambda b: apply_output(self.module_.decoder(
            self.module_.encoder(b)), self.output_), X)


AdversarialAutoencoder.__doc__ = (AdversarialAutoencoder.__doc__ or "").replace(
    "{train_params}", TRAIN_PARAMS_DOC)
