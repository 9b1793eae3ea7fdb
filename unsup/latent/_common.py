r"""Pieces shared by the directed latent-variable models: the continuous Bernoulli, the decoder
choice that follows the data, input binarisation, and importance-sampled likelihoods.

Importance sampling with ``k`` proposals from a recognition model ``q(h | x)`` gives, per row,

.. math::

    \hat L_k(x) = \log \frac{1}{k} \sum_{i=1}^{k} \frac{p(x, h_i)}{q(h_i \mid x)},
    \qquad h_i \sim q(\cdot \mid x),

a stochastic lower bound of :math:`\log p(x)` (:math:`E[\hat L_k] \le \log p(x)` by Jensen's
inequality), increasing in ``k`` and consistent as :math:`k \to \infty` (Burda, Grosse &
Salakhutdinov 2016, Theorem 1). ``k = 1`` is the ELBO.

The noise behind each row's proposals (``eps`` for a Gaussian, uniforms for binary units) comes
from a generator seeded by the measurement's seed and a hash of the row's values
(:func:`row_draws`): rows get independent draws (so the standard error over rows is the
estimator's), a row's value never depends on which other rows are measured with it or in which
order (scikit-learn's subset- and order-invariance of ``score_samples``), and measuring is
repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unsup.data.validation import DataError
from unsup.likelihood import Likelihood
from unsup.nn import Bernoulli, Gaussian
from unsup.ops import log_mean_exp
from unsup.train.seeding import measure_seed, row_draws

__all__ = ["ContinuousBernoulli", "DECODERS", "choose_decoder", "binarize", "log_mean_exp",
           "measure_seed", "row_draws", "is_likelihood"]

DECODERS = ("auto", "bernoulli", "continuous_bernoulli", "gaussian")


class ContinuousBernoulli:
    r"""The continuous Bernoulli on [0, 1] with logit ``a`` (Loaiza-Ganem & Cunningham 2019).

    .. math::

        p(x \mid a) = C(a)\, σ(a)^x σ(-a)^{1-x} = \frac{a\, e^{a x}}{e^a - 1},
        \qquad \log C(a) = \log \frac{a}{\tanh(a/2)}

    It is the Bernoulli cross-entropy made a normalised density on [0, 1]; the ELBO of a VAE
    with this decoder bounds a true log-density of grey levels (a Bernoulli "likelihood" of
    grey levels does not integrate to one). Same protocol as :mod:`unsup.nn.distributions`.
    """

    event_ndim = 1

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    @staticmethod
    def _log_norm(a: torch.Tensor) -> torch.Tensor:
        small = a.abs() < 1e-2  # Taylor: a / tanh(a/2) = 2 (1 + a²/12 + O(a⁴))
        safe = torch.where(small, torch.ones_like(a), a)
        far = torch.log(safe.abs()) - torch.log(torch.tanh(safe.abs() / 2))
        return torch.where(small, math.log(2.0) + a * a / 12, far)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        a, x = torch.broadcast_tensors(self.logits, x)
        lp = -F.binary_cross_entropy_with_logits(a, x, reduction="none")
        return (lp + self._log_norm(a)).sum(-1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Inverse CDF of ``p ∝ e^{a x}``, ``x = log1p(u expm1(a)) / a``, for ``a <= 0``
        (``x -> 1 - x`` for ``a > 0``; no overflow)."""
        a = self.logits.detach()
        u = torch.rand(a.shape, generator=generator, device=a.device, dtype=a.dtype)
        neg = -a.abs()
        small = neg.abs() < 1e-4
        safe = torch.where(small, -torch.ones_like(neg), neg)
        x = torch.where(small, u, torch.log1p(u * torch.expm1(safe)) / safe)
        return torch.where(a > 0, 1 - x, x).clamp(0, 1)

    @property
    def mean(self) -> torch.Tensor:
        """``σ(a) / tanh(a/2) - 1/a`` (``1/2 + a/12`` near 0)."""
        a = self.logits
        small = a.abs() < 1e-2
        safe = torch.where(small, torch.ones_like(a), a)
        far = torch.sigmoid(safe) / torch.tanh(safe / 2) - 1 / safe
        return torch.where(small, 0.5 + a / 12, far)


def choose_decoder(decoder: str, X: Any) -> str:
    """The decoder for ``X``: "bernoulli" needs [0, 1]; "auto" follows the data (binary:
    Bernoulli; grey levels in [0, 1]: continuous Bernoulli; other reals: Gaussian)."""
    if isinstance(X, torch.Tensor):
        lo, hi = float(X.min()), float(X.max())
        binary = bool(torch.equal(X * X, X))
    else:
        head = np.asarray(X[: min(len(X), 20000)])
        lo, hi = float(head.min()), float(head.max())
        binary = bool(np.array_equal(head * head, head))
    inside = lo >= 0.0 and hi <= 1.0
    if decoder in ("bernoulli", "continuous_bernoulli") and not inside:
        raise DataError(f"decoder={decoder!r} needs data in [0, 1], but X ranges over "
                        f"[{lo:.4g}, {hi:.4g}]: scale the data to [0, 1] or use "
                        "decoder='gaussian'")
    if decoder != "auto":
        return decoder
    if binary:
        return "bernoulli"
    return "continuous_bernoulli" if inside else "gaussian"


def binarize(X: torch.Tensor, mode: Any, gen: torch.Generator | None = None) -> torch.Tensor:
    """``binarize_input``: None (as given), a threshold ``t`` (``X > t``) or "stochastic"
    (Bernoulli(X) draws with ``gen``; a threshold at 0.5 when ``gen`` is None)."""
    if mode is None:
        return X
    if mode == "stochastic":
        if float(X.min()) < 0 or float(X.max()) > 1:
            raise DataError("binarize_input='stochastic' needs values in [0, 1]; X ranges "
                            f"over [{float(X.min()):.4g}, {float(X.max()):.4g}]")
        if gen is None:
            return (X > 0.5).to(X.dtype)
        u = torch.rand(X.shape, generator=gen, device=X.device, dtype=X.dtype)
        return (u < X).to(X.dtype)
    return (X > float(mode)).to(X.dtype)


def binarize_note(mode: Any) -> str | None:
    """What :func:`binarize` did to the data of a likelihood, for ``Likelihood.transform``."""
    if mode is None:
        return None
    return "binarised at 0.5" if mode == "stochastic" else f"binarised at {float(mode):g}"


def output_dist(kind: str, out: torch.Tensor, log_scale: torch.Tensor | None) -> Any:
    """The decoder's distribution over x from its raw output."""
    if kind == "bernoulli":
        return Bernoulli(out)
    if kind == "continuous_bernoulli":
        return ContinuousBernoulli(out)
    assert log_scale is not None
    return Gaussian(out, log_scale=log_scale.expand_as(out))


def is_likelihood(log_weights: Callable[..., torch.Tensor], X: torch.Tensor,
                  k: int, *, support: str, transform: str | None,
                  elbo: bool = False, extra: tuple[torch.Tensor, ...] = (),
                  note: str = "") -> Likelihood:
    """The IS-k estimate (or, ``elbo=True``, the mean of the k log weights: the ELBO) as a
    typed result; ``log_weights(rows, *extra_rows) -> (k, rows)`` log importance weights
    (``extra``: per-row tensors sliced with the rows, e.g. refined proposals; ``note`` is
    appended to the estimator's name).

    One row at a time: every row's k draws go through the networks as the same (k, ·)
    shapes, so a row's estimate does not depend on the other rows of X (float32 GEMMs of
    another shape round differently: scikit-learn's subset-invariance check failed by 1e-7
    relative with ReLU networks), and at the usual k (hundreds to thousands) it is faster
    than blocks of rows (500 rows, k = 1,000: 8.8 against 16.7 CPU s; k = 10: 0.62 against
    0.21)."""
    reduce = (lambda a: a.mean(0)) if elbo else log_mean_exp
    vals = [reduce(log_weights(X[i:i + 1], *(e[i:i + 1] for e in extra))).double().cpu()
            for i in range(X.shape[0])]
    name = (f"ELBO ({k} draws)" if elbo else f"IS-{k}") + note
    return Likelihood.from_samples(torch.cat(vals).numpy(), kind="stochastic lower bound",
                                   estimator=name,
                                   support=support, n_dims=int(X.shape[1]),
                                   counts={"importance_samples": k}, transform=transform)
