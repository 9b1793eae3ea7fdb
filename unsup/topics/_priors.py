r"""Learning LDA's Dirichlet priors from the data: an asymmetric α and a symmetric η.

Variational Bayes (Blei, Ng & Jordan 2003, appendix A.4.2; Minka 2000). With
:math:`s_k = \sum_d E_q[\log\theta_{dk}]` over D documents, the ELBO's terms in α are the
log-likelihood of a Dirichlet with those sufficient statistics,

.. math:: f(\alpha) = D\,[\ln\Gamma(\textstyle\sum_k \alpha_k) - \sum_k \ln\Gamma(\alpha_k)]
          + \sum_k (\alpha_k - 1)\, s_k,

concave in α. Its Hessian is diagonal plus a constant, :math:`H = \mathrm{diag}(q) + z\,11^T`
with :math:`q_k = -D\psi'(\alpha_k)`, :math:`z = D\psi'(\sum\alpha)`, so a Newton step costs
O(K): :math:`\Delta_k = (g_k - b)/q_k`, :math:`b = \sum_j (g_j/q_j) / (1/z + \sum_j 1/q_j)`.
:func:`dirichlet_mle` iterates it with step halving (every accepted step raises f and keeps
α > 0), so the variational EM objective still increases. The symmetric η over V words of K
topics is the one-parameter case (:func:`symmetric_dirichlet_mle`, statistic
:math:`\sum_{k,w} E_q[\log\beta_{kw}]`).

Collapsed Gibbs (Minka 2000 fixed point, as in Wallach 2008 and Mallet): with the counts
:math:`n_{dk}` of the current sample, α maximises the Dirichlet-multinomial evidence
:math:`\prod_d p(n_{d\cdot} \mid \alpha)` by

.. math:: \alpha_k \leftarrow \alpha_k \frac{\sum_d \psi(n_{dk} + \alpha_k) - \psi(\alpha_k)}
          {\sum_d \psi(n_d + \alpha_0) - \psi(\alpha_0)},

and the symmetric η likewise from :math:`n_{kw}` (:func:`polya_fixed_point`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, polygamma

__all__ = ["dirichlet_mle", "dirichlet_newton_step", "symmetric_dirichlet_mle",
           "polya_fixed_point", "polya_fixed_point_symmetric"]

_FLOOR = 1e-10  # priors stay positive and finite


def _f(alpha: np.ndarray, s: np.ndarray, D: float) -> float:
    return float(D * (gammaln(alpha.sum()) - gammaln(alpha).sum()) + ((alpha - 1) * s).sum())


def dirichlet_newton_step(alpha: np.ndarray, s: np.ndarray, D: float) -> np.ndarray:
    """The Newton direction −H⁻¹g of f at α (module docstring): add it to α to step."""
    g = D * (digamma(alpha.sum()) - digamma(alpha)) + s
    q = -D * polygamma(1, alpha)
    z = D * polygamma(1, alpha.sum())
    b = (g / q).sum() / (1.0 / z + (1.0 / q).sum())
    return -(g - b) / q


def dirichlet_mle(alpha: np.ndarray, s: np.ndarray, D: float, max_iter: int = 50,
                  tol: float = 1e-10) -> np.ndarray:
    """The α (K,) maximising f(α) for the statistics ``s`` of ``D`` documents, from ``alpha``."""
    a = np.asarray(alpha, dtype=np.float64).copy()
    fa = _f(a, s, D)
    for _ in range(max_iter):
        step = dirichlet_newton_step(a, s, D)
        t = 1.0
        while t > 1e-8:
            new = a + t * step
            if (new > _FLOOR).all():
                fn = _f(new, s, D)
                if fn >= fa:
                    break
            t *= 0.5
        else:
            break  # no ascent step: at the optimum up to rounding
        done = np.abs(new - a).max() <= tol * max(1.0, np.abs(a).max())
        a, fa = new, fn
        if done:
            break
    return a


def symmetric_dirichlet_mle(eta: float, s: float, K: int, V: int, max_iter: int = 50,
                            tol: float = 1e-10) -> float:
    """The symmetric η maximising K[lnΓ(Vη) − V lnΓ(η)] + (η − 1) s (Newton, step halving)."""
    def f(e: float) -> float:
        return float(K * (gammaln(V * e) - V * gammaln(e)) + (e - 1) * s)

    e, fe = float(eta), f(float(eta))
    for _ in range(max_iter):
        g = K * V * (digamma(V * e) - digamma(e)) + s
        h = K * V * (V * polygamma(1, V * e) - polygamma(1, e))
        step, t = -g / h, 1.0
        while t > 1e-8:
            new = e + t * step
            if new > _FLOOR and f(new) >= fe:
                break
            t *= 0.5
        else:
            break
        done = abs(new - e) <= tol * max(1.0, e)
        e, fe = float(new), f(float(new))
        if done:
            break
    return e


def _histogram(counts: np.ndarray) -> np.ndarray:
    """Per column of an integer count matrix (rows, K), how many rows hold each value:
    (K, max + 1). The fixed point's sums over rows then need one ψ per distinct value."""
    c = np.asarray(counts, dtype=np.int64)
    width = int(c.max(initial=0)) + 1
    K = c.shape[1]
    flat = (np.arange(K) * width)[None, :] + c
    return np.bincount(flat.ravel(), minlength=K * width).reshape(K, width)


def _digamma_sum(hist: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Σ_rows ψ(n + a_k) − ψ(a_k) per column k, from its histogram (K, W) of counts n."""
    n = np.arange(hist.shape[1])
    return (hist * (digamma(n[None, :] + a[:, None]) - digamma(a)[:, None])).sum(1)


def polya_fixed_point(alpha: np.ndarray, counts: np.ndarray, max_iter: int = 100,
                      tol: float = 1e-8) -> np.ndarray:
    """Minka's fixed point for an asymmetric α (K,) from the integer rows of ``counts`` (D, K)."""
    a = np.asarray(alpha, dtype=np.float64).copy()
    h, hn = _histogram(counts), _histogram(np.asarray(counts).sum(1, keepdims=True))
    for _ in range(max_iter):
        den = _digamma_sum(hn, np.array([a.sum()]))[0]
        new = np.maximum(a * _digamma_sum(h, a) / den, _FLOOR)
        if np.abs(new - a).max() <= tol * a.max():
            return new
        a = new
    return a


def polya_fixed_point_symmetric(eta: float, counts: np.ndarray, max_iter: int = 100,
                                tol: float = 1e-8) -> float:
    """Minka's fixed point for a symmetric η from the integer rows of ``counts`` (K, V)."""
    e = float(eta)
    c = np.asarray(counts)
    V = c.shape[1]
    h, hn = _histogram(c.reshape(-1, 1)), _histogram(c.sum(1, keepdims=True))
    for _ in range(max_iter):
        num = _digamma_sum(h, np.array([e]))[0]
        den = V * _digamma_sum(hn, np.array([V * e]))[0]
        new = max(e * num / den, _FLOOR)
        if abs(new - e) <= tol * e:
            return new
        e = new
    return e
