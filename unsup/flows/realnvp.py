r"""RealNVP (Dinh, Sohl-Dickstein & Bengio 2017): affine couplings, multi-scale.

A bijection ``f`` built from affine coupling layers

.. math::

    y = m \odot x + (1 - m) \odot \big(x \odot e^{s(m \odot x)} + t(m \odot x)\big),
    \qquad \log|\det \partial y / \partial x| = \textstyle\sum (1 - m) \odot s(m \odot x),

with ``s = scale ⊙ tanh(raw)`` and ``(raw, t)`` from a network that starts at zero, gives the
exact log-density :math:`\log p(x) = \log N(f(x); 0, I) + \log|\det \partial f / \partial x|`,
trained by maximum likelihood (gradient engine; loss: negative log-likelihood per dimension).

Images (the multi-scale architecture of §3.6): each level but the last is ``n_steps``
checkerboard couplings (alternating parity), a squeeze ``(C, H, W) -> (4C, H/2, W/2)``,
``n_steps`` channel couplings (alternating halves) and a split that factors out half the
channels with an ``N(0, I)`` prior; the last level is ``n_steps + 1`` checkerboard couplings.
Conditioners are 3x3 / 1x1 / 3x3 convolution stacks with ``hidden_channels`` (a small version of
the paper's ResNets); an :class:`~unsup.flows._layers.ActNorm` follows every coupling in place of
the paper's batch normalisation (invertible, and the same in training and evaluation).
Vectors: ``n_steps`` couplings with alternating even / odd feature masks and MLP conditioners
(``hidden_layer_sizes``), each followed by an ActNorm, after a fixed standardisation.

How images and vectors are told apart and how 8-bit data are dequantised: :mod:`unsup.flows._base`
and ``docs/flows.md``.

References
----------
.. [1] Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017.
.. [2] Theis, van den Oord & Bethge, "A note on the evaluation of generative models",
   ICLR 2016 (uniform dequantisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unsup.registry import Demo, register_model
from unsup.train import TRAIN_PARAMS_DOC

from ._base import FlowEstimator
from ._layers import ActNorm, AffineCoupling, Split, Squeeze, checkerboard, conv_net, mlp_net

__all__ = ["RealNVP"]


@register_model("realnvp", family="flows", aliases=("real-nvp",),
                summary="RealNVP normalizing flow (affine couplings, multi-scale; exact "
                        "log-density, bits/dim on 8-bit images)",
                demo=Demo("RealNVP on 8-bit MNIST (uniform dequantisation; bits/dim)",
                          params={"n_levels": 2, "n_steps": 2, "hidden_channels": 32,
                                  "epochs": 5, "random_state": 0},
                          quick={"epochs": 1, "hidden_channels": 16}, order=80))
class RealNVP(FlowEstimator):
    """RealNVP normalizing flow with an exact likelihood.

    Parameters
    ----------
    n_levels : int, default=2
        Levels of the multi-scale architecture (images; as many as the image size allows).
    n_steps : int, default=3
        Couplings per block (images: per checkerboard / channel block), or in all (vectors).
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

    def __init__(self, n_levels: int = 2, *, n_steps: int = 3, hidden_channels: int = 64,
                 hidden_layer_sizes: Sequence[int] = (64, 64), image_shape: Any = None,
                 dequantize: str = "auto", n_eval_samples: int = 1) -> None:
        super().__init__()
        self._set_model_params(n_levels, n_steps, hidden_channels, hidden_layer_sizes,
                               image_shape, dequantize, n_eval_samples)

    def _image_layers(self, shape: tuple[int, int, int], levels: int) -> list[nn.Module]:
        c, h, w = shape
        hid, k = int(self.hidden_channels), int(self.n_steps)
        layers: list[nn.Module] = []
        for level in range(levels):
            last = level == levels - 1
            for i in range(k + 1 if last else k):
                layers += [AffineCoupling(conv_net(c + 1, 2 * c, hid), checkerboard(c, h, w, i % 2),
                                          scale="tanh", n_out=c, mask_input=True), ActNorm(c)]
            if last:
                break
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            for i in range(k):
                layers += [AffineCoupling(conv_net(c // 2, c, hid), flip=bool(i % 2),
                                          scale="tanh", n_out=c // 2), ActNorm(c)]
            layers.append(Split(c, learned_prior=False))
            c -= c // 2
        return layers

    def _vector_layers(self, d: int) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for i in range(int(self.n_steps)):
            mask = ((torch.arange(d) + i) % 2 == 0).float()[None]
            layers += [AffineCoupling(mlp_net(d, 2 * d, self.hidden_layer_sizes), mask,
                                      scale="tanh", n_out=d), ActNorm(d)]
        return layers


RealNVP.__doc__ = (RealNVP.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
