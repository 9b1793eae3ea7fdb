r"""Bigram language model: the Markov assumption over word sequences, with smoothing."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from unsup.data.text import read_documents, tokenize
from unsup.data.validation import DataError
from unsup.likelihood import Likelihood

__all__ = ["BigramLM"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class BigramLM:
    r"""Interpolated bigram model over token sequences (Jelinek & Mercer 1980).

    .. math:: p(w_1 \dots w_n) = \prod_{i=1}^{n+1} p(w_i \mid w_{i-1}), \quad
              p(w \mid v) = \lambda \frac{c(v, w)}{c(v)} + (1 - \lambda)\, p_1(w),\quad
              p_1(w) = \frac{c(w) + s}{N + |V| s}

    with :math:`w_0` = ``<s>``, :math:`w_{n+1}` = ``</s>`` (so probabilities of sentences of
    every length sum to one), words seen fewer than ``min_count`` times mapped to ``<unk>``, λ
    = ``interpolation`` (when c(v) = 0 the unigram alone is used) and s = ``smoothing``.
    Counts are kept sparse (a CSR matrix over the vocabulary). Input: documents as strings
    (tokenised by :func:`unsup.data.text.tokenize`, stop words kept) or token lists.

    Not in the model registry: it reads sequences, not a documents x words matrix, so the
    matrix-based CLI and conformance suite do not apply.

    Parameters
    ----------
    interpolation : float, default=0.8
    smoothing : float, default=1.0
    min_count : int, default=1
    random_state : int or None, default=None
        Seed of :meth:`sample`.
    """

    def __init__(self, interpolation: float = 0.8, smoothing: float = 1.0, min_count: int = 1,
                 random_state: Any = None) -> None:
        self.interpolation = interpolation
        self.smoothing = smoothing
        self.min_count = min_count
        self.random_state = random_state

    def _tokens(self, docs: Any) -> list[list[str]]:
        if isinstance(docs, (list, tuple)) and docs and all(isinstance(d, (list, tuple))
                                                            for d in docs):
            return [[str(t) for t in d] for d in docs]
        return [tokenize(d, min_length=1) for d in read_documents(docs)]

    def _ids(self, toks: Sequence[str]) -> list[int]:
        idx = self.index_
        unk = idx[UNK]
        return [idx[BOS], *(idx.get(t, unk) for t in toks), idx[EOS]]

    def fit(self, docs: Any, y: Any = None) -> BigramLM:
        """Count unigrams and bigrams of ``docs`` (strings, a path, or token lists)."""
        if not 0 <= float(self.interpolation) <= 1 or float(self.smoothing) < 0:
            raise ValueError("interpolation must be in [0, 1] and smoothing >= 0")
        seqs = self._tokens(docs)
        if not any(seqs):
            raise DataError("empty corpus: no tokens to count")
        c = Counter(t for s in seqs for t in s)
        words = sorted(w for w, n in c.items() if n >= int(self.min_count))
        self.vocabulary_ = [BOS, EOS, UNK, *words]
        self.index_ = {w: i for i, w in enumerate(self.vocabulary_)}
        V = len(self.vocabulary_)
        prev, nxt = [], []
        for s in seqs:
            ids = self._ids(s)
            prev += ids[:-1]
            nxt += ids[1:]
        self.bigram_counts_ = sp.csr_matrix((np.ones(len(prev)), (prev, nxt)), shape=(V, V))
        self.bigram_counts_.sum_duplicates()
        uni = np.bincount(nxt, minlength=V).astype(np.float64)  # every token and </s>
        s = float(self.smoothing)
        p1 = uni + s
        p1[self.index_[BOS]] = 0.0  # <s> is never predicted
        self.unigram_ = p1 / p1.sum()
        self.context_counts_ = np.asarray(self.bigram_counts_.sum(1)).ravel()
        return self

    def _log_probs(self, ids: list[int]) -> np.ndarray:
        v, w = np.asarray(ids[:-1]), np.asarray(ids[1:])
        lam = float(self.interpolation)
        cv = self.context_counts_[v]
        cvw = np.asarray(self.bigram_counts_[v, w]).ravel()
        ml = np.divide(cvw, cv, out=np.zeros_like(cvw), where=cv > 0)
        p = np.where(cv > 0, lam * ml + (1 - lam) * self.unigram_[w], self.unigram_[w])
        return np.log(p)

    def score_samples(self, docs: Any) -> np.ndarray:
        """log p(document) in nats, per document (including the end token)."""
        return np.array([self._log_probs(self._ids(s)).sum() for s in self._tokens(docs)])

    def log_likelihood(self, docs: Any) -> Likelihood:
        """Exact log-likelihood per document; ``counts`` has tokens and perplexity per token."""
        seqs = self._tokens(docs)
        ll = np.array([self._log_probs(self._ids(s)).sum() for s in seqs])
        n_tok = sum(len(s) + 1 for s in seqs)
        return Likelihood.from_samples(ll, support="discrete", estimator="closed form",
                                       counts={"tokens": n_tok,
                                               "perplexity": math.exp(-ll.sum() / n_tok)})

    def perplexity(self, docs: Any) -> float:
        """exp(−mean log p per token), the end token counted as one token."""
        return float(self.log_likelihood(docs).counts["perplexity"])

    def conditional(self, context: str) -> np.ndarray:
        """p(· | context) over ``vocabulary_``."""
        v = self.index_.get(context, self.index_[UNK])
        row = self.bigram_counts_.getrow(v).toarray().ravel()
        if self.context_counts_[v] == 0:
            return self.unigram_.copy()
        lam = float(self.interpolation)
        return lam * row / self.context_counts_[v] + (1 - lam) * self.unigram_

    def sample(self, n_samples: int = 1, random_state: Any = None, max_length: int = 50
               ) -> list[str]:
        """``n_samples`` generated texts (each up to ``max_length`` words, until ``</s>``)."""
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        out = []
        for _ in range(n_samples):
            w, words = BOS, []
            for _ in range(max_length):
                p = self.conditional(w)
                w = self.vocabulary_[rng.choice(p.size, p=p / p.sum())]
                if w == EOS:
                    break
                words.append(w)
            out.append(" ".join(words))
        return out
