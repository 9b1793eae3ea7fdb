"""DirichletProcessMixture: closed forms against numerical integration and enumeration, the
Gibbs sampler against the exact posterior over partitions, and discovering K."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import gammaln, logsumexp
from sklearn.metrics import adjusted_rand_score

from unsup.cluster import DirichletProcessMixture
from unsup.cluster.dp_mixture import _Prior, _Stats, _sweep


def _prior(D=1, m0=0.3, kappa0=0.5, a0=2.0, b0=0.7):
    return _Prior(np.full(D, m0), kappa0, a0, np.full(D, b0))


def _stats(X):
    st = _Stats(X.shape[1])
    for x in X:
        st.add(0, x)
    return st


def test_marginal_likelihood_matches_numerical_integration():
    pr = _prior()
    X = np.array([[0.2], [1.1]])
    st = _stats(X)
    ours = pr.log_marginal(st.n, st.s, st.ss)[0]

    def integrand(mu, tau):
        lik = np.prod(np.sqrt(tau / (2 * np.pi)) * np.exp(-tau * (X[:, 0] - mu) ** 2 / 2))
        prior_mu = math.sqrt(pr.kappa0 * tau / (2 * np.pi)) * math.exp(
            -pr.kappa0 * tau * (mu - pr.m0[0]) ** 2 / 2)
        prior_tau = math.exp(pr.a0 * math.log(pr.b0[0]) - gammaln(pr.a0)
                             + (pr.a0 - 1) * math.log(tau) - pr.b0[0] * tau)
        return lik * prior_mu * prior_tau

    val, _ = integrate.dblquad(integrand, 1e-9, 60, -15, 15, epsabs=1e-12)
    assert ours == pytest.approx(math.log(val), abs=1e-5)


def test_predictives_chain_to_the_marginal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))
    pr = _prior(D=3)
    st, total = _Stats(3), 0.0
    for x in X:
        total += pr.log_predictive(st, x)[-1 if len(st.n) == 0 else 0]
        st.add(0, x)
    assert total == pytest.approx(pr.log_marginal(st.n, st.s, st.ss)[0], rel=1e-12)


def _partitions(n):
    """All set partitions of range(n) as label vectors in first-occurrence order."""
    def rec(i, labels, k):
        if i == n:
            yield tuple(labels)
            return
        for j in range(k + 1):
            yield from rec(i + 1, labels + [j], max(k, j + 1))
    yield from rec(0, [], 0)


def _canonical(z):
    seen = {}
    return tuple(seen.setdefault(int(v), len(seen)) for v in z)


def _exact_partition_posterior(X, alpha, pr):
    parts = list(_partitions(len(X)))
    logp = []
    for z in parts:
        z = np.array(z)
        n = np.bincount(z).astype(float)
        st = _Stats(X.shape[1])
        for k in range(z.max() + 1):
            for x in X[z == k]:
                st.add(k, x)
        crp = (len(n) * math.log(alpha) + gammaln(n).sum() + gammaln(alpha)
               - gammaln(alpha + len(X)))
        logp.append(crp + pr.log_marginal(st.n, st.s, st.ss).sum())
    return parts, np.exp(np.array(logp) - logsumexp(logp))


def _visit_frequencies(step, X, z, st, parts, n, burn):
    """How often a chain of ``n`` calls of ``step`` (after ``burn``) visits each partition."""
    counts = dict.fromkeys(parts, 0)
    for t in range(n + burn):
        step(X, z, st)
        if t >= burn:
            counts[_canonical(z)] += 1
    return np.array([counts[p] for p in parts]) / n


def test_gibbs_samples_the_exact_posterior_over_partitions():
    X = np.array([[0.0], [0.4], [2.5], [2.9]])
    alpha = 0.8
    pr = _prior(m0=1.4, kappa0=0.3, a0=2.0, b0=0.5)
    parts, exact = _exact_partition_posterior(X, alpha, pr)
    assert len(parts) == 15  # Bell(4)
    rng = np.random.default_rng(1)
    freq = _visit_frequencies(lambda X, z, st: _sweep(X, z, st, pr, math.log(alpha), rng),
                              X, np.full(len(X), -1), _Stats(1), parts, 20000, 100)
    # Monte Carlo error of a frequency is at most ~0.5/sqrt(n_eff); mixing here is fast
    assert np.abs(freq - exact).max() < 0.02
    assert 0.5 * np.abs(freq - exact).sum() < 0.03


def test_split_merge_moves_alone_sample_the_exact_posterior():
    # split and merge moves reach every partition, so a chain of nothing but them must visit
    # each with its exact posterior probability if the Metropolis-Hastings ratio is right
    from unsup.cluster._dp_gibbs import _split_merge

    # overlapping points, so that the proposal probabilities q are far from 0 and 1 (the test
    # fails if q is left out of the ratio: total variation 0.13 instead of 0.01)
    X = np.array([[0.0], [0.5], [1.1], [1.8]])
    alpha, pr = 0.8, _prior(m0=1.0, kappa0=0.3, a0=2.0, b0=0.3)
    parts, exact = _exact_partition_posterior(X, alpha, pr)
    rng = np.random.default_rng(2)
    z, st = np.zeros(len(X), dtype=np.int64), _Stats(1)
    for x in X:
        st.add(0, x)
    freq = _visit_frequencies(lambda X, z, st: _split_merge(X, z, st, pr, math.log(alpha), rng),
                              X, z, st, parts, 20000, 200)
    assert np.abs(freq - exact).max() < 0.02
    assert 0.5 * np.abs(freq - exact).sum() < 0.04
    np.testing.assert_array_equal(st.n, np.bincount(z))  # statistics follow the moves
    np.testing.assert_allclose(st.s[:, 0], np.bincount(z, weights=X[:, 0]), atol=1e-12)


def _alpha_weight(K, N, shape, rate):
    """∫ Gamma(α; shape, rate) α^K Γ(α) / Γ(α + N) dα: the CRP's α-factor, α integrated out."""
    def f(a):
        return math.exp(shape * math.log(rate) - gammaln(shape) + (shape - 1 + K) * math.log(a)
                        - rate * a + gammaln(a) - gammaln(a + N))
    return integrate.quad(f, 0, np.inf, limit=200)[0]


def test_alpha_update_samples_its_exact_conditional():
    # p(α | K, N) ∝ Gamma(α; a, b) α^K Γ(α)/Γ(α+N): a chain of Escobar-West updates alone
    # (K, N held fixed) must have it as its stationary law
    from unsup.cluster._dp_gibbs import _resample_alpha

    K, N, shape, rate = 3, 10, 2.0, 0.5
    rng = np.random.default_rng(4)
    alpha, draws = 1.0, []
    for t in range(40200):
        alpha = _resample_alpha(alpha, K, N, shape, rate, rng)
        if t >= 200:
            draws.append(alpha)
    draws = np.sort(draws)
    Z = _alpha_weight(K, N, shape, rate)
    mean = _alpha_weight(K + 1, N, shape, rate) / Z  # E[α]: one more power of α
    assert np.mean(draws) == pytest.approx(mean, rel=0.02)
    dens = lambda a: math.exp(shape * math.log(rate) - gammaln(shape) + (shape - 1 + K)  # noqa: E731
                              * math.log(a) - rate * a + gammaln(a) - gammaln(a + N)) / Z
    for q in (0.5, 1.0, 2.0, 4.0, 8.0):  # the CDF at a few points
        exact = integrate.quad(dens, 0, q)[0]
        assert np.searchsorted(draws, q) / len(draws) == pytest.approx(exact, abs=0.015)


def test_gibbs_with_sampled_alpha_samples_the_exact_posterior_over_partitions():
    # with α ~ Gamma(a, b) integrated out, p(z | X) ∝ p(X | z) Π Γ(n_k) ∫ p(α) α^K Γ(α)/Γ(α+N)
    from unsup.cluster._dp_gibbs import _resample_alpha

    X = np.array([[0.0], [0.4], [2.5], [2.9]])
    # a broad prior: no fixed α gives a partition posterior within total variation 0.09 of
    # this one, so a sampler that left α out (or got its update wrong) fails the bound below
    shape, rate = 0.5, 0.5
    pr = _prior(m0=1.4, kappa0=0.3, a0=2.0, b0=0.5)
    parts, _ = _exact_partition_posterior(X, 1.0, pr)  # the enumeration; α = 1: CRP factor 1/N!
    logp = []
    for z in parts:
        z = np.array(z)
        n = np.bincount(z).astype(float)
        st = _Stats(1)
        for k in range(z.max() + 1):
            for x in X[z == k]:
                st.add(k, x)
        logp.append(gammaln(n).sum() + math.log(_alpha_weight(len(n), len(X), shape, rate))
                    + pr.log_marginal(st.n, st.s, st.ss).sum())
    exact = np.exp(np.array(logp) - logsumexp(logp))
    rng = np.random.default_rng(5)
    alpha = [1.0]

    def step(X, z, st):
        _sweep(X, z, st, pr, math.log(alpha[0]), rng)
        alpha[0] = _resample_alpha(alpha[0], len(st.n), len(X), shape, rate, rng)

    freq = _visit_frequencies(step, X, np.full(len(X), -1), _Stats(1), parts, 20000, 100)
    assert np.abs(freq - exact).max() < 0.02
    assert 0.5 * np.abs(freq - exact).sum() < 0.03


def test_learned_variance_prior_samples_the_exact_posterior_over_partitions():
    # b₀ ~ Exponential(rate r) integrated out: p(z | X) ∝ CRP(z) ∫ p(b₀) Π_k p(X_k | b₀) db₀
    from unsup.cluster._dp_gibbs import _resample_rate

    X = np.array([[0.0], [0.4], [2.5], [2.9]])
    alpha, r = 0.8, 0.1
    base = _prior(m0=1.4, kappa0=0.3, a0=2.0, b0=0.5)
    parts, _ = _exact_partition_posterior(X, alpha, base)
    stats = []
    for z in parts:
        z = np.array(z)
        st = _Stats(1)
        for k in range(z.max() + 1):
            for x in X[z == k]:
                st.add(k, x)
        stats.append(st)

    def evidence(st, b):  # log p(X | z, b₀ = b)
        return _prior(m0=1.4, kappa0=0.3, a0=2.0, b0=b).log_marginal(st.n, st.s, st.ss).sum()

    logp = []
    for z, st in zip(parts, stats, strict=True):
        n = np.bincount(np.array(z)).astype(float)
        crp = len(n) * math.log(alpha) + gammaln(n).sum()
        w = integrate.quad(lambda b, st=st: r * math.exp(-r * b + evidence(st, b)), 0, np.inf,
                           limit=200)[0]
        logp.append(crp + math.log(w))
    exact = np.exp(np.array(logp) - logsumexp(logp))
    # the learned scale matters here: no fixed b₀ gets within total variation 0.05 (0.058)
    fixed = [_exact_partition_posterior(X, alpha, _prior(m0=1.4, kappa0=0.3, a0=2.0, b0=b))[1]
             for b in np.geomspace(0.05, 20, 40)]
    assert min(0.5 * np.abs(exact - f).sum() for f in fixed) > 0.05
    rng = np.random.default_rng(6)
    b0 = [np.array([0.5])]

    def step(X, z, st):
        pr = _Prior(base.m0, base.kappa0, base.a0, b0[0])
        _sweep(X, z, st, pr, math.log(alpha), rng)
        b0[0] = _resample_rate(st, pr, 1.0, np.array([r]), rng)

    freq = _visit_frequencies(step, X, np.full(len(X), -1), _Stats(1), parts, 20000, 100)
    assert np.abs(freq - exact).max() < 0.02
    assert 0.5 * np.abs(freq - exact).sum() < 0.03


def test_learned_variance_prior_is_recorded_and_used():
    X, _ = _blobs(3, 2, 30, seed=2)
    dp = DirichletProcessMixture(n_sweeps=40, learn_variance_prior=True, random_state=0).fit(X)
    assert dp.prior_rate_trace_.shape == (40, 2)
    assert len(set(dp.prior_rate_trace_[:, 0].tolist())) > 10
    np.testing.assert_allclose(dp.prior_rate_, dp.prior_rate_trace_[20:].mean(0))
    # unit-variance clusters: E[τ] = a₀ / b₀ learned near 1 (the data's variance is ~40)
    assert np.all(np.abs(dp.degrees_of_freedom_prior / dp.prior_rate_ - 1) < 0.7)
    fixed = DirichletProcessMixture(n_sweeps=5, learn_variance_prior=False, random_state=0).fit(X)
    np.testing.assert_allclose(fixed.prior_rate_trace_, np.tile(X.var(0) / 10, (5, 1)))


def test_sampled_alpha_is_recorded_and_used():
    X, _ = _blobs(3, 2, 30, seed=2)
    dp = DirichletProcessMixture(n_sweeps=40, alpha_prior_shape=1.0, alpha_prior_rate=1.0,
                                 random_state=0).fit(X)
    assert dp.alpha_trace_.shape == (40,) and len(set(dp.alpha_trace_.tolist())) > 10
    assert dp.alpha_ == pytest.approx(dp.alpha_trace_[20:].mean())
    assert dp.weights_.sum() + dp.new_cluster_weight_ == pytest.approx(1.0)
    assert dp.new_cluster_weight_ == pytest.approx(dp.alpha_ / (len(X) + dp.alpha_))
    fixed = DirichletProcessMixture(n_sweeps=5, alpha=0.7, random_state=0).fit(X)
    np.testing.assert_array_equal(fixed.alpha_trace_, 0.7)
    assert fixed.alpha_ == 0.7


def _blobs(K, D, n_per, seed, sep=8.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=sep, size=(K, D))
    y = np.repeat(np.arange(K), n_per)
    return centres[y] + rng.normal(size=(K * n_per, D)), y


@pytest.mark.parametrize("K,D", [(3, 2), (6, 5)])
def test_discovers_the_number_of_clusters(K, D, one_thread):
    X, y = _blobs(K, D, 40, seed=K)
    dp = DirichletProcessMixture(n_sweeps=30, random_state=0).fit(X)
    assert dp.n_clusters_ == K
    assert int(np.argmax(dp.k_posterior_)) == K
    assert adjusted_rand_score(y, dp.labels_) > 0.95
    assert adjusted_rand_score(y, dp.predict(X)) > 0.95
    np.testing.assert_allclose(dp.predict_proba(X).sum(1), 1.0)
    assert dp.weights_.sum() + dp.new_cluster_weight_ == pytest.approx(1.0)


def test_density_integrates_to_one_on_a_grid(one_thread):
    X, _ = _blobs(2, 1, 30, seed=0, sep=3.0)
    dp = DirichletProcessMixture(n_sweeps=10, random_state=0).fit(X)
    grid = np.linspace(X.min() - 60, X.max() + 60, 60001)[:, None]
    mass = np.trapezoid(np.exp(dp.score_samples(grid)), grid[:, 0])
    assert mass == pytest.approx(1.0, abs=2e-3)  # Student-t tails beyond the grid


def test_reproducible_and_save_load(tmp_path, one_thread):
    import unsup

    X, _ = _blobs(3, 2, 20, seed=1)
    a = DirichletProcessMixture(n_sweeps=8, random_state=3).fit(X)
    b = DirichletProcessMixture(n_sweeps=8, random_state=3).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    a.save(tmp_path / "dp.unsup")
    c = unsup.load(tmp_path / "dp.unsup")
    np.testing.assert_allclose(c.score_samples(X), a.score_samples(X))


def test_bad_params():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="alpha"):
        DirichletProcessMixture(alpha=0).fit(X)
    with pytest.raises(ValueError, match="alpha_prior_shape"):
        DirichletProcessMixture(alpha_prior_shape=0.0).fit(X)
    with pytest.raises(ValueError, match="alpha_prior_rate"):
        DirichletProcessMixture(alpha_prior_shape=1.0, alpha_prior_rate=-1.0).fit(X)
    with pytest.raises(ValueError, match="burn_in"):
        DirichletProcessMixture(n_sweeps=3, burn_in=3).fit(X)
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        DirichletProcessMixture(degrees_of_freedom_prior=1.0).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        DirichletProcessMixture().fit(np.array([[np.nan, 1.0], [0.0, 1.0]]))
    assert list(itertools.islice(_partitions(3), 5)) == [(0, 0, 0), (0, 0, 1), (0, 1, 0),
                                                         (0, 1, 1), (0, 1, 2)]


def test_cached_predictive_equals_the_ratio_of_marginals():
    from unsup.cluster._dp_gibbs import _log_pred, _set_row

    rng = np.random.default_rng(3)
    pr = _Prior(rng.normal(size=4), 0.3, 2.5, rng.random(4) + 0.2)
    st = _Stats(4)
    for i in range(30):
        st.add(min(i % 3, len(st.n)), rng.normal(size=4))
    K = len(st.n)
    C, ha, cf, m, b = np.empty(K + 1), np.empty(K + 1), np.empty(K + 1), *np.empty((2, K + 1, 4))
    rows = [*zip(st.n, st.s, st.ss, strict=True), (0.0, np.zeros(4), np.zeros(4))]
    for k, (n, s, ss) in enumerate(rows):
        _set_row(k, n, s, ss, pr.kappa0, pr.a0, pr.b0, pr.kappa0 * pr.m0, pr.kappa0 * pr.m0**2,
                 C, ha, cf, m, b)
    for x in rng.normal(size=(5, 4)):
        cached = [_log_pred(x, k, C, ha, cf, m, b) for k in range(K + 1)]
        np.testing.assert_allclose(cached, pr.log_predictive(st, x), rtol=1e-12)


def test_sweep_opens_more_clusters_than_its_first_capacity():
    # 40 tight groups of 3 points, 100 apart, a vague prior on the means and a narrow one on
    # the variances: the first sweep opens a cluster per group, past the kernel's initial room
    # for 16 clusters (the arrays grow and the sweep goes on)
    rng = np.random.default_rng(0)
    X = (np.repeat(np.arange(40.0), 3) * 100.0 + rng.normal(scale=0.01, size=120))[:, None]
    pr = _prior(m0=2000.0, kappa0=1e-12, a0=2.0, b0=1e-4)
    z, st = np.full(len(X), -1), _Stats(1)
    _sweep(X, z, st, pr, math.log(1.0), rng)
    assert len(st.n) == 40 and sorted(set(z.tolist())) == list(range(40))
    np.testing.assert_array_equal(st.n, np.bincount(z))
    np.testing.assert_allclose(st.s[:, 0], np.bincount(z, weights=X[:, 0]))


def test_sweeps_report_progress():
    from unsup.base import progress_callback

    seen = []
    X = np.random.default_rng(0).normal(size=(30, 2))
    with progress_callback(lambda stage, step, total, **m: seen.append((stage, step, total))):
        DirichletProcessMixture(n_sweeps=4, random_state=0).fit(X)
    assert seen == [("DP Gibbs", k, 4) for k in range(1, 5)]


@pytest.mark.parametrize("alpha_prior,learn", [(None, False), (1.0, True)])
def test_crash_then_resume_equals_the_uninterrupted_chain(tmp_path, monkeypatch, alpha_prior,
                                                          learn):
    from _interrupt import Crash, crash_after

    import unsup.train._em_checkpoint as emc

    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(size=(25, 2)), rng.normal(size=(25, 2)) + 6])
    kw = {"n_sweeps": 10, "burn_in": 2, "random_state": 0, "alpha_prior_shape": alpha_prior,
          "learn_variance_prior": learn}
    ref = DirichletProcessMixture(**kw).fit(X)
    for k in (1, 4):  # before burn-in ends (no best yet) and after
        d = tmp_path / f"k{k}"
        with monkeypatch.context() as m:
            crash_after(m, emc, k)
            with pytest.raises(Crash):
                DirichletProcessMixture(**kw, checkpoint_dir=str(d), checkpoint_every=2).fit(X)
        got = DirichletProcessMixture(**kw, checkpoint_dir=str(d), checkpoint_every=2,
                                      resume=True).fit(X)
        np.testing.assert_array_equal(got.labels_, ref.labels_)
        np.testing.assert_array_equal(got.log_joint_trace_, ref.log_joint_trace_)
        np.testing.assert_array_equal(got.cluster_sums_, ref.cluster_sums_)
        np.testing.assert_array_equal(got.alpha_trace_, ref.alpha_trace_)
        np.testing.assert_array_equal(got.prior_rate_trace_, ref.prior_rate_trace_)
