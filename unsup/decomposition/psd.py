r"""Predictive sparse decomposition (PSD): a sparse code and an encoder trained to predict it.

Kavukcuoglu, Ranzato & LeCun (2008) add to the sparse-coding energy a term that ties the code to
a feed-forward prediction ``F(x) = g ⊙ tanh(W x + b)``:

.. math::  E(x, z) = \tfrac12 ‖x - z D‖² + α ‖z‖_1 + β ‖z - F(x)‖²

Training alternates, per mini-batch, (1) inference ``z^* = \arg\min_z E`` with ``D, W`` fixed:
a lasso whose smooth part has Gram matrix ``G + 2βI`` and correlations ``x Dᵀ + 2β F(x)``,
solved by FISTA from ``z = F(x)`` (:func:`unsup.decomposition.sparse_coding.fista`); and (2) one
gradient step of ``E(x, z^*)`` on ``D`` and the encoder (the gradient engine, :mod:`unsup.train`).
The atoms are kept at unit norm by the parametrisation ``D = V / ‖V‖`` (per row), the
constraint of the paper without a projection step.

After training, ``transform`` is the encoder alone: one matrix product and a ``tanh`` instead of
an iterative solver (the point of PSD); :meth:`PSD.sparse_codes` gives the optimal codes of the
learned dictionary, so the speed-up and the code error can be measured.

References
----------
Kavukcuoglu, Ranzato & LeCun, "Fast inference in sparse coding algorithms with applications to
object recognition", Technical report CBLL-TR-2008-12-01, NYU, 2008 (arXiv:1010.3467).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from torch import nn

from unsup.data.validation import check_array
from unsup.decomposition.sparse_coding import _encode, fista
from unsup.params import Interval
from unsup.registry import Demo, register_model
from unsup.train.estimator import TRAIN_PARAMS_DOC, GradientEstimator

__all__ = ["PSD"]


class _PSDNet(nn.Module):
    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.V = nn.Parameter(torch.randn(k, d))
        self.encoder = nn.Linear(d, k)
        self.gain = nn.Parameter(torch.ones(k))

    def dictionary(self) -> torch.Tensor:
        return self.V / self.V.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * torch.tanh(self.encoder(x))


@register_model("psd", family="decomposition", aliases=("predictive-sparse-decomposition",),
                summary="predictive sparse decomposition: sparse coding with a trained "
                        "fast encoder",
                demo=Demo("PSD (64 atoms)", params={"n_components": 64, "alpha": 0.5,
                                                    "epochs": 5, "random_state": 0},
                          quick={"epochs": 1}, order=26))
class PSD(TransformerMixin, GradientEstimator):
    """Predictive sparse decomposition (Kavukcuoglu, Ranzato & LeCun 2008).

    Parameters
    ----------
    n_components : int, default=64
        Number of atoms (and code units).
    alpha : float, default=0.5
        Sparsity penalty ``α``.
    beta : float, default=1.0
        Weight ``β`` of the prediction term ``‖z - F(x)‖²``.
    code_max_iter : int, default=50
        FISTA iterations of the inference step during training (warm-started at ``F(x)``).
    {train_params}

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The unit-norm atoms ``D``.
    module_ : torch.nn.Module
        Dictionary parameter and encoder.
    history_, n_steps_ : as for every gradient model.
    """

    _test_params: dict[str, Any] = {"n_components": 3, "epochs": 2, "batch_size": 32}
    _amp_auto = False  # FISTA's codes and its stopping test want full precision

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "code_max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_components: int = 64, *, alpha: float = 0.5, beta: float = 1.0,
                 code_max_iter: int = 50, learning_rate: float = 3e-3) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.beta = beta
        self.code_max_iter = code_max_iter
        self.learning_rate = learning_rate
        super().__init__()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the network computes in float32
        return tags

    def _build_module(self) -> nn.Module:
        return _PSDNet(self.n_features_in_, int(self.n_components))

    def _infer(self, x: torch.Tensor, D: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
        """``argmin_z ½‖x - zD‖² + α‖z‖₁ + β‖z - F‖²`` by FISTA from ``F``."""
        b = float(self.beta)
        G = D @ D.T + 2 * b * torch.eye(D.shape[0], dtype=D.dtype, device=D.device)
        return fista(x @ D.T + 2 * b * F, G, float(self.alpha), max_iter=self.code_max_iter,
                     tol=1e-4, Z0=F)[0]

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        net = self.module_
        D, F = net.dictionary(), net.predict(batch)
        with torch.no_grad():
            z = self._infer(batch, D, F)
        rec = 0.5 * (batch - z @ D).pow(2).sum(1)
        return (rec + float(self.alpha) * z.abs().sum(1)
                + float(self.beta) * (z - F).pow(2).sum(1)).mean()

    @property
    def components_(self) -> np.ndarray:
        self._check_fitted()
        with torch.no_grad():
            return self.module_.dictionary().cpu().numpy()

    def transform(self, X: Any) -> np.ndarray:
        """The encoder's fast approximate codes ``F(x) = g ⊙ tanh(W x + b)``."""
        return self._map_batches(self.module_.predict, X)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        return self.fit(X, y, **fit_params).transform(X)

    def sparse_codes(self, X: Any, max_iter: int = 1000, tol: float = 1e-6) -> np.ndarray:
        """Optimal lasso codes ``argmin_z ½‖x - zD‖² + α‖z‖₁`` of the learned dictionary (the
        codes ``transform`` approximates; slow)."""
        t = self._input(X)
        with torch.no_grad():
            D = self.module_.dictionary()
            return _encode(t, D, float(self.alpha), "fista", False, max_iter, tol).cpu().numpy()

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Reconstruction ``x̂ = z D``."""
        self._check_fitted()
        Zt = check_array(Z, name="Z", dtype=torch.float32, device=self._device())
        if Zt.shape[1] != int(self.n_components):
            raise ValueError(f"Z has {Zt.shape[1]} columns, but this PSD has "
                             f"{self.n_components} atoms")
        with torch.no_grad():
            return (Zt @ self.module_.dictionary()).cpu().numpy()


PSD.__doc__ = (PSD.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
