"""Topic-model measures that apply to any model's topics: coherence and held-out likelihood.

**Coherence** scores each topic's top words by how often they occur together in a reference
corpus (Röder, Both & Hinneburg 2015 give the framework; gensim's ``CoherenceModel`` implements
the same pipelines, and :func:`coherence` agrees with it; ``tests/test_topic_metrics.py``):

* **UMass** (Mimno et al. 2011), document co-occurrence, over ordered pairs of top words
  ``w_i`` ranked below ``w_j`` (``i > j``)::

      C_UMass(t) = mean_{i>j} log( (D(w_i, w_j) / D + ε) / (D(w_j) / D) )

* **NPMI** (Bouma 2009; Aletras & Stevenson 2013), co-occurrence in sliding windows of
  ``window`` tokens (each window is a virtual document; a document shorter than the window is
  one window), over all pairs ``i ≠ j``::

      PMI(a, b) = log( (P(a, b) + ε) / (P(a) P(b)) ),    NPMI = PMI / (−log(P(a, b) + ε))

  averaged over the pairs (−1 for a pair with a word absent from the reference, where
  gensim divides by zero). ``ε = 1e-12`` as in gensim. With ``window=None`` NPMI uses whole
  documents (then a document-term matrix is enough as the reference).

Counting is GEMM-shaped: the presence of the M distinct top words in each window (or document)
is a 0/1 matrix ``I`` (windows × M) and the co-occurrence counts are ``IᵀI``, accumulated over
chunks of documents so memory stays bounded. One difference from gensim 4.4: gensim's sliding
window marks the token that leaves the window as absent even when it occurs again inside the
window, undercounting repeated words; here a word is present in a window if it occurs anywhere
in it. On text where no top word repeats within a window the two agree exactly.

**Held-out likelihood** by document completion (:func:`heldout_log_likelihood`): one estimator
for every admixture's topics, ours and the peers' (see :mod:`unsup.topics._docs`); and the
probability of whole held-out documents by the left-to-right particle estimator of Wallach et
al. (2009) (:func:`left_to_right_log_likelihood`; :mod:`unsup.metrics._left_to_right`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["coherence", "top_word_ids", "umass_from_counts", "heldout_log_likelihood",
           "left_to_right_log_likelihood", "EPSILON"]

EPSILON = 1e-12
_CHUNK_CELLS = 20_000_000  # windows × relevant words per chunk (float64: 160 MB at most)


def top_word_ids(topic_word: Any, n: int = 10) -> np.ndarray:
    """The ``n`` highest-weight word ids of each topic (rows of ``topic_word``), best first;
    ties broken by the lower word id."""
    W = np.asarray(topic_word, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"topic_word must be 2-D (topics × words), got shape {W.shape}")
    if not 1 <= n <= W.shape[1]:
        raise ValueError(f"n must be in [1, {W.shape[1]}], got {n}")
    return np.argsort(-W, axis=1, kind="stable")[:, :n]


def _as_topics(topics: Any, index: dict[str, int] | None, top_n: int) -> np.ndarray:
    """Topics as a (K, n) int array of word ids: from a (K, V) weight matrix, or lists of word
    ids, or lists of words (then ``index`` maps words to ids)."""
    if isinstance(topics, np.ndarray) and topics.dtype.kind == "f" or sp.issparse(topics):
        return top_word_ids(topics.toarray() if sp.issparse(topics) else topics, top_n)
    rows = [list(t) for t in topics]
    if not rows or any(len(r) < 2 for r in rows):
        raise ValueError("every topic needs at least 2 top words")
    out = []
    for r in rows:
        if all(isinstance(w, str) for w in r):
            if index is None:
                raise ValueError("topics are given as words: pass the reference as tokenised "
                                 "texts or give vocabulary= to map words to ids")
            missing = [w for w in r if w not in index]
            if missing:
                raise ValueError(f"top words not in the reference vocabulary: {missing[:5]}")
            out.append([index[w] for w in r])
        else:
            out.append([int(w) for w in r])
    if len({len(r) for r in out}) != 1:
        raise ValueError("every topic must have the same number of top words")
    return np.asarray(out, dtype=np.int64)


def _presence_counts(texts: Sequence[np.ndarray], relevant: np.ndarray, window: int | None
                     ) -> tuple[np.ndarray, float]:
    """Co-occurrence counts (M × M, occurrence on the diagonal) of the ``relevant`` word ids in
    the windows of ``texts`` (id arrays), and the number of windows."""
    M = len(relevant)
    slot = {int(w): i for i, w in enumerate(relevant)}
    C = np.zeros((M, M))
    n_windows = 0.0
    chunk: list[np.ndarray] = []
    cells = 0

    def flush() -> None:
        nonlocal n_windows
        if not chunk:
            return
        lengths = np.array([len(t) for t in chunk])
        T = int(lengths.sum())
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        ids = np.concatenate(chunk) if T else np.zeros(0, dtype=np.int64)
        pos = np.nonzero(ids >= 0)[0]
        onehot = np.zeros((T + 1, M))
        onehot[pos + 1, ids[pos]] = 1.0
        prefix = np.cumsum(onehot, axis=0)  # prefix[t]: occurrences in tokens[:t]
        starts, ends = [], []
        for off, L in zip(offsets[:-1], lengths, strict=True):
            if window is None or L <= window:
                starts.append(np.array([off]))
                ends.append(np.array([off + L]))
            else:
                s = np.arange(off, off + L - window + 1)
                starts.append(s)
                ends.append(s + window)
        s, e = np.concatenate(starts), np.concatenate(ends)
        presence = (prefix[e] - prefix[s] > 0).astype(np.float64)
        C[...] += presence.T @ presence
        n_windows += len(s)
        chunk.clear()

    for t in texts:
        mapped = np.fromiter((slot.get(int(w), -1) for w in t), dtype=np.int64, count=len(t))
        chunk.append(mapped)
        cells += (len(t) + 1) * M
        if cells >= _CHUNK_CELLS:
            flush()
            cells = 0
    flush()
    return C, n_windows


def _doc_counts(X: sp.csr_matrix, relevant: np.ndarray) -> tuple[np.ndarray, float]:
    B = (X[:, relevant] > 0).astype(np.float64)
    C = np.asarray((B.T @ B).todense())
    return C, float(X.shape[0])


def coherence(topics: Any, reference: Any, *, measure: str = "npmi", top_n: int = 10,
              window: int | None = 10, vocabulary: Sequence[str] | None = None,
              per_topic: bool = False) -> float | np.ndarray:
    """Coherence of ``topics`` against a ``reference`` corpus (UMass or NPMI; see the module).

    Parameters
    ----------
    topics : array (K, V) of topic-word weights (e.g. ``model.components_``), or K lists of
        word ids, or K lists of words.
    reference : a document-term matrix (documents × V counts; UMass, or NPMI with
        ``window=None``), or tokenised texts: a list of lists of words (``vocabulary`` or the
        texts' own words give the ids) or of word ids.
    measure : ``"umass"`` or ``"npmi"``.
    top_n : top words per topic when ``topics`` is a weight matrix.
    window : NPMI's sliding window in tokens (gensim's default 10); ``None``: whole documents.
    per_topic : return each topic's score instead of their mean.
    """
    if measure not in ("umass", "npmi"):
        raise ValueError(f"measure={measure!r} is not one of 'umass', 'npmi'")
    if window is not None and (isinstance(window, bool) or int(window) != window or window < 1):
        raise ValueError(f"window must be a positive integer or None, got {window!r}")
    index = None if vocabulary is None else {w: i for i, w in enumerate(vocabulary)}
    texts = None
    if sp.issparse(reference) or isinstance(reference, np.ndarray):
        X = sp.csr_matrix(reference)
        if measure == "npmi" and window is not None:
            raise ValueError("NPMI with a sliding window needs tokenised texts as the reference; "
                             "pass window=None to use whole documents of a count matrix")
    else:
        docs = [list(d) for d in reference]
        if not docs:
            raise ValueError("the reference corpus is empty")
        if all(isinstance(w, str) for d in docs for w in d):
            if index is None:
                words = sorted({w for d in docs for w in d})
                index = {w: i for i, w in enumerate(words)}
            texts = [np.array([index.get(w, -1) for w in d], dtype=np.int64) for d in docs]
        else:
            texts = [np.asarray(d, dtype=np.int64) for d in docs]
        X = None
    T = _as_topics(topics, index, top_n)
    relevant, local = np.unique(T, return_inverse=True)
    local = local.reshape(T.shape)
    if X is not None:
        if relevant.max() >= X.shape[1]:
            raise ValueError(f"a top word id ({relevant.max()}) is outside the reference's "
                             f"{X.shape[1]} words")
        C, n = _doc_counts(X, relevant)
    else:
        C, n = _presence_counts(texts, relevant, None if measure == "umass" else window)
    if n == 0:
        raise ValueError("the reference corpus has no documents")
    if measure == "umass":
        scores = umass_from_counts(C[local[:, :, None], local[:, None, :]], n)
        return scores if per_topic else float(scores.mean())
    occ = np.diag(C) / n
    scores = np.empty(len(T))
    for k, row in enumerate(local):
        i, j = np.tril_indices(len(row), -1)  # i > j: w_i ranked below w_j
        a, b = row[i], row[j]
        joint = C[a, b] / n
        with np.errstate(divide="ignore"):
            pmi = np.log((joint + EPSILON) / (occ[a] * occ[b]))
        s = pmi / -np.log(joint + EPSILON)
        s[(occ[a] == 0) | (occ[b] == 0)] = -1.0  # a word absent from the reference
        scores[k] = s.mean()  # NPMI is symmetric: the i < j pairs repeat these
    return scores if per_topic else float(scores.mean())


def umass_from_counts(cooc: Any, n_docs: float) -> np.ndarray:
    """Each topic's UMass from its top words' document co-occurrence counts ``cooc`` (K, n, n;
    occurrence counts on the diagonal; words best first) in ``n_docs`` documents: the one
    formula behind :func:`coherence` and the topic models' training trace."""
    C = np.asarray(cooc, dtype=np.float64)
    i, j = np.tril_indices(C.shape[1], -1)  # i > j: w_i ranked below w_j
    joint, occ = C[:, i, j] / n_docs, C[:, j, j] / n_docs
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.log((joint + EPSILON) / occ)
    s[occ == 0] = 0.0  # gensim scores a pair with an absent conditioning word as 0
    return s.mean(1)


def heldout_log_likelihood(topic_word: Any, doc_topic_prior: Any, X: Any, *, seed: int = 0
                           ) -> Any:
    """Document-completion log-likelihood of any admixture's topics on documents ``X``: a typed
    :class:`unsup.likelihood.Likelihood` whose ``counts`` carry nats per held-out word and
    perplexity. ``doc_topic_prior`` is α (0 for pLSA). See :mod:`unsup.topics._docs`."""
    from unsup.topics._docs import completion_log_likelihood

    return completion_log_likelihood(topic_word, doc_topic_prior, X, seed=seed)


def left_to_right_log_likelihood(topic_word: Any, doc_topic_prior: Any, X: Any, *,
                                 n_particles: int = 20, resample: bool = True,
                                 n_sweeps: int = 1, seed: int = 0) -> Any:
    """log p(w_d | φ, α) of every document of ``X`` (word counts) by the left-to-right
    estimator (Wallach, Murray, Salakhutdinov & Mimno 2009, Algorithm 3), as a typed
    :class:`unsup.likelihood.Likelihood` (nats per document; ``counts`` has nats per word and
    perplexity).

    ``topic_word``: (K, V) topics of any model (rows normalised here); ``doc_topic_prior``: α
    (a number or K values, > 0). ``n_sweeps``: Gibbs refresh sweeps over the earlier tokens per
    position (Wallach's algorithm: 1; the particles are then only approximately posterior
    samples, a small upward bias: +0.03 nats on a 6-token test document, gone with 10 sweeps,
    ``tests/test_left_to_right.py``). ``resample=False`` gives the unbiased sequential
    importance sampler instead (noisier). The probability is that of the tokens in a seeded
    order, which for an exchangeable model is the same in every order. Cost O(n_sweeps R N² K)
    per document of N tokens; compiled with numba when installed.
    """
    from unsup.data.validation import DataError
    from unsup.likelihood import Likelihood
    from unsup.metrics._left_to_right import left_to_right_doc, token_order
    from unsup.topics._docs import check_counts

    M = check_counts(X)
    phi = np.asarray(topic_word, dtype=np.float64)
    if phi.ndim != 2 or phi.shape[1] != M.shape[1]:
        raise DataError(f"topic_word has shape {phi.shape}, X has {M.shape[1]} words")
    if not np.all(np.isfinite(phi)) or phi.min() < 0 or np.any(phi.sum(1) <= 0):
        raise DataError("topic_word must hold non-negative finite weights, each row > 0")
    phi = phi / phi.sum(1, keepdims=True)
    alpha = np.broadcast_to(np.asarray(doc_topic_prior, dtype=np.float64),
                            (phi.shape[0],)).copy()
    if not np.all(alpha > 0):
        raise DataError("doc_topic_prior (α) must be > 0 for the left-to-right estimator")
    if M.nnz and not np.all(M.data == np.round(M.data)):
        raise DataError("the left-to-right estimator needs integer word counts")
    if int(n_particles) < 1 or int(n_sweeps) < 1:
        raise DataError(f"n_particles and n_sweeps must be >= 1, got {n_particles}, {n_sweeps}")
    rng = np.random.default_rng(seed)
    per_doc = np.empty(M.shape[0])
    for d in range(M.shape[0]):
        lo, hi = M.indptr[d], M.indptr[d + 1]
        words = token_order(M.indices[lo:hi], M.data[lo:hi], rng)
        per_doc[d] = left_to_right_doc(phi, alpha, words, int(n_particles), rng, resample,
                                       int(n_sweeps))
    n_words = float(M.sum())
    npw = float(per_doc.sum()) / n_words if n_words > 0 else float("nan")
    how = ("left-to-right" if resample else "sequential importance sampling")
    return Likelihood.from_samples(
        per_doc, support="discrete",
        # Wallach's refreshed particles: a consistent estimate, not a bound; the unbiased
        # SIS estimate of p(w) is a lower bound on log p(w) in expectation (Jensen)
        kind="stochastic estimate" if resample else "stochastic lower bound",
        estimator=f"{how}, {int(n_particles)} particles, {int(n_sweeps)} sweep(s) "
                  f"(Wallach et al. 2009), seed {seed}",
        counts={"words": n_words, "nats_per_word": npw,
                "perplexity": math.exp(-npw) if n_words > 0 else float("nan"),
                "particles": int(n_particles)})
