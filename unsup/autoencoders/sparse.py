r"""The sparse autoencoder: a reconstruction loss plus a penalty that keeps hidden units quiet.

.. math::

    \min_{θ, φ}\ \frac{1}{N}\sum_n \ell\big(x_n, g_φ(h_n)\big) + β\, Ω(h),
    \qquad h_n = f_θ(x_n)

with either the KL penalty on the mean activation ``ρ̂_j = (1/B) Σ_n h_{nj}`` of each (sigmoid)
code unit over the minibatch [1]_

.. math::  Ω_{KL} = \sum_j \mathrm{KL}(ρ \,\|\, ρ̂_j) = \sum_j ρ \log\frac{ρ}{ρ̂_j}
           + (1 - ρ)\log\frac{1 - ρ}{1 - ρ̂_j}

or the L1 penalty ``Ω_{L1} = (1/B) Σ_n ‖h_n‖₁``. The code may be over-complete
(``n_components`` larger than the input): sparsity, not the bottleneck, prevents the identity.

References
----------
.. [1] Ng, "Sparse autoencoder", CS294A lecture notes, Stanford, 2011.
.. [2] Goodfellow, Bengio & Courville, *Deep Learning*, §14.2.1, 2016.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from unsup.autoencoders.autoencoder import Autoencoder
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC

__all__ = ["SparseAutoencoder"]


@register_model('sparse-autoencoder', family='autoencoders', aliases=('sae',),
                summary='sparse autoencoder (KL(rho||rho_hat) or L1 penalty on the code)')
class SparseAutoencoder(Autoencoder):
    """Autoencoder with a sparsity penalty on the code: KL(ρ‖ρ̂) or L1.

    Parameters
    ----------
    n_components : int
        Number of code units (may exceed the number of inputs).
    sparsity : {"kl", "l1"}
        Penalty: KL divergence of the mean activations from ``sparsity_target`` (needs
        sigmoid codes), or the L1 norm of the codes.
    sparsity_target : float
        ρ, the target mean activation of each code unit ("kl"), in (0, 1).
    sparsity_weight : float
        β, the weight of the penalty.
    hidden_layer_sizes : sequence of int
        Hidden layers between the input and the code (default none: one hidden layer, the code).
    activation : str
        Non-linearity of the other hidden layers.
    code_activation : str
        Non-linearity of the code ("sigmoid" is required for sparsity="kl").
    loss : {"auto", "bce", "mse"}
        Reconstruction loss ("auto": "bce" for data in [0, 1], else "mse").
    {train_params}

    Attributes
    ----------
    loss_ : str
        The loss used.
    history_ : list of dict
        Per-epoch loss (reconstruction + penalty).
    n_features_in_ : int
        Number of input features.
    """

    _test_params: dict[str, Any] = {"n_components": 4, "epochs": 2, "batch_size": 32}

    _allow_overcomplete = True

    def __init__(
        self,
        n_components: int = 64,
        *,
        sparsity: str = "kl",
        sparsity_target: float = 0.05,
        sparsity_weight: float = 1.0,
        hidden_layer_sizes: Sequence[int] = (),
        activation: str = "relu",
        code_activation: str = "sigmoid",
        loss: str = "auto",
    ) -> None:
        self.sparsity = sparsity
        self.sparsity_target = sparsity_target
        self.sparsity_weight = sparsity_weight
        super().__init__(n_components, hidden_layer_sizes=hidden_layer_sizes,
                         activation=activation, code_activation=code_activation, loss=loss)

    def _prepare(self, X: Any) -> None:
        super()._prepare(X)
        if self.sparsity not in ("kl", "l1"):
            raise ValueError(f"sparsity={self.sparsity!r} is not 'kl' or 'l1'")
        if self.sparsity == "kl":
            if self.code_activation != "sigmoid":
                raise ValueError("sparsity='kl' compares mean activations with a probability ρ: "
                                 "it needs code_activation='sigmoid' (or use sparsity='l1')")
            if not 0.0 < float(self.sparsity_target) < 1.0:
                raise ValueError(f"sparsity_target must be in (0, 1), got "
                                 f"{self.sparsity_target!r}")
        if float(self.sparsity_weight) < 0:
            raise ValueError(f"sparsity_weight must be >= 0, got {self.sparsity_weight!r}")

    def _penalty(self, h: torch.Tensor) -> torch.Tensor:
        if self.sparsity == "l1":
            return h.abs().sum(1).mean()
        rho = float(self.sparsity_target)
        rho_hat = h.mean(0).clamp(1e-6, 1 - 1e-6)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return kl.sum()

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        h, out = self.module_(batch)
        return self._mean_recon_loss(out, batch) + float(self.sparsity_weight) * self._penalty(h)


SparseAutoencoder.__doc__ = (SparseAutoencoder.__doc__ or "").replace(
    "{train_params}", TRAIN_PARAMS_DOC)
