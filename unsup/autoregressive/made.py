r"""MADE, the masked autoencoder for distribution estimation (Germain et al. 2015).

An MLP autoencoder whose weight matrices are multiplied by 0/1 masks so that output d depends
only on the inputs before d in an ordering :math:`o` (see :mod:`unsup.nn.masked`): input d
has degree :math:`m^0(d) = o^{-1}(d)`, hidden unit k of layer l a degree :math:`m^l(k)`, and

.. math::

    M^l_{kj} = [m^l(k) \ge m^{l-1}(j)], \qquad M^{out}_{dk} = [m^0(d) > m^L(k)],

so one forward pass gives every conditional :math:`p(x_d \mid x_{o<d})` and the exact
log-likelihood :math:`\log p(x) = \sum_d \log p(x_d \mid x_{o<d})`.

**Order- and connectivity-agnostic training.** With ``n_masks = K > 1`` the model keeps K mask
sets (orderings drawn at random when ``order_agnostic``, hidden degrees drawn at random), and
every minibatch is trained under one of them, drawn uniformly: the same weights learn K
autoregressive models. At test time the K models are an equally weighted mixture,

.. math::

    p(x) = \frac1K \sum_{k=1}^{K} p_k(x),

still exact and normalised (``n_eval_masks`` chooses how many of the K to average; sampling
draws a mask, then the pixels under it). The masks are a function of the fitted seed
``mask_seed_`` and k only, so a saved model rebuilds them.

References
----------
.. [1] Germain, Gregor, Murray & Larochelle, "MADE: Masked Autoencoder for Distribution
   Estimation", ICML 2015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import torch
from torch import nn

from unsup.autoregressive._img_base import ExactAutoregressive
from unsup.nn import ACTIVATIONS, activation
from unsup.nn.masked import MaskedLinear, made_degrees, made_masks
from unsup.params import Interval, StrOptions
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC
from unsup.train.seeding import derive_seed

__all__ = ["MADE"]


class MADENet(nn.Module):
    """Masked MLP D → hidden → D·P; the masks are set from outside (:meth:`set_masks`)."""

    def __init__(self, n_features: int, hidden: Sequence[int], n_params: int, act: str,
                 direct: bool) -> None:
        super().__init__()
        sizes = [n_features, *hidden]
        self.hidden = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:],
                                                                   strict=True))
        self.out = MaskedLinear(sizes[-1], n_features * n_params)
        # optional direct input → output connections (masked strictly below the diagonal)
        self.direct = MaskedLinear(n_features, n_features * n_params, bias=False) if direct \
            else None
        self.act = activation(act)
        self.D, self.P = n_features, n_params

    def set_masks(self, masks: list[torch.Tensor], direct: torch.Tensor | None) -> None:
        for layer, m in zip([*self.hidden, self.out], masks, strict=True):
            layer.mask.copy_(m)
        if self.direct is not None and direct is not None:
            self.direct.mask.copy_(direct)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.hidden:
            h = self.act(layer(h))
        out = self.out(h)
        if self.direct is not None:
            out = out + self.direct(x)
        return out.view(-1, self.P, self.D).transpose(1, 2)  # output j is input j mod D


@register_model("made", family="autoregressive",
                aliases=("masked-autoencoder-for-distribution-estimation",),
                summary="MADE: masked autoencoder, order/connectivity-agnostic mask ensemble")
class MADE(ExactAutoregressive):
    """Masked autoencoder for distribution estimation over images (binary or L grey levels).

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(500,)
        Hidden layers of the masked MLP.
    activation : str, default="relu"
        Hidden non-linearity (see ``unsup.nn.ACTIVATIONS``).
    n_masks : int, default=1
        K mask sets trained with the shared weights (one drawn per minibatch); 1 is a single
        fixed mask.
    n_eval_masks : int or None, default=None
        Masks averaged (as a mixture) by the likelihood and used by ``sample``; None: all K.
    order_agnostic : bool, default=True
        Draw a random input ordering for every mask (with one mask, the natural raster order
        is kept whatever this says).
    direct_connections : bool, default=False
        Add masked direct input→output weights (an autoregressive logistic regression).
    output : {"auto", "bernoulli", "categorical", "logistic"}, default="auto"
        As :class:`NADE`.
    n_levels : int, default=256
    binarize_input : None, float or "stochastic", default=None
        As :class:`NADE`.
    epochs : int, default=200
    batch_size : int, default=100
    learning_rate : float, default=1e-3
    validation_fraction : float, default=0.1
    early_stopping : bool, default=True
    patience : int, default=10
    {train_params}

    Attributes
    ----------
    mask_seed_ : int
        Seed of the mask sets (mask k is drawn from ``derive_seed(mask_seed_, k)``).
    output_, pixel_scale_, module_, history_, n_features_in_ :
        As :class:`NADE`.
    """

    _parameter_constraints: dict[str, Any] = {
        **ExactAutoregressive._base_constraints,
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "n_masks": [Interval(Integral, 1, None, closed="left")],
        "n_eval_masks": [Interval(Integral, 1, None, closed="left"), None],
        "order_agnostic": ["boolean"],
        "direct_connections": ["boolean"],
    }
    _test_params: dict[str, Any] = {"hidden_layer_sizes": (16,), "n_masks": 2, "epochs": 2,
                                    "batch_size": 32, "binarize_input": 0.5,
                                    "early_stopping": False, "validation_fraction": 0.0}
    _stage_name = "MADE"

    def __init__(self, hidden_layer_sizes: Sequence[int] = (500,), *, activation: str = "relu",
                 n_masks: int = 1, n_eval_masks: int | None = None, order_agnostic: bool = True,
                 direct_connections: bool = False, output: str = "auto", n_levels: int = 256,
                 binarize_input: Any = None, epochs: int = 200, batch_size: int = 100,
                 learning_rate: float = 1e-3, validation_fraction: float = 0.1,
                 early_stopping: bool = True, patience: int = 10) -> None:
        super().__init__()
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.n_masks = n_masks
        self.n_eval_masks = n_eval_masks
        self.order_agnostic = order_agnostic
        self.direct_connections = direct_connections
        self.output = output
        self.n_levels = n_levels
        self.binarize_input = binarize_input
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience

    # -- masks --------------------------------------------------------------------------------
    def _hidden(self) -> list[int]:
        hidden = [int(h) for h in self.hidden_layer_sizes]
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be one or more positive sizes, got "
                             f"{hidden}")
        return hidden

    def _prepare(self, X: Any) -> None:
        super()._prepare(X)
        self._hidden()
        self.mask_seed_ = int(derive_seed(self._seed, 11))
        self._mask_cache: dict[int, Any] = {}

    def _mask_set(self, k: int) -> tuple[list[torch.Tensor], torch.Tensor | None, torch.Tensor]:
        """Mask set k: layer masks, direct-connection mask, and the order (0-based pixels)."""
        cache = self.__dict__.setdefault("_mask_cache", {})
        if k not in cache:
            D, P = self.n_features_in_, self._n_params
            g = torch.Generator().manual_seed(derive_seed(int(self.mask_seed_), k))
            if self.n_masks > 1 and self.order_agnostic:
                order = torch.randperm(D, generator=g)
            else:
                order = torch.arange(D)
            m0 = torch.empty(D, dtype=torch.long)
            m0[order] = torch.arange(1, D + 1)  # pixel order[i] comes i-th: degree i + 1
            degrees = made_degrees(D, self._hidden(), m0.tolist(), generator=g)
            masks = made_masks(degrees, P)
            direct = (m0.repeat(P)[:, None] > m0[None, :]).float()
            dev = self._device()
            cache[k] = ([m.to(dev) for m in masks], direct.to(dev), order)
        return cache[k]

    def _use(self, k: int, module: MADENet | None = None) -> None:
        masks, direct, _ = self._mask_set(k)
        (module or self.module_).set_masks(masks, direct)

    def _n_eval(self) -> int:
        return min(int(self.n_eval_masks or self.n_masks), int(self.n_masks))

    def _build_module(self) -> nn.Module:
        # the masks are set after building (the build may run on the meta device, unsup.io)
        net = MADENet(self.n_features_in_, self._hidden(), self._n_params, self.activation,
                      bool(self.direct_connections))
        marginal = getattr(self, "_marginal", None)  # set by fit; on load the state replaces it
        if marginal is not None:
            with torch.no_grad():  # output j is parameter j // D of pixel j % D
                net.out.bias.copy_(marginal.t().reshape(-1))
        return net

    def _init_module(self) -> nn.Module:
        module = super()._init_module()
        self._use(0, module)
        return module

    # -- likelihood ---------------------------------------------------------------------------
    def _params(self, x: torch.Tensor) -> torch.Tensor:
        return self.module_(self._net_input(x))

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        if self.n_masks > 1:  # connectivity-agnostic training: one mask set per minibatch
            k = int(torch.randint(int(self.n_masks), (1,), generator=self._gen,
                                  device=self._gen.device))
            self._use(k)
        return super()._loss(batch)

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        if self.module_.training:  # inside a training step: the mask set the step chose
            return super()._log_prob(x)
        K = self._n_eval()
        lps = []
        for k in range(K):
            self._use(k)
            lps.append(super()._log_prob(x))
        self._use(0)  # outside a computation the module always holds mask 0
        return torch.logsumexp(torch.stack(lps), 0) - math.log(K)

    def _estimator_name(self) -> str:
        K = self._n_eval()
        return "chain rule" if K == 1 else f"chain rule, mixture of {K} masks"

    def _order(self, k: int) -> torch.Tensor:
        return self._mask_set(k)[2]

    def _sample_levels(self, n: int, g: torch.Generator) -> torch.Tensor:
        """A mask k uniform over the ensemble for each image, then its pixels in k's order
        (exact sampling from the mixture)."""
        K = self._n_eval()
        ks = torch.randint(K, (n,), generator=g, device=g.device).cpu()
        x = torch.zeros(n, self.n_features_in_, device=self._device())
        for k in range(K):
            rows = (ks == k).nonzero()[:, 0].to(x.device)
            if rows.numel():
                self._use(k)
                x[rows] = self._sample_in_order(rows.numel(), g, self._order(k))
        self._use(0)
        return x

    def _record(self, res: Any) -> None:
        super()._record(res)
        self._use(0)  # not the last training step's mask: the saved state is independent of it

    def _check_fitted_values(self) -> None:
        super()._check_fitted_values()
        seed = getattr(self, "mask_seed_", None)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise ValueError(f"mask_seed_={seed!r} is not a seed (an int in [0, 2^63))")

    def _set_state(self, arrays: Any, values: Any) -> None:
        self._mask_cache = {}
        super()._set_state(arrays, values)
        # the file stores mask 0 (the state between computations); it must be the one that
        # mask_seed_ generates, or the file is not self-consistent
        masks, direct, _ = self._mask_set(0)
        net = self.module_
        stored = [layer.mask for layer in [*net.hidden, net.out]]
        if net.direct is not None:
            stored.append(net.direct.mask)
            masks = [*masks, direct]
        if not all(torch.equal(a, b) for a, b in zip(stored, masks, strict=True)):
            raise ValueError("the stored masks are not those of mask_seed_ (mask 0)")

MADE.__doc__ = (MADE.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
