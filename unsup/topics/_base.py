"""The topic models' common protocol: counts in, topics out, one held-out measure."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from unsup.base import BaseEstimator
from unsup.likelihood import Likelihood
from unsup.topics._docs import (
    SparseDocs,
    completion_split,
    counts_for,
    likelihood_result,
)

__all__ = ["TopicModelBase"]


class TopicModelBase(BaseEstimator):
    """Base of the bag-of-words models: validation, ``top_words``, held-out likelihood.

    A subclass fits ``topic_word_`` ... through ``fit`` and defines
    ``_completion(obs, held) -> per-document log p(held | obs)`` (torch, float64) plus the
    ``_completion_kind`` / ``_completion_how`` it reports.
    """

    _likelihood_support = "discrete"
    _test_data = "counts"
    _completion_kind = "exact"
    _completion_how = "exact predictive of the held-out half"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = []  # proportions are float64 always
        return tags

    def _counts(self, X: Any, reset: bool) -> sp.csr_matrix:
        return counts_for(self, X, reset)

    def _topics(self) -> np.ndarray:
        """(K, V) topic-word distributions (rows sum to 1)."""
        raise NotImplementedError

    def top_words(self, n: int = 10) -> list[list[str]]:
        """The ``n`` most probable words of every topic (``w<j>`` without a vocabulary)."""
        self._check_fitted()
        phi = self._topics()
        voc = getattr(self, "vocabulary_", None)
        names = voc if voc is not None else [f"w{j}" for j in range(phi.shape[1])]
        order = np.argsort(-phi, axis=1, kind="stable")[:, :n]
        return [[names[j] for j in row] for row in order]

    # -- the held-out measure -----------------------------------------------------------------
    def _completion(self, obs: SparseDocs, held: SparseDocs) -> torch.Tensor:
        raise NotImplementedError

    def _completion_scores(self, X: Any) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
        M = self._counts(X, reset=False)
        obs, held = completion_split(M, 0)
        per_doc = self._completion(SparseDocs(obs), SparseDocs(held))
        return per_doc.cpu().numpy(), obs, held

    def log_likelihood(self, X: Any) -> Likelihood:
        """Held-out log-likelihood by document completion (see :mod:`unsup.topics._docs`).

        Nats per document of the held-out half of its tokens given the other half (seed 0);
        ``counts`` holds nats per held-out word and the perplexity.
        """
        per_doc, obs, held = self._completion_scores(X)
        return likelihood_result(per_doc, obs, held, kind=self._completion_kind,
                                 how=self._completion_how)

    def score_samples(self, X: Any) -> np.ndarray:
        """Per-document document-completion log-likelihood (nats; see :meth:`log_likelihood`)."""
        return self._completion_scores(X)[0]

    def score(self, X: Any, y: Any = None) -> float:
        """Mean document-completion log-likelihood per document."""
        return float(self.score_samples(X).mean())

    def completion_perplexity(self, X: Any) -> float:
        """exp(−nats per held-out word) of the document-completion measure."""
        return float(self.log_likelihood(X).counts["perplexity"])
