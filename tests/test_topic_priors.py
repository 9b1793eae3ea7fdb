"""Learning LDA's priors (``optimize_priors``): the estimators recover known Dirichlet
parameters, the histogram form of Minka's fixed point equals its direct sums, batch VB's ELBO
still increases, and a learned α is saved, checked on load and used by ``transform``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import digamma

from unsup.topics import LDA
from unsup.topics._priors import (
    dirichlet_mle,
    polya_fixed_point,
    polya_fixed_point_symmetric,
    symmetric_dirichlet_mle,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ALPHA = np.array([0.1, 0.4, 1.5])


def test_dirichlet_mle_recovers_the_parameters_of_samples():
    theta = np.random.default_rng(0).dirichlet(ALPHA, size=20_000)
    s = np.log(theta).sum(0)
    est = dirichlet_mle(np.full(3, 1.0), s, len(theta))
    np.testing.assert_allclose(est, ALPHA, rtol=0.05)
    # the optimum: the gradient D[ψ(Σα) − ψ(α_k)] + s_k vanishes
    g = len(theta) * (digamma(est.sum()) - digamma(est)) + s
    assert np.abs(g).max() < 1e-6 * len(theta)


def test_symmetric_mle_recovers_eta_of_topics():
    K, V, eta = 20, 500, 0.05
    beta = np.random.default_rng(1).dirichlet(np.full(V, eta), size=K)
    s = np.log(np.maximum(beta, 1e-300)).sum()
    assert symmetric_dirichlet_mle(1.0, s, K, V) == pytest.approx(eta, rel=0.05)


def _direct_fixed_point(alpha: np.ndarray, counts: np.ndarray, iters: int) -> np.ndarray:
    a = alpha.copy()
    n = counts.sum(1)
    for _ in range(iters):
        a = a * (digamma(counts + a) - digamma(a)).sum(0) / (
            digamma(n + a.sum()) - digamma(a.sum())).sum()
    return a


def test_polya_fixed_point_equals_its_direct_sums_and_recovers_alpha():
    rng = np.random.default_rng(2)
    theta = rng.dirichlet(ALPHA, size=4000)
    counts = np.stack([rng.multinomial(40, t) for t in theta])
    one = polya_fixed_point(np.ones(3), counts, max_iter=1)
    np.testing.assert_allclose(one, _direct_fixed_point(np.ones(3), counts, 1), rtol=1e-12)
    est = polya_fixed_point(np.ones(3), counts, max_iter=500)
    np.testing.assert_allclose(est, ALPHA, rtol=0.1)
    # the symmetric form on counts drawn with a symmetric prior
    c = np.stack([rng.multinomial(200, t) for t in rng.dirichlet(np.full(50, 0.3), size=400)])
    assert polya_fixed_point_symmetric(1.0, c, max_iter=500) == pytest.approx(0.3, rel=0.1)


def _lda_corpus(seed: int = 0, D: int = 600, length: int = 60) -> sp.csr_matrix:
    """Documents from LDA with three topics on disjoint words and the asymmetric ALPHA."""
    rng = np.random.default_rng(seed)
    V = 30
    topics = np.zeros((3, V))
    for k in range(3):
        topics[k, 10 * k:10 * k + 10] = rng.dirichlet(np.ones(10))
    rows = [rng.multinomial(length, rng.dirichlet(ALPHA) @ topics) for _ in range(D)]
    return sp.csr_matrix(np.array(rows, dtype=np.float64))


@pytest.mark.parametrize("method", ["vb", "gibbs", "online"])
def test_learned_alpha_is_close_to_the_generating_one(method):
    # Gibbs runs as Python where numba is absent (CI): a smaller corpus
    X = _lda_corpus(D=300, length=40) if method == "gibbs" else _lda_corpus()
    it = {"vb": 30, "gibbs": 60, "online": 30}[method]
    m = LDA(3, method=method, optimize_priors="alpha", max_iter=it, tol=0, batch_size=100,
            device="cpu", random_state=0).fit(X)
    fixed = LDA(3, method=method, max_iter=it, tol=0, batch_size=100, device="cpu",
                random_state=0).fit(X)
    est = np.sort(m.doc_topic_prior_)
    # within a factor 1.6 of the truth, and much closer than the fixed default 1/K
    assert np.all(est / ALPHA < 1.6) and np.all(ALPHA / est < 1.6), est
    assert np.abs(np.log(est / ALPHA)).sum() < 0.5 * np.abs(np.log(1 / 3 / ALPHA)).sum()
    np.testing.assert_array_equal(fixed.doc_topic_prior_, np.full(3, 1 / 3))
    assert m.topic_word_prior_ == fixed.topic_word_prior_ == 1 / 3  # η is learned by "both"


def test_batch_vb_elbo_still_increases_when_the_priors_are_learned():
    m = LDA(3, optimize_priors="both", max_iter=40, tol=0, device="cpu",
            random_state=1).fit(_lda_corpus(1))
    elbo = np.array([h["elbo"] for h in m.history_])
    assert np.all(np.diff(elbo) > -1e-3 * np.abs(elbo[1:])), np.diff(elbo).min()
    fixed = LDA(3, max_iter=40, tol=0, device="cpu", random_state=1).fit(_lda_corpus(1))
    assert elbo[-1] > fixed.history_[-1]["elbo"]  # the priors are free: a higher bound


def test_learned_priors_are_saved_checked_on_load_and_used(tmp_path):
    import unsup
    from tests.test_io_fuzz import _read, _write
    from unsup.io import ModelFileError

    X = _lda_corpus(D=200)
    m = LDA(3, optimize_priors="both", max_iter=20, tol=0, device="cpu", random_state=0).fit(X)
    path = str(tmp_path / "lda.safetensors")
    unsup.save(m, path)
    back = unsup.load(path)
    np.testing.assert_array_equal(back.doc_topic_prior_, m.doc_topic_prior_)
    assert back.topic_word_prior_ == m.topic_word_prior_
    np.testing.assert_array_equal(back.transform(X[:5]), m.transform(X[:5]))
    # transform folds in with the learned α, not the parameter
    plain = LDA(3, device="cpu")
    vars(plain).update({k: v for k, v in vars(m).items() if k.endswith("_")})
    del plain.doc_topic_prior_
    assert not np.allclose(plain.transform(X[:5]), m.transform(X[:5]))
    # a file whose learned priors are not positive is refused (its digest recomputed)
    meta, tensors = _read(path)
    key = next(k for k in tensors if k.endswith("doc_topic_prior_"))
    _write(str(tmp_path / "neg.safetensors"), meta, {**tensors, key: -tensors[key]})
    with pytest.raises(ModelFileError, match="doc_topic_prior_"):
        unsup.load(tmp_path / "neg.safetensors")
    _write(str(tmp_path / "eta.safetensors"), {**meta, "fitted": {
        **meta["fitted"], "topic_word_prior_": 0.0}}, tensors)
    with pytest.raises(ModelFileError, match="topic_word_prior_"):
        unsup.load(tmp_path / "eta.safetensors")
    # a file from before optimize_priors existed: fixed priors, as it was fitted
    del meta["params"]["optimize_priors"], meta["fitted"]["topic_word_prior_"]
    _write(str(tmp_path / "old.safetensors"), meta,
           {k: v for k, v in tensors.items() if not k.endswith("doc_topic_prior_")})
    old = unsup.load(tmp_path / "old.safetensors")
    assert old.optimize_priors == "none"
    np.testing.assert_array_equal(old.transform(X[:5]), plain.transform(X[:5]))
