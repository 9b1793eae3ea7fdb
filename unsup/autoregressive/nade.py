r"""NADE, the neural autoregressive distribution estimator (Larochelle & Murray 2011).

Pixels are visited in raster order. The d-th conditional is a one-hidden-layer network of the
pixels before d, with the input weights *shared* between conditionals:

.. math::

    h_d = σ\Big(c + \sum_{j<d} W_{:,j}\, x_j\Big), \qquad
    p(x_d{=}1 \mid x_{<d}) = σ(b_d + V_d^\top h_d)

(for grey levels, ``V_d`` has one row per output parameter: L softmax logits or a logistic's
location and log-scale). Because :math:`a_d = c + \sum_{j<d} W_{:,j} x_j` is a running sum,
:math:`a_{d+1} = a_d + W_{:,d} x_d`, all D hidden vectors come from one cumulative sum: the
exact log-likelihood costs O(DH) per image, like a single autoencoder pass, and training
minimises :math:`-\frac1N \sum_n \log p(x^{(n)})` with the gradient engine (Adam by default).
Sampling walks the same recursion pixel by pixel.

References
----------
.. [1] Larochelle & Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.
.. [2] Uria, Côté, Gregor, Murray & Larochelle, "Neural Autoregressive Distribution
   Estimation", JMLR 2016.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unsup.autoregressive._img_base import ExactAutoregressive
from unsup.params import Interval
from unsup.registry import Demo, register_model
from unsup.train import TRAIN_PARAMS_DOC

__all__ = ["NADE"]

_BLOCK = 16  # pixels per block of the running sum (see NADENet.forward)


class NADENet(nn.Module):
    """Parameters ``W`` (H, D), ``c`` (H), ``V`` (D, P, H), ``b`` (D, P)."""

    def __init__(self, n_features: int, n_hidden: int, n_params: int) -> None:
        super().__init__()
        D, H, P = n_features, n_hidden, n_params
        self.W = nn.Parameter(torch.randn(H, D) * (1.0 / D) ** 0.5)
        self.c = nn.Parameter(torch.zeros(H))
        self.V = nn.Parameter(torch.randn(D, P, H) * (1.0 / H) ** 0.5)
        self.b = nn.Parameter(torch.zeros(D, P))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Conditionals' parameters (n, D, P) of inputs ``x`` (n, D), in O(nDH) memory.

        The running sums ``a_d = c + Σ_{j<d} W_{:,j} x_j`` blockwise: pixels in blocks of
        ``s``; an exclusive cumulative sum of the block totals, plus a strictly triangular
        (s×s) product inside each block. s = 1 is the plain cumulative sum; a few pixels per
        block do s× its flops in BLAS but write a third of its (n, D, H) tensors, which is what
        bounds it on a CPU."""
        n, D = x.shape
        s = _BLOCK
        B = -(-D // s)
        xb = F.pad(x, (0, B * s - D)).view(n, B, s)
        Wt = F.pad(self.W, (0, B * s - D)).t().reshape(B, s, -1)  # (B, s, H)
        tot = torch.einsum("nbs,bsh->nbh", xb, Wt)  # each block's total
        before = torch.cumsum(tot, 1) - tot + self.c  # c + the blocks before: (n, B, H)
        tri = torch.ones(s, s, dtype=x.dtype, device=x.device).tril(-1)
        a = torch.einsum("nbij,bjh->nbih", xb[:, :, None, :] * tri, Wt) + before[:, :, None]
        h = torch.sigmoid(a.reshape(n, B * s, -1)[:, :D])
        return torch.einsum("ndh,dph->ndp", h, self.V) + self.b

    def step(self, a: torch.Tensor, d: int) -> torch.Tensor:
        """Parameters (n, P) of pixel ``d`` from its pre-activation ``a`` (n, H)."""
        return torch.sigmoid(a) @ self.V[d].t() + self.b[d]


@register_model("nade", family="autoregressive",
                aliases=("neural-autoregressive-distribution-estimator",),
                summary="NADE: exact autoregressive likelihood, shared weights (O(DH))",
                demo=Demo("NADE, 200 hidden units (pixels thresholded at 0.5; exact "
                          "log-likelihood of the binarised image)",
                          params={"binarize_input": 0.5, "n_components": 200, "epochs": 30,
                                  "batch_size": 100, "learning_rate": 1e-3,
                                  "random_state": 0},
                          quick={"epochs": 20, "n_components": 100}, order=47))
class NADE(ExactAutoregressive):
    """Neural autoregressive distribution estimator over images (binary or L grey levels).

    Parameters
    ----------
    n_components : int, default=500
        Hidden units H (shared by all D conditionals).
    output : {"auto", "bernoulli", "categorical", "logistic"}, default="auto"
        The conditionals: Bernoulli (binary pixels), an L-way softmax or a discretised
        logistic (grey levels). "auto": Bernoulli for 0/1 data, categorical otherwise.
    n_levels : int, default=256
        Grey levels L (categorical / logistic).
    binarize_input : None, float or "stochastic", default=None
        None: X as given (binary data for a Bernoulli model; anything else is refused with the
        reason). A threshold t: ``X > t`` everywhere. "stochastic": every training minibatch
        drawn as Bernoulli(X) (values in [0, 1]); thresholded at 0.5 for likelihoods.
    epochs : int, default=12
        Sized for a default fit under 10 minutes of one CPU core: ~45 CPU s per epoch on
        mnist5k with one thread, whatever the batch size (the (n, D, H) activations' memory
        traffic bounds it, not the number of steps).
    batch_size : int, default=25
    learning_rate : float, default=3e-3
        With batch 100 and Adam 1e-3 (the earlier defaults) 12 epochs reached 103.17 nats on
        the binarised MNIST test set; batch 25 and 3e-3 reach 80.60 in the same 12 epochs
        (519 CPU s; BENCHMARKS.md, "Default fits").
    validation_fraction : float, default=0.1
        Rows held out for early stopping on the validation negative log-likelihood.
    early_stopping : bool, default=True
    patience : int, default=10
    {train_params}

    Attributes
    ----------
    output_ : str
        The conditional used ("bernoulli", "categorical", "logistic").
    pixel_scale_ : float
        Value of one grey level in the training data (1, or 1/(L-1) for data in [0, 1]).
    module_ : NADENet
    history_ : list of dict
        Per epoch ``loss`` (mean training NLL, nats) and ``val_loss``.
    n_features_in_ : int
    """

    _parameter_constraints: dict[str, Any] = {
        **ExactAutoregressive._base_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }
    _test_params: dict[str, Any] = {"n_components": 8, "epochs": 2, "batch_size": 32,
                                    "binarize_input": 0.5, "early_stopping": False,
                                    "validation_fraction": 0.0}
    _stage_name = "NADE"
    _score_batch = 100  # rows per scoring pass: (rows, D, H) activations

    def __init__(self, n_components: int = 500, *, output: str = "auto", n_levels: int = 256,
                 binarize_input: Any = None, epochs: int = 12, batch_size: int = 25,
                 learning_rate: float = 3e-3, validation_fraction: float = 0.1,
                 early_stopping: bool = True, patience: int = 10) -> None:
        super().__init__()
        self.n_components = n_components
        self.output = output
        self.n_levels = n_levels
        self.binarize_input = binarize_input
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience

    def _build_module(self) -> nn.Module:
        net = NADENet(self.n_features_in_, int(self.n_components), self._n_params)
        marginal = getattr(self, "_marginal", None)  # set by fit; on load the state replaces it
        if marginal is not None:
            with torch.no_grad():
                net.b.copy_(marginal)
        return net

    def _params(self, x: torch.Tensor) -> torch.Tensor:
        return self.module_(self._net_input(x))

    def _sample_levels(self, n: int, g: torch.Generator) -> torch.Tensor:
        """The recursion ``a_{d+1} = a_d + W_{:,d} x_d``: O(DH) per image."""
        net = self.module_
        x = torch.zeros(n, self.n_features_in_, device=self._device())
        a = net.c.expand(n, -1).clone()
        for d in range(self.n_features_in_):
            x[:, d] = self._draw(net.step(a, d), g)
            a = a + self._net_input(x[:, d:d + 1]) * net.W[:, d]
        return x


NADE.__doc__ = (NADE.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
