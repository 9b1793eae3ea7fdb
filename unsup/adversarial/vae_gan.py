r"""VAE-GAN: a VAE whose reconstruction error is measured in a discriminator's feature space
(Larsen, Sønderby, Larochelle & Winther 2016).

Encoder :math:`q_φ(z \mid x) = N(μ_φ(x), \operatorname{diag} σ_φ^2(x))`, decoder (generator)
:math:`\tilde x = \mathrm{Dec}_θ(z)`, discriminator :math:`\mathrm{Dis}_ψ(x) \in (0, 1)` whose
hidden layer :math:`l` gives features :math:`\mathrm{Dis}_l(x)`. With
:math:`z \sim q(z \mid x)` (reparameterised), :math:`\tilde x = \mathrm{Dec}(z)` and
:math:`x_p = \mathrm{Dec}(z_p)`, :math:`z_p \sim N(0, I)`, the three losses are

.. math::

    \mathcal L_{prior} &= KL(q(z \mid x) \,\|\, p(z)),\\
    \mathcal L^{Dis_l}_{llike} &= -E_{q(z|x)}[\log p(\mathrm{Dis}_l(x) \mid z)]
        = \tfrac12 \lVert \mathrm{Dis}_l(x) - \mathrm{Dis}_l(\tilde x) \rVert^2 + c
        \quad (\text{a Gaussian with identity covariance}),\\
    \mathcal L_{GAN} &= \log \mathrm{Dis}(x) + \log(1 - \mathrm{Dis}(\tilde x))
        + \log(1 - \mathrm{Dis}(x_p)),

and the players are updated, as in the paper's Algorithm 1, by

.. math::

    φ \leftarrow -\nabla_φ (\mathcal L_{prior} + \mathcal L^{Dis_l}_{llike}), \qquad
    θ \leftarrow -\nabla_θ (γ\, \mathcal L^{Dis_l}_{llike} - \mathcal L_{GAN}), \qquad
    ψ \leftarrow +\nabla_ψ \mathcal L_{GAN}:

the encoder does not see the GAN loss, the discriminator is not trained to reconstruct (its
features are the metric, not an objective), and γ weighs content (reconstruction) against style
(fooling the discriminator) for the decoder. Reconstructions and prior samples are both fakes to
the discriminator. As is usual (and as the authors' code does), the decoder minimises the
non-saturating :math:`-\log \mathrm{Dis}(\tilde x) - \log \mathrm{Dis}(x_p)` instead of
:math:`\log(1 - \mathrm{Dis}(\cdot))`; every log-probability is computed from logits.

**Equilibrium gate** (from the authors' released code, not the paper's text; ``margin=None``
turns it off): with :math:`b_{real}`, :math:`b_{fake}` the discriminator's mean binary
cross-entropies on real digits and on fakes in the current minibatch, the discriminator is not
updated when either is below ``0.68 - margin`` (it is winning), and the decoder is not updated
when either is above ``0.68 + margin`` (the discriminator is lost, its signal is noise); if
both would be skipped, both are updated. A skipped update leaves the player's parameters and
optimiser state untouched (its loss is recorded, but has no gradient to its parameters).

Each player is a phase of the gradient engine with its own optimiser (:mod:`unsup.train.steps`):
encoder, then decoder, then discriminator, each on a fresh forward pass, so a phase's loss
changes only its own player's parameters.

References
----------
.. [1] Larsen, Sønderby, Larochelle & Winther, "Autoencoding beyond pixels using a learned
   similarity metric", ICML 2016.
.. [2] Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
"""

from __future__ import annotations

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
    hidden_sizes,
    output_for,
    sample_seed,
)
from unsup.nn import ACTIVATIONS, MLP
from unsup.params import Interval, StrOptions
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC, GradientEstimator, OptimizerSpec, Phase

__all__ = ["VAEGAN"]

_pos = Interval(Integral, 1, None, closed="left")
EQUILIBRIUM = 0.68  # the equilibrium gate's centre (a binary cross-entropy, nats)
LOGVAR_RANGE = (-16.0, 10.0)  # exp() finite in float32; only a diverging encoder reaches it


class VAEGANNet(nn.Module):
    """``encoder`` (x -> [μ, log σ²]), ``decoder`` (z -> raw output), ``features`` (x ->
    Dis_l(x), the discriminator's hidden layer ``layer``, 1-based) and ``head`` (Dis_l -> the
    remaining hidden layers -> logit)."""

    def __init__(self, n_features: int, code: int, hidden: Sequence[int],
                 disc_hidden: Sequence[int], act: str, layer: int) -> None:
        super().__init__()
        self.latent = int(code)
        self.encoder = MLP([n_features, *hidden, 2 * code], act)
        self.decoder = MLP([code, *reversed(list(hidden)), n_features], act)
        disc_hidden = list(disc_hidden)
        self.features = MLP([n_features, *disc_hidden[:layer]], act, last_act=act)
        self.head = MLP([*disc_hidden[layer - 1:], 1], act)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def discriminate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Dis_l(x), logit of Dis(x))."""
        f = self.features(x)
        return f, self.head(f)


def _bce(logit: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))


@register_model("vae-gan", family="adversarial", aliases=("vaegan",),
                summary="VAE-GAN: VAE with a learned (discriminator-feature) similarity")
class VAEGAN(DecoderMixin, TransformerMixin, GradientEstimator):
    """VAE-GAN: VAE reconstruction measured in a discriminator's features, plus a GAN loss.

    Parameters
    ----------
    n_components : int, default=16
        Size of the latent code z.
    hidden_layer_sizes : sequence of int, default=(512, 256)
        Hidden layers of the encoder; the decoder mirrors them.
    discriminator_hidden_sizes : sequence of int, default=(512, 256)
        Hidden layers of the discriminator (at least one); ``feature_layer`` picks Dis_l.
    activation : str, default="relu"
        Hidden non-linearity of the three networks.
    gamma : float, default=0.1
        γ, the weight of the feature reconstruction against the GAN loss in the decoder's
        update.
    feature_layer : int or None, default=1
        l: which hidden layer of the discriminator (1-based) is Dis_l, the feature space of
        the reconstruction loss; None: the last. The paper took the third of four
        convolutional layers; with MLPs, the first layer's features keep more of the image
        (deeper ones let the encoder collapse to the prior on MNIST in our runs).
    feature_std : float, default=0.1
        σ of the Gaussian p(Dis_l(x) | z) = N(Dis_l(x̃), σ² I): the reconstruction term is
        ‖Dis_l(x) - Dis_l(x̃)‖² / 2σ². The paper's σ = 1 suits wide convolutional features of
        unit scale; an MLP discriminator's features are smaller and fewer, and the KL then
        wins (the codes collapse to the prior) unless σ is smaller.
    margin : float or None, default=0.35
        The equilibrium gate's margin around 0.68 (None: every player updated every step).
    discriminator_learning_rate : float or None, default=None
        Learning rate of the discriminator (None: ``learning_rate``).
    epochs : int, default=50
    batch_size : int, default=100
    learning_rate : float, default=3e-4
    {train_params}

    Attributes
    ----------
    module_ : VAEGANNet
        ``encoder``, ``decoder``, ``features`` and ``head`` (the discriminator).
    output_ : str
        "sigmoid" (data in [0, 1]) or "linear": the decoder's last layer.
    history_ : list of dict
        Per epoch: ``loss`` (sum), ``loss_encoder`` (prior KL + Dis_l reconstruction),
        ``loss_decoder`` (γ·Dis_l reconstruction + non-saturating GAN), ``loss_discriminator``
        (binary cross-entropy of real / reconstructed / sampled).
    n_features_in_ : int
    """

    _parameter_constraints: dict[str, Any] = {
        "n_components": [_pos],
        "hidden_layer_sizes": ["array-like"],
        "discriminator_hidden_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="left"), None],
        "feature_layer": [_pos, None],
        "feature_std": [Interval(Real, 0, None, closed="neither")],
        "discriminator_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
    }
    _test_params: dict[str, Any] = {"n_components": 2, "hidden_layer_sizes": (8,),
                                    "discriminator_hidden_sizes": (8,), "epochs": 2,
                                    "batch_size": 32}
    _stage_name = "VAEGAN"

    def __init__(
        self,
        n_components: int = 16,
        *,
        hidden_layer_sizes: Sequence[int] = (512, 256),
        discriminator_hidden_sizes: Sequence[int] = (512, 256),
        activation: str = "relu",
        gamma: float = 0.1,
        feature_layer: int | None = 1,
        feature_std: float = 0.1,
        margin: float | None = 0.35,
        discriminator_learning_rate: float | None = None,
        epochs: int = 50,
        batch_size: int = 100,
        learning_rate: float = 3e-4,
    ) -> None:
        super().__init__()
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.discriminator_hidden_sizes = discriminator_hidden_sizes
        self.activation = activation
        self.gamma = gamma
        self.feature_layer = feature_layer
        self.feature_std = feature_std
        self.margin = margin
        self.discriminator_learning_rate = discriminator_learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate

    def _disc_sizes(self) -> list[int]:
        sizes = hidden_sizes(self.discriminator_hidden_sizes, "discriminator_hidden_sizes")
        if not sizes:
            raise ValueError("discriminator_hidden_sizes needs at least one layer: its last "
                             "hidden layer is the feature space Dis_l")
        return sizes

    def _layer(self) -> int:
        n = len(self._disc_sizes())
        layer = n if self.feature_layer is None else int(self.feature_layer)
        if not 1 <= layer <= n:
            raise ValueError(f"feature_layer={self.feature_layer} must be in 1..{n} (a hidden "
                             "layer of the discriminator)")
        return layer

    def _prepare(self, X: Any) -> None:
        hidden_sizes(self.hidden_layer_sizes)
        self._layer()
        self.output_ = output_for(X)

    def _build_module(self) -> nn.Module:
        check_choice("output_", self.output_, OUTPUTS)
        return VAEGANNet(self.n_features_in_, int(self.n_components),
                         hidden_sizes(self.hidden_layer_sizes), self._disc_sizes(),
                         self.activation, self._layer())

    # -- the three losses ---------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One pass: KL per row, Dis_l reconstruction per row, logits of x, x̃ and x_p."""
        m = self.module_
        mu, logvar = m.posterior(x)
        eps = torch.randn(mu.shape, generator=self._gen, device=x.device, dtype=x.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        zp = torch.randn(mu.shape, generator=self._gen, device=x.device, dtype=x.dtype)
        x_rec = apply_output(m.decoder(z), self.output_)
        x_p = apply_output(m.decoder(zp), self.output_)
        f_x, d_x = m.discriminate(x)
        f_rec, d_rec = m.discriminate(x_rec)
        _, d_p = m.discriminate(x_p)
        return {"kl": 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(1),
                "llike": 0.5 * (f_x - f_rec).pow(2).sum(1) / float(self.feature_std) ** 2,
                "d_x": d_x, "d_rec": d_rec, "d_p": d_p}

    def _encoder_loss(self, batch: torch.Tensor) -> torch.Tensor:
        o = self._forward(batch)
        return (o["kl"] + o["llike"]).mean()

    def _gate(self, d_x: torch.Tensor, d_rec: torch.Tensor, d_p: torch.Tensor
              ) -> tuple[bool, bool]:
        """(update the discriminator, update the decoder) under the equilibrium gate."""
        if self.margin is None:
            return True, True
        with torch.no_grad():
            real = float(_bce(d_x, 1.0))
            fake = float(0.5 * (_bce(d_rec, 0.0) + _bce(d_p, 0.0)))
        m = float(self.margin)
        dis = not (real < EQUILIBRIUM - m or fake < EQUILIBRIUM - m)
        dec = not (real > EQUILIBRIUM + m or fake > EQUILIBRIUM + m)
        return (True, True) if not (dis or dec) else (dis, dec)

    @staticmethod
    def _skipped(loss: torch.Tensor) -> torch.Tensor:
        # the value is recorded, but the graph is cut: the player's parameters get no gradient
        # (None), so the optimiser leaves them and its state as they are
        return loss.detach().requires_grad_()

    def _decoder_loss(self, batch: torch.Tensor) -> torch.Tensor:
        o = self._forward(batch)
        loss = float(self.gamma) * o["llike"].mean() + _bce(o["d_rec"], 1.0) + _bce(o["d_p"], 1.0)
        return loss if self._gate(o["d_x"], o["d_rec"], o["d_p"])[1] else self._skipped(loss)

    def _discriminator_loss(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the generated images are constants to the discriminator
            m = self.module_
            mu, logvar = m.posterior(batch)
            eps = torch.randn(mu.shape, generator=self._gen, device=batch.device)
            x_rec = apply_output(m.decoder(mu + torch.exp(0.5 * logvar) * eps), self.output_)
            zp = torch.randn(mu.shape, generator=self._gen, device=batch.device)
            x_p = apply_output(m.decoder(zp), self.output_)
        d_x = self.module_.discriminate(batch)[1]
        d_rec = self.module_.discriminate(x_rec)[1]
        d_p = self.module_.discriminate(x_p)[1]
        loss = _bce(d_x, 1.0) + _bce(d_rec, 0.0) + _bce(d_p, 0.0)
        return loss if self._gate(d_x, d_rec, d_p)[0] else self._skipped(loss)

    def _optimizers(self) -> dict[str, OptimizerSpec]:
        m = self.module_
        return {"encoder": OptimizerSpec(list(m.encoder.parameters())),
                "decoder": OptimizerSpec(list(m.decoder.parameters())),
                "discriminator": OptimizerSpec([*m.features.parameters(),
                                                *m.head.parameters()],
                                               learning_rate=self.discriminator_learning_rate)}

    def _phases(self) -> list[Phase]:
        return [Phase("encoder", self._encoder_loss, "encoder"),
                Phase("decoder", self._decoder_loss, "decoder"),
                Phase("discriminator", self._discriminator_loss, "discriminator")]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are float32 whatever comes in
        return tags

    # -- public API ---------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Posterior means E_q[z | x], shape (n_samples, n_components)."""
        return self._map_batches(lambda b: self.module_.posterior(b)[0], X)

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Dec(z), z ~ N(0, I)."""
        self._check_fitted()
        g = torch.Generator(device=self._device())
        g.manual_seed(sample_seed(random_state, self.random_state))
        z = torch.randn((int(n_samples), int(self.n_components)), generator=g,
                        device=self._device())
        return self._decode(z)

    def discriminator_features(self, X: Any) -> np.ndarray:
        """Dis_l(x), the features in which reconstructions are measured."""
        return self._map_batches(lambda b: self.module_.features(b), X)


VAEGAN.__doc__ = (VAEGAN.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
