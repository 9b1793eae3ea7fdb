r"""Resampling the concentrations of Dirichlet-process models by auxiliary variables.

**Top level** (Escobar & West 1995, §6): with K clusters among m draws from DP(γ, ·) and a
Gamma(a, b) prior (rate b), p(γ | K, m) ∝ Gamma(γ; a, b) γ^K Γ(γ)/Γ(γ + m). Given
x ~ Beta(γ + 1, m), γ is a two-component Gamma mixture:

.. math:: \gamma \sim \pi\,\mathrm{Gamma}(a + K, b - \log x) + (1 - \pi)\,
          \mathrm{Gamma}(a + K - 1, b - \log x),\qquad
          \frac{\pi}{1 - \pi} = \frac{a + K - 1}{m (b - \log x)}.

**Document level of the HDP** (Teh, Jordan, Beal & Blei 2006, appendix A): with m tables in
all and n_j customers in restaurant j, p(α | ·) ∝ Gamma(α; a, b) α^m Π_j Γ(α)/Γ(α + n_j).
Given w_j ~ Beta(α + 1, n_j) and s_j ~ Bernoulli(n_j / (n_j + α)),

.. math:: \alpha \sim \mathrm{Gamma}\big(a + m - \textstyle\sum_j s_j,\; b - \sum_j \log w_j\big).

Each function runs ``n_iter`` rounds of (auxiliary draws, concentration draw); the chain
leaves the exact conditional invariant (``tests/test_hdp.py`` compares long runs with the
posterior computed by quadrature).
"""

from __future__ import annotations

import numpy as np

__all__ = ["resample_top_concentration", "resample_doc_concentration"]


def resample_top_concentration(gamma: float, K: int, m: float, a: float, b: float,
                               rng: np.random.Generator, n_iter: int = 1) -> float:
    """γ | K clusters among m draws, Gamma(a, b) prior (Escobar & West 1995)."""
    if m <= 0 or K <= 0:
        return float(rng.gamma(a, 1.0 / b))
    for _ in range(n_iter):
        x = rng.beta(gamma + 1.0, m)
        rate = b - np.log(x)
        odds = (a + K - 1.0) / (m * rate)
        shape = a + K if rng.random() < odds / (1.0 + odds) else a + K - 1.0
        gamma = float(rng.gamma(shape, 1.0 / rate))
    return gamma


def resample_doc_concentration(alpha: float, m: float, n: np.ndarray, a: float, b: float,
                               rng: np.random.Generator, n_iter: int = 1) -> float:
    """α | m tables in all and the restaurants' customer counts ``n`` (Teh et al. 2006)."""
    n = np.asarray(n, dtype=np.float64)
    n = n[n > 0]  # an empty document has no tables and says nothing about α
    for _ in range(n_iter):
        w = rng.beta(alpha + 1.0, n)
        s = rng.random(n.size) < n / (n + alpha)
        alpha = float(rng.gamma(a + m - s.sum(), 1.0 / (b - np.log(w).sum())))
    return alpha
