r"""The autoencoder: an encoder ``f`` and a decoder ``g`` trained to reconstruct their input.

.. math::

    h = f_θ(x), \qquad \hat x = g_φ(h), \qquad
    \min_{θ, φ}\ \frac{1}{N}\sum_{n=1}^{N} \ell\big(x_n, g_φ(f_θ(x_n))\big)

The loss follows the data. For data in [0, 1] it is the Bernoulli cross-entropy (the negative
log-likelihood of ``x`` under independent Bernoulli pixels with means ``σ(a)``, where ``a`` is
the decoder's output logit; computed stably from the logit):

.. math::  \ell(x, a) = -\sum_d \big[x_d \log σ(a_d) + (1 - x_d) \log(1 - σ(a_d))\big]

and for real values the squared error ``ℓ(x, x̂) = Σ_d (x_d - x̂_d)²``. With linear units and
squared error, the optimal ``k``-dimensional autoencoder spans the same subspace as PCA's top
``k`` components [1]_.

References
----------
.. [1] Baldi & Hornik, "Neural networks and principal component analysis: learning from
   examples without local minima", Neural Networks 2(1), 1989.
.. [2] Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks",
   Science 313, 2006.
.. [3] Goodfellow, Bengio & Courville, *Deep Learning*, ch. 14, 2016.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from torch import nn

from unsup.autoencoders._nets import ACTIVATIONS, conv_net, mlp_net
from unsup.registry import Demo, register_model
from unsup.train import TRAIN_PARAMS_DOC, GradientEstimator

__all__ = ["Autoencoder"]

LOSSES = ("auto", "bce", "mse")


@register_model('autoencoder', family='autoencoders', aliases=('ae',),
                summary='autoencoder, MLP or convolutional (loss follows the data)',
                demo=Demo("autoencoder 784-256-30-256-784 (ReLU, Bernoulli loss, Adam)",
                          params={"n_components": 30, "hidden_layer_sizes": (256,),
                                  "epochs": 10, "batch_size": 128, "random_state": 0},
                          quick={"epochs": 3}, order=30))
class Autoencoder(TransformerMixin, GradientEstimator):
    """Autoencoder with an MLP or convolutional encoder/decoder of any depth.

    Parameters
    ----------
    n_components : int
        Size of the code ``h`` (must not exceed the number of input features).
    hidden_layer_sizes : sequence of int
        Hidden layers of the MLP encoder (the decoder mirrors them), e.g. ``(256,)``.
    activation : str
        Hidden-unit non-linearity: relu, sigmoid, tanh, elu, gelu, leaky_relu, softplus, linear.
    code_activation : str
        Non-linearity of the code layer ("linear" by default; "sigmoid" for codes in (0, 1)).
    loss : {"auto", "bce", "mse"}
        Reconstruction loss: Bernoulli cross-entropy or squared error; "auto" picks "bce" for
        data in [0, 1] and "mse" otherwise.
    architecture : {"mlp", "conv"}
        Fully connected layers, or stride-2 3x3 convolutions (images).
    conv_channels : sequence of int
        Channels of the convolutional encoder layers (architecture="conv").
    image_shape : sequence of int or None
        (H, W) or (C, H, W) of the images (architecture="conv"; None: square, 1 channel).
    {train_params}

    Attributes
    ----------
    loss_ : str
        The loss used ("bce" or "mse").
    module_ : torch.nn.Module
        The network; ``module_.encoder`` and ``module_.decoder``.
    history_ : list of dict
        Per-epoch training (and validation) loss.
    n_features_in_ : int
        Number of input features.

    Examples
    --------
    >>> from unsup.autoencoders import Autoencoder
    >>> from unsup.data import load
    >>> X = load("mnist5k").X
    >>> ae = Autoencoder(30, hidden_layer_sizes=(256,), epochs=5).fit(X)  # doctest: +SKIP
    >>> codes = ae.transform(X)                                            # doctest: +SKIP
    """

    _test_params: dict[str, Any] = {"n_components": 2, "hidden_layer_sizes": (8,),
                                   "epochs": 2, "batch_size": 32}

    _allow_overcomplete = False

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # codes are float32 tensors' values
        return tags

    def __init__(
        self,
        n_components: int = 32,
        *,
        hidden_layer_sizes: Sequence[int] = (256,),
        activation: str = "relu",
        code_activation: str = "linear",
        loss: str = "auto",
        architecture: str = "mlp",
        conv_channels: Sequence[int] = (16, 32),
        image_shape: Sequence[int] | None = None,
    ) -> None:
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.architecture = architecture
        self.conv_channels = conv_channels
        self.image_shape = image_shape
        super().__init__()

    # -- checks -------------------------------------------------------------------------------
    def _check_params(self) -> None:
        d = self.n_features_in_
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_components must be a positive integer, got {k!r}")
        if k > d and not self._allow_overcomplete:
            raise ValueError(f"n_components={k} is larger than the input ({d} features): an "
                             "autoencoder needs a bottleneck (use SparseAutoencoder or "
                             "DenoisingAutoencoder for an over-complete code)")
        for name in ("activation", "code_activation"):
            if getattr(self, name) not in (*ACTIVATIONS, "identity"):
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {ACTIVATIONS}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r} is not one of {LOSSES}")
        if self.architecture not in ("mlp", "conv"):
            raise ValueError(f"architecture={self.architecture!r} is not 'mlp' or 'conv'")
        sizes = self._hidden()
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
               for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes!r}")

    def _hidden(self) -> list[Any]:
        h = self.hidden_layer_sizes
        if h is None:
            return []
        if isinstance(h, (int, np.integer)):
            return [int(h)]
        return list(h)

    @staticmethod
    def _range(X: Any) -> tuple[float, float]:
        if isinstance(X, torch.Tensor):
            return float(X.min()), float(X.max())
        head = np.asarray(X[: min(len(X), 20000)])
        return float(head.min()), float(head.max())

    def _prepare(self, X: Any) -> None:
        self._check_params()
        lo, hi = self._range(X)
        if self.loss == "bce" and (lo < 0.0 or hi > 1.0):
            raise ValueError(f"loss='bce' (Bernoulli cross-entropy) needs data in [0, 1], but X "
                             f"ranges over [{lo:.4g}, {hi:.4g}]: scale the data to [0, 1] or use "
                             "loss='mse'")
        if self.loss == "auto":
            self.loss_ = "bce" if lo >= 0.0 and hi <= 1.0 else "mse"
        else:
            self.loss_ = self.loss

    # -- the network and the loss -------------------------------------------------------------
    def _build_module(self) -> nn.Module:
        d, k = self.n_features_in_, int(self.n_components)
        if self.architecture == "conv":
            return conv_net(d, self.image_shape, list(self.conv_channels), k, self.activation,
                            self.code_activation)
        sizes = [d, *[int(s) for s in self._hidden()], k]
        return mlp_net(sizes, self.activation, self.code_activation)

    def _recon_loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample reconstruction loss (summed over features)."""
        if self.loss_ == "bce":
            return F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(1)
        return (out - target).pow(2).sum(1)

    def _mean_recon_loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n = target.shape[0]
        if self.loss_ == "bce":
            return F.binary_cross_entropy_with_logits(out, target, reduction="sum") / n
        return F.mse_loss(out, target, reduction="sum") / n

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        _, out = self.module_(batch)
        return self._mean_recon_loss(out, batch)

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.loss_ == "bce" else out

    # -- public API -----------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Codes ``h = f(x)``, shape (n_samples, n_components)."""
        return self._map_batches(self.module_.encoder, X)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        return self.fit(X, y, **fit_params).transform(X)

    def inverse_transform(self, H: Any) -> np.ndarray:
        """Decode codes: ``x̂ = g(h)`` (Bernoulli means for the cross-entropy loss)."""
        self._check_fitted()
        t = torch.as_tensor(np.asarray(H, dtype=np.float32), device=self._device())
        if t.ndim != 2 or t.shape[1] != self.module_.decoder[0].in_features:
            raise ValueError(f"codes must have shape (n, {self.n_components}), got "
                             f"{tuple(t.shape)}")
        with torch.no_grad():
            self.module_.eval()
            outs = [self._output(self.module_.decoder(t[i:i + 4096])).cpu()
                    for i in range(0, t.shape[0], 4096)]
        return torch.cat(outs).numpy()

    def reconstruct(self, X: Any) -> np.ndarray:
        """``g(f(x))``: the reconstruction of each row of ``X``."""
        return self._map_batches(lambda b: self._output(self.module_(b)[1]), X)

    def score_samples_reconstruction(self, X: Any) -> np.ndarray:
        """Per-sample reconstruction loss (nats for "bce", squared error for "mse")."""
        return self._map_batches(lambda b: self._recon_loss(self.module_(b)[1], b), X)

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean reconstruction loss per sample (higher is better)."""
        return -float(np.mean(self.score_samples_reconstruction(X)))


Autoencoder.__doc__ = (Autoencoder.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
