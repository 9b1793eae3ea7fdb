r"""Unigram language model: every word of every document drawn independently from one
distribution over the vocabulary (the first rung of the course's ladder)."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
import torch

from unsup._io_checks import A
from unsup.params import Interval
from unsup.registry import register_model
from unsup.topics._base import TopicModelBase
from unsup.topics._docs import SparseDocs

__all__ = ["UnigramLM"]


@register_model("unigram-lm", family="topics", aliases=("unigram",),
                summary="unigram language model over word counts (additive smoothing)")
class UnigramLM(TopicModelBase):
    r"""Unigram language model with additive (Lidstone) smoothing.

    .. math:: p(w_1 \dots w_n) = \prod_i p(w_i), \qquad
              \hat p(w) = \frac{c_w + s}{N + V s}

    where :math:`c_w` is the count of word w in the training documents, N their total and s
    the ``smoothing`` (s = 1 is Laplace's rule; s = 0 the maximum-likelihood estimate, which
    gives unseen words probability 0). Held-out measure: the exact log-probability of the
    held-out half of each document (it does not depend on the observed half).

    Parameters
    ----------
    smoothing : float, default=1.0
        Pseudo-count added to every word.
    device : {"auto", "cpu", "cuda"}, default="cpu"
        Unused (counting runs on the CPU); kept for the common protocol.
    random_state : int or None, default=None
        Seed of :meth:`sample`.

    Attributes
    ----------
    probabilities_ : ndarray (V,)
    mean_length_ : float
        Mean training document length (the length of sampled documents).
    vocabulary_ : list of str or None
    """

    _parameter_constraints = {"smoothing": [Interval(Real, 0, None, closed="left")]}
    _test_params: dict[str, Any] = {"smoothing": 0.5}

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"probabilities_": A("f64", "n_features_in_")}

    def __init__(self, smoothing: float = 1.0, device: str = "cpu", random_state: Any = None
                 ) -> None:
        self.smoothing = smoothing
        self.device = device
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> UnigramLM:
        """Count the words of ``X`` (documents x words). Returns ``self``."""
        self._validate_params()
        M = self._counts(X, reset=True)
        c = np.asarray(M.sum(0), dtype=np.float64).ravel()
        s = float(self.smoothing)
        total = c.sum() + s * c.size
        self.probabilities_ = c + s if total > 0 else np.full(c.size, 1.0)
        self.probabilities_ = self.probabilities_ / self.probabilities_.sum()
        self.mean_length_ = float(c.sum() / M.shape[0])
        return self

    def _topics(self) -> np.ndarray:
        return self.probabilities_[None, :]

    def _completion(self, obs: SparseDocs, held: SparseDocs) -> torch.Tensor:
        logp = torch.log(torch.from_numpy(self.probabilities_).clamp_min(1e-300))
        return torch.zeros(held.shape[0], dtype=torch.float64).index_add_(
            0, held.row, held.val * logp[held.col])

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Word counts of ``n_samples`` documents of length ``round(mean_length_)``."""
        self._check_fitted()
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        n = max(1, int(round(self.mean_length_)))
        return rng.multinomial(n, self.probabilities_, size=n_samples).astype(np.float64)
