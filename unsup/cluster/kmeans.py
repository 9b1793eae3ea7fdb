"""k-means: hard-assignment EM (Lloyd's algorithm) with k-means++ seeding."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import ClusterMixin, TransformerMixin

from unsup import distributed as ud
from unsup.base import BaseEstimator, make_generator, report_progress
from unsup.cluster._lloyd import (
    farthest_points,
    global_count,
    kmeans_plusplus,
    lloyd_pass,
    sample_rows,
)
from unsup.data.validation import check_array, check_min_samples
from unsup.ops import chunk_rows, chunks, min_index, sq_distances, sq_norms
from unsup.registry import Demo, register_model

__all__ = ["KMeans"]


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= low:
        raise ValueError(f"{name} must be a number >= {low}, got {value!r}")
    return float(value)


def init_centers(
    X: torch.Tensor, x_sq: torch.Tensor, init: Any, n_clusters: int, n_runs: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Initial centres (R×K×D) from ``"k-means++"``, ``"random"`` or a K×D array."""
    if isinstance(init, str):
        if init == "k-means++":
            return kmeans_plusplus(X, n_clusters, n_runs, generator, x_sq)
        if init == "random":
            # K distinct-ish points drawn uniformly from the data, per run
            u = torch.rand(n_runs, n_clusters, generator=generator, dtype=torch.float64)
            w = torch.ones(n_runs, X.shape[0], device=X.device)
            return sample_rows(X, w, u.to(X.device))
        raise ValueError(f"init={init!r} is not one of 'k-means++', 'random' or an array")
    C = check_array(init, name="init", dtype=X.dtype, device=X.device)
    if C.shape != (n_clusters, X.shape[1]):
        raise ValueError(
            f"init array has shape {tuple(C.shape)}; expected (n_clusters, n_features) = "
            f"({n_clusters}, {X.shape[1]})"
        )
    return C.unsqueeze(0).expand(n_runs, -1, -1).clone()


@register_model('kmeans', family='cluster', aliases=('k-means',),
                summary="k-means clustering (Lloyd's algorithm, k-means++ seeding)",
                demo=Demo("k-means (K=10, k-means++, Lloyd)",
                          params={"n_clusters": 10, "n_init": 10, "random_state": 0},
                          quick={"n_init": 3}, order=10))
class KMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    r"""k-means clustering by Lloyd's algorithm (hard-assignment EM).

    Minimises the within-cluster sum of squares (the *inertia*)

    .. math:: J = \sum_{n} \min_k \lVert x_n - \mu_k \rVert^2

    by alternating an assignment step (each point to its nearest centre: the E-step of a
    Gaussian mixture with equal spherical covariances in the limit σ → 0) and an update step
    (each centre to the mean of its points: the M-step). Neither step can raise J, so the
    algorithm converges to a local minimum; ``n_init`` restarts keep the best.

    Distances use ``‖x‖² + ‖μ‖² − 2 x·μ`` (one GEMM per chunk of rows, memory bounded). All
    ``n_init`` restarts run together in the same GEMMs. A cluster that loses all its points is
    moved to the point farthest from its centre.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K.
    init : {"k-means++", "random"} or array of shape (K, D), default="k-means++"
        Seeding: greedy k-means++ (Arthur & Vassilvitskii 2007), K random data points, or
        given centres (then ``n_init`` is taken as 1).
    n_init : int, default=10
        Number of restarts; the run with the lowest inertia is kept.
    max_iter : int, default=300
        Maximum Lloyd iterations per run.
    tol : float, default=1e-4
        Convergence when the squared shift of the centres is below ``tol`` times the mean
        per-feature variance of the data (scikit-learn's criterion), or no label changes.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    cluster_centers_ : ndarray (K, D)
    labels_ : ndarray (N,)
        Labels of the training points (under ``torchrun``: of this rank's shard).
    inertia_ : float
        Sum of squared distances of the training points to their centre (all ranks).
    n_iter_ : int
    n_features_in_ : int

    References
    ----------
    Lloyd (1982), Least squares quantization in PCM. Arthur & Vassilvitskii (2007),
    k-means++: the advantages of careful seeding. Bishop (2006), PRML §9.1.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        device: str = "auto",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> tuple[int, int, int, float]:
        k = _check_int("n_clusters", self.n_clusters, 1)
        n_init = _check_int("n_init", self.n_init, 1)
        max_iter = _check_int("max_iter", self.max_iter, 1)
        tol = _check_float("tol", self.tol, 0.0)
        if not isinstance(self.init, str):
            n_init = 1
        return k, n_init, max_iter, tol

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster ``X`` (N×D). Returns ``self``."""
        K, R, max_iter, tol = self._check_params()
        X = self._validate(X, reset=True)
        N = X.shape[0]
        check_min_samples(global_count(N, X.device), K, "n_clusters")
        gen = make_generator(self.random_state, torch.device("cpu"))
        x_sq = sq_norms(X)
        # scikit-learn's tolerance: tol × mean per-feature variance of the (global) data
        mom = torch.stack([X.sum(0, dtype=torch.float64), (X.double() ** 2).sum(0)])
        n_tot = torch.tensor(float(N), dtype=torch.float64, device=X.device)
        ud.all_reduce_sum(mom, n_tot)
        var = (mom[1] / n_tot - (mom[0] / n_tot) ** 2).clamp(min=0)
        tol_abs = tol * float(var.mean())

        centers = init_centers(X, x_sq, self.init, K, R, gen)
        run_iter = np.zeros(R, dtype=int)
        active = torch.arange(R, device=X.device)
        prev_labels: torch.Tensor | None = None
        for it in range(1, max_iter + 1):
            C = centers[active]
            sums, counts, inertia, labels, mind = lloyd_pass(X, x_sq, C)
            empty = counts == 0
            if bool(empty.any()):
                for r in torch.nonzero(empty.any(1)).flatten().tolist():
                    ks = torch.nonzero(empty[r]).flatten()
                    far = farthest_points(X, mind[r], len(ks)).to(sums.dtype)
                    sums[r, ks[: len(far)]] = far
                    counts[r, ks[: len(far)]] = 1.0
            new_C = (sums / counts.clamp(min=1).unsqueeze(-1)).to(X.dtype)
            new_C = torch.where((counts > 0).unsqueeze(-1), new_C, C)
            shift = ((new_C - C) ** 2).sum((1, 2))
            centers[active] = new_C
            run_iter[active.cpu().numpy()] = it
            done = shift <= tol_abs
            if prev_labels is not None:
                same = (labels == prev_labels).all(1).to(torch.float64)
                ud.all_reduce_sum(same)
                done |= same >= ud.world_size()
            report_progress("k-means", it, max_iter, inertia=float(inertia.min()))
            if self.verbose:
                print(f"iter {it}: inertia {inertia.min().item():.6g}, active runs {len(active)}")
            keep = ~done
            if not bool(keep.any()):
                break
            active = active[keep]
            prev_labels = labels[keep]
        # final assignment at the final centres, so labels_ and inertia_ match them
        _, _, inertia, labels, _ = lloyd_pass(X, x_sq, centers, need_stats=False)
        best = int(torch.argmin(inertia))
        self.cluster_centers_ = centers[best].cpu().numpy()
        self.labels_ = labels[best].cpu().numpy()
        self.inertia_ = float(inertia[best])
        self.n_iter_ = int(run_iter[best])
        return self

    def __sklearn_is_fitted__(self) -> bool:
        # not n_features_in_: a fit that fails after validating X has already set it
        return hasattr(self, "cluster_centers_")

    # -- inference ----------------------------------------------------------------------
    def _centers(self, X: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.cluster_centers_, device=X.device).to(X.dtype)

    def _nearest(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        C = self._centers(X)
        c_sq = sq_norms(C)
        md = torch.empty(X.shape[0], dtype=X.dtype, device=X.device)
        lab = torch.empty(X.shape[0], dtype=torch.long, device=X.device)
        for s in chunks(X.shape[0], chunk_rows(C.shape[0], X.shape[0])):
            md[s], lab[s] = min_index(sq_distances(X[s], C, c_sq=c_sq))
        return md, lab

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centre for each row of ``X``."""
        X = self._validate(X, reset=False)
        return self._nearest(X)[1].cpu().numpy()

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances (N×K) from each row of ``X`` to every centre."""
        X = self._validate(X, reset=False)
        C = self._centers(X)
        out = torch.empty(X.shape[0], C.shape[0], dtype=X.dtype, device=X.device)
        for s in chunks(X.shape[0], chunk_rows(C.shape[0], X.shape[0])):
            out[s] = sq_distances(X[s], C).sqrt_()
        return out.cpu().numpy()

    def score(self, X: Any, y: Any = None) -> float:
        """Negative inertia of ``X`` under the fitted centres (higher is better)."""
        X = self._validate(X, reset=False)
        return -float(self._nearest(X)[0].sum(dtype=torch.float64))
