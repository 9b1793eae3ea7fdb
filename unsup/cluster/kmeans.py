"""k-means: hard-assignment EM (Lloyd's algorithm) with k-means++ seeding."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from sklearn.base import ClusterMixin, TransformerMixin

from unsup import distributed as ud
from unsup._io_checks import A
from unsup._numba import HAVE_NUMBA, one_blas_thread, row_blocks, run_blocks
from unsup.base import BaseEstimator, make_generator
from unsup.cluster import _lloyd_blocks as blocks_
from unsup.cluster._hamerly import (
    accumulate_rows,
    bounds_pass,
    gemm_settles,
    half_separation,
    inertia_of,
    lloyd_steps,
    row_col_moments,
    settle_block,
)
from unsup.cluster._lloyd import (
    accumulate,
    assign,
    farthest_points,
    kmeans_plusplus,
    lloyd_pass,
    min_distances,
    sample_rows,
    uniforms,
)
from unsup.data.validation import check_array, check_min_samples
from unsup.ops import chunk_rows, chunks, min_index, sq_distances, sq_norms
from unsup.params import Integral, Interval, Real, StrOptions
from unsup.registry import Demo, register_model
from unsup.train.em import EMEngine, EMFused, global_count
from unsup.train.seeding import run_generators

__all__ = ["KMeans"]

#: the compiled loop hands the failing rows to a GEMM above this many multiply-adds, unless
#: the compiled distances are the faster (few dimensions: see compiled_settle)
GEMM_MIN = 2**17
#: the compiled distances (``_hamerly.settle_block``) up to this many dimensions, or up to
#: SETTLE_KD centres × dimensions: per failing row, they took 0.3-0.5x the time of the gather
#: and GEMM at D = 2, 0.5-0.9x at D = 16, 0.5-1.1x at D = 64, 2-13x at D = 784; at D = 64
#: the GEMM's hand-offs (a return to Python each) cost more than that (100,000 × 64, K = 64:
#: 19-21 against 21-23 s at 1 thread, 12.5 against 16-18 s at 2)
SETTLE_D, SETTLE_KD = 64, 512
FUSED_ROWS = 2**15  # the compiled loop on one thread up to this many rows (see fit)


def init_centers(
    X: torch.Tensor, x_sq: torch.Tensor, init: Any, n_clusters: int, n_runs: int,
    generator: torch.Generator | list[torch.Generator],
) -> torch.Tensor:
    """Initial centres (R×K×D) from ``"k-means++"``, ``"random"`` or a K×D array; draws from
    one generator or one per run."""
    if isinstance(init, str):
        if init == "k-means++":
            return kmeans_plusplus(X, n_clusters, n_runs, generator, x_sq)
        if init == "random":
            # K distinct-ish points drawn uniformly from the data, per run
            u = uniforms(generator, n_runs, n_clusters, X.device)
            w = torch.ones(n_runs, X.shape[0], device=X.device)
            return sample_rows(X, w, u)
        raise ValueError(f"init={init!r} is not one of 'k-means++', 'random' or an array")
    C = check_array(init, name="init", dtype=X.dtype, device=X.device)
    if C.shape != (n_clusters, X.shape[1]):
        raise ValueError(
            f"init array has shape {tuple(C.shape)}; expected (n_clusters, n_features) = "
            f"({n_clusters}, {X.shape[1]})"
        )
    return C.unsqueeze(0).expand(n_runs, -1, -1).clone()


def settle_blas(K: int, D: int) -> AbstractContextManager[Any]:
    """One BLAS thread for the compiled settling's GEMMs (``_hamerly._settle_gemm``, where
    ``gemm_settles`` and the compiled settling is the one used): blocks of 256 rows are too
    small to share, and BLAS threads beside torch's spinning OpenMP threads made 10⁴ × 64,
    K = 256 at 2 threads 2.8x slower. Elsewhere torch's GEMM settles the rows; a torch built
    against a shared MKL would see that limit too, so none is set."""
    if gemm_settles(K, D) and compiled_settle(K, D):
        return one_blas_thread()
    return nullcontext()


def compiled_settle(K: int, D: int) -> bool:
    """Whether the rows failing their bounds get their K distances from the compiled loops
    rather than a GEMM (which pays a gather and, in the compiled loop, a return to Python)."""
    return D <= SETTLE_D or K * D <= SETTLE_KD


@register_model('kmeans', family='cluster', aliases=('k-means',),
                summary="k-means clustering (Lloyd's algorithm, k-means++ seeding)",
                demo=Demo("k-means (K=10, k-means++, Lloyd)",
                          params={"n_clusters": 10, "n_init": 10, "random_state": 0},
                          quick={"n_init": 3}, order=10))
class KMeans(EMEngine, ClusterMixin, TransformerMixin, BaseEstimator):
    r"""k-means clustering by Lloyd's algorithm (hard-assignment EM).

    Minimises the within-cluster sum of squares (the *inertia*)

    .. math:: J = \sum_{n} \min_k \lVert x_n - \mu_k \rVert^2

    by alternating an assignment step (each point to its nearest centre: the E-step of a
    Gaussian mixture with equal spherical covariances in the limit σ → 0) and an update step
    (each centre to the mean of its points: the M-step). Neither step can raise J, so the
    algorithm converges to a local minimum; ``n_init`` restarts keep the best.

    The loop is :class:`unsup.train.em.EMEngine` (hard EM on the statistics Σx and the count
    of each cluster). Distances use ``‖x‖² + ‖μ‖² − 2 x·μ`` (one GEMM per chunk of rows,
    memory bounded). All ``n_init`` restarts run together in the same GEMMs; on the CPU,
    after the first pass, Hamerly's bounds skip most distances and the restarts run one at a
    time through a compiled loop (up to 2¹⁵ rows side by side, one per torch thread). A
    cluster that loses all its points is moved to the point farthest from its centre.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters K.
    init : {"k-means++", "random"} or array of shape (K, D), default="k-means++"
        Seeding: greedy k-means++ (Arthur & Vassilvitskii 2007), K random data points, or
        given centres (then ``n_init`` is taken as 1).
    n_init : int or "auto", default="auto"
        Number of restarts; the run with the lowest inertia is kept. ``"auto"`` (scikit-learn's
        default since 1.4): 1 with k-means++ seeding, 10 with random seeding.
    max_iter : int, default=300
        Maximum Lloyd iterations per run.
    tol : float, default=1e-4
        Convergence when the squared shift of the centres is below ``tol`` times the mean
        per-feature variance of the data (scikit-learn's criterion); with ``tol=0``, when the
        labels stop changing (the centres then repeat exactly).
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
        Lloyd iterations (M-steps) of the kept run.
    history_ : list of dict
        Per iteration of the kept run: ``iter``, ``inertia`` (at that iteration's centres)
        and ``neg_inertia`` per sample (the objective the EM engine maximises).
    n_features_in_ : int

    References
    ----------
    Lloyd (1982), Least squares quantization in PCM. Arthur & Vassilvitskii (2007),
    k-means++: the advantages of careful seeding. Bishop (2006), PRML §9.1.
    """

    _test_params: dict[str, Any] = {"n_clusters": 3, "n_init": 1, "max_iter": 20}

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"cluster_centers_": A("f32", "n_clusters", "n_features_in_"),
                     "labels_?": A("i64", "n")}

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: int | str = "auto",
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

    _parameter_constraints = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }
    _auto_runs = {"k-means++": 1, "random": 10}  # n_init="auto", as scikit-learn

    def _check_params(self) -> tuple[int, int, int, float]:
        self._validate_params()
        return int(self.n_clusters), self._n_runs(), int(self.max_iter), float(self.tol)

    def _n_runs(self) -> int:
        """Restarts: ``n_init``, its ``"auto"`` value for the seeding, or 1 for given centres."""
        if not isinstance(self.init, str):
            return 1
        if isinstance(self.n_init, str):  # "auto"
            return self._auto_runs[self.init]
        return int(self.n_init)

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster ``X`` (N×D). Returns ``self``."""
        K, R, max_iter, tol = self._check_params()
        X = self._validate(X, reset=True).contiguous()
        N = X.shape[0]
        check_min_samples(global_count(N, X.device), K, "n_clusters")
        gen = make_generator(self.random_state, torch.device("cpu"))
        # Hamerly's bounds need per-row state and compiled loops: CPU, one process
        self._bounded = HAVE_NUMBA and X.device.type == "cpu" and ud.world_size() == 1
        # and then the iterations without the engine between them (_em_fused): one compiled
        # call on one thread up to FUSED_ROWS rows, above that one row block per thread
        self._init_queue = torch.empty(0)  # runs seeded but not started (checkpointed)
        # scikit-learn's tolerance: tol × mean per-feature variance of the (global) data,
        # from the moments [Σx ; Σx²] per column
        if self._bounded:  # the bounds' statistics want float64 norms; the GEMMs X's dtype
            self._x_sq64, mom = row_col_moments(X)
            self._x_sq = self._x_sq64.to(X.dtype)
        else:
            self._x_sq = sq_norms(X)
            Xd = X.double()  # one float64 copy (none for float64 input)
            mom = torch.stack([Xd.sum(0), Xd.square().sum(0)])
            del Xd
        n_tot = torch.tensor(float(N), dtype=torch.float64, device=X.device)
        ud.all_reduce_sum(mom, n_tot)
        var = (mom[1] / n_tot - (mom[0] / n_tot) ** 2).clamp(min=0)
        tol_abs = tol * float(var.mean())
        try:
            res = self._em_fit(X, n_init=R, max_iter=max_iter, tol=tol_abs, generator=gen,
                               stage="k-means", verbose=self.verbose, warn=False)
            centers = res.params["centers"][0]
            if "a" in res.params:  # the assignments and inertia at the returned centres
                labels, inertia = res.params["a"][0], -res.objective * N
            else:
                inertia, labels = lloyd_pass(X, self._x_sq, centers.unsqueeze(0),
                                             need_stats=False)[2:4]
                labels, inertia = labels[0], float(inertia[0])
        finally:
            del self._x_sq, self._bounded, self._init_queue
            self.__dict__.pop("_x_sq64", None)
        self.cluster_centers_ = centers.cpu().numpy()
        self.labels_ = labels.cpu().numpy()
        self.inertia_ = max(float(inertia), 0.0)
        self.n_iter_ = int(res.n_iter)
        self.history_ = res.history
        return self

    # -- the math for the EM engine: hard EM on (Σ x, count) per cluster ---------------------
    _em_objective_name = "neg_inertia"

    def _em_runs_per_batch(self, n_init: int) -> int:
        # the GEMM path: all restarts share each GEMM; with the bounds one run at a time
        # through the compiled loop (24 bytes of state per row)
        return 1 if self._bounded else n_init

    def _em_concurrent_batches(self, X: torch.Tensor, n_batches: int) -> int:
        # up to FUSED_ROWS rows a run's compiled loop is one call on one thread: the other
        # threads take the other restarts (the engine runs them side by side)
        return n_batches if self._bounded and X.shape[0] <= FUSED_ROWS else 1

    def _em_initialize(self, X: torch.Tensor, gen: torch.Generator, n_runs: int
                       ) -> dict[str, torch.Tensor]:
        # one generator per restart, so that the seeding is the same however the restarts are
        # batched (a single run draws from the fit's generator itself, as before)
        R = self._n_runs()
        if self._bounded:  # one run per batch, but every run seeded at the first batch: the
            # seeding's GEMMs are R times wider (k-means++ at K = 64 is ~2.5 GFLOP per run)
            if self._init_queue.shape[0] == 0:
                self._init_queue = init_centers(X, self._x_sq, self.init, self.n_clusters, R,
                                                run_generators(gen, R) if R > 1 else gen)
            C, self._init_queue = self._init_queue[:n_runs], self._init_queue[n_runs:]
        else:
            gens = run_generators(gen, n_runs) if R > 1 else gen
            C = init_centers(X, self._x_sq, self.init, self.n_clusters, n_runs, gens)
        return {"centers": C, "shift": torch.full((n_runs,), math.inf, dtype=torch.float64,
                                                  device=X.device)}

    def _em_row_width(self, params: dict[str, torch.Tensor]) -> int:
        R, K, _ = params["centers"].shape
        # with bounds, one run's K × rows block at a time and few rows of it in late passes:
        # larger chunks (fewer per-chunk overheads) at the same memory bound
        return max(1, K // 8) if self._bounded else R * K

    def _em_e_step(self, X: torch.Tensor, params: dict[str, torch.Tensor], rows: slice
                   ) -> dict[str, torch.Tensor]:
        C = params["centers"]
        R, K, D = C.shape
        if "flat" not in params:  # per-iteration constants, computed once per parameters
            params["flat"] = C.reshape(R * K, D)
            params["c_sq"] = sq_norms(params["flat"])
        if self._bounded:
            return self._bounded_e_step(X, params, rows)
        md, lab = assign(X, self._x_sq[rows], params["flat"], params["c_sq"], R)
        acc = torch.float64 if X.dtype == torch.float64 else torch.float32
        sums = torch.zeros(R, K, D, dtype=acc, device=X.device)
        counts = torch.zeros(R, K, dtype=torch.float64, device=X.device)
        accumulate(X, lab, sums, counts)
        return {"sums": sums, "counts": counts, "objective": -md.sum(1, dtype=torch.float64)}

    def _bounded_e_step(self, X: torch.Tensor, params: dict[str, torch.Tensor], rows: slice
                        ) -> dict[str, torch.Tensor]:
        """The same E-step with Hamerly's bounds (CPU, one process): per-row state ``a``,
        ``u``, ``l`` lives in ``params`` (so checkpoints and run selection carry it); rows
        whose bounds fail get their K distances from one GEMM (:mod:`._hamerly`)."""
        C = params["centers"]
        R, K, D = C.shape
        if "a" not in params:  # first pass of these runs (or a checkpoint of the GEMM path)
            N = self._x_sq.shape[0]
            params["a"] = torch.zeros(R, N, dtype=torch.long)
            params["u"] = torch.zeros(R, N, dtype=torch.float64)
            params["l"] = torch.zeros(R, N, dtype=torch.float64)
            params.pop("delta", None)
        fresh = "delta" not in params
        if not fresh and "half" not in params:
            params["half"] = half_separation(C)
        n = X.shape[0]
        a, u, l = (params[k][:, rows].numpy() for k in "aul")
        Xn, x_sq, x_sq64 = X.numpy(), self._x_sq[rows], self._x_sq64[rows].numpy()
        blocks = row_blocks(n)  # the compiled passes run one block per thread
        if fresh:
            need, n_need = np.broadcast_to(np.arange(n), (R, n)), [n] * R
        else:
            need = np.empty((R, n), dtype=np.int64)
            Cn, delta, half = C.numpy(), params["delta"].numpy(), params["half"].numpy()
            found = run_blocks(lambda b: bounds_pass(Xn[b], Cn, a[:, b], u[:, b], l[:, b], delta,
                                                     half, need[:, b]), blocks)
            if len(blocks) > 1:  # each block listed its rows (block-local) at its own start
                need = [np.concatenate([need[r, b][: f[r]] + b.start
                                        for b, f in zip(blocks, found, strict=True)])
                        for r in range(R)]
            n_need = [int(sum(f[r] for f in found)) for r in range(R)]
        c_sq = params["c_sq"].view(R, K)
        for r, m in enumerate(n_need):
            if m and compiled_settle(K, D) and not fresh:
                with settle_blas(K, D):
                    settle_block(Xn, x_sq64, C[r].numpy(), need[r][:m], a[r], u[r], l[r])
            elif m:
                blocks_.settle_by_gemm(X, x_sq, C[r], c_sq[r], need[r][:m], a[r], u[r], l[r])

        def stats(b: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            out = np.zeros((R, K, D)), np.zeros((R, K)), np.zeros((R, K))
            accumulate_rows(Xn[b], x_sq64[b], a[:, b], *out)
            return out

        parts = run_blocks(stats, blocks)
        sums, counts, sq = (torch.from_numpy(sum(p)) for p in zip(*parts, strict=True))
        return {"sums": sums, "counts": counts, "objective": -inertia_of(C, sums, counts, sq)}

    def _em_fused(self, X: torch.Tensor, params: dict[str, torch.Tensor], first: bool,
                  n_steps: int, tol: float) -> EMFused | None:
        """Up to ``n_steps`` iterations of one run in one compiled call
        (:func:`._hamerly.lloyd_steps`): the same bounds, statistics and M-step as
        :meth:`_bounded_e_step` and :meth:`_em_m_step`, without a return to Python between
        iterations (~1 ms of Python and small torch calls per iteration before); an empty
        cluster hands its iteration back to the engine's M-step."""
        if not self._bounded:
            return None
        C = params["centers"]
        K, D = C.shape[1:]
        if "a" not in params or "delta" not in params:
            return None  # the first pass (every row's K distances) is the engine's: one GEMM
        Cn = C[0].numpy().copy()  # the loop moves the centres in place
        a, u, l = (params[k][0].numpy() for k in "aul")
        delta = params["delta"][0].numpy().copy()
        shift = float(params["shift"][0])
        gemm_min = 2**62 if compiled_settle(K, D) else GEMM_MIN
        blocks = row_blocks(X.shape[0]) if X.shape[0] > FUSED_ROWS else [slice(0, X.shape[0])]
        with settle_blas(K, D):
            if len(blocks) > 1:
                objs, status, shift, sums, counts = blocks_.lloyd_steps_blocks(
                    X, self._x_sq, self._x_sq64.numpy(), Cn, a, u, l, delta, first, shift,
                    n_steps, tol, blocks, gemm_min)
            else:
                objs, status, shift, sums, counts = self._one_thread_steps(
                    X, Cn, a, u, l, delta, first, shift, n_steps, tol, gemm_min)
        out = {"centers": torch.from_numpy(Cn).unsqueeze(0),
               "shift": torch.tensor([shift], dtype=torch.float64),
               "a": params["a"], "u": params["u"], "l": params["l"],
               "delta": torch.from_numpy(delta).unsqueeze(0)}
        fz = EMFused(out, objs, converged=status == 1)
        if status == 2:
            fz.stats = {"sums": torch.from_numpy(sums).unsqueeze(0),
                        "counts": torch.from_numpy(counts).unsqueeze(0),
                        "objective": torch.tensor([objs[-1]], dtype=torch.float64)}
        return fz

    def _one_thread_steps(self, X: torch.Tensor, Cn: np.ndarray, a: np.ndarray, u: np.ndarray,
                          l: np.ndarray, delta: np.ndarray, first: bool, shift: float,
                          n_steps: int, tol: float, gemm_min: int
                          ) -> tuple[list[float], int, float, np.ndarray, np.ndarray]:
        """:func:`._hamerly.lloyd_steps` until done, a GEMM settling the failing rows when
        it hands them back (status 3); returns as :func:`._lloyd_blocks.lloyd_steps_blocks`."""
        K, D = Cn.shape
        objs = np.empty(n_steps, dtype=np.float64)
        sums, counts, sq = np.empty((K, D)), np.empty(K), np.empty(K)  # float64
        need = np.empty(X.shape[0] + 1, dtype=np.int64)
        n_e, settled = 0, False
        Xn, x_sq64 = X.numpy(), self._x_sq64.numpy()
        while True:
            n, status, shift = lloyd_steps(Xn, x_sq64, Cn, a, u, l, delta, first, shift,
                                           n_steps - n_e, tol, objs[n_e:], sums, counts, sq,
                                           need, settled, gemm_min)
            first = first and n == 0  # the next E-step is a run's first only if none was done
            n_e += n
            if status != 3:
                return objs[:n_e].tolist(), status, shift, sums, counts
            # many rows failed their bounds: their K distances from one GEMM, as the engine's
            blocks_.settle_moving(X, self._x_sq, x_sq64, Cn, need[1 : int(need[0]) + 1], a, u,
                                  l, sums, counts, sq)
            settled = True

    def _em_m_step(self, stats: dict[str, torch.Tensor], params: dict[str, torch.Tensor],
                   X: torch.Tensor) -> dict[str, torch.Tensor]:
        C, sums, counts = params["centers"], stats["sums"], stats["counts"]
        empty = counts == 0
        if bool(empty.any()):  # move each empty cluster to a point far from its centre
            for r in torch.nonzero(empty.any(1)).flatten().tolist():
                ks = torch.nonzero(empty[r]).flatten()
                mind = min_distances(X, self._x_sq, C[r])
                far = farthest_points(X, mind, len(ks)).to(sums.dtype)
                sums[r, ks[: len(far)]] = far
                counts[r, ks[: len(far)]] = 1.0
        new_C = (sums / counts.clamp(min=1).unsqueeze(-1)).to(X.dtype)
        new_C = torch.where((counts > 0).unsqueeze(-1), new_C, C)
        move = ((new_C - C).to(torch.float64) ** 2).sum(-1)  # R × K
        out = {"centers": new_C, "shift": move.sum(1)}
        if "a" in params:  # Hamerly's state: the bounds move by each centre's shift
            out.update(a=params["a"], u=params["u"], l=params["l"], delta=move.sqrt())
        return out

    def _em_converged(self, prev: torch.Tensor, objective: torch.Tensor,
                      params: dict[str, torch.Tensor], tol: float) -> torch.Tensor:
        return params["shift"] <= tol  # squared centre shift of the last M-step

    def _em_select(self, params: dict[str, torch.Tensor], idx: torch.Tensor
                   ) -> dict[str, torch.Tensor]:
        i = idx.to(params["centers"].device)
        out = {"centers": params["centers"][i], "shift": params["shift"][idx]}
        out.update({k: params[k][i] for k in ("a", "u", "l", "delta") if k in params})
        return out

    def _em_history(self, stats: dict[str, torch.Tensor], n_total: int, j: int
                    ) -> dict[str, float]:
        return {"inertia": -float(stats["objective"][j])}

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
