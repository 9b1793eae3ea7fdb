"""Topic models against ground truth: exact enumeration on tiny problems, EM monotonicity,
planted topics recovered, and scikit-learn's LatentDirichletAllocation as a peer."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import toy_data_for
from scipy.optimize import linear_sum_assignment, minimize
from scipy.special import logsumexp

import unsup
from unsup.data.text import vectorize
from unsup.topics import LDA, PLSA, BigramLM, MixtureOfUnigrams, UnigramLM
from unsup.topics._docs import SparseDocs, completion_split, fold_in

pytestmark = pytest.mark.usefixtures("one_thread")


def planted(n_docs=200, V=30, K=3, length=60, alpha=0.1, seed=0):
    """LDA data with K topics on disjoint blocks of words (plus a little noise)."""
    rng = np.random.default_rng(seed)
    phi = np.full((K, V), 0.02 / V)
    for k in range(K):
        phi[k, k * V // K:(k + 1) * V // K] += 0.98 / (V // K)
    phi /= phi.sum(1, keepdims=True)
    theta = rng.dirichlet(np.full(K, alpha), n_docs)
    X = np.stack([rng.multinomial(length, t @ phi) for t in theta]).astype(np.float64)
    return sp.csr_matrix(X), phi


def match(phi_true, phi_est):
    """Mean cosine similarity of the topics after the best one-to-one matching."""
    a = phi_true / np.linalg.norm(phi_true, axis=1, keepdims=True)
    b = phi_est / np.linalg.norm(phi_est, axis=1, keepdims=True)
    sim = a @ b.T
    r, c = linear_sum_assignment(-sim)
    return float(sim[r, c].mean())


# -- the held-out measure --------------------------------------------------------------------------
def test_split_halves_partition_each_document_independently_of_the_others():
    X, _ = planted(20)
    obs, held = completion_split(X)
    np.testing.assert_array_equal((obs + held).toarray(), X.toarray())
    n = np.asarray(X.sum(1)).ravel()
    np.testing.assert_array_equal(np.asarray(obs.sum(1)).ravel(), n // 2)
    perm = np.random.default_rng(1).permutation(20)
    obs_p, _ = completion_split(X[perm])
    np.testing.assert_array_equal(obs_p.toarray(), obs.toarray()[perm])


def test_mixture_completion_equals_enumeration():
    """log p(held | obs) of a mixture of unigrams by brute force over the topic."""
    X = sp.csr_matrix(np.array([[2, 1, 0], [0, 3, 2], [1, 1, 1]], dtype=float))
    m = MixtureOfUnigrams(2, max_iter=5, device="cpu", random_state=0).fit(X)
    obs, held = completion_split(X)
    got = m.score_samples(X)
    lp, lphi = np.log(m.weights_), np.log(m.components_)
    for d in range(3):
        o, h = obs[d].toarray().ravel(), held[d].toarray().ravel()
        joint = logsumexp(lp + lphi @ (o + h))
        marg = logsumexp(lp + lphi @ o)
        assert got[d] == pytest.approx(joint - marg, abs=1e-10)


def test_unigram_completion_and_smoothing_exact():
    X = sp.csr_matrix(np.array([[3, 1, 0], [1, 0, 0]], dtype=float))
    m = UnigramLM(smoothing=1.0).fit(X)
    np.testing.assert_allclose(m.probabilities_, np.array([5, 2, 1]) / 8)
    _, held = completion_split(X)
    expect = held.toarray() @ np.log(m.probabilities_)
    np.testing.assert_allclose(m.score_samples(X), expect)
    lk = m.log_likelihood(X)
    assert lk.kind == "exact" and lk.support == "discrete"
    npw = lk.counts["nats_per_held_out_word"]
    assert lk.counts["perplexity"] == pytest.approx(math.exp(-npw))
    assert npw == pytest.approx(expect.sum() / held.sum())


def test_fold_in_is_the_map_of_theta():
    """The fixed point maximises Σ_w n_w log Σ_k θ_k φ_kw + Σ_k α_k log θ_k on the simplex."""
    rng = np.random.default_rng(0)
    phi = rng.dirichlet(np.ones(6), 3)
    n = np.array([[3.0, 0, 1, 2, 0, 1]])
    alpha = 0.7
    th = fold_in(torch.from_numpy(phi), SparseDocs(sp.csr_matrix(n)), alpha, max_iter=5000,
                 tol=1e-12).numpy()[0]

    def neg(u):
        t = np.exp(u - logsumexp(u))
        return -(n[0] @ np.log(t @ phi) + alpha * np.log(t).sum())

    best = minimize(neg, np.zeros(3), method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    t_opt = np.exp(best.x - logsumexp(best.x))
    np.testing.assert_allclose(th, t_opt, atol=1e-4)


def test_generic_completion_equals_the_models_own():
    """completion_log_likelihood on a model's topics = the model's log_likelihood (unigram:
    K = 1 and α = 0, including one-token documents with nothing observed)."""
    from unsup.topics import completion_log_likelihood

    X, _ = planted(30)
    X = sp.vstack([X, sp.csr_matrix(np.eye(1, X.shape[1]))]).tocsr()
    m = UnigramLM().fit(X)
    a = completion_log_likelihood(m._topics(), 0.0, X)
    assert a.nats == pytest.approx(m.log_likelihood(X).nats, rel=1e-12)


# -- EM: monotone objectives -----------------------------------------------------------------------
@pytest.mark.parametrize("model", [MixtureOfUnigrams(3, max_iter=40, tol=0, device="cpu",
                                                     random_state=0),
                                   MixtureOfUnigrams(3, topic_prior=0, word_prior=0,
                                                     max_iter=40, tol=0, device="cpu",
                                                     random_state=1),
                                   PLSA(3, max_iter=40, tol=0, device="cpu", random_state=0)],
                         ids=["mixture-map", "mixture-ml", "plsa"])
def test_em_objective_never_decreases(model):
    X, _ = planted(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    obj = np.array([h[model._em_objective_name] for h in model.history_])
    assert len(obj) > 5
    assert np.all(np.diff(obj) >= -1e-9 * np.abs(obj[:-1]))


def test_plsa_log_likelihood_is_what_history_says():
    X, _ = planted(50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = PLSA(3, max_iter=10, device="cpu", random_state=0).fit(X)
    P = m.doc_topic_ @ m.components_
    ll = (X.toarray() * np.log(P)).sum() / X.shape[0]
    assert m.history_[-1]["log_likelihood"] == pytest.approx(ll, rel=1e-10)


def test_vb_elbo_increases_and_bounds_completion():
    X, _ = planted(100)
    m = LDA(3, max_iter=30, tol=0, device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X)
    elbo = np.array([h["elbo"] for h in m.history_])
    assert np.all(np.diff(elbo) >= -1e-3)  # up to the E-step's tolerance


# -- planted topics --
@pytest.mark.parametrize("params", [{"method": "vb", "max_iter": 50},
                                    {"method": "online", "max_iter": 20, "batch_size": 50},
                                    {"method": "gibbs", "max_iter": 100}],
                         ids=["vb", "online", "gibbs"])
def test_lda_recovers_planted_topics(params):
    X, phi = planted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LDA(3, device="cpu", random_state=0, **params).fit(X)
    assert match(phi, m._topics()) > 0.95
    # and its held-out fit beats the unigram model's on fresh documents from the same source
    Xt, _ = planted(100, seed=1)
    assert m.log_likelihood(Xt).nats > UnigramLM().fit(X).log_likelihood(Xt).nats


@pytest.mark.parametrize("cls", [PLSA, MixtureOfUnigrams])
def test_em_models_recover_planted_topics(cls):
    X, phi = planted(alpha=0.01)  # nearly one topic per document: both models apply
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = cls(3, device="cpu", random_state=0).fit(X)
    assert match(phi, m._topics()) > 0.95


def test_lda_vb_agrees_with_scikit_learn():
    from sklearn.decomposition import LatentDirichletAllocation

    X, phi = planted()
    Xt, _ = planted(100, seed=1)
    ours = LDA(3, max_iter=50, tol=0, device="cpu", random_state=0).fit(X)
    sk = LatentDirichletAllocation(3, learning_method="batch", max_iter=50, random_state=0,
                                   doc_topic_prior=1 / 3, topic_word_prior=1 / 3).fit(X)
    from unsup.topics import completion_log_likelihood

    a = ours.log_likelihood(Xt).counts["nats_per_held_out_word"]
    b = completion_log_likelihood(sk.components_, 1 / 3, Xt).counts["nats_per_held_out_word"]
    assert a == pytest.approx(b, abs=0.01)
    assert match(sk.components_ / sk.components_.sum(1, keepdims=True), ours._topics()) > 0.99


def test_sparse_and_dense_input_give_the_same_model():
    X, _ = planted(60)
    a = LDA(3, max_iter=5, device="cpu", random_state=0).fit(X)
    b = LDA(3, max_iter=5, device="cpu", random_state=0).fit(X.toarray())
    np.testing.assert_allclose(a.components_, b.components_)
    np.testing.assert_allclose(a.transform(X), b.transform(X.toarray()))


def test_gibbs_returns_the_mean_of_its_last_samples():
    """``average_sweeps=A``: ``components_`` − η and ``doc_topic_`` are the means of the counts
    of the last A samples of the same chain (a chain stopped earlier is a prefix of it)."""
    X = sp.csr_matrix(toy_data_for(LDA), dtype=np.float64)
    kw = {"method": "gibbs", "random_state": 3}
    final = [LDA(3, max_iter=t, average_sweeps=0, **kw).fit(X) for t in (4, 5, 6)]
    eta = final[0].topic_word_prior_
    assert not np.allclose(final[1].components_, final[2].components_)  # the chain moves
    for a, sel in ((1, final[2:]), (3, final)):
        m = LDA(3, max_iter=6, average_sweeps=a, **kw).fit(X)
        np.testing.assert_allclose(m.components_ - eta,
                                   np.mean([f.components_ - eta for f in sel], 0), atol=1e-12)
        n_d = X.sum(1).A + 1.0  # (n_dk + α) sums to the length plus Kα = 1 in every row
        np.testing.assert_allclose(m.doc_topic_ * n_d,
                                   np.mean([f.doc_topic_ * n_d for f in sel], 0), atol=1e-9)
    default = LDA(3, max_iter=6, **kw).fit(X)  # None: the last half, here 3 sweeps
    np.testing.assert_array_equal(default.components_, m.components_)


def test_gibbs_refuses_fractional_counts():
    X, _ = planted(20)
    with pytest.raises(ValueError, match="integer"):
        LDA(2, method="gibbs", max_iter=2).fit(X * 0.5)


def test_vocabulary_travels_with_the_model(tmp_path):
    docs = ["apples and pears and apples", "pears plums apples", "cars trucks buses cars",
            "buses cars trucks", "plums pears"]
    X = vectorize(docs)
    m = LDA(2, max_iter=20, device="cpu", random_state=0).fit(X)
    assert m.vocabulary_ == list(X.vocabulary.words)
    m.save(tmp_path / "m.safetensors")
    m2 = unsup.load(tmp_path / "m.safetensors")
    assert m2.vocabulary_ == m.vocabulary_ and m2.top_words(3) == m.top_words(3)
    assert {w for t in m.top_words(3) for w in t} <= set(X.vocabulary.words)
    other = vectorize(docs[::-1] + ["zebra giraffe"])
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        m.transform(other)
    same = vectorize(["apples cars zebra"], vocabulary=m.vocabulary_)
    assert m.transform(same).shape == (1, 2)


# -- bigram --
def test_bigram_is_a_distribution_and_matches_hand_computation():
    lm = BigramLM(interpolation=0.5, smoothing=1.0).fit([["a", "b"], ["a", "a"]])
    for ctx in ["<s>", "a", "b"]:
        assert lm.conditional(ctx).sum() == pytest.approx(1.0)
    # vocab <s> </s> <unk> a b; predicted tokens: a b </s> a a </s> -> unigram counts
    uni = np.array([0, 2, 0, 3, 1]) + 1.0
    uni[0] = 0
    uni /= uni.sum()
    i = lm.index_
    p_a_s = 0.5 * 1.0 + 0.5 * uni[i["a"]]           # c(<s>, a) = 2 of c(<s>) = 2
    p_b_a = 0.5 * (1 / 3) + 0.5 * uni[i["b"]]       # c(a, b) = 1 of c(a) = 3
    p_e_b = 0.5 * 1.0 + 0.5 * uni[i["</s>"]]
    assert lm.score_samples([["a", "b"]])[0] == pytest.approx(
        math.log(p_a_s) + math.log(p_b_a) + math.log(p_e_b))
    # every sentence up to length 7 (with <unk>): total probability < 1, approaching it
    total = sum(math.exp(lm.score_samples([list(s)])[0])
                for n in range(0, 8) for s in itertools.product(["a", "b", "<unk>"], repeat=n))
    assert 0.9 < total < 1.0
    assert all(isinstance(t, str) for t in lm.sample(3, random_state=0))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("method", ["vb", "online", "gibbs"])
def test_training_trace_carries_perplexity_and_the_coherence_of_the_topics(method):
    """history_ records, at each evaluation, the training perplexity and the UMass coherence
    of the topics of that moment: at the last one, those of the returned model (for Gibbs,
    of the chain's final sample, which the model returns with ``average_sweeps=0``)."""
    from unsup.metrics.topics import coherence

    X = sp.csr_matrix(toy_data_for(LDA), dtype=np.float64)
    avg = {"average_sweeps": 0} if method == "gibbs" else {}
    m = LDA(4, method=method, max_iter=6, tol=0, evaluate_every=2, batch_size=16,
            device="cpu", random_state=0, **avg).fit(X)
    last = m.history_[-1]
    assert [h["iter"] for h in m.history_][-1] in (5, 6)
    assert last["umass"] == pytest.approx(coherence(m.components_, X, measure="umass",
                                                    window=None), abs=1e-12)
    objective = last["log_p_w_given_z" if method == "gibbs" else "elbo"]
    assert last["perplexity"] == pytest.approx(np.exp(-objective * X.shape[0] / X.sum()),
                                               rel=1e-12)
    assert len({h["umass"] for h in m.history_}) > 1  # it moves with the topics


@pytest.mark.parametrize("kernel", ["dense_sweep", "sparse_sweep"])
def test_both_gibbs_kernels_draw_from_the_exact_conditional(kernel):
    """A document's first token, its uniform on a fine grid: the share of the grid mapped to
    each topic is the exact conditional (n_dk + α_k)(n_kw + η)/(n_k + Vη) (with the token's
    own count removed), for the dense and the SparseLDA sweep alike."""
    from unsup.topics import _gibbs

    sweep = getattr(_gibbs, kernel)
    rng = np.random.default_rng(0)
    V, K, eta = 4, 6, 0.3
    alpha = rng.uniform(0.05, 1.0, K)
    nd = np.array([2, 0, 1, 3, 0, 1])  # the document's other tokens (all of word 3)
    nw = rng.integers(0, 3, (V, K))
    nw[1, :3] = 0  # the token's word lacks some topics (the sparse buckets must cover them)
    nw[3] += nd
    nk = nw.sum(0) + 7  # tokens of other documents
    w, k0 = 1, 5  # the token, currently in topic 5
    p = (nd + alpha) * (nw[w] + eta) / (nk + V * eta)
    p /= p.sum()
    doc = np.zeros(1 + nd.sum(), np.int64)
    word = np.array([w] + [3] * nd.sum())
    z0 = np.concatenate([[k0], np.repeat(np.arange(K), nd)])
    n = 20_000
    hits = np.zeros(K)
    for u in (np.arange(n) + 0.5) / n:
        z = z0.copy()
        ndk = (nd + np.eye(K, dtype=np.int64)[k0])[None]
        nwk = nw.copy()
        nwk[w, k0] += 1
        nkk = nk + np.eye(K, dtype=np.int64)[k0]
        us = np.full(len(doc), 0.5)
        us[0] = u
        sweep(doc, word, z, ndk, nwk, nkk, alpha, eta, V * eta, us)
        hits[z[0]] += 1
        assert (ndk >= 0).all() and (nwk >= 0).all() and ndk.sum() == len(doc)
    np.testing.assert_allclose(hits / n, p, atol=2.0 / n)


@pytest.mark.parametrize("kernel", ["dense_sweep", "sparse_sweep"])
def test_gibbs_chains_visit_states_by_their_exact_posterior(kernel):
    """Whole sweeps (the bookkeeping of counts, word and document lists across tokens): on 5
    tokens and 3 topics the chain's state frequencies match p(z | w) enumerated over all 243
    assignments (total variation distance)."""
    import itertools

    from scipy.special import gammaln

    from unsup.topics import _gibbs

    sweep = getattr(_gibbs, kernel)
    doc, word = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 2, 1])
    K, V, D, eta = 3, 3, 2, 0.4
    alpha = np.array([0.3, 0.8, 0.5])

    def counts(z):
        ndk, nwk = np.zeros((D, K), np.int64), np.zeros((V, K), np.int64)
        np.add.at(ndk, (doc, z), 1)
        np.add.at(nwk, (word, z), 1)
        return ndk, nwk

    states = list(itertools.product(range(K), repeat=len(doc)))
    lp = []
    for s in states:
        ndk, nwk = counts(np.array(s))
        lp.append(gammaln(ndk + alpha).sum() - gammaln(ndk.sum(1) + alpha.sum()).sum()
                  + gammaln(nwk + eta).sum() - gammaln(nwk.sum(0) + V * eta).sum())
    p = np.exp(np.array(lp) - max(lp))
    p /= p.sum()
    rng = np.random.default_rng(0)
    z = rng.integers(0, K, len(doc))
    ndk, nwk = counts(z)
    nk = nwk.sum(0)
    n = 40_000
    u = rng.random((n, len(doc)))
    codes = np.empty(n, np.int64)
    for t in range(n):
        sweep(doc, word, z, ndk, nwk, nk, alpha, eta, V * eta, u[t])
        codes[t] = int(np.dot(z, K ** np.arange(len(doc))[::-1]))
    freq = np.bincount(codes, minlength=len(states)) / n  # states in itertools order
    assert 0.5 * np.abs(freq - p).sum() < 0.04
