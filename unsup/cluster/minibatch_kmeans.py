"""Mini-batch k-means for data that does not fit in memory (streamed from disk)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from unsup._io_checks import A
from unsup.base import make_generator, report_progress
from unsup.cluster._lloyd import lloyd_pass
from unsup.cluster.kmeans import KMeans, init_centers
from unsup.data.validation import DataError, check_array, check_min_samples, check_n_features
from unsup.ops import sq_norms
from unsup.params import Integral, Interval, Real
from unsup.registry import Demo, register_model

__all__ = ["MiniBatchKMeans"]


def _rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of an array, memmap or tensor, reading only those rows."""
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(idx, device=X.device)]
    if isinstance(X, np.memmap):
        # read in file order (sequential I/O), then restore the requested order, so a memmap
        # gives the same batches, and the same fit, as the in-memory array
        order = np.argsort(idx, kind="stable")
        rows = np.asarray(X[idx[order]])
        out = np.empty_like(rows)
        out[order] = rows
        return out
    return X[idx]


@register_model('minibatch-kmeans', family='cluster', aliases=('mbkmeans',),
                summary='mini-batch k-means for large or memory-mapped data',
                demo=Demo("mini-batch k-means (K=10)",
                          params={"n_clusters": 10, "batch_size": 512, "random_state": 0},
                          order=11))
class MiniBatchKMeans(KMeans):
    r"""k-means trained on mini-batches (Sculley 2010), for large or streamed data.

    Each mini-batch is assigned to its nearest centres; each centre then moves to the running
    mean of every point ever assigned to it:

    .. math:: \mu_k \leftarrow \frac{n_k \mu_k + \sum_{x \in B_k} x}{n_k + |B_k|},
              \qquad n_k \leftarrow n_k + |B_k|

    i.e. a stochastic step with per-centre learning rate ``|B_k| / (n_k + |B_k|)``. ``fit``
    reads a NumPy memory-mapped array batch by batch (``np.load(path, mmap_mode="r")``), so
    the data never need to be in memory at once; ``partial_fit`` takes one batch at a time.
    Centres whose share of the points falls below ``reassignment_ratio`` of the largest are
    moved to random points of the current batch (so no centre dies).

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"k-means++", "random"} or array (K, D), default="k-means++"
        Seeding, run on a random sample of ``init_size`` rows.
    max_iter : int, default=100
        Maximum passes (epochs) over the data in ``fit``.
    batch_size : int, default=1024
    tol : float, default=0.0
        Stop when the squared centre shift of a batch, relative to the data's mean
        variance, falls below ``tol`` (0 disables).
    max_no_improvement : int or None, default=10
        Stop after this many batches without improvement of the smoothed batch inertia.
    init_size : int or None, default=None
        Rows used for seeding (default ``max(3 * batch_size, 3 * n_clusters)``).
    n_init : int or "auto", default="auto"
        Seedings tried on the init sample; the one with the lowest inertia there is kept.
        ``"auto"`` (scikit-learn's default): 1 with k-means++, 3 with random seeding.
    reassignment_ratio : float, default=0.01
    device, random_state, verbose : as for :class:`KMeans`.

    Attributes
    ----------
    cluster_centers_, labels_, inertia_, n_iter_ (epochs), n_steps_ (batches),
    counts_ (points seen per centre), n_features_in_.

    References
    ----------
    Sculley (2010), Web-scale k-means clustering. WWW.
    """

    _test_params: dict[str, Any] = {"n_clusters": 3, "n_init": 1, "max_iter": 5,
                                   "batch_size": 64}

    # the mini-batch loop does not checkpoint (KMeans's EM engine does): `unsup fit --resume`
    # refits from the recorded seed instead of claiming to resume
    _keeps_checkpoints = False

    _parameter_constraints = {
        **KMeans._parameter_constraints,
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_no_improvement": [Interval(Integral, 0, None, closed="left"), None],
        "init_size": [Interval(Integral, 1, None, closed="left"), None],
        "reassignment_ratio": [Interval(Real, 0, None, closed="left")],
    }
    _auto_runs = {"k-means++": 1, "random": 3}  # n_init="auto", as scikit-learn

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"cluster_centers_": A("f32", "n_clusters", "n_features_in_"),
                     "counts_?": A("f64", "n_clusters"), "labels_?": A("i64", "n")}

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        max_iter: int = 100,
        batch_size: int = 1024,
        tol: float = 0.0,
        max_no_improvement: int | None = 10,
        init_size: int | None = None,
        n_init: int | str = "auto",
        reassignment_ratio: float = 0.01,
        device: str = "auto",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- helpers --------------------------------------------------------------------------
    def _batch(self, X: Any, rows: Any = None) -> torch.Tensor:
        """Validate a batch; ``rows`` are its row numbers in the full data (for messages)."""
        t = check_array(X, device=self._device(), row_numbers=rows)
        if hasattr(self, "n_features_in_"):
            check_n_features(t, self.n_features_in_, type(self).__name__)
        return t

    def _init_from(self, sample: torch.Tensor, gen: torch.Generator) -> None:
        K = self.n_clusters
        R = self._n_runs()
        x_sq = sq_norms(sample)
        cands = init_centers(sample, x_sq, self.init, K, R, gen)
        _, _, inertia, _, _ = lloyd_pass(sample, x_sq, cands, need_stats=False)
        self._C = cands[int(torch.argmin(inertia))].clone()
        self._counts = torch.zeros(K, dtype=torch.float64, device=sample.device)
        self.n_features_in_ = int(sample.shape[1])
        self.n_steps_ = 0

    def _step(self, B: torch.Tensor, rs: np.random.RandomState) -> tuple[float, float]:
        """One mini-batch update; returns (batch inertia per point, squared centre shift)."""
        C = self._C
        sums, counts, inertia, _, _ = lloyd_pass(B, sq_norms(B), C.unsqueeze(0))
        sums, counts = sums[0].to(torch.float64), counts[0]
        new_counts = self._counts + counts
        upd = counts > 0
        new_C = C.clone()
        new_C[upd] = ((C[upd].double() * self._counts[upd, None] + sums[upd])
                      / new_counts[upd, None]).to(C.dtype)
        self._counts = new_counts
        self.n_steps_ += 1
        # revive centres that attract (almost) nothing
        if self.reassignment_ratio > 0 and self.n_steps_ % 10 == 0:
            low = self._counts < self.reassignment_ratio * self._counts.max()
            n_low = int(low.sum())
            if 0 < n_low <= B.shape[0]:
                pick = torch.as_tensor(rs.choice(B.shape[0], n_low, replace=False),
                                       device=B.device)
                new_C[low] = B[pick]
                self._counts[low] = self._counts[~low].min() if bool((~low).any()) else 1.0
        shift = float(((new_C - C) ** 2).sum())
        self._C = new_C
        self.cluster_centers_ = new_C.cpu().numpy()
        self.counts_ = self._counts.cpu().numpy()
        return float(inertia[0]) / B.shape[0], shift

    # -- public API -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> MiniBatchKMeans:
        """Fit by passes over ``X`` in mini-batches. ``X`` may be a memory-mapped array."""
        self._validate_params()
        K, max_iter, bs = int(self.n_clusters), int(self.max_iter), int(self.batch_size)
        tol = float(self.tol)
        if not isinstance(X, (np.ndarray, torch.Tensor)):
            X = check_array(X, device="cpu").numpy()
        if X.ndim != 2 or 0 in X.shape:
            # raises the standard message; 0-, 1-D and empty inputs are small enough to pass
            # whole (so the message reports their true shape), higher-D ones are sliced
            check_array(X[:1] if X.ndim > 2 else X)
        N = X.shape[0]
        check_min_samples(N, K, "n_clusters")
        for attr in ("n_features_in_", "_C"):
            if hasattr(self, attr):
                delattr(self, attr)
        rs = check_random_state(self.random_state)
        gen = make_generator(rs, torch.device("cpu"))
        init_size = self.init_size or max(3 * bs, 3 * K)
        init_idx = rs.choice(N, min(N, max(init_size, K)), replace=False)
        sample = self._batch(_rows(X, init_idx), init_idx)
        self._init_from(sample, gen)
        # scale of the data, for the relative tolerance
        tol_abs = tol * float(sample.double().var(0, unbiased=False).mean()) if tol > 0 else 0.0
        ewa, best, no_impr = None, np.inf, 0
        stop = False
        for epoch in range(1, max_iter + 1):
            order = rs.permutation(N)
            for s in range(0, N, bs):
                B = self._batch(_rows(X, order[s : s + bs]), order[s : s + bs])
                inertia, shift = self._step(B, rs)
                alpha = min(1.0, 2.0 * B.shape[0] / (N + 1))
                ewa = inertia if ewa is None else ewa * (1 - alpha) + inertia * alpha
                if ewa < best:
                    best, no_impr = ewa, 0
                else:
                    no_impr += 1
                if (tol_abs > 0 and shift <= tol_abs) or (
                    self.max_no_improvement is not None and no_impr >= self.max_no_improvement
                ):
                    stop = True
                    break
            self.n_iter_ = epoch
            report_progress("mini-batch k-means", epoch, max_iter, inertia=ewa)
            if self.verbose:
                print(f"epoch {epoch}: smoothed batch inertia {ewa:.6g}")
            if stop:
                break
        # labels and inertia of the training data at the final centres, batch by batch
        labels = np.empty(N, dtype=np.int64)
        total = 0.0
        for s in range(0, N, max(bs, 8192)):
            B = self._batch(X[s : s + max(bs, 8192)], range(s, N))
            md, lab = self._nearest(B)
            labels[s : s + len(lab)] = lab.cpu().numpy()
            total += float(md.sum(dtype=torch.float64))
        self.labels_ = labels
        self.inertia_ = total
        return self

    def partial_fit(self, X: Any, y: Any = None) -> MiniBatchKMeans:
        """Update the centres with one batch ``X``; the first call seeds them from it."""
        self._validate_params()
        B = self._batch(X)
        rs = getattr(self, "_rs", None)
        if rs is None:
            rs = self._rs = check_random_state(self.random_state)
        if not hasattr(self, "_C"):
            if hasattr(self, "cluster_centers_"):  # loaded from a file: continue from it
                self._C = torch.as_tensor(self.cluster_centers_, device=B.device).to(B.dtype)
                self._counts = torch.as_tensor(self.counts_, device=B.device).double()
            else:
                if B.shape[0] < self.n_clusters:
                    raise DataError(
                        f"the first partial_fit batch has {B.shape[0]} rows; it seeds the "
                        f"centres, so it needs at least n_clusters={self.n_clusters}"
                    )
                self._init_from(B, make_generator(rs, torch.device("cpu")))
        self._step(B.to(self._C.dtype), rs)
        self.n_iter_ = getattr(self, "n_iter_", 0)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cluster_centers_")
