r"""Principal component analysis by full or randomized SVD, on torch.

With the data centred, ``X_c = X - μ = U S Vᵀ`` (thin SVD), the principal axes are the rows of
``Vᵀ`` and the explained variances ``λ_j = s_j² / (n - 1)``. The first ``k`` axes ``W = V_{:k}``
minimise the reconstruction error ``Σ_n ‖x_n - μ - W Wᵀ (x_n - μ)‖²`` over all rank-``k``
orthogonal projections (Eckart-Young), and

.. math::  z = Wᵀ (x - μ) \ [/ \sqrt{λ}\ \text{when whitening}], \qquad x̂ = μ + W z.

The randomized solver [2]_ finds the range of ``X_c`` with a Gaussian sketch of
``k + n_oversamples`` columns refined by ``n_iter`` power iterations (QR-normalised), then takes
the exact SVD of the small projected matrix: ``O(n d k)`` instead of ``O(n d min(n, d))``.

``score_samples`` is the log-likelihood under probabilistic PCA [3]_ with the maximum-likelihood
noise variance ``σ² = mean of the discarded eigenvalues``:
``x ~ N(μ, C)``, ``C = W (Λ - σ² I) Wᵀ + σ² I``.

References
----------
.. [1] Jolliffe, *Principal Component Analysis*, 2nd ed., Springer, 2002.
.. [2] Halko, Martinsson & Tropp, "Finding structure with randomness: probabilistic algorithms
   for constructing approximate matrix decompositions", SIAM Review 53(2), 2011.
.. [3] Tipping & Bishop, "Probabilistic principal component analysis", JRSS B 61(3), 1999.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils import check_random_state

from unsup._io_checks import A
from unsup.base import BaseEstimator, report_progress
from unsup.data.validation import check_array
from unsup.likelihood import LikelihoodUndefined
from unsup.params import Integral, Interval, StrOptions
from unsup.registry import Demo, register_model

__all__ = ["PCA"]

_SOLVERS = ("auto", "full", "covariance_eigh", "randomized")


@register_model('pca', family='decomposition',
                summary='principal component analysis (full or randomized SVD, whitening)',
                demo=Demo("PCA (30 components)", params={"n_components": 30, "random_state": 0},
                          order=20))
class PCA(TransformerMixin, BaseEstimator):
    """Principal component analysis (full or randomized SVD), with whitening.

    Parameters
    ----------
    n_components : int or None
        Number of components to keep (None: ``min(n_samples, n_features)``).
    svd_solver : {"auto", "full", "covariance_eigh", "randomized"}
        "full": exact thin SVD of the centred data (float64); "covariance_eigh": eigenvectors
        of ``X_cᵀ X_c`` (float64; fast when n >> d); "randomized": Halko et al. (2011);
        "auto": scikit-learn's rule (covariance_eigh when d <= 1000 and n >= 10 d, else
        randomized when ``n_components < 0.8 min(n, d)`` and max(n, d) > 500, else full).
    whiten : bool
        Scale the codes to unit variance (divide by ``sqrt(explained_variance_)``).
    n_oversamples : int
        Extra sketch columns of the randomized solver.
    n_iter : int
        Power iterations of the randomized solver.
    device : {"auto", "cpu", "cuda"}
        Where to compute.
    random_state : int, RandomState or None
        Seed of the randomized solver's sketch.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Principal axes (unit rows), by decreasing explained variance; signs fixed so the
        largest-magnitude entry of each row is positive.
    explained_variance_ : ndarray of shape (n_components,)
        Variance along each axis, ``s² / (n - 1)``.
    explained_variance_ratio_ : ndarray of shape (n_components,)
        Fraction of the total variance.
    singular_values_ : ndarray of shape (n_components,)
        Singular values of the centred data.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean.
    noise_variance_ : float
        Probabilistic-PCA noise variance (mean of the discarded eigenvalues).
    n_components_ : int
        Number of components kept.
    n_features_in_ : int
        Number of input features.

    Examples
    --------
    >>> from unsup.decomposition import PCA
    >>> from unsup.data import load
    >>> pca = PCA(30, random_state=0).fit(load("mnist5k").X)
    >>> pca.components_.shape
    (30, 784)
    """

    # small constructor parameters for the conformance tests (tests/test_common.py): one
    # component fits scikit-learn's checks, whose data can have only two features
    _test_params = {"n_components": 1}


    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "svd_solver": [StrOptions(set(_SOLVERS))],
        "whiten": ["boolean"],
        "n_oversamples": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
    }

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"components_": A("f64", "n_components_", "n_features_in_"),
                     "mean_": A("f64", "n_features_in_"),
                     "explained_variance_": A("f64", "n_components_"),
                     "explained_variance_ratio_": A("f64", "n_components_"),
                     "singular_values_?": A("f64", "n_components_")}

    def __init__(
        self,
        n_components: int | None = None,
        *,
        svd_solver: str = "auto",
        whiten: bool = False,
        n_oversamples: int = 10,
        n_iter: int = 7,
        device: str = "auto",
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.svd_solver = svd_solver
        self.whiten = whiten
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter
        self.device = device
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> PCA:
        """Fit the principal axes of ``X`` (``y`` is ignored). Returns ``self``."""
        self._validate_params()
        Xt = self._validate(X, reset=True, min_samples=2)
        n, d = Xt.shape
        k = min(n, d) if self.n_components is None else int(self.n_components)
        if k > min(n, d):
            raise ValueError(f"n_components={k} must be <= min(n_samples, n_features) = "
                             f"{min(n, d)}")
        solver = self.svd_solver
        if solver == "auto":  # scikit-learn's rule
            if d <= 1000 and n >= 10 * d:
                solver = "covariance_eigh"
            elif max(n, d) > 500 and k < 0.8 * min(n, d):
                solver = "randomized"
            else:
                solver = "full"
        Xd = Xt.to(torch.float64)
        mean = Xd.mean(0)
        Xc = Xd - mean
        if solver == "full":
            _, S, Vt = torch.linalg.svd(Xc, full_matrices=False)
        elif solver == "covariance_eigh":
            evals, evecs = torch.linalg.eigh(Xc.T @ Xc)  # ascending
            S = evals.flip(0).clamp_min(0).sqrt()[: min(n, d)]
            Vt = evecs.flip(1).T[: min(n, d)]
        else:
            S, Vt = self._randomized(Xc, int(k))
        report_progress("PCA", 1, 1)
        # deterministic signs: largest |entry| of each axis positive
        idx = Vt[:k].abs().argmax(1)
        signs = torch.sign(Vt[:k].gather(1, idx[:, None]).squeeze(1))
        signs[signs == 0] = 1
        Vt_k = Vt[:k] * signs[:, None]
        var = S**2 / (n - 1)
        total = Xc.pow(2).sum() / (n - 1)
        self.mean_ = mean.cpu().numpy()
        self.components_ = Vt_k.cpu().numpy()
        self.singular_values_ = S[:k].cpu().numpy()
        self.explained_variance_ = var[:k].cpu().numpy()
        self.explained_variance_ratio_ = (var[:k] / total).cpu().numpy()
        rank = min(n, d)
        if k < rank:
            self.noise_variance_ = float((total - var[:k].sum()) / (rank - k))
        else:
            self.noise_variance_ = 0.0
        self.n_components_ = int(k)
        self.n_samples_ = int(n)
        self.solver_ = solver
        return self

    def _randomized(self, Xc: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, d = Xc.shape
        ell = min(k + int(self.n_oversamples), min(n, d))
        g = torch.Generator(device=Xc.device)
        g.manual_seed(int(check_random_state(self.random_state).randint(0, 2**31 - 1)))
        Q = torch.randn(d, ell, generator=g, device=Xc.device, dtype=Xc.dtype)
        Q, _ = torch.linalg.qr(Xc @ Q)
        for _ in range(int(self.n_iter)):  # power iterations, QR-normalised (Halko Alg. 4.4)
            Q, _ = torch.linalg.qr(Xc.T @ Q)
            Q, _ = torch.linalg.qr(Xc @ Q)
        _, S, Vt = torch.linalg.svd(Q.T @ Xc, full_matrices=False)
        return S, Vt

    # -- mapping ------------------------------------------------------------------------------
    def _t(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(getattr(self, name), dtype=dtype, device=self._device())

    def transform(self, X: Any) -> np.ndarray:
        """Project onto the principal axes: ``z = Wᵀ(x - μ)`` (÷ ``sqrt(λ)`` when whitening)."""
        Xt = self._validate(X, reset=False)
        dt = Xt.dtype
        Z = (Xt - self._t("mean_", dt)) @ self._t("components_", dt).T
        if self.whiten:
            Z = Z / self._t("explained_variance_", dt).clamp_min(1e-12).sqrt()
        return Z.cpu().numpy()

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Map codes back: ``x̂ = μ + W z`` (× ``sqrt(λ)`` first when whitening)."""
        self._check_fitted()
        Zt = check_array(Z, name="Z", device=self._device())
        if Zt.shape[1] != self.n_components_:
            raise ValueError(f"Z has {Zt.shape[1]} columns, but this PCA has "
                             f"{self.n_components_} components")
        dt = Zt.dtype
        if self.whiten:
            Zt = Zt * self._t("explained_variance_", dt).sqrt()
        return (Zt @ self._t("components_", dt) + self._t("mean_", dt)).cpu().numpy()

    def reconstruct(self, X: Any) -> np.ndarray:
        """Orthogonal projection of ``X`` onto the principal subspace (plus the mean)."""
        Xt = self._validate(X, reset=False)
        dt = Xt.dtype
        W = self._t("components_", dt)
        mu = self._t("mean_", dt)
        return (((Xt - mu) @ W.T) @ W + mu).cpu().numpy()

    # -- probabilistic PCA likelihood -----------------------------------------------------------
    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood (nats) of each row under probabilistic PCA (Tipping & Bishop, 1999).

        ``C = W diag(λ - σ²) Wᵀ + σ² I``; evaluated through the Woodbury identity and the
        matrix determinant lemma in ``O(d k)`` per sample, never forming ``C``.
        """
        Xt = self._validate(X, reset=False).to(torch.float64)
        s2 = float(self.noise_variance_)
        if s2 <= 0:
            raise LikelihoodUndefined(
                "score_samples needs n_components < min(n_samples, n_features): with all "
                "components kept the noise variance is 0 and the likelihood is degenerate")
        d = Xt.shape[1]
        W = self._t("components_", torch.float64)
        lam = self._t("explained_variance_", torch.float64).clamp_min(s2)
        R = Xt - self._t("mean_", torch.float64)
        Z = R @ W.T
        # C^{-1} = (I - W^T diag(1 - s2/lam) W) / s2 ;  log|C| = sum log lam + (d - k) log s2
        maha = (R.pow(2).sum(1) - (Z.pow(2) * (1 - s2 / lam)).sum(1)) / s2
        logdet = torch.log(lam).sum() + (d - lam.numel()) * math.log(s2)
        return (-0.5 * (d * math.log(2 * math.pi) + logdet + maha)).cpu().numpy()

    def score(self, X: Any, y: Any = None) -> float:
        """Mean probabilistic-PCA log-likelihood per sample (nats)."""
        return float(np.mean(self.score_samples(X)))
