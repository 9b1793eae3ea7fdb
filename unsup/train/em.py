r"""The EM engine: one loop for every model trained by statistics-then-update.

A model supplies the math; the engine owns the loop (in the spirit of scikit-learn's
``BaseMixture.fit_predict``): restarts (``n_init``) keeping the best objective, ``max_iter``,
convergence, a per-iteration ``history``, progress reports, a chunked E-step over rows (memory
bounded by the chunk, never by N) and, under ``torchrun``, the all-reduce of the sufficient
statistics, so that every rank holds the parameters of a one-process fit on all the data.

The math (Dempster, Laird & Rubin 1977; Neal & Hinton 1998; Bishop, PRML ch. 9). For latent
variables Z and any distribution q(Z),

.. math:: \ln p(X\mid\theta) = \mathcal L(q,\theta) + \mathrm{KL}(q \,\|\, p(Z\mid X,\theta)),
          \qquad \mathcal L(q,\theta) = \mathbb E_q[\ln p(X, Z\mid\theta)] + H(q).

E-step: :math:`q \leftarrow p(Z\mid X,\theta_t)` makes KL zero, so
:math:`\mathcal L = \ln p(X\mid\theta_t)`; for exponential-family complete-data models
:math:`\mathbb E_q[\ln p(X,Z\mid\theta)]` depends on the data only through expected sufficient
statistics :math:`S = \sum_n \mathbb E_q[T(x_n, z_n)]`, a *sum over rows*: that is why the
E-step can run chunk by chunk and rank by rank. M-step:
:math:`\theta_{t+1} = \arg\max_\theta \mathcal L(q,\theta)`, a function of S only. Then

.. math:: \ln p(X\mid\theta_{t+1}) \ge \mathcal L(q,\theta_{t+1}) \ge \mathcal L(q,\theta_t)
          = \ln p(X\mid\theta_t),

so the objective never decreases (monotonicity; with a regularised M-step, such as a
covariance floor, it is the regularised objective that is monotone). Hard EM (k-means) takes q
as a point mass at the most probable z: the objective is then −inertia, and it too never
decreases. Variational EM (LDA) and Dirichlet-process mixtures maximise a bound
:math:`\mathcal L` over a restricted family of q; their ``objective`` is that bound.

Contract of a subclass (``EMEngine`` is a mixin next to :class:`unsup.base.BaseEstimator`):

``_em_initialize(X, generator, n_runs) -> params``
    Parameters of ``n_runs`` restarts (any object; batched runs share one E-step pass).
``_em_e_step(X_chunk, params, rows) -> dict[str, Tensor]``
    Sufficient statistics of one chunk of rows (``rows`` is its slice of the local data, for
    models that keep per-row state). Every entry is *summed* over chunks and ranks; the entry
    ``"objective"`` (shape ``(n_runs,)``) is the chunk's contribution to the total objective
    (to be maximised), at the parameters ``params``.
``_em_m_step(stats, params, X) -> params``
    New parameters from the summed statistics.
Optional: ``_em_row_width(params)`` (temporary columns per row, for the chunk size),
``_em_cache_blocked`` (class attribute, default True: chunks sized to stay in cache; False
for E-steps with fixed costs per chunk, e.g. LDA's inner loop, sized by memory only),
``_em_converged(prev, objective, params, tol)`` (default: the per-sample objective changed by
less than ``tol``), ``_em_select(params, idx)`` (keep some runs of a batch; needed when
``_em_runs_per_batch`` > 1), ``_em_history(stats, n_total, j)`` (extra per-iteration
numbers of run j; in a fused block it sees only ``"objective"``), ``_em_runs_per_batch(n_init)``
(default 1), ``_em_fused(X, params, first, n_steps, tol) -> EMFused | None``: a compiled loop
of up to ``n_steps`` iterations (E-step, convergence test, M-step) of a batch of one run, so
that the per-iteration Python overhead is paid once per block (single process only; None:
not applicable, the engine iterates); it must give the iterations the engine would have given;
``_em_concurrent_batches(X, n_batches)`` (default 1): how many batches of restarts may run at
once on a thread pool, each on one torch and one BLAS thread (for models whose one-run loop
cannot use the threads; never with checkpoints or under ``torchrun``); the batches are then
all initialised first, so their iterations must not draw from the generator.

Checkpoints (the parameters ``checkpoint_dir``, ``checkpoint_every``, ``resume``, composed into
every EM model by this mixin's parameter group :data:`EM_CHECKPOINTING`): at the top of every
``checkpoint_every``-th iteration and after every batch of restarts (None: at the top of an
iteration or after a batch once 10 s of fitting passed since the last write; an iteration can
take milliseconds) and at the end of the fit, the engine writes, atomically
and without pickle (:mod:`unsup.train.checkpoint`), everything the rest of the fit depends on:
the parameters of the runs in progress (any nesting of tensors, dicts, lists and the model
module's own classes, rebuilt through their constructor), the previous objective, the history,
the runs already finished and the best one so far, the generator's state, and the model's
private per-fit state (attributes with a leading underscore that hold a tensor or a NumPy
``RandomState``, e.g. the mixture's previous responsibilities). With ``resume=True`` a fit
continues from there, so a killed and resumed fit returns the model of a fit never stopped,
bit for bit on the same machine and thread count. A checkpoint written for other data or
parameters (``max_iter`` included) is refused with a message naming the difference; a damaged
one is a ``ValueError``, never a silent fresh start. Under ``torchrun`` checkpoints are refused
(per-rank state would need one file per rank).
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from sklearn.exceptions import ConvergenceWarning

from unsup import distributed as ud
from unsup import ops
from unsup._numba import one_blas_thread, one_torch_thread
from unsup.base import current_progress_callback, progress_callback, report_progress
from unsup.params import ParamGroup
from unsup.train._em_checkpoint import EMCheckpoint, EMState
from unsup.train.checkpoint import checkpoint_params

__all__ = ["EMEngine", "EMResult", "EMFused", "em_chunk_rows", "global_count", "EM_CHECKPOINTING"]

# Rows per E-step chunk are chosen so that a chunk's temporaries (rows × width) stay in cache:
# 2**18 elements (1 MiB of float32; the best of 2**15 ... 2**22 measured on 2- to 64-D data).
# The general block (ops._BLOCK_ELEMS, 64 MiB) sends every elementwise pass over a chunk to
# main memory; smaller blocks pay Python overhead per chunk. Read at call time (tunable).
CACHE_BLOCK_ELEMS = 2**18
#: a model's fused loop (``_em_fused``) gets FUSED_FIRST_BLOCK M-steps in its first call, then
#: as many as took about FUSED_SECONDS last time (progress and checkpoints stay timely), at
#: most FUSED_MAX_BLOCK
FUSED_FIRST_BLOCK, FUSED_SECONDS, FUSED_MAX_BLOCK = 8, 0.25, 1000


def em_chunk_rows(width: int, n_rows: int, cache_blocked: bool = True) -> int:
    """Rows per E-step chunk for ``width`` temporary columns per row (``cache_blocked=False``:
    bounded by memory only, ``ops._BLOCK_ELEMS``)."""
    block = min(ops._BLOCK_ELEMS, CACHE_BLOCK_ELEMS) if cache_blocked else ops._BLOCK_ELEMS
    return ops.chunk_rows(width, n_rows, block)


def global_count(n_local: int, device: torch.device) -> int:
    """Number of rows summed over ranks."""
    t = torch.tensor([n_local], dtype=torch.float64, device=device)
    ud.all_reduce_sum(t)
    return int(t.item())


#: ``checkpoint_dir``, ``checkpoint_every`` (EM iterations) and ``resume`` of every EM model
EM_CHECKPOINTING = ParamGroup("em checkpointing", checkpoint_params(
    "Checkpoint every this many EM iterations (None: at most every 10 s, and at the end)."))


@dataclass
class EMResult:
    """The kept run: its parameters, per-sample objective, iterations and history."""

    params: Any
    objective: float
    n_iter: int
    converged: bool
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class EMFused:
    """What a model's compiled loop (``_em_fused``) did: the total objective of each E-step
    in order; ``converged`` if the last one met the convergence test (the run ends there,
    at ``params``); otherwise ``params`` are those after the last M-step, unless ``stats``
    holds the last E-step's statistics, whose M-step is left to the engine."""

    params: Any
    objectives: list[float]
    converged: bool = False
    stats: dict[str, torch.Tensor] | None = None


class EMEngine:
    """Mixin that runs EM for a model that supplies the math (see the module docstring)."""

    _em_objective_name = "objective"
    _em_cache_blocked = True
    _param_groups = (EM_CHECKPOINTING,)

    # -- hooks with defaults ------------------------------------------------------------------
    def _em_row_width(self, params: Any) -> int:
        return 1

    def _em_runs_per_batch(self, n_init: int) -> int:
        return 1

    def _em_select(self, params: Any, idx: torch.Tensor) -> Any:
        if len(idx) == 1 and int(idx[0]) == 0:
            return params
        raise NotImplementedError("batched runs need _em_select")

    def _em_converged(self, prev: torch.Tensor, objective: torch.Tensor, params: Any,
                      tol: float) -> torch.Tensor:
        return (objective - prev).abs() < tol

    def _em_history(self, stats: dict[str, torch.Tensor], n_total: int, j: int
                    ) -> dict[str, float]:
        return {}

    def _em_fused(self, X: Any, params: Any, first: bool, n_steps: int, tol: float
                  ) -> EMFused | None:
        return None

    def _em_concurrent_batches(self, X: Any, n_batches: int) -> int:
        return 1

    # -- the engine -----------------------------------------------------------------------------
    def _em_pass(self, X: torch.Tensor, params: Any) -> dict[str, torch.Tensor]:
        """Statistics of all rows at ``params``: chunked, then summed over ranks."""
        N = X.shape[0]
        step = em_chunk_rows(self._em_row_width(params), N, self._em_cache_blocked)
        total: dict[str, torch.Tensor] | None = None
        for s in ops.chunks(N, step):
            st = self._em_e_step(X[s], params, s)  # type: ignore[attr-defined]
            if total is None:
                total = st
            else:
                for k, v in st.items():
                    total[k] += v
        assert total is not None, "EM on zero rows"
        ud.all_reduce_sum(*total.values())
        return total

    def _em_fit(
        self, X: Any, *, n_init: int, max_iter: int, tol: float,
        generator: torch.Generator, stage: str = "EM", verbose: bool = False,
        warn: bool = True, on_run: Callable[[EMResult], None] | None = None,
    ) -> EMResult:
        """Run ``n_init`` restarts of at most ``max_iter`` M-steps; return the best run.

        Iteration t evaluates the objective (and the statistics) at θ_t, stops if converged or
        t = max_iter, else performs the M-step θ_{t+1}. So ``n_iter`` M-steps were done and
        the returned parameters are those at which the returned objective was measured.
        With ``checkpoint_dir`` set on the estimator the state is checkpointed (module
        docstring); ``on_run`` is called for the runs that finish in this process.
        """
        n_total = global_count(X.shape[0], X.device)
        tie = max(1e-12, 16 * torch.finfo(X.dtype).eps) if X.is_floating_point() else 1e-12
        per_batch = max(1, self._em_runs_per_batch(n_init))
        st = EMState()
        ck = EMCheckpoint.of(self, X, generator, n_total=n_total, n_init=n_init,
                             max_iter=max_iter, tol=tol, per_batch=per_batch)
        if ck is not None and ck.resume:
            ck.restore(st)

        def keep(results: list[EMResult]) -> None:
            for res in results:
                if on_run is not None:
                    on_run(res)
                # a later run must beat the kept one by more than rounding (runs that reach the
                # same optimum keep the first, whatever the chunking, ranks or dtype)
                if st.best is None or res.objective > st.best.objective + tie * abs(
                        st.best.objective):
                    st.best = res

        n_batches = -(-n_init // per_batch)
        at_once = min(self._em_concurrent_batches(X, n_batches), torch.get_num_threads())
        if at_once > 1 and ck is None and ud.world_size() == 1:
            keep(self._em_batches_at_once(X, st, n_init, per_batch, at_once, max_iter, tol,
                                          generator, n_total, stage, verbose))
            st.finished = True
        while not st.finished:
            if st.batch is None:
                st.batch = self._em_new_batch(X, st, n_init, per_batch, generator)
            keep(self._em_batch(X, st, max_iter, tol, generator, n_total, stage, verbose, ck))
            st.batch = None
            st.finished = st.started >= n_init
            if ck is not None:
                ck.boundary(st)
        best = st.best
        assert best is not None
        if warn and not best.converged and max_iter > 0:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={max_iter} iterations "
                "(raise max_iter or tol, or check the initialisation)",
                ConvergenceWarning, stacklevel=3,
            )
        return best

    def _em_new_batch(self, X: Any, st: EMState, n_init: int, per_batch: int,
                      generator: torch.Generator) -> dict[str, Any]:
        """The next batch of restarts, initialised (``st.started`` counts them)."""
        R = min(per_batch, n_init - st.started)
        st.started += R
        return {"R": R, "params": self._em_initialize(X, generator, R),  # type: ignore[attr-defined]
                "it": 0, "ids": list(range(R)), "hist": [[] for _ in range(R)], "done": [],
                "prev": None}

    def _em_batches_at_once(
        self, X: Any, st: EMState, n_init: int, per_batch: int, workers: int, max_iter: int,
        tol: float, gen: torch.Generator, n_total: int, stage: str, verbose: bool,
    ) -> list[EMResult]:
        """Every batch of restarts, ``workers`` at a time on a thread pool, each on one torch
        and one BLAS thread: the runs of the batches in run order, each what a one-thread fit
        gives. Initialised here first, in order (the generator's draws are those of a batch
        by batch fit); the batches' iterations must not draw from it."""
        batches = []
        while st.started < n_init:
            batches.append(self._em_new_batch(X, st, n_init, per_batch, gen))
        sink = current_progress_callback()
        lock = threading.Lock()

        def locked(*args: Any, **kw: Any) -> None:  # a front end's sink sees one call at a time
            with lock:
                sink(*args, **kw)

        def run(batch: dict[str, Any]) -> list[EMResult]:
            # the pool's threads do not inherit this context's sink: set it again
            with progress_callback(locked) if sink is not None else nullcontext():
                return self._em_batch(X, EMState(batch=batch), max_iter, tol, gen, n_total,
                                      stage, verbose)

        # process-wide, so the pool's threads see it too; restored after, errors included
        with one_torch_thread(), one_blas_thread(), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(run, batches))
        return [res for part in parts for res in part]

    def _em_batch(
        self, X: Any, st: EMState, max_iter: int, tol: float, gen: torch.Generator,
        n_total: int, stage: str, verbose: bool, ck: EMCheckpoint | None = None,
    ) -> list[EMResult]:
        """Iterate the batch of runs in ``st.batch`` (fresh or restored) until all finish."""
        b = st.batch
        assert b is not None
        name = self._em_objective_name
        block = FUSED_FIRST_BLOCK
        while True:
            if ck is not None and ck.due(st.iters):
                ck.save(st)
            it, ids, params = b["it"], b["ids"], b["params"]
            stats = None
            if len(ids) == 1 and it < max_iter:  # a model's compiled loop, if it has one
                n = min(block, max_iter - it)
                if ck is not None and ck.every is not None:  # stop where a checkpoint is due
                    n = min(n, ck.every - st.iters % ck.every)
                t0 = time.monotonic()
                fz = self._em_fused(X, params, b["prev"] is None, n, tol)
                if fz is not None:
                    took = time.monotonic() - t0
                    block = int(min(max(1, block * min(4.0, FUSED_SECONDS / max(took, 1e-6))),
                                    FUSED_MAX_BLOCK))
                    objs = [o / n_total for o in fz.objectives]
                    rec = objs if fz.stats is None else objs[:-1]
                    tots = torch.tensor(fz.objectives, dtype=torch.float64)  # one tensor
                    for i, o in enumerate(rec):
                        b["hist"][ids[0]].append({"iter": it + i, name: o, **self._em_history(
                            {"objective": tots[i:]}, n_total, 0)})
                        report_progress(stage, it + i, max_iter, **{name: o})
                        if verbose:
                            print(f"{stage} iter {it + i}: {name} {o:.6g} (1 run active)")
                    st.iters += len(rec)
                    if fz.converged:
                        o = objs[-1] if math.isfinite(objs[-1]) else -math.inf
                        b["done"].append((ids[0], EMResult(fz.params, o, it + len(objs) - 1,
                                                           True, b["hist"][ids[0]])))
                        break
                    if rec:
                        b["prev"] = torch.tensor([rec[-1]], dtype=torch.float64)
                    it, params = it + len(rec), fz.params
                    b["params"], b["it"] = params, it
                    if fz.stats is None:
                        continue
                    stats = fz.stats  # the last E-step's M-step is left to the model's own
            if stats is None:
                stats = self._em_pass(X, params)
            st.iters += 1
            obj = stats["objective"].to(torch.float64) / n_total
            vals = obj.tolist()
            for j, r in enumerate(ids):
                b["hist"][r].append({"iter": it, name: vals[j],
                                     **self._em_history(stats, n_total, j)})
            report_progress(stage, it, max_iter, **{name: max(vals)})
            if verbose:
                print(f"{stage} iter {it}: {name} {max(vals):.6g} ({len(ids)} runs active)")
            prev = b["prev"]
            conv = (torch.zeros(len(ids), dtype=torch.bool) if prev is None
                    else self._em_converged(prev, obj, params, tol).cpu())
            finished = conv | (it == max_iter)
            if bool(finished.any()):
                for j in torch.nonzero(finished).flatten().tolist():
                    p = self._em_select(params, torch.tensor([j]))
                    o = vals[j] if math.isfinite(vals[j]) else -math.inf
                    b["done"].append((ids[j], EMResult(p, o, it, bool(conv[j]),
                                                       b["hist"][ids[j]])))
            keep = torch.nonzero(~finished).flatten()
            if len(keep) == 0:
                break
            params = self._em_m_step(stats, params, X)  # type: ignore[attr-defined]
            b["prev"] = obj
            if len(keep) < len(ids):
                params = self._em_select(params, keep)
                b["prev"] = obj[keep.to(obj.device)]
                b["ids"] = [ids[j] for j in keep.tolist()]
            b["params"], b["it"] = params, it + 1
        return [res for _, res in sorted(b["done"], key=lambda t: t[0])]  # in run order
