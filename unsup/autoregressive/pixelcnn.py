r"""PixelCNN (van den Oord et al. 2016): masked convolutions, exact image likelihoods.

Pixels are ordered in raster order (row by row, left to right). A convolution whose kernel is
zeroed below the centre row and right of the centre (mask type A in the first layer, which
also hides the centre pixel; type B later, which keeps it) lets the output at pixel i see only
the pixels before i; stacking them keeps that property, so one pass over the image gives every
conditional :math:`p(x_i \mid x_{<i})` and the exact log-likelihood

.. math::

    \log p(x) = \sum_{i=1}^{HW} \log p(x_i \mid x_1, \dots, x_{i-1}),

trained by minimising the mean negative log-likelihood with the gradient engine.

``architecture="plain"``: a 7×7 type-A convolution, then residual blocks of ReLU + 3×3 type-B
convolutions, then two 1×1 layers. ``architecture="gated"`` (van den Oord et al. 2016b): the
vertical and horizontal stacks of :class:`unsup.nn.masked.GatedMaskedConv2d` with
``tanh(a) ⊙ σ(b)`` units, which also see the pixels above and to the right that the plain
stack's receptive field misses (its "blind spot").

Pixel outputs: Bernoulli (binary images), a 256-way softmax or a discretised logistic (grey
levels; see :mod:`unsup.autoregressive._img_base`). Sampling runs the network once per pixel,
on the rows up to the current one (the rows below cannot change it).

References
----------
.. [1] van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016.
.. [2] van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image
   Generation with PixelCNN Decoders", NeurIPS 2016.
.. [3] Salimans, Karpathy, Chen & Kingma, "PixelCNN++", ICLR 2017 (the discretised logistic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import torch
from torch import nn

from unsup.autoregressive._img_base import ExactAutoregressive
from unsup.nn.masked import GatedMaskedConv2d, MaskedConv2d
from unsup.params import Interval, StrOptions
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC

__all__ = ["PixelCNN"]


class PixelCNNNet(nn.Module):
    """(n, 1, H, W) images → (n, P, H, W) parameters of each pixel's conditional."""

    def __init__(self, n_params: int, channels: int, n_layers: int, kernel_size: int,
                 first_kernel_size: int, gated: bool) -> None:
        super().__init__()
        self.gated = gated
        c = channels
        if gated:
            self.first = GatedMaskedConv2d("A", c, first_kernel_size, in_channels=1)
            self.layers = nn.ModuleList(GatedMaskedConv2d("B", c, kernel_size)
                                        for _ in range(n_layers))
        else:
            self.first = MaskedConv2d("A", 1, c, first_kernel_size)
            self.layers = nn.ModuleList(MaskedConv2d("B", c, c, kernel_size)
                                        for _ in range(n_layers))
        # 1×1 convolutions mix channels at a pixel only: causal for one-channel images
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(),
                                  nn.Conv2d(c, n_params, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            v, h = self.first(x, x)
            for layer in self.layers:
                v, h = layer(v, h)
        else:
            h = self.first(x)
            for layer in self.layers:
                h = h + layer(torch.relu(h))  # residual blocks
        return self.head(h)


@register_model("pixelcnn", family="autoregressive", aliases=("pixel-cnn",),
                summary="PixelCNN: masked (gated) convolutions, exact image likelihood")
class PixelCNN(ExactAutoregressive):
    """PixelCNN over one-channel images (binary or L grey levels), rows of ``X`` flattened.

    Parameters
    ----------
    image_shape : sequence of int or None, default=None
        (H, W) or (1, H, W). None: square images, or one row of D pixels when D is not a
        square.
    architecture : {"gated", "plain"}, default="gated"
        Gated vertical/horizontal stacks (no blind spot), or plain masked convolutions.
    n_channels : int, default=16
        Feature maps per layer. The defaults (16 channels, 5 layers, 10 epochs) are the
        network measured best on binarised mnist5k (74.42 nats after 13 epochs) and sized for
        a fit of minutes on a CPU; the 64-channel, 7-layer network was ~3 CPU s per step.
    n_layers : int, default=5
        Layers after the first (type B), at most 1024.
    kernel_size : int, default=3
        Odd kernel of the type-B layers.
    first_kernel_size : int, default=7
        Odd kernel of the first (type A) layer.
    output : {"auto", "bernoulli", "categorical", "logistic"}, default="auto"
        As :class:`NADE`.
    n_levels : int, default=256
    binarize_input : None, float or "stochastic", default=None
        As :class:`NADE`.
    epochs : int, default=10
    batch_size : int, default=16
    learning_rate : float, default=3e-3
        Batch 16 and Adam 3e-3 cost the same CPU per epoch as batch 64 and 1e-3 (the earlier
        defaults) and reach a better model in the same 10 epochs: 68.46 against 75.54 nats on
        2,000 binarised MNIST test digits (BENCHMARKS.md, "Exact likelihoods").
    validation_fraction : float, default=0.1
    early_stopping : bool, default=True
    patience : int, default=5
    {train_params}

    Attributes
    ----------
    image_shape_ : list of int
        (H, W) used.
    output_, pixel_scale_, module_, history_, n_features_in_ :
        As :class:`NADE`.
    """

    _parameter_constraints: dict[str, Any] = {
        **ExactAutoregressive._base_constraints,
        "image_shape": ["array-like", None],
        "architecture": [StrOptions({"gated", "plain"})],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
        # bounded so that a crafted file cannot make unsup.load build 10^9 layers
        "n_layers": [Interval(Integral, 0, 1024, closed="both")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "first_kernel_size": [Interval(Integral, 1, None, closed="left")],
    }
    _test_params: dict[str, Any] = {"n_channels": 4, "n_layers": 1, "epochs": 2,
                                    "batch_size": 32, "binarize_input": 0.5,
                                    "early_stopping": False, "validation_fraction": 0.0}
    _stage_name = "PixelCNN"

    def __init__(self, image_shape: Sequence[int] | None = None, *, architecture: str = "gated",
                 n_channels: int = 16, n_layers: int = 5, kernel_size: int = 3,
                 first_kernel_size: int = 7, output: str = "auto", n_levels: int = 256,
                 binarize_input: Any = None, epochs: int = 10, batch_size: int = 16,
                 learning_rate: float = 3e-3, validation_fraction: float = 0.1,
                 early_stopping: bool = True, patience: int = 5) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.architecture = architecture
        self.n_channels = n_channels
        self.n_layers = n_layers
        self.kernel_size = kernel_size
        self.first_kernel_size = first_kernel_size
        self.output = output
        self.n_levels = n_levels
        self.binarize_input = binarize_input
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience

    def _shape(self, D: int) -> list[int]:
        if self.image_shape is None:
            side = math.isqrt(D)
            return [side, side] if side * side == D else [1, D]
        shape = [int(s) for s in self.image_shape]
        if len(shape) == 3:
            if shape[0] != 1:
                raise ValueError(f"PixelCNN models one-channel images; image_shape={shape} has "
                                 f"{shape[0]} channels")
            shape = shape[1:]
        if len(shape) != 2 or math.prod(shape) != D or min(shape) < 1:
            raise ValueError(f"image_shape={list(self.image_shape)} does not match {D} features "
                             "(give (H, W) with H·W = n_features)")
        return shape

    def _prepare(self, X: Any) -> None:
        for name in ("kernel_size", "first_kernel_size"):
            if int(getattr(self, name)) % 2 == 0:
                raise ValueError(f"{name} must be odd, got {getattr(self, name)}")
        self.image_shape_ = self._shape(int(X.shape[1]))
        super()._prepare(X)

    def _check_fitted_values(self) -> None:
        super()._check_fitted_values()
        shape = getattr(self, "image_shape_", None)
        if shape != self._shape(int(self.n_features_in_)):
            raise ValueError(f"image_shape_={shape!r} is not the shape of "
                             f"{self.n_features_in_} features with image_shape="
                             f"{self.image_shape!r}")

    def _build_module(self) -> nn.Module:
        return PixelCNNNet(self._n_params, int(self.n_channels), int(self.n_layers),
                           int(self.kernel_size), int(self.first_kernel_size),
                           self.architecture == "gated")

    def _params(self, x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """(n, D, P) from level images (n, D); ``rows``: only the first rows (for sampling)."""
        H, W = self.image_shape_
        img = self._net_input(x).view(-1, 1, H, W)
        if rows is not None:
            img = img[:, :, :rows]
        out = self.module_(img)  # (n, P, h, W)
        return out.flatten(2).transpose(1, 2)

    def _sample_in_order(self, n: int, g: torch.Generator, order: torch.Tensor,
                         x0: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        """Raster order; each pass sees only the rows up to the current pixel's (exact: the
        masked network never looks below)."""
        H, W = self.image_shape_
        x = (torch.zeros(n, H * W, device=self._device()) if x0 is None else x0.clone())
        for d in order[start:].tolist():
            x[:, d] = self._draw(self._params(x, rows=d // W + 1)[:, d], g)
        return x

PixelCNN.__doc__ = (PixelCNN.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
