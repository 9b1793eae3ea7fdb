"""Gaussian mixture models fitted by the EM algorithm on sufficient statistics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import DensityMixin
from sklearn.utils import check_random_state

from unsup import distributed as ud
from unsup import ops
from unsup._io_checks import A
from unsup._numba import HAVE_NUMBA, row_blocks, run_blocks
from unsup.base import BaseEstimator, make_generator
from unsup.cluster._gmm_diag import e_step_rows
from unsup.cluster._lloyd import kmeans_plusplus, lloyd_pass, sample_rows
from unsup.cluster.kmeans import KMeans
from unsup.data.validation import check_int, check_min_samples
from unsup.ops import chunk_rows, chunks, sq_distances, sq_norms
from unsup.params import Integral, Interval, Real, StrOptions
from unsup.registry import Demo, register_model
from unsup.train.em import EMEngine, em_chunk_rows, global_count

__all__ = ["GaussianMixture"]

_COV_TYPES = ("full", "tied", "diag", "spherical")
#: diag / spherical mixtures run the E-step row by row in one compiled pass (:mod:`._gmm_diag`)
#: for float64 data with D ≥ ROWS_KERNEL_MIN_D and K·D ≤ ROWS_KERNEL_KD, for float32 data with
#: D ≥ ROWS_KERNEL_F32_MIN_D and K·D ≤ ROWS_KERNEL_F32_KD, on one thread, or on T threads when
#: there are at least ROWS_KERNEL_BLOCK rows per thread. Whole fits against the GEMM path
#: (BENCHMARKS.md): float64 at one thread 0.74-0.92x for D = 16-64, K = 8-64 and 0.51-0.93x for
#: D = 50-784, K = 4-32 (1.03-1.30x at D = 2, 1.01x at D = 784, K = 32: excluded); at two
#: threads 0.70-1.03x on 10^5 rows but 1.0-1.27x on 10^4 (MKL's two-thread GEMMs win there).
#: Float32 GEMMs run twice as fast: the pass won only at D = 784 with K ≤ 10 (0.74-0.86x; there
#: its float64 statistics also kept MNIST's fit ~10x closer to the float64 fit) and at D = 128,
#: K = 4, and lost elsewhere (1.03-1.66x).
ROWS_KERNEL_MIN_D = 16
ROWS_KERNEL_KD = 2**14
ROWS_KERNEL_F32_MIN_D = 256
ROWS_KERNEL_F32_KD = 2**13
ROWS_KERNEL_BLOCK = 2**14
#: full covariances of float64 data with D ≤ QUAD_MAX_D and K ≥ max(QUAD_MIN_K, D): the
#: Mahalanobis terms and Σγxxᵀ from the rows' second moments [x_i x_j, i ≤ j] (one GEMM each,
#: long inner dimensions) instead of K D-wide products. One E-step and its statistics, 10⁴
#: rows, float64, 1 thread (BENCHMARKS.md): D = 2, K = 64 6.7 against 34 ms; D = 16, K = 64
#: 35 against 112; D = 64, K = 64 558 against 1066; D = 32, K = 32 80 against 112; but D = 64,
#: K = 32 451 against 406 and D = 50, K = 10 119 against 106 (a GEMM K columns wide runs
#: slowly). Not for float32: x'Λx − 2μ'Λx + μ'Λμ cancels, and in float32 the log-densities
#: of narrow components far from the data's centre would lose digits that (x − μ)P keeps.
QUAD_MAX_D = 64
QUAD_MIN_K = 32
_LOG_TINY = {t: math.log(torch.finfo(t).tiny) + 1.0 for t in (torch.float32, torch.float64)}
_INITS = ("kmeans", "k-means++", "random", "random_from_data")


class _Params:
    """Mixture parameters in the centred coordinates used during fitting (float64)."""

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, cov: torch.Tensor,
                 cov_type: str) -> None:
        self.weights, self.means, self.cov, self.cov_type = weights, means, cov, cov_type
        self.prec_chol = _precision_cholesky(cov, cov_type)
        D = means.shape[1]
        if cov_type == "full":
            self.log_det = torch.log(torch.diagonal(self.prec_chol, dim1=1, dim2=2)).sum(1)
            self.mu_p = torch.einsum("kd,kde->ke", means, self.prec_chol)
        elif cov_type == "tied":
            self.log_det = torch.log(torch.diagonal(self.prec_chol)).sum().expand(len(weights))
            self.mu_p = means @ self.prec_chol
        elif cov_type == "diag":
            self.log_det = torch.log(self.prec_chol).sum(1)
            self.prec = self.prec_chol**2
        else:
            self.log_det = D * torch.log(self.prec_chol)
            self.prec = self.prec_chol**2
        self.log_weights = torch.log(weights)
        self._cache: dict[Any, dict[str, torch.Tensor]] = {}

    def _terms(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The parameters the E-step needs, in the E-step's dtype (cached)."""
        if dtype not in self._cache:
            K, D = self.means.shape
            t = {"bias": (-0.5 * D * math.log(2 * math.pi) + self.log_det + self.log_weights)}
            if self.cov_type == "full":
                t["P"] = self.prec_chol.permute(1, 0, 2).reshape(D, K * D)  # [P_1 | ... | P_K]
                t["mu_p"] = self.mu_p
            elif self.cov_type == "tied":
                t["P"], t["mu_p"] = self.prec_chol, self.mu_p
            else:
                prec = self.prec if self.cov_type == "diag" else self.prec.unsqueeze(1).expand(K, D)
                # −½ maha = −½ Σ_d prec (x² − 2 μ x + μ²) = [x, x²] · W + c
                t["Wt"] = torch.cat([self.means * prec, -0.5 * prec], 1)
                t["W"] = t["Wt"].T.contiguous()
                t["bias"] = t["bias"] - 0.5 * ((self.means**2) * prec).sum(1)
            self._cache[dtype] = {k: v.to(dtype) for k, v in t.items()}
        return self._cache[dtype]

    def quad_terms(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        r"""Full covariances as a linear function of [x, x_i x_j (i ≤ j)]: with Λ = Σ⁻¹,
        ``bias_k − ½ (x − μ_k)ᵀ Λ_k (x − μ_k) = c_k + x·(Λ_k μ_k) − ½ Σ_{i≤j} w_ij x_i x_j``
        with w_ii = Λ_ii, w_ij = 2 Λ_ij; returns ``W1`` (D × K), ``Wq`` (D(D+1)/2 × K), ``c``
        (K), computed in float64 and cached in ``dtype``."""
        key = ("quad", dtype)
        if key not in self._cache:
            K, D = self.means.shape
            lam = self.prec_chol @ self.prec_chol.transpose(1, 2)
            lam_mu = torch.einsum("kde,ke->kd", lam, self.means)
            i, j = torch.triu_indices(D, D, device=lam.device)
            wq = lam[:, i, j] * torch.where(i == j, -0.5, -1.0).to(lam.dtype)
            c = self._terms(torch.float64)["bias"] - 0.5 * (lam_mu * self.means).sum(1)
            t = {"W1": lam_mu.T, "Wq": wq.T, "c": c}
            self._cache[key] = {k: v.to(dtype).contiguous() for k, v in t.items()}
        return self._cache[key]

    def weighted_log_prob(self, X: torch.Tensor, XX2: torch.Tensor | None = None
                          ) -> torch.Tensor:
        r"""``ln π_k + ln N(x_n | μ_k, Σ_k)`` for every row and component (n×K), in X's dtype.

        For diag / spherical covariances ``XX2`` may hold ``[X, X²]`` (n×2D), which makes the
        Mahalanobis terms one GEMM.
        """
        N, D = X.shape
        K = len(self.weights)
        t = self._terms(X.dtype)
        if self.cov_type == "full":
            out = torch.empty(N, K, dtype=X.dtype, device=X.device)
            neg_mu_p = -t["mu_p"].reshape(1, K * D)
            # chunks of ~2**20 elements of Y: the square and the sum stay in cache
            for s in chunks(N, chunk_rows(K * D, N, max(1, min(ops._BLOCK_ELEMS, 2**20)))):
                Y = torch.addmm(neg_mu_p, X[s], t["P"])  # rows of (x P_k − μ_k P_k), n × K·D
                out[s] = Y.view(-1, K, D).square_().sum(-1).mul_(-0.5).add_(t["bias"])
            return out
        if self.cov_type == "tied":
            return sq_distances(X @ t["P"], t["mu_p"]).mul_(-0.5).add_(t["bias"])
        if XX2 is None:
            XX2 = torch.cat([X, X * X], 1)
        return torch.addmm(t["bias"], XX2, t["W"])


def _second_moments(X: torch.Tensor) -> torch.Tensor:
    """[x_i x_j for i ≤ j] of every row (n × D(D+1)/2, in ``torch.triu_indices`` order)."""
    n, D = X.shape
    Z = torch.empty(n, D * (D + 1) // 2, dtype=X.dtype, device=X.device)
    o = 0
    for i in range(D):  # D slice products: no index tensors of n × D(D+1)/2
        torch.mul(X[:, i : i + 1], X[:, i:], out=Z[:, o : o + D - i])
        o += D - i
    return Z


def _bound_terms(ll: torch.Tensor, q_lr: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
    """A chunk's ``objective`` Σ ln p(x), ``bound`` L(q, θ) = Σ q ln γ + Σ ln p(x) − Σ q ln q
    and ``kl`` = Σ q ln q − Σ q ln γ (q the previous responsibilities, γ the new), each (1,)."""
    return {"objective": ll.reshape(1), "bound": (q_lr + ll - h).reshape(1),
            "kl": (h - q_lr).reshape(1)}


def _normalise(wlp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Responsibilities γ, ln γ and ln Σ_k e^wlp from a K×n block of ln π_k p(x | k),
    overwriting it (it becomes ln γ, exact).

    One exp: e = exp(wlp − max_k) gives both γ = e / Σ_k e and ln p(x) = max_k + ln Σ_k e.
    Below ln(tiny) exp returns subnormals, and a GEMM over subnormal responsibilities runs
    several times slower on x86; held at ln(K·tiny) + 1, every γ stays normal after the
    division by Σ_k e ≤ K, and moves by at most e·K·tiny (~1e-36 in float32 at K = 10);
    ln γ keeps its exact value (the bound's Σ q ln γ)."""
    top = wlp.amax(0)
    wlp.sub_(top)
    resp = wlp.clamp(min=_LOG_TINY[wlp.dtype] + math.log(wlp.shape[0])).exp_()
    total = resp.sum(0)
    resp.div_(total)
    log_total = torch.log(total)
    return resp, wlp.sub_(log_total), top.add_(log_total)


def _precision_cholesky(cov: torch.Tensor, cov_type: str) -> torch.Tensor:
    """Upper-triangular factors P with Σ⁻¹ = P Pᵀ (or 1/σ for diag / spherical)."""
    msg = ("Fitting the mixture model failed because some components have ill-defined "
           "empirical covariance (for instance caused by singleton or collapsed samples). "
           "Try to decrease the number of components, or increase reg_covar.")
    if cov_type in ("full", "tied"):
        L, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise ValueError(msg)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device).expand_as(cov)
        return torch.linalg.solve_triangular(L, eye, upper=False).transpose(-1, -2)
    if bool((cov <= 0).any()):
        raise ValueError(msg)
    return 1.0 / torch.sqrt(cov)


INIT_ROWS = 4_096  # rows the k-means initialisation sees at least (all rows when fewer)
INIT_ROWS_PER_COMPONENT = 64  # ... and at least this many per component


def _init_rows(n_local: int, K: int, gen: torch.Generator, device: torch.device
               ) -> torch.Tensor | None:
    """This shard's rows of the k-means initialisation's subsample: the
    ``max(INIT_ROWS, INIT_ROWS_PER_COMPONENT·K)`` rows with the smallest of one uniform per
    global row (drawn alike on every rank, so that sharded data pick the rows a one-process
    fit picks), in their order; None (every row) when there are no more than that."""
    off, n_all = ud.row_offset(n_local, device)
    m = max(INIT_ROWS, INIT_ROWS_PER_COMPONENT * K)
    if n_all <= m:
        return None
    u = torch.rand(n_all, generator=gen, dtype=torch.float64)
    cut = torch.kthvalue(u, m).values
    return torch.nonzero(u[off:off + n_local] <= cut).squeeze(1).to(device)


def _nearest(X: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of ``C`` for every row of ``X`` (k-means' chunked pass)."""
    return lloyd_pass(X, sq_norms(X), C.unsqueeze(0), need_stats=False)[3][0]


def _gaussianmixture_state_shapes(p: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    """The arrays a model file must hold, by covariance type (checked by :func:`unsup.io.load`)."""
    D = "n_features_in_"
    cov = {"full": ("n_components", D, D), "tied": (D, D), "diag": ("n_components", D),
           "spherical": ("n_components",)}[p["covariance_type"]]
    return {"weights_": A("f64", "n_components"), "means_": A("f64", "n_components", D),
            "covariances_": A("f64", *cov), "precisions_?": A("f64", *cov),
            "precisions_cholesky_?": A("f64", *cov)}


@register_model('gmm', family='cluster', aliases=('gaussian-mixture',),
                summary='Gaussian mixture fitted by EM (full/tied/diag/spherical covariances)',
                demo=Demo("Gaussian mixture (K=10, diagonal covariances, EM)",
                          params={"n_components": 10, "covariance_type": "diag",
                                  "reg_covar": 1e-3, "max_iter": 100, "random_state": 0},
                          quick={"max_iter": 30}, order=12))
class GaussianMixture(EMEngine, DensityMixin, BaseEstimator):
    r"""Gaussian mixture model fitted by expectation-maximisation.

    The density is :math:`p(x) = \sum_k \pi_k \mathcal N(x \mid \mu_k, \Sigma_k)`. For any
    distribution q over the component indicators,

    .. math:: \ln p(X\mid\theta) = \mathcal L(q,\theta) + \mathrm{KL}(q \,\|\, p(Z\mid X,\theta)),
              \quad \mathcal L(q,\theta) = \sum_n \sum_k q_{nk}
              \big(\ln \pi_k + \ln\mathcal N(x_n\mid\mu_k,\Sigma_k) - \ln q_{nk}\big).

    The E-step sets :math:`q_{nk} = \gamma_{nk} = p(k \mid x_n, \theta)` (computed with
    log-sum-exp), which makes KL zero; the M-step maximises :math:`\mathcal L` over θ using the
    sufficient statistics :math:`N_k=\sum_n\gamma_{nk}`, :math:`\sum_n \gamma_{nk} x_n` and
    :math:`\sum_n \gamma_{nk} x_n x_n^\top`. Neither step lowers ln p(X|θ). Under ``torchrun``
    the statistics are summed across ranks, so sharded data give the single-process fit.

    ``history_`` records, for every iteration t, the mean per-sample log-likelihood at θ_t,
    the bound :math:`\mathcal L(q_{t-1}, \theta_t)` with the responsibilities of the previous
    E-step, and :math:`\mathrm{KL}(q_{t-1}\,\|\,p(Z\mid X,\theta_t))`, so the identity
    above can be checked at every step (``log_likelihood == bound + kl``).

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        Stop when the mean log-likelihood improves by less than ``tol``.
    reg_covar : float, default=1e-6
        Added to the covariance diagonals, keeping them positive definite (as in
        scikit-learn). The M-step is then a regularised update rather than the exact
        maximiser of L, so with a large ``reg_covar`` the log-likelihood can fall slightly
        between iterations; the identity ln p = L + KL still holds exactly.
    max_iter : int, default=100
    n_init : int, default=1
        Restarts; the one with the highest likelihood is kept.
    init : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        Initial responsibilities: k-means labels, k-means++ seeds' nearest points, random
        soft responsibilities, or K random data points as means. "kmeans" runs three
        k-means restarts on at most ``max(4096, 64 K)`` rows drawn at random (all rows when
        there are fewer), then gives every row its nearest centre.
    device, random_state, verbose : as for :class:`~unsup.cluster.KMeans`.

    Attributes
    ----------
    weights_ (K,), means_ (K, D), covariances_, precisions_, precisions_cholesky_
        (shapes by ``covariance_type`` as in scikit-learn),
    converged_ : bool, n_iter_ : int, lower_bound_ : float (mean log-likelihood of the
    training data at the final parameters), history_ : list of dicts with keys
    ``iter``, ``log_likelihood``, ``bound``, ``kl`` (per-sample means, nats),
    n_features_in_ : int.

    References
    ----------
    Dempster, Laird & Rubin (1977). Neal & Hinton (1998), A view of the EM algorithm that
    justifies incremental, sparse, and other variants. Bishop (2006), PRML §9.2–9.4.
    """

    _test_params: dict[str, Any] = {"n_components": 2, "covariance_type": "diag",
                                   "max_iter": 20}

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(_COV_TYPES))],
        "tol": [Interval(Real, 0, None, closed="left")],
        "reg_covar": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions(set(_INITS))],
    }

    # set for the duration of a fit: whether the E-step runs in the compiled pass, and whether
    # full covariances go through the rows' second moments
    _rows_kernel = False
    _quad = False

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = staticmethod(_gaussianmixture_state_shapes)

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init: str = "kmeans",
        device: str = "auto",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init = init
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- the math for the EM engine (unsup.train.em) ------------------------------------------
    _em_objective_name = "log_likelihood"

    def _stats(self, X: torch.Tensor, resp: torch.Tensor, Z: torch.Tensor | None = None
               ) -> dict[str, torch.Tensor]:
        """Sufficient statistics of a chunk, in float64: N_k, Σγx, and Σγxxᵀ (or its diagonal).

        For diag / spherical, ``X`` is ``[X, X²]`` and one GEMM gives Σγx and Σγx². For full
        covariances with ``Z`` (the rows' second moments, :func:`_second_moments`), Σγxxᵀ is
        the one GEMM Zᵀγ, unpacked.
        """
        ct = self.covariance_type
        f8 = torch.float64
        st = {"nk": resp.sum(0).to(f8)}  # (dtype=f8 would copy the n×K block to float64)
        if ct in ("diag", "spherical"):
            D = X.shape[1] // 2
            both = (resp.T @ X).to(f8)
            st["sx"], st["sxx"] = both[:, :D].contiguous(), both[:, D:].contiguous()
            return st
        st["sx"] = (resp.T @ X).to(f8)
        if Z is not None:
            K, D = resp.shape[1], X.shape[1]
            i, j = torch.triu_indices(D, D, device=X.device)
            sq = (Z.T @ resp).T.to(f8)  # K × D(D+1)/2
            sxx = torch.empty(K, D, D, dtype=f8, device=X.device)
            sxx[:, i, j] = sq
            sxx[:, j, i] = sq
            st["sxx"] = sxx
        elif ct == "full":
            st["sxx"] = torch.stack([(X * resp[:, k : k + 1]).T @ X
                                     for k in range(resp.shape[1])]).to(f8)
        else:
            st["sxx"] = (X.T @ X).to(f8)
        return st

    def _em_row_width(self, params: _Params) -> int:
        if self._rows_kernel:  # no temporaries per row: chunks as large as the engine allows
            return 1
        K, D = params.means.shape
        if self._quad:  # chunks of ≤ 2**20 second moments (2**18 or 2**21: up to 2x slower),
            # and no longer than the other path's (shorter sums)
            return max(D * (D + 1) // 8, self._row_width(K, D))
        return self._row_width(K, D)

    def _row_width(self, K: int, D: int) -> int:
        # per row: a few K-vectors; "full" chunks its K×D temporaries itself, and a chunk of
        # 2**20 / (K·D) rows would make its K-per-component statistics GEMMs too small
        return 4 * K + (D if self.covariance_type == "full" else 0)

    def _em_m_step(self, stats: dict[str, torch.Tensor], params: Any, X: torch.Tensor
                   ) -> _Params:
        nk, sx, sxx = stats["nk"], stats["sx"], stats["sxx"]
        eps = 10 * torch.finfo(nk.dtype).eps
        nk = nk + eps
        n = nk.sum()
        means = sx / nk[:, None]
        D = means.shape[1]
        reg = float(self.reg_covar)
        ct = self.covariance_type
        if ct == "full":
            cov = sxx / nk[:, None, None] - means[:, :, None] * means[:, None, :]
            cov = 0.5 * (cov + cov.transpose(1, 2))
            cov = cov + reg * torch.eye(D, dtype=cov.dtype, device=cov.device)
        elif ct == "tied":
            cov = (sxx - (means * nk[:, None]).T @ means) / n
            cov = 0.5 * (cov + cov.T) + reg * torch.eye(D, dtype=cov.dtype, device=cov.device)
        else:
            cov = (sxx / nk[:, None] - means**2).clamp(min=0) + reg
            if ct == "spherical":
                cov = cov.mean(1)
        return _Params(nk / n, means, cov, ct)

    def _init_resp(self, X: torch.Tensor, gen: torch.Generator, rs: np.random.RandomState
                   ) -> torch.Tensor:
        K, N = self.n_components, X.shape[0]
        if self.init == "kmeans":
            # three k-means restarts, batched in the same GEMMs (in float32: only the partition
            # matters). With one, as scikit-learn, our mean log-likelihood on MNIST PCA-50 was
            # 0.7% (diag) and 1.3% (full) below scikit-learn's over seeds 0-2 (BENCHMARKS.md).
            # On a subsample of large data: the partition, not the last digit of the centres,
            # is what EM needs, and k-means on every row was ~80% of a diagonal mixture's fit.
            rows = _init_rows(N, K, gen, X.device)
            km = KMeans(K, n_init=3, random_state=rs, device=str(X.device))  # cuda:1 stays cuda:1
            km.fit((X if rows is None else X[rows]).float().contiguous())
            if rows is None:
                labels = torch.as_tensor(km.labels_, device=X.device)
            else:
                labels = _nearest(X, torch.as_tensor(km.cluster_centers_, device=X.device,
                                                     dtype=X.dtype))
        elif self.init == "random":
            r = torch.rand(N, K, generator=gen, dtype=torch.float64).to(X.device, X.dtype)
            return r / r.sum(1, keepdim=True)
        else:
            if self.init == "k-means++":
                C = kmeans_plusplus(X, K, 1, gen)[0]
            else:
                u = torch.rand(1, K, generator=gen, dtype=torch.float64).to(X.device)
                C = sample_rows(X, torch.ones(1, N, device=X.device), u)[0]
            labels = _nearest(X, C)
        resp = torch.zeros(N, K, dtype=X.dtype, device=X.device)
        resp[torch.arange(N, device=X.device), labels] = 1.0
        return resp

    def _em_initialize(self, X: torch.Tensor, gen: torch.Generator, n_runs: int) -> _Params:
        Xd = X
        if self.covariance_type in ("diag", "spherical"):
            Xd = X[:, : X.shape[1] // 2].contiguous()
        resp = self._init_resp(Xd, gen, self._rs)
        self._q = resp.T.contiguous()  # previous E-step's responsibilities (K×N), for the bound
        self._qlogq = torch.special.xlogy(resp, resp).sum(1)  # Σ_k q ln q per row
        stats: dict[str, torch.Tensor] = {}
        # (not K·D per row: with K·D above the cache block that made one-row chunks, 10,000
        # GEMMs of one row for MNIST's diagonal mixture with K = 256)
        width = self._row_width(self.n_components, Xd.shape[1])
        for s in chunks(X.shape[0], em_chunk_rows(width, X.shape[0])):
            for k, v in self._stats(X[s], resp[s]).items():
                stats[k] = stats[k] + v if k in stats else v
        ud.all_reduce_sum(*stats.values())
        return self._em_m_step(stats, None, X)

    def _em_e_step(self, X: torch.Tensor, params: _Params, rows: slice
                   ) -> dict[str, torch.Tensor]:
        if self._rows_kernel:
            return self._e_step_rows(X, params, rows)
        # Work with K×n (components × rows): the log-sum-exp over K is then a reduction over
        # an outer dimension, which vectorises across rows, and the GEMMs keep the long
        # dimension last (MKL was 2-5× slower for an n×K output with K ~ 10).
        Z = None
        if self.covariance_type in ("diag", "spherical"):
            t = params._terms(X.dtype)
            wlp = torch.addmm(t["bias"].unsqueeze(1), t["W"].T, X.T)  # K × n
        elif self._quad:
            t, Z = params.quad_terms(X.dtype), _second_moments(X)
            wlp = torch.addmm(torch.addmm(t["c"], X, t["W1"]), Z, t["Wq"]).T
        else:
            wlp = params.weighted_log_prob(X).T
        resp, log_resp, log_norm = _normalise(wlp)
        # ln p = L(q, θ) + KL(q || p(Z|X, θ)) with q from the previous E-step; with
        # Σ_k q = 1: Σ q·wlp = Σ q·log_resp + Σ ln p(x), so both terms use log_resp
        q, qlogq = self._q[:, rows], self._qlogq[rows]
        f8 = torch.float64
        # sums over k in X's dtype, then over rows in float64: no float64 copy of a K×n block
        ll = log_norm.sum(dtype=f8)
        q_lr = (q * log_resp).sum(0).sum(dtype=f8)
        h = qlogq.sum(dtype=f8)
        self._q[:, rows] = resp
        self._qlogq[rows] = (resp * log_resp).sum(0)
        return {**self._stats(X, resp.T, Z), **_bound_terms(ll, q_lr, h)}

    def _e_step_rows(self, X: torch.Tensor, params: _Params, rows: slice
                     ) -> dict[str, torch.Tensor]:
        """The diag / spherical E-step and statistics in one compiled pass over the rows
        (:func:`._gmm_diag.e_step_rows`), one block of rows per torch thread; the blocks'
        sums are added in a fixed order."""
        t = params._terms(X.dtype)
        Xn, Wt, bias = X.contiguous().numpy(), t["Wt"].numpy(), t["bias"].numpy()
        q, qlogq = self._q.numpy(), self._qlogq.numpy()
        K, w = Wt.shape
        start = rows.start or 0
        tiny = float(np.finfo(Xn.dtype).tiny)

        def run(b: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            nk, S, out = np.zeros(K), np.zeros((K, w)), np.zeros(3)
            e_step_rows(Xn[b], Wt, bias, q, qlogq, start + b.start, nk, S, out, tiny)
            return nk, S, out

        parts = run_blocks(run, row_blocks(Xn.shape[0], min_rows=ROWS_KERNEL_BLOCK))
        nk, S, out = parts[0]
        for p in parts[1:]:
            nk, S, out = nk + p[0], S + p[1], out + p[2]
        D = w // 2
        ll, q_lr, h = (torch.tensor(v, dtype=torch.float64) for v in out)
        return {"nk": torch.from_numpy(nk), "sx": torch.from_numpy(S[:, :D].copy()),
                "sxx": torch.from_numpy(S[:, D:].copy()), **_bound_terms(ll, q_lr, h)}

    def _em_history(self, stats: dict[str, torch.Tensor], n_total: int, j: int
                    ) -> dict[str, float]:
        return {"bound": float(stats["bound"][j]) / n_total,
                "kl": float(stats["kl"][j]) / n_total}

    # -- public API -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> GaussianMixture:
        """Fit the mixture to ``X`` (N×D) by EM. Returns ``self``."""
        self._validate_params()
        K, n_init = int(self.n_components), int(self.n_init)
        X = self._validate(X, reset=True)
        if X.dtype != torch.float32:
            X = X.to(torch.float64)
        check_min_samples(global_count(X.shape[0], X.device), K, "n_components")
        # Work in centred coordinates (shift-invariant; keeps Σγxxᵀ − Nμμᵀ accurate).
        mom = torch.cat([X.sum(0, dtype=torch.float64),
                         torch.tensor([float(X.shape[0])], dtype=torch.float64, device=X.device)])
        ud.all_reduce_sum(mom)
        shift = mom[:-1] / mom[-1]
        Xc = X - shift.to(X.dtype)
        if self.covariance_type in ("diag", "spherical"):
            Xc = torch.cat([Xc, Xc * Xc], 1)  # [X, X²]: E- and M-step are one GEMM each
        self._rs = check_random_state(self.random_state)
        gen = make_generator(self._rs, torch.device("cpu"))
        (N, D), T = X.shape, torch.get_num_threads()
        d_min, kd_max = ((ROWS_KERNEL_MIN_D, ROWS_KERNEL_KD) if Xc.dtype == torch.float64
                         else (ROWS_KERNEL_F32_MIN_D, ROWS_KERNEL_F32_KD))
        self._rows_kernel = (self.covariance_type in ("diag", "spherical") and HAVE_NUMBA
                             and Xc.device.type == "cpu" and d_min <= D and K * D <= kd_max
                             and (T == 1 or N >= T * ROWS_KERNEL_BLOCK))
        self._quad = (self.covariance_type == "full" and Xc.dtype == torch.float64
                      and D <= QUAD_MAX_D and K >= max(QUAD_MIN_K, D))
        try:
            res = self._em_fit(Xc, n_init=n_init, max_iter=self.max_iter, tol=self.tol,
                               generator=gen, stage="EM", verbose=self.verbose)
        finally:
            for a in ("_q", "_qlogq", "_rs", "_rows_kernel", "_quad"):
                self.__dict__.pop(a, None)
        self._store(res.params, shift)
        self.converged_ = bool(res.converged)
        self.n_iter_ = int(res.n_iter)
        self.lower_bound_ = float(res.objective)
        self.history_ = res.history
        return self

    def __sklearn_is_fitted__(self) -> bool:
        # not n_features_in_: a fit that fails after validating X has already set it
        return hasattr(self, "weights_")

    def _store(self, p: _Params, shift: torch.Tensor) -> None:
        ct = self.covariance_type
        self.weights_ = p.weights.cpu().numpy()
        self.means_ = (p.means + shift).cpu().numpy()
        self.covariances_ = p.cov.cpu().numpy()
        self.precisions_cholesky_ = p.prec_chol.cpu().numpy()
        if ct == "full":
            self.precisions_ = np.einsum("kij,klj->kil", self.precisions_cholesky_,
                                         self.precisions_cholesky_)
        elif ct == "tied":
            self.precisions_ = self.precisions_cholesky_ @ self.precisions_cholesky_.T
        else:
            self.precisions_ = self.precisions_cholesky_**2

    def _params(self, device: torch.device) -> _Params:
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)

        return _Params(t(self.weights_), t(self.means_), t(self.covariances_),
                       self.covariance_type)

    def _wlp(self, X: Any) -> torch.Tensor:
        X = self._validate(X, reset=False, dtype=torch.float64)
        return self._params(X.device).weighted_log_prob(X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Exact log-density ln p(x) of each row, in nats."""
        return torch.logsumexp(self._wlp(X), 1).cpu().numpy()

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per sample (nats)."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities p(k | x) (N×K)."""
        return torch.softmax(self._wlp(X), 1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row."""
        return self._wlp(X).argmax(1).cpu().numpy()

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).predict(X)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` points; returns ``(X, component labels)``."""
        self._check_fitted()
        n = check_int("n_samples", n_samples)
        rs = check_random_state(self.random_state)
        counts = rs.multinomial(n, self.weights_)
        D = self.means_.shape[1]
        out, labels = [], []
        for k, c in enumerate(counts):
            z = rs.standard_normal((c, D))
            ct = self.covariance_type
            if ct == "full":
                x = self.means_[k] + z @ np.linalg.cholesky(self.covariances_[k]).T
            elif ct == "tied":
                x = self.means_[k] + z @ np.linalg.cholesky(self.covariances_).T
            elif ct == "diag":
                x = self.means_[k] + z * np.sqrt(self.covariances_[k])
            else:
                x = self.means_[k] + z * np.sqrt(self.covariances_[k])
            out.append(x)
            labels.append(np.full(c, k))
        return np.concatenate(out), np.concatenate(labels)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        cov = {"full": K * D * (D + 1) / 2, "diag": K * D, "tied": D * (D + 1) / 2,
               "spherical": K}[self.covariance_type]
        return int(cov + K * D + K - 1)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion, −2 ln p(X) + p ln N (lower is better)."""
        n = len(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion, −2 ln p(X) + 2p (lower is better)."""
        return -2 * self.score(X) * len(X) + 2 * self._n_parameters()
