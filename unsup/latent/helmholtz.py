r"""The Helmholtz machine: layers of stochastic binary units, a generative and a recognition
network, trained by wake-sleep (Hinton, Dayan, Frey & Neal 1995) or reweighted wake-sleep
(Bornschein & Bengio 2015).

Generative model, top layer first (sigmoid belief net), with :math:`h_0 = x`:

.. math::

    p(h_L) = \prod_j σ(b_j)^{h_{L,j}} σ(-b_j)^{1-h_{L,j}}, \qquad
    p(h_{l-1} = 1 \mid h_l) = σ(W_l h_l + c_l);

recognition model, bottom up: :math:`q(h_l = 1 \mid h_{l-1}) = σ(R_l h_{l-1} + r_l)`.

**Wake-sleep.** Wake: draw :math:`h \sim q(\cdot \mid x)` for a data row and take a step up
:math:`\nabla_θ \log p_θ(x, h)` (the generative weights learn to reproduce the recognised
states). Sleep: dream :math:`(h, x) \sim p_θ` and take a step up :math:`\nabla_φ \log q_φ(h
\mid x)` (the recognition weights learn to invert the generative model). Each is a local delta
rule; the sleep phase minimises :math:`KL(p \| q)` rather than the ELBO's :math:`KL(q \| p)`.

**Reweighted wake-sleep.** With :math:`K` proposals :math:`h_k \sim q(\cdot \mid x)` and
normalised importance weights :math:`\tilde w_k \propto p(x, h_k) / q(h_k \mid x)`,

.. math::

    Δθ \propto \sum_k \tilde w_k \nabla_θ \log p_θ(x, h_k), \qquad
    Δφ \propto \tfrac12 \sum_k \tilde w_k \nabla_φ \log q_φ(h_k \mid x)
             + \tfrac12 \nabla_φ \log q_φ(h^{dream} \mid x^{dream}):

the generative update follows the gradient of the IS-K estimate of :math:`\log p(x)`
(biased, consistent in K); the recognition update averages the wake-phase update (the same
weights, towards :math:`p(h \mid x)` on real data) and the sleep-phase update.

Both run on the gradient engine's phases (:mod:`unsup.train.steps`): an optimiser for the
generative parameters and one for the recognition parameters. ``score_samples`` is the IS-k
estimate of log p(x) with q as the proposal.

References
----------
.. [1] Hinton, Dayan, Frey & Neal, "The wake-sleep algorithm for unsupervised neural
   networks", Science 268, 1995.
.. [2] Dayan, Hinton, Neal & Zemel, "The Helmholtz machine", Neural Computation 7, 1995.
.. [3] Bornschein & Bengio, "Reweighted Wake-Sleep", ICLR 2015.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from torch import nn

from unsup.latent._common import (
    binarize,
    binarize_note,
    choose_decoder,
    is_likelihood,
    measure_seed,
    row_draws,
)
from unsup.likelihood import Likelihood
from unsup.params import Interval, StrOptions
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC, GradientEstimator, OptimizerSpec, Phase

__all__ = ["HelmholtzMachine"]

_pos = Interval(Integral, 1, None, closed="left")


def _log_bernoulli(logits: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Σ_j log Bernoulli(h_j; σ(logits_j)), over the last axis."""
    logits, h = torch.broadcast_tensors(logits, h)
    return -F.binary_cross_entropy_with_logits(logits, h, reduction="none").sum(-1)


class HelmholtzNet(nn.Module):
    """``prior`` (top-layer logits), ``generative[l]`` (h_{l+1} -> h_l, h_0 = x) and
    ``recognition[l]`` (h_l -> h_{l+1})."""

    def __init__(self, n_features: int, layers: Sequence[int]) -> None:
        super().__init__()
        sizes = [int(n_features), *[int(s) for s in layers]]
        self.prior = nn.Parameter(torch.zeros(sizes[-1]))
        pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
        self.generative = nn.ModuleList(nn.Linear(b, a) for a, b in pairs)
        self.recognition = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)

    def recognise(self, x: torch.Tensor, uniforms: Sequence[torch.Tensor]
                  ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``h_l ~ q`` with ``h = [u < σ(a)]`` for the given uniforms; (states, log q(h|x))."""
        h, states, lq = x, [], 0.0
        for layer, u in zip(self.recognition, uniforms, strict=True):
            a = layer(h)
            h = (u < torch.sigmoid(a)).to(a.dtype)
            lq = lq + _log_bernoulli(a, h)
            states.append(h)
        return states, lq  # type: ignore[return-value]

    def log_recognition(self, x: torch.Tensor, states: Sequence[torch.Tensor]) -> torch.Tensor:
        """log q(h_1, ..., h_L | x) of given states."""
        lq, below = 0.0, [x, *states[:-1]]
        for layer, h_down, h in zip(self.recognition, below, states, strict=True):
            lq = lq + _log_bernoulli(layer(h_down), h)
        return lq  # type: ignore[return-value]

    def log_joint(self, x: torch.Tensor, states: Sequence[torch.Tensor]) -> torch.Tensor:
        """log p(x, h_1, ..., h_L)."""
        lp = _log_bernoulli(self.prior, states[-1])
        below = [x, *states[:-1]]
        for layer, h_up, h_down in zip(self.generative, states, below, strict=True):
            lp = lp + _log_bernoulli(layer(h_up), h_down)
        return lp

    def dream(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Ancestral samples (x, [h_1, ..., h_L]) from the generative model."""
        p = torch.sigmoid(self.prior).expand(n, -1)
        h = (torch.rand(p.shape, generator=gen, device=p.device) < p).to(p.dtype)
        states = [h]
        for layer in reversed(self.generative):
            p = torch.sigmoid(layer(h))
            h = (torch.rand(p.shape, generator=gen, device=p.device) < p).to(p.dtype)
            states.append(h)
        x = states.pop()
        return x, states[::-1]


@register_model("helmholtz", family="latent", aliases=("helmholtz-machine", "wake-sleep"),
                summary="Helmholtz machine (binary units), wake-sleep or reweighted wake-sleep")
class HelmholtzMachine(TransformerMixin, GradientEstimator):
    """Helmholtz machine with layers of stochastic binary units.

    Parameters
    ----------
    layer_sizes : sequence of int, default=(200,)
        Hidden layer widths, bottom (nearest the data) first.
    method : {"reweighted", "wake-sleep"}, default="reweighted"
        Reweighted wake-sleep with ``n_importance_samples`` proposals, or plain wake-sleep.
    n_importance_samples : int, default=5
        K proposals per row for reweighted wake-sleep (and the validation bound).
    n_eval_samples : int, default=1000
        k of the importance-sampled log-likelihood of :meth:`score_samples`.
    binarize_input : None, float or "stochastic", default=0.5
        The units are binary: a threshold t gives ``X > t``; "stochastic" draws every
        training minibatch as Bernoulli(X) (thresholded at 0.5 elsewhere); None uses X as
        given (values in [0, 1]: grey levels are a cross-entropy target).
    epochs : int, default=200
    batch_size : int, default=100
    validation_fraction : float, default=0.1
    early_stopping : bool, default=True
    patience : int, default=20
    {train_params}

    Attributes
    ----------
    module_ : HelmholtzNet
        ``prior``, ``generative``, ``recognition``.
    history_ : list of dict
        Per epoch: ``loss`` (sum of the phases' losses), ``loss_wake`` (-log p(x, h) on
        recognised states, importance-weighted under "reweighted"), ``loss_sleep`` or
        ``loss_recognition``, ``val_loss`` (negative IS-K bound on held-out rows).
    n_features_in_ : int
    """

    _parameter_constraints: dict[str, Any] = {
        "layer_sizes": ["array-like"],
        "method": [StrOptions({"reweighted", "wake-sleep"})],
        "n_importance_samples": [_pos],
        "n_eval_samples": [_pos],
        "binarize_input": [None, Interval(Real, None, None, closed="neither"),
                           StrOptions({"stochastic"})],
    }
    _test_params: dict[str, Any] = {"layer_sizes": (4,), "epochs": 2, "batch_size": 32,
                                    "n_eval_samples": 8, "early_stopping": False,
                                    "validation_fraction": 0.0}
    _stage_name = "HelmholtzMachine"

    def __init__(
        self,
        layer_sizes: Sequence[int] = (200,),
        *,
        method: str = "reweighted",
        n_importance_samples: int = 5,
        n_eval_samples: int = 1000,
        binarize_input: Any = 0.5,
        epochs: int = 200,
        batch_size: int = 100,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 20,
    ) -> None:
        super().__init__()
        self.layer_sizes = layer_sizes
        self.method = method
        self.n_importance_samples = n_importance_samples
        self.n_eval_samples = n_eval_samples
        self.binarize_input = binarize_input
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience

    def _sizes(self) -> list[int]:
        sizes = [int(s) for s in np.atleast_1d(np.asarray(self.layer_sizes))]
        if not sizes or any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes must be one or more positive sizes, got "
                             f"{self.layer_sizes!r}")
        return sizes

    def _prepare(self, X: Any) -> None:
        self._sizes()
        if self.binarize_input is None:
            choose_decoder("bernoulli", X)  # refuses data outside [0, 1]
        elif self.binarize_input == "stochastic":
            binarize(X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X)),
                     "stochastic")

    def _build_module(self) -> nn.Module:
        return HelmholtzNet(self.n_features_in_, self._sizes())

    def _data(self, X: torch.Tensor, train: bool = False) -> torch.Tensor:
        return binarize(X, self.binarize_input, self._gen if train else None)

    def _uniforms(self, shape: tuple[int, ...], gen: torch.Generator, device: Any
                  ) -> list[torch.Tensor]:
        return [torch.rand((*shape, s), generator=gen, device=device) for s in self._sizes()]

    # -- the phases -----------------------------------------------------------------------
    def _optimizers(self) -> dict[str, OptimizerSpec]:
        m = self.module_
        return {"generative": OptimizerSpec([m.prior, *m.generative.parameters()]),
                "recognition": OptimizerSpec(list(m.recognition.parameters()))}

    def _phases(self) -> list[Phase]:
        if self.method == "wake-sleep":
            return [Phase("wake", self._wake_loss, "generative"),
                    Phase("sleep", self._sleep_loss, "recognition")]
        return [Phase("wake", self._rws_wake_loss, "generative"),
                Phase("recognition", self._rws_recognition_loss, "recognition")]

    def _recognised(self, x: torch.Tensor, k: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        with torch.no_grad():
            return self.module_.recognise(x, self._uniforms((k, x.shape[0]), self._gen,
                                                            x.device))

    def _wake_loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = self._data(batch, train=True)
        states, _ = self._recognised(x, 1)
        return -self.module_.log_joint(x, states).mean()

    def _sleep_loss(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x, states = self.module_.dream(batch.shape[0], self._gen)
        return -self.module_.log_recognition(x, states).mean()

    def _weights(self, x: torch.Tensor, states: list[torch.Tensor], lq: torch.Tensor
                 ) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self.module_.log_joint(x, states) - lq, dim=0)

    def _rws_wake_loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = self._data(batch, train=True)
        states, lq = self._recognised(x, int(self.n_importance_samples))
        w = self._weights(x, states, lq)
        return -(w * self.module_.log_joint(x, states)).sum(0).mean()

    def _rws_recognition_loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = self._data(batch, train=True)
        k = int(self.n_importance_samples)
        states, lq_fixed = self._recognised(x, k)
        w = self._weights(x, states, lq_fixed)
        lq = self.module_.log_recognition(x, states)
        return 0.5 * (-(w * lq).sum(0).mean() + self._sleep_loss(batch))

    def _val_loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = self._data(batch)
        states, lq = self.module_.recognise(
            x, self._uniforms((int(self.n_importance_samples), x.shape[0]), self._gen, x.device))
        lw = self.module_.log_joint(x, states) - lq
        return -(torch.logsumexp(lw, 0) - np.log(lw.shape[0])).mean()

    def _run(self, X: Any, cfg: Any, callbacks: Any = (), loss: Any = None, val_loss: Any = None,
             module: Any = None) -> Any:
        return super()._run(X, cfg, callbacks, loss, val_loss or self._val_loss, module)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are float32 whatever comes in
        return tags

    # -- public API ---------------------------------------------------------------------------
    def _probs_up(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.module_.recognition:
            h = torch.sigmoid(layer(h))
        return h

    def transform(self, X: Any) -> np.ndarray:
        """Top-layer recognition probabilities, propagated as means (a deterministic code)."""
        return self._map_batches(lambda b: self._probs_up(self._data(b)), X)

    def inverse_transform(self, H: Any) -> np.ndarray:
        """Visible means ``p(x=1 | ...)``, propagating top-layer probabilities down as means."""
        self._check_fitted()
        h = torch.as_tensor(np.asarray(H, dtype=np.float32), device=self._device())
        top = self._sizes()[-1]
        if h.ndim != 2 or h.shape[1] != top:
            raise ValueError(f"codes must have shape (n, {top}), got {tuple(h.shape)}")
        with torch.no_grad():
            for layer in reversed(self.module_.generative):
                h = torch.sigmoid(layer(h))
        return h.cpu().numpy()

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Ancestral samples x ~ p(x) (binary)."""
        self._check_fitted()
        g = torch.Generator(device=self._device())
        g.manual_seed(measure_seed(self.random_state if random_state is None else random_state))
        with torch.no_grad():
            return self.module_.dream(int(n_samples), g)[0].cpu().numpy()

    @torch.no_grad()
    def log_likelihood(self, X: Any, n_samples: int | None = None, elbo: bool = False,
                       random_state: Any = None) -> Likelihood:
        """IS-k estimate of log p(x) with the recognition network as the proposal (a stochastic
        lower bound); ``elbo=True``: the ELBO averaged over k draws."""
        self._check_fitted()
        x = self._data(self._input(X))
        self.module_.eval()
        k = int(n_samples or self.n_eval_samples)
        seed = measure_seed(self.random_state if random_state is None else random_state)

        def lw(b: torch.Tensor) -> torch.Tensor:
            states, lq = self.module_.recognise(b, row_draws(b, k, self._sizes(), seed, True))
            return self.module_.log_joint(b, states) - lq

        return is_likelihood(lw, x, k, support="discrete",
                             transform=binarize_note(self.binarize_input), elbo=elbo)

    def elbo(self, X: Any, n_samples: int | None = None) -> Likelihood:
        """The ELBO E_q[log p(x, h) - log q(h | x)] per row, from k draws (typed result)."""
        return self.log_likelihood(X, n_samples=n_samples, elbo=True)

    def score_samples(self, X: Any) -> np.ndarray:
        """IS-k estimate of log p(x) per row (k = ``n_eval_samples``), nats."""
        return self.log_likelihood(X).per_sample

    def score(self, X: Any, y: Any = None) -> float:
        """Mean IS-k log-likelihood."""
        return float(self.log_likelihood(X).nats)


HelmholtzMachine.__doc__ = (HelmholtzMachine.__doc__ or "").replace("{train_params}",
                                                                    TRAIN_PARAMS_DOC)
