"""HDP: the token sweep against the enumerated posterior, the table counts against Antoniak's
exact law, and discovering the number of topics on separated synthetic topics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import gammaln

from unsup.topics import HDP
from unsup.topics._hdp_gibbs import hdp_sweep, table_counts


def test_fixed_topic_sweep_samples_the_exact_posterior():
    # 2 documents, 5 tokens, 2 topics with fixed weights β: the chain targets
    # p(z | w) ∝ Π_d Π_k Γ(αβ_k + n_dk)/Γ(αβ_k) · Π_k Γ(Vη)/Γ(Vη + n_k) Π_w Γ(η + n_kw)/Γ(η)
    doc = np.array([0, 0, 0, 1, 1])
    word = np.array([0, 1, 0, 2, 1])
    D, V, K = 2, 3, 2
    alpha, eta, beta = 1.3, 0.4, np.array([0.6, 0.4, 0.0])

    def log_joint(z):
        ndk = np.zeros((D, K))
        nwk = np.zeros((V, K))
        np.add.at(ndk, (doc, z), 1)
        np.add.at(nwk, (word, z), 1)
        ab = alpha * beta[:K]
        lp = np.sum(gammaln(ab + ndk) - gammaln(ab))
        lp += np.sum(gammaln(V * eta) - gammaln(V * eta + nwk.sum(0)))
        return lp + np.sum(gammaln(eta + nwk) - gammaln(eta))

    configs = list(itertools.product(range(K), repeat=len(doc)))
    lj = np.array([log_joint(np.array(c)) for c in configs])
    exact = np.exp(lj - lj.max())
    exact /= exact.sum()

    rng = np.random.default_rng(0)
    z = np.zeros(len(doc), dtype=np.int64)
    ndk, nwk = np.zeros((D, K), np.int64), np.zeros((V, K), np.int64)
    np.add.at(ndk, (doc, z), 1)
    np.add.at(nwk, (word, z), 1)
    nk = nwk.sum(0)
    active = np.ones(K, dtype=bool)
    index = {c: i for i, c in enumerate(configs)}
    freq = np.zeros(len(configs))
    for sweep in range(10000):
        hdp_sweep(doc, word, z, ndk, nwk, nk, active, beta.copy(), alpha, eta, V * eta,
                  rng.random(len(doc)), 1.0, False, False)
        if sweep >= 500:
            freq[index[tuple(z)]] += 1
    freq /= freq.sum()
    assert np.abs(freq - exact).max() < 0.02


def _stirling_unsigned(n):
    s = np.zeros((n + 1, n + 1))
    s[0, 0] = 1.0
    for i in range(1, n + 1):
        for m in range(1, i + 1):
            s[i, m] = s[i - 1, m - 1] + (i - 1) * s[i - 1, m]
    return s


def test_table_counts_follow_antoniaks_law():
    n, a = 7, 1.7
    s = _stirling_unsigned(n)
    exact = np.array([s[n, m] * a**m * math.exp(gammaln(a) - gammaln(a + n))
                      for m in range(n + 1)])
    assert exact.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    draws = [int(table_counts(np.array([[n]]), np.array([a]), rng.random(n))[0])
             for _ in range(20000)]
    freq = np.bincount(draws, minlength=n + 1) / len(draws)
    assert np.abs(freq - exact).max() < 0.012


def _separated_corpus(seed=0, K=4, V=40, D=120, length=50):
    rng = np.random.default_rng(seed)
    block = V // K
    topics = np.zeros((K, V))
    for k in range(K):
        topics[k, k * block:(k + 1) * block] = rng.dirichlet(np.ones(block))
    X = np.array([rng.multinomial(length, rng.dirichlet(np.full(K, 0.3)) @ topics)
                  for _ in range(D)])
    return X, block


def test_discovers_the_topics_of_a_separated_corpus():
    X, block = _separated_corpus()
    m = HDP(eta=0.1, n_sweeps=150, random_state=0).fit(X)
    assert 4 <= int(np.argmax(m.k_posterior_)) <= 5
    phi = m._topics()
    heavy = np.argsort(-m.topic_weights_)[:4]
    blocks = [int(np.argmax(phi[k].reshape(-1, block).sum(1))) for k in heavy]
    purity = [phi[k].reshape(-1, block).sum(1).max() for k in heavy]
    assert sorted(blocks) == [0, 1, 2, 3] and min(purity) > 0.9
    assert m.doc_topic_.shape == (120, m.n_topics_)
    assert np.allclose(m.transform(X[:5]).sum(1), 1.0)
    lk = m.log_likelihood(X[:30])
    assert lk.kind == "stochastic estimate" and np.isfinite(lk.nats)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="integer"):
        HDP(n_sweeps=2).fit(np.full((3, 4), 0.5))
    with pytest.raises(ValueError, match="burn_in"):
        HDP(n_sweeps=2, burn_in=2).fit(np.ones((3, 4)))


def test_report_shows_topics_and_their_number():
    from unsup.report import Report, model_report

    X, _ = _separated_corpus(D=30)
    m = HDP(n_sweeps=20, random_state=0).fit(X)
    r = Report("HDP")
    model_report(m, X, None, report=r)
    html = r.to_html()
    assert "Discovering the number of topics" in html and "Topics: top words" in html
    assert f"posterior mode K = {int(np.argmax(m.k_posterior_))}" in html
    assert "Section skipped" not in html


@pytest.mark.parametrize("sample_concentrations", [False, True])
def test_crash_then_resume_equals_the_uninterrupted_chain(tmp_path, monkeypatch,
                                                          sample_concentrations):
    from _interrupt import Crash, crash_after

    import unsup.train._em_checkpoint as emc

    X, _ = _separated_corpus(D=30)
    kw = {"n_sweeps": 12, "random_state": 0, "sample_concentrations": sample_concentrations}
    ref = HDP(**kw).fit(X)
    with monkeypatch.context() as m:
        crash_after(m, emc, 3)
        with pytest.raises(Crash):
            HDP(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=2).fit(X)
    got = HDP(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=2, resume=True).fit(X)
    assert (got.alpha_, got.gamma_) == (ref.alpha_, ref.gamma_)
    assert ((ref.alpha_, ref.gamma_) != (1.0, 1.0)) == sample_concentrations
    np.testing.assert_array_equal(got.k_trace_, ref.k_trace_)
    np.testing.assert_array_equal(got.components_, ref.components_)
    np.testing.assert_array_equal(got.topic_weights_, ref.topic_weights_)
    again = HDP(**kw, checkpoint_dir=str(tmp_path), resume=True).fit(X)  # finished: no sampling
    np.testing.assert_array_equal(again.components_, ref.components_)
    with pytest.raises(ValueError, match="n_sweeps"):
        HDP(**{**kw, "n_sweeps": 13}, checkpoint_dir=str(tmp_path), resume=True).fit(X)


@pytest.mark.parametrize("level", ["top", "document"])
def test_concentration_samplers_leave_the_exact_posterior_invariant(level):
    """Long runs of the auxiliary-variable updates against the posterior by quadrature:
    γ | K clusters among m draws (Escobar & West 1995) and α | m tables, restaurant sizes n_j
    (Teh et al. 2006), both with a Gamma(1, 1) prior: mean and standard deviation agree."""
    from scipy.special import gammaln

    from unsup.topics._concentration import (
        resample_doc_concentration,
        resample_top_concentration,
    )

    rng = np.random.default_rng(0)
    grid = np.linspace(1e-4, 40, 200_001)
    if level == "top":
        K, m = 5, 40
        draw = lambda c: resample_top_concentration(c, K, m, 1.0, 1.0, rng)  # noqa: E731
        lp = K * np.log(grid) + gammaln(grid) - gammaln(grid + m)
    else:
        n, m = np.array([5, 12, 3, 30, 7, 0]), 14
        draw = lambda c: resample_doc_concentration(c, m, n, 1.0, 1.0, rng)  # noqa: E731
        lp = m * np.log(grid) + sum(gammaln(grid) - gammaln(grid + k) for k in n)
    lp -= grid  # the Gamma(1, 1) prior
    p = np.exp(lp - lp.max())
    p /= p.sum()
    mean = (grid * p).sum()
    sd = np.sqrt((grid ** 2 * p).sum() - mean ** 2)
    c, xs = 1.0, []
    for _ in range(30_000):
        c = draw(c)
        xs.append(c)
    xs = np.array(xs[500:])
    assert abs(xs.mean() - mean) < 0.03 * mean and abs(xs.std() - sd) < 0.05 * sd


def test_sampled_concentrations_are_saved_and_checked_on_load(tmp_path):
    import unsup
    from tests.test_io_fuzz import _read, _write
    from unsup.io import ModelFileError

    X, _ = _separated_corpus(D=30)
    m = HDP(n_sweeps=10, sample_concentrations=True, random_state=0).fit(X)
    unsup.save(m, tmp_path / "m.safetensors")
    back = unsup.load(tmp_path / "m.safetensors")
    assert (back.alpha_, back.gamma_) == (m.alpha_, m.gamma_)
    np.testing.assert_array_equal(back.transform(X[:4]), m.transform(X[:4]))
    meta, tensors = _read(str(tmp_path / "m.safetensors"))
    _write(str(tmp_path / "bad.safetensors"), {**meta, "fitted": {**meta["fitted"],
                                                                  "alpha_": -1.0}}, tensors)
    with pytest.raises(ModelFileError, match="alpha_"):
        unsup.load(tmp_path / "bad.safetensors")
