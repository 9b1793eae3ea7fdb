r"""Glow (Kingma & Dhariwal 2018): actnorm, invertible 1x1 convolution, affine coupling.

One step of flow is

.. math::

    x \to \underbrace{(x + b) \odot e^{s}}_{\text{actnorm}} \to
    \underbrace{W x}_{1\times1\ \text{conv}} \to
    \underbrace{[x_a,\ x_b \odot σ(r(x_a) + 2) + t(x_a)]}_{\text{affine coupling}},

with log-determinants ``H W Σ s``, ``H W Σ log|s_W|`` (W in LU form,
``W = P L (U + diag(sign ⊙ e^{log|s_W|}))``, so its determinant costs O(C)) and
``Σ log σ(r + 2)``. Images: ``n_levels`` levels of [squeeze, ``n_steps`` steps, split], the
split (all levels but the last) factoring out half the channels with a learned Gaussian
prior, and a learned Gaussian (mean and log-scale per dimension) at the top.

The split prior (``split_prior``): ``"position"`` (default) learns a mean and log-scale per
dimension of the factored-out half, like the top prior and like normflows' Glow;
``"conditional"`` adds to them a zero-initialised 3x3 convolution of the kept half, the
``split2d_prior`` of Kingma & Dhariwal's code [1]_ (``p(z_out | x_keep)``), which was this
model's only prior until the parameter was added. Trained with plain Adam (learning rate 1e-3,
no warm-up, batch 64) on 8-bit MNIST (``mnist5k``), the conditional prior made training
unstable: single-step loss spikes of +2.3 and +3.8 bits/dim above the running median (two
seeds recorded) that took tens of steps to recover, and a mean training loss in the third epoch
of 4.04-4.46 bits/dim over three seeds, against 3.52-3.64 over four runs with the per-dimension
prior (spikes at most +0.85) and 3.64-3.77 for normflows' Glow (two seeds) on the same data and
optimiser; see ``bench/results/flows.md``. Models saved before the parameter existed load as
``"conditional"``, the prior they were trained with.

Conditioners: 3x3 conv, ReLU, 1x1 conv, ReLU, zero-initialised 3x3 conv (``hidden_channels``).
Vectors: ``n_steps`` steps of [actnorm, invertible linear map (LU), coupling with an MLP
conditioner and alternating half masks], after a fixed standardisation.

The log-density is exact (change of variables, ``N(0, I)`` base); training maximises it on the
gradient engine. In evaluation (no gradients) each 1x1 convolution's ``W`` and ``W^{-1}`` are
cached. Images vs vectors and 8-bit dequantisation: :mod:`unsup.flows._base`, ``docs/flows.md``.

References
----------
.. [1] Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
   NeurIPS 2018.
.. [2] Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unsup.params import StrOptions
from unsup.registry import Demo, register_model
from unsup.train import TRAIN_PARAMS_DOC

from ._base import FlowEstimator
from ._layers import ActNorm, AffineCoupling, InvConv1x1, Split, Squeeze, conv_net, mlp_net

__all__ = ["Glow"]


@register_model("glow", family="flows",
                summary="Glow normalizing flow (actnorm, LU 1x1 convolutions, affine "
                        "couplings, multi-scale; exact log-density, bits/dim on 8-bit images)",
                demo=Demo("Glow on 8-bit MNIST (2 levels x 4 steps, 32 hidden channels; uniform "
                          "dequantisation; bits/dim)",
                          params={"n_levels": 2, "n_steps": 4, "hidden_channels": 32,
                                  "epochs": 5, "random_state": 0},
                          quick={"epochs": 1, "n_steps": 2, "hidden_channels": 16}, order=81))
class Glow(FlowEstimator):
    """Glow normalizing flow with an exact likelihood.

    Parameters
    ----------
    n_levels : int, default=3
        Levels of the multi-scale architecture (images; as many as the image size allows).
    n_steps : int, default=8
        Steps of flow per level (images), or in all (vectors).
    hidden_channels : int, default=64
        Width of the convolutional conditioners (images).
    hidden_layer_sizes : sequence of int, default=(64, 64)
        Hidden layers of the MLP conditioners (vectors).
    image_shape : None, "flat", (H, W) or (C, H, W), default=None
        None: images when the data are 8-bit levels and n_features is an even square >= 16,
        else vectors; "flat": vectors.
    dequantize : {"auto", "uniform", "none"}, default="auto"
        Uniform dequantisation of 8-bit data ("auto": when every value is an 8-bit level).
    n_eval_samples : int, default=1
        Dequantisation draws per row of the likelihood bound (8-bit data).
    split_prior : {"position", "conditional"}, default="position"
        Prior of the half each split factors out (images): a learned mean and log-scale per
        dimension, or that plus a zero-initialised 3x3 convolution of the kept half (Glow's
        ``split2d_prior``; see the module docstring).
    {train_params}

    Attributes
    ----------
    module_ : unsup.flows._layers.Flow
        The chain of invertible layers.
    image_shape_ : list of int
        ``[C, H, W]`` of the image flow, ``[]`` for a vector flow.
    n_levels_ : int
        Levels used (images), 1 for vectors.
    dequantize_ : {"none", "unit", "bytes"}
        No dequantisation, or the scale of the 8-bit data (k / 255, or k).
    history_ : list of dict
        Per epoch; ``loss`` is the negative log-likelihood per dimension in nats (for 8-bit
        data the dequantisation bound: divide by ln 2 for bits / dim).
    n_features_in_ : int
    """

    _learned_top = True
    _parameter_constraints: dict[str, Any] = {
        **FlowEstimator._parameter_constraints,
        "split_prior": [StrOptions({"position", "conditional"})],
    }
    # files written before split_prior existed were trained with the conditional prior
    _params_added_later = {"split_prior": "conditional"}

    def __init__(self, n_levels: int = 3, *, n_steps: int = 8, hidden_channels: int = 64,
                 hidden_layer_sizes: Sequence[int] = (64, 64), image_shape: Any = None,
                 dequantize: str = "auto", n_eval_samples: int = 1,
                 split_prior: str = "position") -> None:
        super().__init__()
        self._set_model_params(n_levels, n_steps, hidden_channels, hidden_layer_sizes,
                               image_shape, dequantize, n_eval_samples)
        self.split_prior = split_prior

    def _image_layers(self, shape: tuple[int, int, int], levels: int) -> list[nn.Module]:
        c, h, w = shape
        hid, k = int(self.hidden_channels), int(self.n_steps)
        layers: list[nn.Module] = []
        for level in range(levels):
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            for _ in range(k):
                layers += [ActNorm(c), InvConv1x1(c),
                           AffineCoupling(conv_net(c // 2, c, hid), scale="sigmoid")]
            if level < levels - 1:
                layers.append(Split(c, learned_prior=True, size=(h, w),
                                    conditional=self.split_prior == "conditional"))
                c -= c // 2
        return layers

    def _vector_layers(self, d: int) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for i in range(int(self.n_steps)):
            mask = (torch.arange(d) < (d + 1) // 2).float()[None]
            layers += [ActNorm(d), InvConv1x1(d),
                       AffineCoupling(mlp_net(d, 2 * d, self.hidden_layer_sizes),
                                      mask if i % 2 == 0 else 1 - mask, scale="sigmoid")]
        return layers


Glow.__doc__ = (Glow.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
