r"""The variational autoencoder (Kingma & Welling 2014), β-VAE and the IWAE bound.

A latent code :math:`z \sim p(z) = N(0, I)` generates :math:`x \sim p_θ(x \mid z)`; a Gaussian
encoder :math:`q_φ(z \mid x) = N(μ_φ(x), \operatorname{diag} σ_φ^2(x))` approximates the
posterior. Training maximises the evidence lower bound

.. math::

    \log p_θ(x) \ \ge\ \mathcal L(x) = E_{q_φ(z|x)}[\log p_θ(x \mid z)]
    - β\, KL(q_φ(z \mid x)\,\|\,p(z)),
    \qquad KL = \tfrac12 \sum_j (μ_j^2 + σ_j^2 - \log σ_j^2 - 1)

(the gap is :math:`KL(q_φ(z|x) \| p_θ(z|x))` at β = 1), with the reparameterisation
:math:`z = μ + σ \odot ε`, :math:`ε \sim N(0, I)`, so that the gradient flows through the
sample. β > 1 is the β-VAE (Higgins et al. 2017: more disentangled codes, looser bound);
``kl_warmup_steps`` ramps β linearly from 0 over the first steps (Bowman et al. 2016;
Sønderby et al. 2016) against inactive latent units.

With ``n_importance_samples = k > 1`` the objective is the importance-weighted bound of the
IWAE (Burda, Grosse & Salakhutdinov 2016), tighter for larger k and equal to the ELBO at k = 1:

.. math::

    \mathcal L_k(x) = E_{z_{1..k} \sim q}\Big[\log \frac1k \sum_{i=1}^k
    \frac{p_θ(x \mid z_i)\, p(z_i)^β}{q_φ(z_i \mid x)^β}\Big]

(β enters each weight; at k = 1 this is the β-ELBO above, whose KL is computed in closed form).

Stochastic layers above z (``prior_layers``) make the prior hierarchical, p(z_1) =
∫ p(z_1 | z_2) p(z_2), with Gaussian conditionals in both directions; every bound and
importance weight then uses the whole chain, :math:`\log w = \log p(x|z_1) + \log p(z_1|z_2)
+ \log p(z_2) - \log q(z_1|x) - \log q(z_2|z_1)`. The training ELBO (k = 1) takes the top
layer's KL in closed form given the sampled z_1, both sides being Gaussian with known
parameters,

.. math::

    \mathcal L(x) = E_{q(z_1|x)}\big[\log p(x|z_1) - \log q(z_1|x)
    + E_{q(z_2|z_1)} \log p(z_1|z_2) - KL(q(z_2|z_1) \,\|\, N(0, I))\big],

the same expectation with one sampled term fewer; the lower KL terms are estimated by sampling.
The variances of q(z_{l+1}|z_l) and p(z_l|z_{l+1}) are σ² = softplus(a + log(e-1)) + 10⁻³
(``prior_layer_variance``; Sønderby et al. 2016), which bounds 1/σ²_p, the scale of the
sampled :math:`\log p(z_1|z_2) - \log q(z_1|x)` and of its gradient; an unbounded log-variance
may shrink to the clamp e⁻¹⁶. Neither changes the estimator: the IS weights and the ELBO
of :meth:`log_likelihood` stay the full sampled chain above.

``prior="vamp"`` replaces N(0, I) by the VampPrior (Tomczak & Welling 2018), the mixture of
the encoder's posteriors at K learned pseudo-inputs, :math:`p(z) = \frac1K \sum_k q_φ(z|u_k)`
(:mod:`unsup.latent._vae_net`): a learned multimodal prior tied to the encoder, exact and
normalised, so the IS estimate and the ELBO stay bounds on log p(x); its KL term is estimated
by sampling, :math:`\log q(z|x) - \log p(z)` at the z of the reconstruction term.

Decoders: Bernoulli (binary data), continuous Bernoulli (grey levels in [0, 1], the normalised
Bernoulli cross-entropy, :class:`unsup.latent._common.ContinuousBernoulli`) and Gaussian with a
fixed or learned per-feature scale (real data). ``score_samples`` is the importance-sampled
log p(x) with ``n_eval_samples`` proposals from q (see :mod:`unsup.latent._common`).

References
----------
.. [1] Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
.. [2] Rezende, Mohamed & Wierstra, "Stochastic Backpropagation and Approximate Inference in
   Deep Generative Models", ICML 2014.
.. [3] Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
.. [4] Higgins et al., "β-VAE: Learning Basic Visual Concepts with a Constrained Variational
   Framework", ICLR 2017.
.. [5] Loaiza-Ganem & Cunningham, "The continuous Bernoulli: fixing a pervasive error in
   variational autoencoders", NeurIPS 2019.
.. [6] Tomczak & Welling, "VAE with a VampPrior", AISTATS 2018.
.. [7] Sønderby, Raiko, Maaløe, Sønderby & Winther, "Ladder Variational Autoencoders",
   NeurIPS 2016.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from torch import nn

from unsup.latent._common import (
    DECODERS,
    binarize,
    binarize_note,
    choose_decoder,
    is_likelihood,
    log_mean_exp,
    measure_seed,
    row_draws,
)
from unsup.latent._vae_net import (
    LOGVAR_RANGE,
    PRIOR_LAYER_VARIANCES,
    PRIORS,
    VAENet,
    kl_std_normal,
)
from unsup.likelihood import Likelihood
from unsup.nn import ACTIVATIONS
from unsup.params import Interval, StrOptions
from unsup.registry import Demo, register_model
from unsup.train import TRAIN_PARAMS_DOC, GradientEstimator, load_checkpoint
from unsup.train.seeding import derive_seed

__all__ = ["VAE"]

_LOG_2PI = math.log(2 * math.pi)
_pos = Interval(Integral, 1, None, closed="left")
_REFINE_LR = 0.03  # Adam's step on (μ, log σ²) when refining a proposal


@register_model("vae", family="latent", aliases=("variational-autoencoder",),
                summary="variational autoencoder (β-VAE, KL warm-up, IS-k log-likelihood)",
                demo=Demo("VAE 784-200-200-50 (ReLU, Bernoulli decoder; pixels thresholded at "
                          "0.5; log-likelihood of the binarised image, IS-100 estimate)",
                          params={"binarize_input": 0.5, "n_eval_samples": 100,
                                  "epochs": 40, "random_state": 0},
                          quick={"epochs": 10}, order=45))
class VAE(TransformerMixin, GradientEstimator):
    """Variational autoencoder with a Gaussian encoder and a decoder that follows the data.

    Parameters
    ----------
    n_components : int, default=50
        Size of the latent code z (at least 1).
    hidden_layer_sizes : sequence of int, default=(200, 200)
        Hidden layers of the MLP encoder; the decoder mirrors them. ``()``: linear maps.
    activation : str, default="relu"
        Hidden non-linearity (relu, tanh, elu, ...; see ``unsup.nn.ACTIVATIONS``). On the
        binarised mnist5k tuning split (500 held-out rows, IS-500, one fit each) "relu" gave
        91.62 nats against 95.73 for "tanh" (the default until 2026-12-01), and 92.24 against
        96.18 on the test protocol (IS-5000, first 1,000 binarised MNIST test digits;
        docs/latent.md).
    decoder : {"auto", "bernoulli", "continuous_bernoulli", "gaussian"}, default="auto"
        p(x|z). "auto": Bernoulli for binary data, continuous Bernoulli for grey levels in
        [0, 1], Gaussian otherwise. Bernoulli needs data in [0, 1] (grey levels are then a
        cross-entropy target, not a normalised likelihood).
    decoder_scale : float or None, default=None
        Gaussian decoder: a fixed σ, or None for one learned σ per feature.
    beta : float, default=1.0
        Weight β of the KL term (β-VAE); 1 is the ELBO.
    kl_warmup_steps : int, default=0
        Ramp β linearly from 0 to ``beta`` over this many steps (0: no warm-up).
    n_importance_samples : int, default=1
        k of the training objective: 1 is the ELBO (VAE), k > 1 the IWAE bound.
    n_eval_samples : int, default=1000
        k of the importance-sampled log-likelihood of :meth:`score_samples`.
    binarize_input : None, float or "stochastic", default=None
        None: X as given. A threshold t: ``X > t`` everywhere (fit, codes, likelihoods).
        "stochastic": every training minibatch drawn as Bernoulli(X) (dynamic binarisation);
        X thresholded at 0.5 for codes, validation and likelihoods. Given grey levels, this is
        the strongest regulariser measured for small image sets: fitted on 4,500 grey mnist5k
        rows, 91.4 nats on 500 held-out rows binarised at 0.5, against 95.3-96.6 when fitted on
        the binarised rows (use it with ``input_dropout=0``: 0.3 gave 92.3; bench/results/
        latent.md). It needs values in [0, 1], and does nothing to data already binary.
    prior_layers : sequence of int, default=()
        Sizes of further Gaussian stochastic layers above z (z2, z3, ...): z gets the learned
        hierarchical prior p(z) = ∫ p(z | z2) p(z2) dz2 (Burda et al. 2016's two-stochastic-
        layer model is ``VAE(100, prior_layers=(50,))``), and q factorises as
        q(z | x) q(z2 | z) ...; ``()``: one stochastic layer, p(z) = N(0, I). On binarised
        mnist5k (4,500 rows, ReLU) it trains to within ~2 nats of one layer on the training
        rows but is ~6 nats worse on held-out rows; with ``activation="tanh"`` it underfits
        (train NLL 141, 103 before the softplus variances and closed-form top KL; one ReLU
        layer 76; docs/latent.md): use ReLU.
    prior_layer_variance : {"softplus", "exp"}, default="softplus"
        Parametrisation of the variances of the layers above z (``prior_layers``):
        "softplus", σ² = softplus(a + log(e - 1)) + 10⁻³ (a floor on 1/σ² and a gradient
        that never vanishes); "exp", σ² = exp(a), a clamped to [-16, 10] (models saved before
        this parameter existed load with it). Ignored with one stochastic layer.
    prior_hidden_layer_sizes : sequence of int, default=(100, 100)
        Hidden layers (with ``activation``) of the networks between two stochastic layers.
    prior : {"normal", "vamp"}, default="normal"
        p(z) of the (single) stochastic layer: N(0, I), or the VampPrior
        p(z) = (1/K) Σ_k q(z | u_k) over K learned pseudo-inputs u_k in [0, 1] (Tomczak &
        Welling 2018; one stochastic layer only). Each training step also encodes the K
        pseudo-inputs (1.2x the time per epoch at K = 100, 2.4x at K = 500). Measured on
        binarised mnist5k: with tanh networks (the default until 2026-12-01) it
        **collapses** (KL(q||p) -> 0 within a few epochs, the encoder mapping every input,
        pseudo-inputs included, to one posterior; 206.8 nats on 500 held-out rows at K = 100
        against 95.7 for N(0, I); a KL warm-up did not prevent it); with ReLU (the default
        now) it trains, 91.43 held-out (K = 100) against 91.62 for N(0, I): within noise
        (docs/latent.md).
    n_pseudo_inputs : int, default=500
        K of the VampPrior (prior="vamp"; ignored otherwise).
    dropout : float, default=0.0
        Dropout after each hidden layer of the MLP encoder and decoder (training only;
        it hurt on binarised mnist5k: 0.4 cost 35 nats on held-out digits).
    input_dropout : float, default=0.3
        Masking noise on the encoder's input during training: q(z | x̃) sees x with this
        fraction of features zeroed (the rest scaled by 1/(1 - p)), p(x | z) still
        reconstructs the clean x (the denoising VAE of Im et al. 2017; the objective stays a
        lower bound on log p(x)). The default was chosen on 500 held-out rows of binarised
        mnist5k (IS-500, one fit each): 0 -> 96.6 nats, 0.3 -> 95.7, 0.5 -> 98.4; weight
        decay, hidden dropout, a smaller code, batch 50, a KL warm-up, lr 3e-3 and a cosine
        schedule did not help (docs/latent.md). 0: the plain VAE.
    architecture : {"mlp", "conv"}, default="mlp"
        Fully connected networks, or stride-2 convolutions (images; see ``image_shape``).
    conv_channels : sequence of int, default=(32, 64)
        Channels of the convolutional encoder (architecture="conv").
    image_shape : sequence of int or None, default=None
        (H, W) or (C, H, W) of the images (architecture="conv"; None: square, one channel).
    epochs : int, default=500
        Passes over the training data (early stopping usually ends training first).
    batch_size : int, default=100
    validation_fraction : float, default=0.1
        Rows held out for early stopping on the validation bound.
    early_stopping : bool, default=True
    patience : int, default=20
    {train_params}

    Attributes
    ----------
    decoder_ : str
        The decoder used.
    module_ : VAENet
        ``module_.encoder``, ``module_.decoder``.
    history_ : list of dict
        Per epoch: ``loss`` (the negative training objective), ``recon`` (mean
        -E_q log p(x|z)), ``kl`` (mean KL(q||p)), ``val_loss`` (negative validation bound, β=1).
    n_features_in_ : int
    """

    _parameter_constraints: dict[str, Any] = {
        "n_components": [_pos],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "decoder": [StrOptions(set(DECODERS))],
        "decoder_scale": [Interval(Real, 0, None, closed="neither"), None],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup_steps": [Interval(Integral, 0, None, closed="left")],
        "n_importance_samples": [_pos],
        "n_eval_samples": [_pos],
        "binarize_input": [None, Interval(Real, None, None, closed="neither"),
                           StrOptions({"stochastic"})],
        "prior_layers": ["array-like"],
        "prior_hidden_layer_sizes": ["array-like"],
        "prior_layer_variance": [StrOptions(set(PRIOR_LAYER_VARIANCES))],
        "prior": [StrOptions(set(PRIORS))],
        "n_pseudo_inputs": [_pos],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "architecture": [StrOptions({"mlp", "conv"})],
        "conv_channels": ["array-like"],
        "image_shape": ["array-like", None],
    }
    _test_params: dict[str, Any] = {"n_components": 2, "hidden_layer_sizes": (8,), "epochs": 2,
                                    "batch_size": 32, "n_eval_samples": 8,
                                    "early_stopping": False, "validation_fraction": 0.0}
    _stage_name = "VAE"
    # files saved before it existed were trained with log σ² = a in the layers above z
    _params_added_later = {"prior_layer_variance": "exp"}

    def __init__(
        self,
        n_components: int = 50,
        *,
        hidden_layer_sizes: Sequence[int] = (200, 200),
        activation: str = "relu",
        decoder: str = "auto",
        decoder_scale: float | None = None,
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        n_importance_samples: int = 1,
        n_eval_samples: int = 1000,
        binarize_input: Any = None,
        prior_layers: Sequence[int] = (),
        prior_hidden_layer_sizes: Sequence[int] = (100, 100),
        prior_layer_variance: str = "softplus",
        prior: str = "normal",
        n_pseudo_inputs: int = 500,
        dropout: float = 0.0,
        input_dropout: float = 0.3,
        architecture: str = "mlp",
        conv_channels: Sequence[int] = (32, 64),
        image_shape: Sequence[int] | None = None,
        epochs: int = 500,
        batch_size: int = 100,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 20,
    ) -> None:
        super().__init__()  # the training group's defaults first; ours overwrite five of them
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.decoder = decoder
        self.decoder_scale = decoder_scale
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps
        self.n_importance_samples = n_importance_samples
        self.n_eval_samples = n_eval_samples
        self.binarize_input = binarize_input
        self.prior_layers = prior_layers
        self.prior_hidden_layer_sizes = prior_hidden_layer_sizes
        self.prior_layer_variance = prior_layer_variance
        self.prior = prior
        self.n_pseudo_inputs = n_pseudo_inputs
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.architecture = architecture
        self.conv_channels = conv_channels
        self.image_shape = image_shape
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience

    # -- data and network ---------------------------------------------------------------------
    def _prepare(self, X: Any) -> None:
        for name in ("hidden_layer_sizes", "prior_layers", "prior_hidden_layer_sizes"):
            sizes = [int(h) for h in getattr(self, name)]
            if any(h < 1 for h in sizes):
                raise ValueError(f"{name} must be positive, got {sizes}")
        if self.prior == "vamp" and len(self.prior_layers):
            raise ValueError("prior='vamp' is for one stochastic layer: prior_layers must be "
                             f"(), got {tuple(self.prior_layers)}")
        mode = self.binarize_input
        if mode is not None:  # the decoder sees binary data: thresholded, or Bernoulli draws
            Xt = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X[:20000]))
            binarize(Xt, mode)  # refuses "stochastic" outside [0, 1]
            self.decoder_ = choose_decoder(self.decoder, torch.zeros(1, 1))
        else:
            self.decoder_ = choose_decoder(self.decoder, X)
        self._step = 0
        if self.resume and self.checkpoint_dir:  # the KL warm-up continues where it stopped
            ck = load_checkpoint(self.checkpoint_dir)
            self._step = int(ck[1]["state"]["step"]) if ck is not None else 0

    def _build_module(self) -> nn.Module:
        return VAENet(self.n_features_in_, int(self.n_components),
                      [int(h) for h in self.hidden_layer_sizes], self.activation,
                      self.decoder_, self.decoder_scale, self.architecture,
                      self.conv_channels, self.image_shape, float(self.dropout),
                      [int(d) for d in self.prior_layers],
                      [int(h) for h in self.prior_hidden_layer_sizes],
                      int(self.n_pseudo_inputs) if self.prior == "vamp" else 0,
                      str(self.prior_layer_variance))

    def _data(self, X: torch.Tensor, train: bool = False) -> torch.Tensor:
        return binarize(X, self.binarize_input, self._gen if train else None)

    # -- the objective ------------------------------------------------------------------------
    def _beta_now(self) -> float:
        w = self.kl_warmup_steps
        return float(self.beta) * (min(1.0, (self._step + 1) / w) if w else 1.0)

    def _log_weights(self, x: torch.Tensor, eps: torch.Tensor, beta: float = 1.0,
                     x_enc: torch.Tensor | None = None,
                     post: tuple[torch.Tensor, torch.Tensor] | None = None,
                     analytic_top: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``log p(x|z) + β(log p(z) - log q(z|x))`` for ``z = μ + σ ε``, shape (k, n); also
        the reconstruction term log p(x|z) (k, n) and the KL (n,): closed form with one
        stochastic layer and p(z) = N(0, I), else the k-sample mean of ``log q - log p``.

        ``eps`` (k, n, Σ dims) holds the noise of every stochastic layer, z1 first; ``x_enc``
        is what the encoder sees (default x; the masked x under ``input_dropout``); ``post``
        replaces the encoder's (μ, log σ²) of q(z1 | x) (a refined proposal).

        ``analytic_top`` (with stochastic layers above z1; the k = 1 training ELBO only): the
        top layer's sampled ``log p(z_top) - log q(z_top | z_{top-1})`` is replaced by its
        expectation given z_{top-1}, ``-KL(q(z_top | z_{top-1}) || N(0, I))`` in closed form,
        so the "weights" are no longer importance weights; never for IS estimates."""
        net = self.module_
        parts = eps.split(net.dims, dim=-1)
        mu, logvar = net.posterior(x if x_enc is None else x_enc) if post is None else post
        z = mu + torch.exp(0.5 * logvar) * parts[0]  # eps: (k, n, L)
        lpx = net.decode(z).log_prob(x.expand(z.shape[0], *x.shape))
        lqz = -0.5 * (parts[0] * parts[0] + _LOG_2PI).sum(-1) - 0.5 * logvar.sum(-1)
        if len(parts) == 1:
            lpz = net.log_prior(z)
            kl = (kl_std_normal(mu, logvar)
                  if net.pseudo_inputs is None else (lqz - lpz).mean(0))
            return lpx + beta * (lpz - lqz), lpx, kl
        zs = [z]
        for up, e in zip(net.up, parts[1:], strict=True):  # q(z_{l+1} | z_l), upwards
            mu, logvar = net.upper_params(up, zs[-1])
            zs.append(mu + torch.exp(0.5 * logvar) * e)
            lq_top = -0.5 * (e * e + _LOG_2PI).sum(-1) - 0.5 * logvar.sum(-1)
            lqz = lqz + lq_top
        lp_top = -0.5 * (zs[-1] * zs[-1] + _LOG_2PI).sum(-1)  # p(z_top) = N(0, I)
        lpz = lp_top
        for down, lower, upper in zip(net.down, zs[:-1], zs[1:], strict=True):  # p(z_l|z_l+1)
            m, lv = net.upper_params(down, upper)
            lpz = lpz - 0.5 * ((lower - m) ** 2 / lv.exp() + lv + _LOG_2PI).sum(-1)
        if analytic_top:  # mu, logvar: q(z_top | z_{top-1})
            kl_top = kl_std_normal(mu, logvar)
            ratio = (lpz - lp_top) - (lqz - lq_top) - kl_top
            return lpx + beta * ratio, lpx, -ratio.mean(0)
        return lpx + beta * (lpz - lqz), lpx, (lqz - lpz).mean(0)

    def _bound(self, x: torch.Tensor, k: int, beta: float, gen: torch.Generator,
               x_enc: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-row training bound (β-ELBO with closed-form KL at k = 1, else IWAE), recon, KL."""
        eps = torch.randn((k, x.shape[0], sum(self.module_.dims)), generator=gen,
                          device=x.device, dtype=x.dtype)
        if k == 1 and len(self.module_.dims) == 1 and self.module_.pseudo_inputs is None:
            # the ELBO, KL in closed form: no weights
            mu, logvar = self.module_.posterior(x if x_enc is None else x_enc)
            lpx = self.module_.decode(mu + torch.exp(0.5 * logvar) * eps[0]).log_prob(x)
            kl = kl_std_normal(mu, logvar)
            return lpx - beta * kl, -lpx, kl
        if k == 1 and self.module_.pseudo_inputs is None:  # the ELBO, the top KL closed form
            lw, lpx, kl = self._log_weights(x, eps, beta, x_enc, analytic_top=True)
            return lw[0], -lpx[0], kl
        lw, lpx, kl = self._log_weights(x, eps, beta, x_enc)
        return log_mean_exp(lw), -lpx.mean(0), kl

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = self._data(batch, train=True)
        x_enc, p = None, float(self.input_dropout)
        if p > 0:  # masking noise on q's input, from the fit's generator (resumable)
            keep = torch.rand(x.shape, generator=self._gen, device=x.device, dtype=x.dtype)
            x_enc = x * (keep >= p).to(x.dtype) / (1 - p)
        bound, recon, kl = self._bound(x, int(self.n_importance_samples), self._beta_now(),
                                       self._gen, x_enc)
        self._terms = (recon.mean().detach(), kl.mean().detach())
        return -bound.mean()

    def _val_loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = self._data(batch)  # thresholded, not redrawn: a fixed validation set
        return -self._bound(x, int(self.n_importance_samples), 1.0, self._gen)[0].mean()

    def _on_step(self, step: int, metrics: dict[str, float]) -> None:
        self._step = step
        s = self._epoch_terms.setdefault(int(metrics["epoch"]), [0.0, 0.0, 0])
        s[0] += float(self._terms[0])
        s[1] += float(self._terms[1])
        s[2] += 1

    def _run(self, X: Any, cfg: Any, callbacks: Any = (), loss: Any = None, val_loss: Any = None,
             module: Any = None) -> Any:
        self._epoch_terms: dict[int, list[float]] = {}
        # (nn.Dropout's draws are seeded by the engine: GradientEstimator._run)
        return super()._run(X, cfg, [*callbacks, self._on_step], loss,
                            val_loss or self._val_loss, module)

    def _record(self, res: Any) -> None:
        super()._record(res)
        for rec in self.history_:  # the KL and reconstruction curves, per epoch
            s = self._epoch_terms.get(math.ceil(rec["epoch"]) - 1)
            if s and s[2]:
                rec["recon"], rec["kl"] = s[0] / s[2], s[1] / s[2]
        self._step = self.n_steps_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are float32 whatever comes in
        return tags

    # -- public API ---------------------------------------------------------------------------
    def _x(self, X: Any) -> torch.Tensor:
        return self._data(self._input(X))

    def transform(self, X: Any) -> np.ndarray:
        """Posterior means E_q[z | x], shape (n_samples, n_components)."""
        return self._map_batches(lambda b: self.module_.posterior(self._data(b))[0], X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Decode codes: the mean of p(x | z) (pixel probabilities for Bernoulli)."""
        self._check_fitted()
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=self._device())
        if z.ndim != 2 or z.shape[1] != int(self.n_components):
            raise ValueError(f"codes must have shape (n, {self.n_components}), got "
                             f"{tuple(z.shape)}")
        with torch.no_grad():
            self.module_.eval()
            return torch.cat([self.module_.decode(z[i:i + 4096]).mean.cpu()
                              for i in range(0, z.shape[0], 4096)]).numpy()

    def sample(self, n_samples: int = 1, random_state: Any = None, mean: bool = False
               ) -> np.ndarray:
        """Draw x ~ p(x | z), z ~ p(z) (``mean=True``: the decoder means instead)."""
        self._check_fitted()
        g = torch.Generator(device=self._device())
        g.manual_seed(measure_seed(self.random_state if random_state is None else random_state))
        with torch.no_grad():
            self.module_.eval()
            d = self.module_.decode(self.module_.ancestral(int(n_samples), g, self._device()))
            return (d.mean if mean else d.sample(g)).cpu().numpy()

    def _refined_posterior(self, x: torch.Tensor, steps: int, seed: int, m: int = 10,
                           lr: float = _REFINE_LR) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z1 | x) per row, refined from the encoder's by ``steps`` Adam steps
        on the m-sample importance-weighted bound with the decoder fixed (semi-amortised
        inference, Kim et al. 2018). Adam is elementwise and the loss a sum over rows, and
        the noise is per row (:func:`row_draws`), so a row's proposal depends on that row
        alone."""
        mu0, lv0 = self.module_.posterior(x)
        mu, lv = mu0.detach().clone().requires_grad_(), lv0.detach().clone().requires_grad_()
        noise = row_draws(x, m * steps, [sum(self.module_.dims)], derive_seed(seed, 1),
                          uniform=False)[0]
        opt = torch.optim.Adam([mu, lv], lr=lr)
        with torch.enable_grad():
            for t in range(steps):
                lw = self._log_weights(x, noise[t * m:(t + 1) * m],
                                       post=(mu, lv.clamp(*LOGVAR_RANGE)))[0]
                mu.grad, lv.grad = torch.autograd.grad(-log_mean_exp(lw).sum(), [mu, lv])
                opt.step()
        return mu.detach(), lv.detach().clamp(*LOGVAR_RANGE)

    @torch.no_grad()
    def log_likelihood(self, X: Any, n_samples: int | None = None, elbo: bool = False,
                       random_state: Any = None, refine_steps: int = 0) -> Likelihood:
        """Importance-sampled log p(x) with k proposals from q(z|x) (a stochastic lower bound;
        estimator "IS-k"); ``elbo=True``: the ELBO, averaged over k draws of z, instead.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        n_samples : int, optional
            k (default ``n_eval_samples``).
        elbo : bool, default=False
            Return the ELBO E_q[log p(x, z) - log q(z | x)] (estimator "ELBO (k draws)").
        random_state : int, optional
            Seed of the proposals (default: from ``random_state``); measuring never changes
            the model.
        refine_steps : int, default=0
            Refine each row's proposal q(z1 | x) from the encoder's output by this many Adam
            steps on its 10-sample importance-weighted bound, the decoder fixed, before the k
            draws (estimator "IS-k, proposal refined (s steps)"). Still a stochastic lower
            bound on log p(x) (any proposal is), but a tighter one where the encoder is a poor
            proposal, as on test data after overfitting; it measures the same model better
            and costs about ``30 * refine_steps`` decoder passes per row.
        """
        self._check_fitted()
        x = self._x(X)
        self.module_.eval()
        k = int(n_samples or self.n_eval_samples)
        seed = measure_seed(self.random_state if random_state is None else random_state)
        L = sum(self.module_.dims)

        def lw(b: torch.Tensor, *post: torch.Tensor) -> torch.Tensor:
            return self._log_weights(b, row_draws(b, k, [L], seed, uniform=False)[0],
                                     post=tuple(post) or None)[0]  # type: ignore[arg-type]

        steps = int(refine_steps)
        if steps < 0:
            raise ValueError(f"refine_steps must be >= 0, got {refine_steps}")
        extra: tuple[torch.Tensor, ...] = ()
        if steps:
            parts = [self._refined_posterior(x[i:i + 128], steps, seed)
                     for i in range(0, x.shape[0], 128)]
            extra = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
        support = "discrete" if self.decoder_ == "bernoulli" else "continuous"
        return is_likelihood(lw, x, k, support=support,
                             transform=binarize_note(self.binarize_input), elbo=elbo,
                             extra=extra,
                             note=f", proposal refined ({steps} steps)" if steps else "")

    def elbo(self, X: Any, n_samples: int | None = None) -> Likelihood:
        """The evidence lower bound per row, estimated with k draws of z (typed result)."""
        return self.log_likelihood(X, n_samples=n_samples, elbo=True)

    def score_samples(self, X: Any) -> np.ndarray:
        """IS-k estimate of log p(x) per row (k = ``n_eval_samples``), nats."""
        return self.log_likelihood(X).per_sample

    def score(self, X: Any, y: Any = None) -> float:
        """Mean IS-k log-likelihood."""
        return float(self.log_likelihood(X).nats)


VAE.__doc__ = (VAE.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
