"""VariationalDPMixture: the bound's pieces against numerical integration, the bound equal to
the exact evidence where q can be exact, monotone coordinate ascent, and discovering K."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

from unsup.cluster import VariationalDPMixture
from unsup.cluster.dp_mixture import _Prior
from unsup.cluster.dp_variational import _beta_kl, _normal_gamma_kl


def _blobs(seed, k=5, d=3, n=200, scale=6.0):
    rng = np.random.default_rng(seed)
    C = rng.normal(scale=scale, size=(k, d))
    return (np.concatenate([c + rng.normal(size=(n, d)) for c in C]), np.repeat(np.arange(k), n))


def test_beta_kl_matches_numerical_integration():
    a, b, c, d = 2.5, 4.0, 1.0, 1.7
    p, q = stats.beta(a, b), stats.beta(c, d)
    val, _ = integrate.quad(lambda v: p.pdf(v) * (p.logpdf(v) - q.logpdf(v)), 0, 1)
    assert _beta_kl(np.array([a]), np.array([b]), c, d) == pytest.approx(val, rel=1e-7)


def test_normal_gamma_kl_matches_numerical_integration():
    m, kappa, a, b = 0.4, 3.0, 2.5, 1.3
    m0, kappa0, a0, b0 = -0.2, 0.5, 2.0, 0.8

    def logpdf(mu, tau, m, kappa, a, b):
        # Gamma(τ; a, rate b) · N(μ; m, 1/(κτ)), written out (scipy.stats per point made the
        # double integral take over a minute)
        return (a * math.log(b) - math.lgamma(a) + (a - 1) * math.log(tau) - b * tau
                + 0.5 * math.log(kappa * tau / (2 * math.pi)) - 0.5 * kappa * tau * (mu - m) ** 2)

    def integrand(mu, tau):
        lq = logpdf(mu, tau, m, kappa, a, b)
        return math.exp(lq) * (lq - logpdf(mu, tau, m0, kappa0, a0, b0))

    val, _ = integrate.dblquad(integrand, 1e-12, 30, -200, 200, epsabs=1e-11)
    ours = _normal_gamma_kl(np.array([[m]]), np.array([kappa]), np.array([a]),
                            np.array([[b]]), np.array([m0]), kappa0, a0, np.array([b0]))
    assert ours == pytest.approx(val, abs=1e-6)


def test_one_component_bound_equals_the_exact_evidence():
    # with T = 1 every z is known and q(μ, τ) is the exact posterior: the bound is log p(X)
    X = np.random.default_rng(0).normal(size=(40, 3)) * [1.0, 2.0, 0.5] + 3.0
    m = VariationalDPMixture(1, variance_prior=0.7, mean_precision_prior=0.3,
                             degrees_of_freedom_prior=2.5).fit(X)
    prior = _Prior(X.mean(0), 0.3, 2.5, np.full(3, 0.7 * 1.5))
    exact = prior.log_marginal(np.array([40.0]), X.sum(0)[None], (X**2).sum(0)[None])[0]
    assert m.lower_bound_ * 40 == pytest.approx(exact, rel=1e-10)


def test_bound_never_decreases_and_the_history_is_per_sample():
    X, _ = _blobs(1)
    with pytest.warns(ConvergenceWarning):  # tol=0: runs all 60 iterations
        m = VariationalDPMixture(10, init="random", random_state=0, max_iter=60, tol=0).fit(X)
    elbo = np.array([h["elbo"] for h in m.history_])
    assert len(elbo) == 61
    assert np.all(np.diff(elbo) >= -1e-10 * np.abs(elbo[1:]))
    assert elbo[-1] > elbo[0] + 0.1
    assert m.lower_bound_ == pytest.approx(elbo[-1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discovers_k_on_separated_blobs(seed):
    X, y = _blobs(seed)
    m = VariationalDPMixture(20, random_state=0).fit(X)
    assert m.n_clusters_ == 5
    assert adjusted_rand_score(y, m.labels_) > 0.92
    assert np.argmax(m.k_posterior_) == 5
    assert m.weights_.sum() + m.new_cluster_weight_ == pytest.approx(1.0)
    assert m.predict(X).shape == (len(X),)


def test_predictive_density_integrates_to_one():
    X, _ = _blobs(3, k=3, d=1, n=50, scale=3.0)
    m = VariationalDPMixture(8, random_state=0).fit(X)
    # Student-t tails (the new-cluster term is the broad prior predictive): integrate to ±∞
    def density(x):
        return float(np.exp(m.score_samples(np.array([[x]])))[0])

    lo, hi = X.min() - 5, X.max() + 5
    mass = (integrate.quad(density, -np.inf, lo, limit=200)[0]
            + integrate.quad(density, lo, hi, limit=200)[0]
            + integrate.quad(density, hi, np.inf, limit=200)[0])
    assert mass == pytest.approx(1.0, abs=1e-5)


def test_predict_proba_rows_sum_to_one_and_agree_with_predict():
    X, _ = _blobs(4, k=3, d=2, n=60)
    m = VariationalDPMixture(6, random_state=0).fit(X)
    P = m.predict_proba(X)
    assert np.allclose(P.sum(1), 1.0)
    assert np.array_equal(P.argmax(1), m.predict(X))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="n_components"):
        VariationalDPMixture(0).fit(np.zeros((5, 2)))
    with pytest.raises(ValueError):
        VariationalDPMixture().fit(np.array([[0.0, np.nan]]))


@pytest.mark.parametrize("vi", [False, True])
def test_report_draws_the_number_of_clusters(vi):
    from unsup.cluster import DirichletProcessMixture
    from unsup.report import Report, model_report

    X, y = _blobs(5, k=3, d=2, n=40)
    m = (VariationalDPMixture(6, random_state=0) if vi
         else DirichletProcessMixture(n_sweeps=6, random_state=0)).fit(X)
    r = Report("DP")
    model_report(m, X, y, report=r)
    html = r.to_html()
    assert "<h3>Discovering K</h3>" in html and "Section skipped" not in html
    assert f"posterior mode K = {int(np.argmax(m.k_posterior_))}" in html
