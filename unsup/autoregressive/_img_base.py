r"""What NADE, MADE and PixelCNN share: exact autoregressive likelihoods of images.

Each model factorises the probability of a D-pixel image in a fixed order,

.. math::

    p(x) = \prod_{d=1}^{D} p(x_{o_d} \mid x_{o_1}, \dots, x_{o_{d-1}}),

and its network outputs, for every pixel at once, the parameters of the d-th conditional from
the pixels before it only. The log-likelihood is the sum of D log-conditionals: exact (no
bound, no estimate), and one forward pass computes it; training minimises the mean negative
log-likelihood per image (nats) with the gradient engine. Sampling draws the pixels one after
the other (D forward passes, or D cheap steps for NADE).

Pixel outputs (``output``):

- ``"bernoulli"`` — binary pixels, one logit each: :math:`p(x_d{=}1) = σ(a_d)`;
- ``"categorical"`` — L grey levels, a softmax over L logits per pixel (van den Oord et al.
  2016's 256-way softmax);
- ``"logistic"`` — L grey levels, a discretised logistic (Salimans et al. 2017; location and
  log-scale per pixel, the end bins take the tails), see
  :class:`unsup.nn.distributions.DiscretizedLogistic`.

Every output is a normalised distribution over its finite support, so ``score_samples`` is an
exact log probability mass (``support="discrete"``, ≤ 0) and bits/dim is
:math:`-\log p(x) / (D \ln 2)`.

Data: binary models take 0/1 data (or threshold it with ``binarize_input``); grey-level models
take L-level images, either integers 0..L-1 or values k/(L-1) in [0, 1] (how the platform's
image datasets come), and sample on the scale they were fitted on.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unsup.data.validation import DataError
from unsup.likelihood import Likelihood
from unsup.nn.distributions import DiscretizedLogistic
from unsup.params import Interval, StrOptions
from unsup.train import GradientEstimator
from unsup.train.seeding import measure_seed

__all__ = ["ExactAutoregressive", "OUTPUTS", "n_params_for"]

OUTPUTS = ("auto", "bernoulli", "categorical", "logistic")
_QUANT_TOL = 1e-3  # how far x·(L-1) may sit from an integer and still be level round(x·(L-1))


def n_params_for(output: str, n_levels: int) -> int:
    """Network outputs per pixel: 1 logit, L logits, or (location, log-scale)."""
    return {"bernoulli": 1, "categorical": int(n_levels), "logistic": 2}[output]


class ExactAutoregressive(GradientEstimator):
    """Base class: data checks, per-pixel outputs, exact likelihoods, pixel-by-pixel sampling.

    A subclass defines ``_build_module`` and ``_params(x) -> (n, D, P)``: the raw parameters of
    every pixel's conditional given the (level-valued) images ``x`` of shape (n, D), each
    depending only on the pixels before it in the model's order; and ``_sample_levels(n, g)``,
    or ``_order(k)`` for the generic sampler (which calls ``_params`` once per pixel).
    """

    _likelihood_support = "discrete"
    _score_batch = 500  # rows per scoring pass
    _test_data = "binary"
    _base_constraints: dict[str, Any] = {
        "output": [StrOptions(set(OUTPUTS))],
        "n_levels": [Interval(Integral, 2, None, closed="left")],
        "binarize_input": [None, Interval(Real, None, None, closed="neither"),
                           StrOptions({"stochastic"})],
    }

    # -- data ---------------------------------------------------------------------------------
    def _prepare(self, X: Any) -> None:
        head = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X[:20000]))
        out = self.output
        if self.binarize_input is not None:
            if out in ("categorical", "logistic"):
                raise ValueError(f"binarize_input={self.binarize_input!r} makes the data binary, "
                                 f"but output={out!r} models grey levels: use output='bernoulli' "
                                 "(or 'auto'), or binarize_input=None")
            if self.binarize_input == "stochastic":
                self._check_unit(head)
            self.output_ = "bernoulli"
            self.pixel_scale_ = 1.0
        else:
            binary = bool(torch.equal(head * head, head))
            self.output_ = ("bernoulli" if binary else "categorical") if out == "auto" else out
            self.pixel_scale_ = 1.0
            if self.output_ != "bernoulli":  # grey levels: 0..L-1, or k/(L-1) in [0, 1]
                self.pixel_scale_ = 1.0 if float(head.max()) > 1 else 1.0 / (int(self.n_levels) - 1)
        self._marginal = self._marginal_params(self._levels(head))

    def _marginal_params(self, x: torch.Tensor) -> torch.Tensor:
        """(D, P) output parameters of independent pixels with the data's marginals: where the
        models' output biases start, so training begins at the independent model's
        likelihood instead of at uniform pixels (hundreds of nats away for MNIST)."""
        if self.output_ == "bernoulli":
            p = x.float().mean(0).clamp(1e-3, 1 - 1e-3)
            return torch.log(p / (1 - p))[:, None]
        L = int(self.n_levels)
        if self.output_ == "categorical":
            counts = torch.stack([(x == k).float().sum(0) for k in range(L)], 1)
            return torch.log((counts + 0.5) / (counts.sum(1, keepdim=True) + 0.5 * L))
        u = x.float() / (L - 1)
        scale = u.std(0, unbiased=False).clamp(min=1.0 / L)
        return torch.stack([u.mean(0), torch.log(scale * 3 ** 0.5 / torch.pi)], 1)

    @staticmethod
    def _check_unit(X: torch.Tensor) -> None:
        if float(X.min()) < 0 or float(X.max()) > 1:
            raise DataError("binarize_input='stochastic' needs values in [0, 1]; X ranges over "
                            f"[{float(X.min()):.4g}, {float(X.max()):.4g}]")

    def _levels(self, X: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """X as pixel levels (float: 0/1 for binary, 0..L-1 for grey), checked."""
        name = type(self).__name__
        mode = self.binarize_input
        if self.output_ == "bernoulli":
            if mode == "stochastic":
                self._check_unit(X)
                if gen is None:  # likelihoods and validation: a fixed threshold
                    return (X > 0.5).to(X.dtype)
                u = torch.rand(X.shape, generator=gen, device=X.device, dtype=X.dtype)
                return (u < X).to(X.dtype)
            if mode is not None:
                return (X > float(mode)).to(X.dtype)
            bad = (X * X != X)
            if bool(bad.any()):
                v = float(X[bad][0])
                raise DataError(
                    f"{name} with output='bernoulli' models binary pixels, but X has "
                    f"non-binary values (e.g. {v:.4g}): threshold it with binarize_input=0.5, "
                    "draw it with binarize_input='stochastic', or model grey levels with "
                    "output='categorical' / 'logistic'")
            return X
        L = int(self.n_levels)
        y = X / self.pixel_scale_
        lv = torch.round(y)
        off_grid = bool(((y - lv).abs() > _QUANT_TOL).any())
        if float(X.min()) < 0 or float(lv.max()) > L - 1 or off_grid:
            scale = (f"integers 0..{L - 1}" if self.pixel_scale_ == 1.0
                     else f"values k/{L - 1} in [0, 1]")
            raise DataError(f"{name} with output={self.output_!r} models {L} grey levels and was "
                            f"fitted on {scale}; X ranges over [{float(X.min()):.4g}, "
                            f"{float(X.max()):.4g}] or is not quantised to those levels")
        return lv

    def _x(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        return self._levels(self._input(X))

    def _check_fitted_values(self) -> None:
        """A loaded file's fitted values must be ones ``fit`` could have set (unsup.io)."""
        out = getattr(self, "output_", None)
        if out not in OUTPUTS[1:]:
            raise ValueError(f"output_={out!r} is not one of {OUTPUTS[1:]}")
        if self.output not in ("auto", out) or (self.binarize_input is not None
                                                 and out != "bernoulli"):
            raise ValueError(f"output_={out!r} contradicts output={self.output!r} and "
                             f"binarize_input={self.binarize_input!r}")
        scale = getattr(self, "pixel_scale_", None)
        allowed = [1.0] if out == "bernoulli" else [1.0, 1.0 / (int(self.n_levels) - 1)]
        if not isinstance(scale, (int, float)) or not any(
                math.isclose(float(scale), a, rel_tol=1e-9) for a in allowed):
            raise ValueError(f"pixel_scale_={scale!r} is not one of {allowed}")

    def _set_state(self, arrays: dict[str, Any], values: dict[str, Any]) -> None:
        for k, v in values.items():  # checked before the network is built from them
            setattr(self, k, v)
        self._check_fitted_values()
        super()._set_state(arrays, values)

    # -- conditionals -------------------------------------------------------------------------
    @property
    def _n_params(self) -> int:
        return n_params_for(self.output_, int(self.n_levels))

    def _params(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _net_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the network sees of level-valued pixels: 0/1, or the level scaled to [0, 1]."""
        return x if self.output_ == "bernoulli" else x / (int(self.n_levels) - 1)

    def _pixel_log_prob(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_d | x_<d) of every pixel: ``out`` (n, D, P), levels ``x`` (n, D) → (n, D)."""
        if self.output_ == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out[..., 0], x, reduction="none")
        if self.output_ == "categorical":
            return torch.log_softmax(out, -1).gather(-1, x.long()[..., None])[..., 0]
        L = int(self.n_levels)
        dl = DiscretizedLogistic(out[..., 0], out[..., 1].clamp(min=-7.0), L, 0.0, 1.0,
                                 event_ndim=0)
        return dl.log_prob(x / (L - 1))

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) per row (nats) of level-valued images (n, D)."""
        return self._pixel_log_prob(self._params(x), x).sum(-1)

    def _draw(self, out: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One level per row from the conditionals ``out`` (n, P)."""
        u = torch.rand(out.shape[0], generator=g, device=out.device, dtype=out.dtype)
        if self.output_ == "bernoulli":
            return (u < torch.sigmoid(out[:, 0])).to(out.dtype)
        if self.output_ == "categorical":  # inverse CDF of the softmax
            cdf = torch.softmax(out, -1).cumsum(-1)
            return (cdf < u[:, None]).sum(-1).clamp(max=out.shape[1] - 1).to(out.dtype)
        L = int(self.n_levels)  # inverse CDF of the logistic, snapped to the nearest level
        u = u.clamp(1e-6, 1 - 1e-6)
        v = out[:, 0] + torch.exp(out[:, 1].clamp(min=-7.0)) * (torch.log(u) - torch.log1p(-u))
        return torch.round(v.clamp(0, 1) * (L - 1))

    # -- training -----------------------------------------------------------------------------
    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        return -self._log_prob(self._levels(batch, self._gen)).mean()

    def _val_loss(self, batch: torch.Tensor) -> torch.Tensor:
        return -self._log_prob(self._levels(batch)).mean()

    def _run(self, X: Any, cfg: Any, callbacks: Any = (), loss: Any = None, val_loss: Any = None,
             module: Any = None) -> Any:
        return super()._run(X, cfg, callbacks, loss, val_loss or self._val_loss, module)

    # -- public API ---------------------------------------------------------------------------
    def _estimator_name(self) -> str:
        return "chain rule"

    def _transform_note(self) -> str | None:
        mode = self.binarize_input
        if mode is None:
            return None
        return "binarised at 0.5" if mode == "stochastic" else f"binarised at {float(mode):g}"

    @torch.no_grad()
    def _score_rows(self, x: torch.Tensor) -> np.ndarray:
        self.module_.eval()
        batch = int(self._score_batch)
        return torch.cat([self._log_prob(x[i:i + batch]).double().cpu()
                          for i in range(0, x.shape[0], batch)]).numpy()

    def log_likelihood(self, X: Any) -> Likelihood:
        """Exact log p(x) (nats per image; ``bits_per_dim`` too) as a typed result."""
        x = self._x(X)
        return Likelihood.from_samples(self._score_rows(x), kind="exact",
                                       estimator=self._estimator_name(), support="discrete",
                                       n_dims=int(x.shape[1]), transform=self._transform_note())

    def score_samples(self, X: Any) -> np.ndarray:
        """Exact log-likelihood of each row, in nats."""
        return self._score_rows(self._x(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean exact log-likelihood per row (nats)."""
        return float(self.score_samples(X).mean())

    def bits_per_dim(self, X: Any) -> float:
        """``-mean log p(x) / (D ln 2)``."""
        return float(-self.score(X) / (self.n_features_in_ * math.log(2)))

    def _order(self, k: int) -> torch.Tensor:
        """The pixel order (0-based indices) of ordering ``k``; raster order by default."""
        return torch.arange(self.n_features_in_)

    def _sample_levels(self, n: int, g: torch.Generator) -> torch.Tensor:
        """Pixel by pixel in the model's order: D calls of ``_params``."""
        return self._sample_in_order(n, g, self._order(0))

    def _sample_in_order(self, n: int, g: torch.Generator, order: torch.Tensor,
                         x0: torch.Tensor | None = None, start: int = 0) -> torch.Tensor:
        """Draw the pixels ``order[start:]`` one after the other (the others from ``x0``)."""
        x = (torch.zeros(n, self.n_features_in_, device=self._device()) if x0 is None
             else x0.clone())
        for d in order[start:].tolist():
            x[:, d] = self._draw(self._params(x)[:, d], g)
        return x

    @torch.no_grad()
    def _complete(self, X: Any, n_observed: int, random_state: Any = None) -> np.ndarray:
        """Keep the first ``n_observed`` pixels of each row (in the order of mask 0) and
        sample the rest from the model: completions, for the report."""
        x = self._x(X)
        g = torch.Generator(device=self._device())
        g.manual_seed(measure_seed(self.random_state if random_state is None else random_state))
        self.module_.eval()
        if hasattr(self, "_use"):
            self._use(0)
        out = self._sample_in_order(x.shape[0], g, self._order(0), x0=x, start=int(n_observed))
        return (out * self.pixel_scale_).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draw ``n_samples`` images from the model (exact ancestral sampling, pixel by pixel),
        on the scale of the training data; ``random_state`` seeds it (default: the model's)."""
        self._check_fitted()
        g = torch.Generator(device=self._device())
        g.manual_seed(measure_seed(self.random_state if random_state is None else random_state))
        self.module_.eval()
        x = self._sample_levels(int(n_samples), g)
        return (x * self.pixel_scale_).cpu().numpy().astype(np.float32)


from unsup.autoregressive import _report  # noqa: E402,F401  (registers the report sections)
