"""Coherence (UMass, NPMI) against a brute-force reading of the formulas and against gensim."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from unsup.metrics.topics import EPSILON, coherence, heldout_log_likelihood, top_word_ids


def _windows(doc: list[str], w: int | None) -> list[set[str]]:
    if w is None or len(doc) <= w:
        return [set(doc)]
    return [set(doc[s:s + w]) for s in range(len(doc) - w + 1)]


def _brute(topics: list[list[str]], texts: list[list[str]], measure: str, w: int | None) -> float:
    wins = [win for d in texts for win in _windows(d, None if measure == "umass" else w)]
    n = len(wins)

    def p(*ws: str) -> float:
        return sum(all(x in win for x in ws) for win in wins) / n

    per = []
    for t in topics:
        vals = []
        if measure == "umass":
            for i, j in itertools.combinations(range(len(t)), 2):  # j ranked above i
                vals.append(math.log((p(t[j], t[i]) + EPSILON) / p(t[i])))
        else:
            for a, b in itertools.permutations(t, 2):
                pmi = math.log((p(a, b) + EPSILON) / (p(a) * p(b)))
                vals.append(pmi / -math.log(p(a, b) + EPSILON))
        per.append(np.mean(vals))
    return float(np.mean(per))


def _corpus(seed: int, n_docs: int = 40, vocab: int = 30, repeats: bool = True
            ) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    docs = []
    for _ in range(n_docs):
        L = int(rng.integers(3, 25))
        if repeats:
            docs.append([words[i] for i in rng.zipf(1.6, L) % vocab])
        else:  # no word twice within 10 tokens: cycle through a random permutation
            perm = rng.permutation(vocab)[:12]
            docs.append([words[perm[i % 12]] for i in range(L)])
    return docs


TOPICS = [["w1", "w2", "w3", "w4"], ["w0", "w5", "w7", "w1"], ["w2", "w9", "w3", "w11"]]


@pytest.mark.parametrize("measure,window", [("umass", None), ("npmi", 10), ("npmi", 4),
                                            ("npmi", None)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force(measure, window, seed):
    texts = _corpus(seed)
    ours = coherence(TOPICS, texts, measure=measure, window=window)
    assert ours == pytest.approx(_brute(TOPICS, texts, measure, window), rel=1e-10, abs=1e-12)


def test_hand_worked_umass():
    # D = 4 documents; D(a)=3, D(b)=2, D(a,b)=2: the pair (b below a) scores log((2/4)/(3/4))
    texts = [["a", "b"], ["a", "b", "c"], ["a"], ["c"]]
    got = coherence([["a", "b"]], texts, measure="umass")
    assert got == pytest.approx(math.log((0.5 + EPSILON) / 0.75))


def test_count_matrix_equals_texts_for_whole_documents():
    texts = _corpus(3)
    vocab = [f"w{i}" for i in range(30)]
    idx = {w: i for i, w in enumerate(vocab)}
    X = sp.lil_matrix((len(texts), len(vocab)))
    for r, d in enumerate(texts):
        for w in d:
            X[r, idx[w]] += 1
    for measure in ("umass", "npmi"):
        a = coherence(TOPICS, X.tocsr(), measure=measure, window=None, vocabulary=vocab)
        b = coherence(TOPICS, texts, measure=measure, window=None, vocabulary=vocab)
        assert a == pytest.approx(b, rel=1e-12)


def test_weights_matrix_topics_and_chunking(monkeypatch):
    rng = np.random.default_rng(0)
    texts = [list(rng.integers(0, 50, rng.integers(5, 40))) for _ in range(60)]
    W = rng.random((4, 50))
    ids = top_word_ids(W, 6)
    whole = coherence(W, texts, top_n=6, per_topic=True)
    assert np.allclose(whole, coherence(ids.tolist(), texts, per_topic=True))
    import unsup.metrics.topics as mt
    monkeypatch.setattr(mt, "_CHUNK_CELLS", 50)  # many small chunks: the same counts
    assert np.allclose(whole, coherence(W, texts, top_n=6, per_topic=True))


def test_coherent_topics_score_higher():
    rng = np.random.default_rng(1)
    groups = [[f"a{i}" for i in range(6)], [f"b{i}" for i in range(6)]]
    texts = [list(rng.choice(groups[d % 2], 12)) for d in range(80)]
    good = coherence([groups[0][:4], groups[1][:4]], texts, measure="npmi")
    mixed = coherence([groups[0][:2] + groups[1][:2], groups[1][2:4] + groups[0][2:4]], texts,
                      measure="npmi")
    assert good > 0.3 > mixed


def test_bad_input():
    texts = _corpus(0)
    with pytest.raises(ValueError, match="measure"):
        coherence(TOPICS, texts, measure="cv")
    with pytest.raises(ValueError, match="not in the reference vocabulary"):
        coherence([["w1", "zzz"]], texts, vocabulary=[f"w{i}" for i in range(30)])
    with pytest.raises(ValueError, match="sliding window needs tokenised texts"):
        coherence(np.eye(3)[:, :2].T.astype(float) @ np.ones((3, 3)), sp.eye(3), measure="npmi")
    with pytest.raises(ValueError, match="empty"):
        coherence(TOPICS, [])
    with pytest.raises(ValueError, match="window"):
        coherence(TOPICS, texts, window=0)


@pytest.mark.parametrize("measure", ["u_mass", "c_npmi"])
def test_agrees_with_gensim(measure):
    gensim = pytest.importorskip("gensim")
    from gensim.corpora import Dictionary
    from gensim.models.coherencemodel import CoherenceModel

    # no top word repeats within a window: gensim's window counting is exact there (module doc)
    texts = _corpus(5, n_docs=60, repeats=False)
    d = Dictionary(texts)
    kw = {"corpus": [d.doc2bow(t) for t in texts]} if measure == "u_mass" else {"texts": texts}
    cm = CoherenceModel(topics=TOPICS, dictionary=d, coherence=measure, processes=1, **kw)
    theirs = cm.get_coherence_per_topic()
    ours = coherence(TOPICS, texts, measure="umass" if measure == "u_mass" else "npmi",
                     window=10, per_topic=True)
    assert gensim is not None
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_heldout_log_likelihood_is_the_topics_family_estimator():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(1.0, (30, 20)))
    phi = rng.dirichlet(np.ones(20), 3)
    res = heldout_log_likelihood(phi, 0.1, X)
    assert res.kind == "stochastic estimate"
    npw = res.counts["nats_per_held_out_word"]
    assert res.counts["perplexity"] == pytest.approx(math.exp(-npw))
    uniform = heldout_log_likelihood(np.ones((3, 20)), 0.1, X)
    # uniform topics: every held-out word has probability exactly 1/20
    assert uniform.counts["perplexity"] == pytest.approx(20.0, rel=1e-9)


def test_report_table_carries_each_topics_coherence(one_thread):
    from unsup.topics import LDA
    from unsup.topics._report import topic_table

    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(0.5, (40, 25)))
    lda = LDA(3, max_iter=5, random_state=0).fit(X)
    rows = topic_table(lda, 5, reference=X)
    per = coherence(lda.components_, X, measure="npmi", top_n=5, window=None, per_topic=True)
    assert [float(r["npmi"]) for r in rows] == pytest.approx(per, abs=5e-4)
    assert all("umass" in r for r in rows) and "npmi" not in topic_table(lda, 5)[0]
