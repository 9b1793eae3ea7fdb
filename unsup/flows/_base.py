r"""What RealNVP and Glow share: data handling, dequantisation, training loss, likelihoods,
sampling and persistence. The model files (:mod:`unsup.flows.realnvp`, :mod:`unsup.flows.glow`)
only say how the chain of layers is built.

**Images or vectors.** ``image_shape=(H, W)`` or ``(C, H, W)``: images (convolutional
couplings, multi-scale; H and W divisible by ``2**n_levels``... or as many levels as divide
them). ``image_shape="flat"``: vectors. ``image_shape=None`` (default): images when the data
are 8-bit levels (see below) and ``n_features`` is a square ``s * s`` with ``s`` even and
``s >= 4`` (one channel, as :func:`unsup.nn.stacks.infer_image_shape` guesses); vectors
otherwise (2-D toy data, any continuous data).

**Dequantisation.** ``dequantize="auto"``: data whose every value is an 8-bit level (integers
0..255, or ``k / 255`` in [0, 1] as ``mnist5k`` ships them) are dequantised uniformly: the
flow models ``y = (k + u) / 256`` with ``u ~ U[0, 1)^D`` (Theis, van den Oord & Bethge 2016),
and

.. math::

    \log P(k) \ \ge\ E_u[\log p_Y((k + u) / 256)] - D \log 256,

the discrete log-likelihood bound reported as bits per dimension. Other data: no
dequantisation, the flow's exact continuous log-density (vectors are first standardised per
feature, a fixed affine layer whose log-det is counted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch import nn

from unsup.data.validation import DataError
from unsup.likelihood import Likelihood
from unsup.ops import log_mean_exp
from unsup.params import Interval, StrOptions
from unsup.train import GradientEstimator
from unsup.train.seeding import measure_seed, row_draws

from ._layers import Flow, Standardize

__all__ = ["FlowEstimator"]

_LOG256 = math.log(256.0)
DEQUANT = ("none", "unit", "bytes")  # fitted: no dequantisation, k/255 in [0, 1], k in 0..255


def eight_bit(X: Any) -> str | None:
    """"unit" (every value ``k / 255``), "bytes" (integers 0..255, some above 1) or None."""
    if isinstance(X, torch.Tensor):
        a = X.detach().to("cpu", torch.float64).numpy()
    else:
        a = np.asarray(X[: min(len(X), 20000)], dtype=np.float64)
    if a.size == 0 or a.min() < 0:
        return None
    if a.max() <= 1.0 and np.abs(a * 255 - np.round(a * 255)).max() < 1e-3:
        return "unit"
    if a.max() <= 255 and np.array_equal(a, np.round(a)):
        return "bytes"
    return None


class FlowEstimator(GradientEstimator):
    """Shared estimator of the normalizing flows (see the module docstring)."""

    _parameter_constraints: dict[str, Any] = {
        "n_levels": [Interval(Integral, 1, 8, closed="both")],
        "n_steps": [Interval(Integral, 1, 256, closed="both")],
        "hidden_channels": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "image_shape": ["array-like", None, StrOptions({"flat"})],
        "dequantize": [StrOptions({"auto", "uniform", "none"})],
        "n_eval_samples": [Interval(Integral, 1, None, closed="left")],
    }
    _test_params: dict[str, Any] = {"n_levels": 1, "n_steps": 2, "hidden_channels": 8,
                                    "hidden_layer_sizes": (8,), "epochs": 2, "batch_size": 32}
    _likelihood_support = "continuous"
    _amp_auto = False  # log-determinants summed over every dimension: full precision
    _learned_top = False  # images: a learned per-dimension Gaussian at the top (Glow)

    def _set_model_params(self, n_levels: int, n_steps: int, hidden_channels: int,
                          hidden_layer_sizes: Sequence[int], image_shape: Any, dequantize: str,
                          n_eval_samples: int) -> None:
        self.n_levels = n_levels
        self.n_steps = n_steps
        self.hidden_channels = hidden_channels
        self.hidden_layer_sizes = hidden_layer_sizes
        self.image_shape = image_shape
        self.dequantize = dequantize
        self.n_eval_samples = n_eval_samples

    # -- to be supplied by the model files -------------------------------------------------
    def _image_layers(self, shape: tuple[int, int, int], levels: int) -> list[nn.Module]:
        raise NotImplementedError

    def _vector_layers(self, d: int) -> list[nn.Module]:
        raise NotImplementedError

    # -- data ----------------------------------------------------------------------------------
    def _prepare(self, X: Any) -> None:
        d = int(self.n_features_in_)
        levels = eight_bit(X)
        if self.dequantize == "uniform" and levels is None:
            raise DataError("dequantize='uniform' needs 8-bit data (integers 0..255, or k/255 "
                            "in [0, 1]); use dequantize='none' for a continuous density")
        self.dequantize_ = levels if (levels and self.dequantize != "none") else "none"
        self.image_shape_ = self._choose_shape(d)
        if self.image_shape_:
            self.n_levels_ = _fitting_levels(self.image_shape_, int(self.n_levels))
        else:
            self.n_levels_ = 1

    def _choose_shape(self, d: int) -> list[int]:
        """``[C, H, W]`` for images, ``[]`` for vectors (the rule of the module docstring)."""
        spec = self.image_shape
        if isinstance(spec, str):
            return []
        if spec is None:
            side = math.isqrt(d)
            ok = self.dequantize_ != "none" and side * side == d and side >= 4 and side % 2 == 0
            return [1, side, side] if ok else []
        shape = [int(s) for s in spec]
        if len(shape) == 2:
            shape = [1, *shape]
        if len(shape) != 3 or math.prod(shape) != d or min(shape) < 1:
            raise ValueError(f"image_shape={tuple(spec)} does not match {d} features")
        if shape[1] % 2 or shape[2] % 2:
            raise ValueError(f"image_shape={tuple(spec)}: the multi-scale flow squeezes 2x2 "
                             "blocks, so height and width must be even (or use "
                             "image_shape='flat' for a vector flow)")
        return shape

    def _build_module(self) -> nn.Module:
        d = int(self.n_features_in_)
        shape = [int(s) for s in self.image_shape_]
        if self.dequantize_ not in DEQUANT:
            raise ValueError(f"unknown dequantisation {self.dequantize_!r}")
        if shape:
            if len(shape) != 3 or math.prod(shape) != d or min(shape) < 1:
                raise ValueError(f"image shape {shape} does not match {d} features")
            levels = int(self.n_levels_)
            if not 1 <= levels <= _fitting_levels(shape, int(self.n_levels)):
                raise ValueError(f"{levels} levels do not fit images of shape {shape}")
            return Flow(shape, self._image_layers((shape[0], shape[1], shape[2]), levels),
                        learned_top=self._learned_top)
        return Flow((d,), [Standardize(d), *self._vector_layers(d)])

    def _init_module(self) -> nn.Module:
        module = super()._init_module()
        if not self.image_shape_:  # the standardisation layer, from the training data
            std = module.layers[0]
            X = self._stats_rows
            if self.dequantize_ != "none":  # the centred bin midpoints the flow sees
                X = (self._levels(X) + 0.5) / 256.0 - 0.5
            del self._stats_rows
            mean = X.mean(0)
            sd = (X - mean).pow(2).mean(0).sqrt()
            std.loc.copy_(mean.to(std.loc))
            std.log_scale.copy_(torch.log(torch.where(sd > 0, sd, torch.ones_like(sd))).to(
                std.log_scale))
        return module

    def _validate_train_input(self, X: Any) -> Any:
        Xv = super()._validate_train_input(X)
        rows = Xv[: min(len(Xv), 100000)]
        self._stats_rows = torch.as_tensor(np.asarray(rows), dtype=torch.float64) \
            if isinstance(Xv, np.memmap) else rows.double().cpu()
        return Xv

    def _levels(self, x: torch.Tensor) -> torch.Tensor:
        """The 8-bit levels k of rows ``x``, checked."""
        raw = x * 255 if self.dequantize_ == "unit" else x
        k = torch.round(raw)
        top = 1.0 if self.dequantize_ == "unit" else 255.0
        if bool((x < 0).any()) or bool((x > top).any()):
            raise DataError(f"the model was fitted on 8-bit data in [0, {top:g}]; X has values "
                            f"in [{float(x.min()):.4g}, {float(x.max()):.4g}]")
        if bool(((raw - k).abs() > 1e-3).any()):  # never round continuous values silently
            raise DataError("the model was fitted on 8-bit data (every value an 8-bit level"
                            f"{' k/255' if top == 1.0 else ''}); X has values between levels")
        return k

    def _log_p(self, x: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        """Per-row log-likelihood: continuous log-density, or, for 8-bit data with noise
        ``u``, ``log p_Y((k + u) / 256) - D log 256`` (the integrand of the discrete bound)."""
        if self.dequantize_ == "none":
            return self.module_(x)
        assert u is not None
        y = (self._levels(x) + u) / 256.0 - 0.5  # centred in [-0.5, 0.5)
        return self.module_(y) - x.shape[1] * _LOG256

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        u = None
        if self.dequantize_ != "none":
            u = torch.rand(batch.shape, generator=self._gen, device=batch.device,
                           dtype=batch.dtype)
        return -self._log_p(batch, u).mean() / batch.shape[1]  # nats per dimension

    # -- public API ----------------------------------------------------------------------------
    def _check_state(self) -> None:
        if self.dequantize_ not in DEQUANT:
            raise ValueError(f"unknown dequantisation {self.dequantize_!r}")

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super()._get_state()  # NHWC weights are saved in the usual layout
        return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        if values.get("dequantize_") not in DEQUANT:
            raise ValueError(f"unknown dequantisation {values.get('dequantize_')!r}")
        super()._set_state(arrays, values)

    @torch.no_grad()
    def log_likelihood(self, X: Any, n_samples: int | None = None,
                       random_state: Any = None) -> Likelihood:
        """Typed log-likelihood per row.

        Continuous data: the exact log-density (kind "exact", support "continuous"). 8-bit
        data: the dequantisation bound ``log (1/k) Σ_i p_Y((x + u_i) / 256) / 256^D`` with
        ``k = n_samples`` (default ``n_eval_samples``) uniform draws per row, seeded by the
        row's bytes and ``random_state`` (kind "stochastic lower bound", support "discrete",
        so bits per dimension are reported).
        """
        self._check_fitted()
        x = self._input(X)
        self.module_.eval()
        if self.dequantize_ == "none":
            vals = torch.cat([self._log_p(x[i:i + 4096], None).double().cpu()
                              for i in range(0, len(x), 4096)])
            return Likelihood.from_samples(vals.numpy(), kind="exact",
                                           estimator="change of variables",
                                           support="continuous", n_dims=int(x.shape[1]))
        k = int(n_samples or self.n_eval_samples)
        seed = measure_seed(self.random_state if random_state is None else random_state)
        out = []
        rows = max(1, 4096 // k)
        for i in range(0, len(x), rows):
            b = x[i:i + rows]
            u = row_draws(b, k, [b.shape[1]], seed, uniform=True)[0]  # (k, n, D)
            lp = self._log_p(b.repeat(k, 1), u.reshape(-1, b.shape[1])).view(k, -1)
            out.append(log_mean_exp(lp).double().cpu())
        top = "k / 255" if self.dequantize_ == "unit" else "k in 0..255"
        return Likelihood.from_samples(
            torch.cat(out).numpy(), kind="stochastic lower bound",
            estimator=f"uniform dequantisation ({k} draw{'s' if k > 1 else ''} per row)",
            support="discrete", n_dims=int(x.shape[1]), counts={"dequantisation_draws": k},
            transform=f"8-bit levels ({top}) dequantised: y = (k + u) / 256, u ~ U[0, 1)^D")

    def score_samples(self, X: Any) -> np.ndarray:
        """Per-row log-likelihood in nats (:meth:`log_likelihood`'s ``per_sample``)."""
        return self.log_likelihood(X).per_sample

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per row (nats)."""
        return float(self.log_likelihood(X).nats)

    @torch.no_grad()
    def sample(self, n_samples: int = 1, random_state: Any = None,
               temperature: float = 1.0) -> np.ndarray:
        """Draw ``x = f^{-1}(z)``, ``z ~ N(0, T² I)`` (T = ``temperature``); 8-bit models
        return 8-bit levels (the bin of each dequantised draw), in the data's scale."""
        self._check_fitted()
        g = torch.Generator(device=self._device())
        g.manual_seed(measure_seed(self.random_state if random_state is None else random_state))
        self.module_.eval()
        x = self.module_.sample(int(n_samples), g, temperature)
        if self.dequantize_ != "none":
            k = torch.floor((x + 0.5) * 256).clamp(0, 255)
            x = k / 255.0 if self.dequantize_ == "unit" else k
        return x.float().cpu().numpy()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _fitting_levels(shape: Sequence[int], wanted: int) -> int:
    """The levels that fit: at most ``wanted``, each halving H and W (at least one)."""
    _, h, w = (int(s) for s in shape)
    levels = 0
    while levels < wanted and h % 2 == 0 and w % 2 == 0 and h >= 2 and w >= 2:
        h, w, levels = h // 2, w // 2, levels + 1
    if levels == 0:
        raise ValueError(f"images of shape {tuple(shape)} cannot be squeezed (odd size)")
    return levels


def is_image(model: FlowEstimator) -> bool:
    """Whether a fitted flow models images."""
    return bool(getattr(model, "image_shape_", []))


from . import _report  # noqa: E402,F401  (registers the report sections)
