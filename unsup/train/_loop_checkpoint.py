"""Checkpoint and exact resume of a single-run loop (online VB passes, Gibbs sweeps).

Single-run loops (LDA's online VB and Gibbs fits, the HDP's Gibbs sweeps) are not EM-engine
loops (no E-pass over all rows per iteration), but their state between two iterations is the
same shape as one EM run in progress: the
parameters (λ; or the topic assignments z and the NumPy generator's state), the iteration,
the history, and the torch generator. So they are written in the EM engine's checkpoint
format by :class:`unsup.train._em_checkpoint.EMCheckpoint` (atomic, safetensors + JSON, no
pickle; a checkpoint of other data or parameters is refused by name; a damaged one is a
``ValueError``), as an :class:`EMState` holding a batch of one run; a finished fit is kept
as the state's best run, so resuming it returns it without sampling again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unsup.train._em_checkpoint import EMCheckpoint, EMState
from unsup.train.em import EMResult

__all__ = ["LoopCheckpoint", "generator_state", "generator_from_state"]


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A NumPy PCG64 generator's state as JSON scalars (its 128-bit words as decimal text)."""
    s = rng.bit_generator.state
    if s.get("bit_generator") != "PCG64":
        raise TypeError(f"cannot checkpoint a {s.get('bit_generator')} generator (PCG64 only)")
    return {"state": str(s["state"]["state"]), "inc": str(s["state"]["inc"]),
            "has_uint32": int(s["has_uint32"]), "uinteger": int(s["uinteger"])}


def generator_from_state(d: dict[str, Any]) -> np.random.Generator:
    """Inverse of :func:`generator_state`."""
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": int(d["state"]), "inc": int(d["inc"])},
                               "has_uint32": int(d["has_uint32"]),
                               "uinteger": int(d["uinteger"])}
    return rng


class LoopCheckpoint:
    """The checkpoints of one estimator's single-run loop (None-safe without checkpoint_dir).

    Use: ``lc = LoopCheckpoint(est, X, gen, **signature)``; if ``lc.result`` is set the fit was
    finished; else ``lc.it, lc.history, lc.params`` say where to continue (0, [], None on a
    fresh start); call ``lc.top(it, params, history)`` at the top of every iteration and
    ``lc.finish(params, objective, n_iter, history)`` at the end.
    """

    def __init__(self, est: Any, X: Any, gen: torch.Generator, **signature: Any) -> None:
        self.st = EMState()
        self.ck = EMCheckpoint.of(est, X, gen, **signature)
        if self.ck is not None and self.ck.resume:
            self.ck.restore(self.st)
        self.result: EMResult | None = self.st.best if self.st.finished else None
        b = self.st.batch
        self.it = 0 if b is None else int(b["it"])
        self.history: list[dict[str, float]] = [] if b is None else list(b["hist"][0])
        self.params: Any = None if b is None else b["params"]

    def top(self, it: int, params: Any, history: list[dict[str, float]]) -> None:
        """Checkpoint, when due, the state at the top of iteration ``it`` (``it`` done)."""
        if self.ck is None or not self.ck.due(it):
            return
        self.st.iters = it
        self.st.batch = {"R": 1, "it": it, "ids": [0], "hist": [list(history)],
                         "params": params, "prev": None, "done": []}
        self.ck.save(self.st)

    def finish(self, params: Any, objective: float, n_iter: int,
               history: list[dict[str, float]]) -> None:
        """Record the finished fit (always written when checkpointing)."""
        if self.ck is None:
            return
        self.st.best = EMResult(params, float(objective), int(n_iter), True, list(history))
        self.st.batch, self.st.started, self.st.iters, self.st.finished = None, 1, n_iter, True
        self.ck.boundary(self.st)
