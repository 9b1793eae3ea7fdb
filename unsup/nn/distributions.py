r"""Output distributions: what a decoder's output means, with ``log_prob``, ``sample``, ``mean``.

In the manner of :mod:`torch.distributions`, each distribution is built from the tensors a
network outputs and answers ``log_prob(x)``, ``sample()`` and ``mean``; unlike it, ``log_prob``
sums over the last ``event_ndim`` dimensions (default 1: the features of a row, so a batch of
rows gives one log-likelihood per row, in nats), and ``sample`` takes a
:class:`torch.Generator` so that models stay reproducible and resumable. All densities are
computed in their numerically stable forms (softplus, log-softmax, log-sigmoid).

- :class:`Bernoulli` (logits ``a``): ``log p(x) = x log σ(a) + (1-x) log σ(-a)``;
- :class:`Gaussian` (mean ``μ``, scale ``σ`` fixed or learned):
  ``log p(x) = -½((x-μ)/σ)² - log σ - ½ log 2π``;
- :class:`Categorical` (logits over the last axis): ``log p(x=k) = a_k - log Σ_j e^{a_j}``;
- :class:`DiscretizedLogistic` (PixelCNN++ [1]_): a logistic ``(μ, s)`` integrated over the
  ``B`` bins of width ``Δ`` centred on ``low + kΔ``; the first and last bins take the tails:

.. math::

    P(x) = σ\big(\tfrac{x + Δ/2 - μ}{s}\big) - σ\big(\tfrac{x - Δ/2 - μ}{s}\big),
    \qquad σ(a) - σ(b) = σ(a)\,σ(-b)\,(1 - e^{b-a})

(the product form is computed in log space, exact for any ``a > b``).

The ``*Head`` modules turn a network's raw outputs into a distribution (``n_params``: how many
outputs per feature the network must produce).

References
----------
.. [1] Salimans, Karpathy, Chen & Kingma, "PixelCNN++: Improving the PixelCNN with
   Discretized Logistic Mixture Likelihood and Other Modifications", ICLR 2017.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Bernoulli", "Gaussian", "Categorical", "DiscretizedLogistic", "BernoulliHead",
           "GaussianHead", "CategoricalHead", "DiscretizedLogisticHead"]

_LOG_2PI = math.log(2 * math.pi)


class _Output:
    """The protocol: ``log_prob`` (summed over ``event_ndim`` trailing dims), ``sample``,
    ``mean``."""

    event_ndim: int = 1

    def _sum(self, lp: torch.Tensor) -> torch.Tensor:
        return lp.sum(dim=tuple(range(-self.event_ndim, 0))) if self.event_ndim else lp

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    @property
    def mean(self) -> torch.Tensor:
        raise NotImplementedError


class Bernoulli(_Output):
    """Independent Bernoulli variables with ``P(x=1) = σ(logits)``."""

    def __init__(self, logits: torch.Tensor, event_ndim: int = 1) -> None:
        self.logits, self.event_ndim = logits, event_ndim

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self._sum(-F.binary_cross_entropy_with_logits(self.logits, x, reduction="none"))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(self.logits.shape, generator=generator, device=self.logits.device)
        return (u < torch.sigmoid(self.logits.detach())).to(self.logits.dtype)

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)


class Gaussian(_Output):
    """Independent normals ``N(loc, scale²)``; give ``scale`` (a number: fixed variance) or
    ``log_scale`` (a tensor: learned or predicted variance)."""

    def __init__(self, loc: torch.Tensor, scale: float | torch.Tensor | None = None,
                 log_scale: torch.Tensor | None = None, event_ndim: int = 1) -> None:
        if (scale is None) == (log_scale is None):
            raise ValueError("give exactly one of scale and log_scale")
        self.loc, self.event_ndim = loc, event_ndim
        if log_scale is None:
            log_scale = torch.log(torch.as_tensor(scale, dtype=loc.dtype, device=loc.device))
        self.log_scale = log_scale.expand_as(loc) if log_scale.ndim else log_scale
        self.scale = torch.exp(self.log_scale)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.loc) / self.scale
        return self._sum(-0.5 * z * z - self.log_scale - 0.5 * _LOG_2PI)

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterised sample ``loc + scale · ε`` (differentiable in loc and scale)."""
        eps = torch.randn(self.loc.shape, generator=generator, device=self.loc.device,
                          dtype=self.loc.dtype)
        return self.loc + self.scale * eps

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(generator)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc


class Categorical(_Output):
    """Independent categorical variables over the last axis of ``logits`` (K classes)."""

    def __init__(self, logits: torch.Tensor, event_ndim: int = 1) -> None:
        self.logits, self.event_ndim = logits, event_ndim

    @property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits, -1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(self.logits, -1)
        return self._sum(lp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        k = self.logits.shape[-1]
        flat = self.probs.detach().reshape(-1, k)
        draws = torch.multinomial(flat, 1, generator=generator)
        return draws.reshape(self.logits.shape[:-1])

    @property
    def mean(self) -> torch.Tensor:
        """The expected class index ``Σ_k k p_k``."""
        k = torch.arange(self.logits.shape[-1], device=self.logits.device,
                         dtype=self.logits.dtype)
        return (self.probs * k).sum(-1)


class DiscretizedLogistic(_Output):
    """A logistic ``(loc, exp(log_scale))`` discretised to ``n_bins`` values in [low, high]."""

    def __init__(self, loc: torch.Tensor, log_scale: torch.Tensor, n_bins: int = 256,
                 low: float = 0.0, high: float = 1.0, event_ndim: int = 1) -> None:
        if n_bins < 2 or not high > low:
            raise ValueError("need n_bins >= 2 and high > low")
        self.loc, self.log_scale = loc, log_scale.expand_as(loc)
        self.n_bins, self.low, self.high, self.event_ndim = int(n_bins), low, high, event_ndim
        self.width = (high - low) / (n_bins - 1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        inv_s = torch.exp(-self.log_scale)
        a = (x + self.width / 2 - self.loc) * inv_s
        b = (x - self.width / 2 - self.loc) * inv_s
        mid = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))
        half = self.width / 2
        lp = torch.where(x < self.low + half, F.logsigmoid(a),
                         torch.where(x > self.high - half, F.logsigmoid(-b), mid))
        return self._sum(lp)

    def _snap(self, x: torch.Tensor) -> torch.Tensor:
        k = torch.round((x - self.low) / self.width).clamp(0, self.n_bins - 1)
        return self.low + k * self.width

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(self.loc.shape, generator=generator, device=self.loc.device,
                       dtype=self.loc.dtype).clamp(1e-6, 1 - 1e-6)
        with torch.no_grad():
            x = self.loc + torch.exp(self.log_scale) * (torch.log(u) - torch.log1p(-u))
        return self._snap(x)

    @property
    def mean(self) -> torch.Tensor:
        """``Σ_k c_k P_k = c_{B-1} - Δ Σ_{k<B-1} F(c_k + Δ/2)`` (summation by parts)."""
        inv_s = torch.exp(-self.log_scale)
        acc = torch.zeros_like(self.loc)
        for k in range(self.n_bins - 1):
            edge = self.low + (k + 0.5) * self.width
            acc = acc + torch.sigmoid((edge - self.loc) * inv_s)
        return self.high - self.width * acc


# -- heads: a network's raw outputs -> a distribution ------------------------------------------
class BernoulliHead(nn.Module):
    """``(n, D)`` logits → :class:`Bernoulli`."""

    n_params = 1

    def forward(self, out: torch.Tensor) -> Bernoulli:
        return Bernoulli(out)


class GaussianHead(nn.Module):
    """``(n, D)`` means (``variance`` "fixed" or "learned") or ``(n, 2D)`` means and log-scales
    ("predicted") → :class:`Gaussian`.

    Parameters
    ----------
    n_features : int
        D.
    variance : {"fixed", "learned", "predicted"}
        σ = ``scale`` fixed; one learned log σ per feature (initialised at log ``scale``); or
        predicted per sample by the network.
    scale : float, default=1.0
        The fixed σ, or the learned σ's starting value.
    """

    def __init__(self, n_features: int, variance: str = "fixed", scale: float = 1.0) -> None:
        super().__init__()
        if variance not in ("fixed", "learned", "predicted"):
            raise ValueError(f"variance must be 'fixed', 'learned' or 'predicted', got "
                             f"{variance!r}")
        self.variance, self.scale, self.n_features = variance, float(scale), int(n_features)
        self.n_params = 2 if variance == "predicted" else 1
        if variance == "learned":
            self.log_scale = nn.Parameter(torch.full((n_features,), math.log(scale)))

    def forward(self, out: torch.Tensor) -> Gaussian:
        if self.variance == "predicted":
            loc, log_scale = out.split(self.n_features, dim=-1)
            return Gaussian(loc, log_scale=log_scale)
        if self.variance == "learned":
            return Gaussian(out, log_scale=self.log_scale.expand_as(out))
        return Gaussian(out, scale=self.scale)


class CategoricalHead(nn.Module):
    """``(n, D·K)`` logits (feature-major) → :class:`Categorical` over ``K`` classes."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = self.n_params = int(n_classes)

    def forward(self, out: torch.Tensor) -> Categorical:
        return Categorical(out.reshape(*out.shape[:-1], -1, self.n_classes))


class DiscretizedLogisticHead(nn.Module):
    """``(n, 2D)`` locations and log-scales → :class:`DiscretizedLogistic`."""

    n_params = 2

    def __init__(self, n_bins: int = 256, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__()
        self.n_bins, self.low, self.high = n_bins, low, high

    def forward(self, out: torch.Tensor) -> DiscretizedLogistic:
        loc, log_scale = out.chunk(2, dim=-1)
        return DiscretizedLogistic(loc, log_scale.clamp(min=-7.0), self.n_bins, self.low,
                                   self.high)
