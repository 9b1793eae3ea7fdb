"""Checkpoint and exact resume of the EM engine (:mod:`unsup.train.em`).

The engine's state between two iterations is :class:`EMState`: the restarts begun, the passes
done, the best finished run, and the batch of runs in progress (their parameters, iteration,
previous objective, history and the runs of the batch already finished). :class:`EMCheckpoint`
writes it with the generator's state and the estimator's private per-fit state (attributes with
a leading underscore holding a tensor or a NumPy ``RandomState``) in the safetensors + JSON
format of :mod:`unsup.train.checkpoint`, and restores it.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unsup import distributed as ud
from unsup.train.checkpoint import (
    CHECKPOINT_NAME,
    data_fingerprint,
    load_engine_checkpoint,
    pack_tree,
    randomstate_from_flat,
    randomstate_to_flat,
    save_checkpoint,
    signature_difference,
    unpack_tree,
    unshare,
)

__all__ = ["EMState", "EMCheckpoint"]

# parameters that may differ on resume (budgets, logging, where) or are checked separately
_FREE = {"checkpoint_dir", "checkpoint_every", "resume", "verbose", "device", "random_state",
         "max_iter", "n_init"}
_DAMAGE = (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError)
#: with checkpoint_every=None, seconds of fitting between two writes (an EM iteration can take
#: milliseconds: a write per iteration doubled a diagonal mixture's fit on MNIST PCA-50)
MIN_SECONDS = 10.0


@dataclass
class EMState:
    """Where an EM fit is: restarts begun, E-passes done, best run, batch in progress."""

    started: int = 0
    iters: int = 0
    best: Any = None
    batch: dict[str, Any] | None = None
    finished: bool = False


def _plain(v: Any) -> Any:
    """JSON form of a parameter value for the signature (arrays by their digest)."""
    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return "sha256:" + hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest()
        return repr(o)

    return json.loads(json.dumps(v, default=default))


class EMCheckpoint:
    """Writes and restores the EM engine's state in ``checkpoint_dir`` (see the module doc)."""

    def __init__(self, est: Any, X: Any, gen: torch.Generator, directory: str,
                 every: int | None, resume: bool, signature: dict[str, Any],
                 seed: int | None) -> None:
        self.est, self.X, self.gen = est, X, gen
        self.directory, self.every, self.resume = directory, every, resume
        self.signature, self.seed = signature, seed
        self.modules = frozenset(k.__module__ for k in type(est).__mro__)
        self.path = Path(directory) / CHECKPOINT_NAME
        self._skip = False
        self._last = time.monotonic()

    @classmethod
    def of(cls, est: Any, X: Any, gen: torch.Generator, **sig: Any) -> EMCheckpoint | None:
        """The checkpointer of ``est``'s fit, or None without ``checkpoint_dir``."""
        directory = getattr(est, "checkpoint_dir", None)
        resume = bool(getattr(est, "resume", False))
        if not directory:
            if resume:
                raise ValueError("resume=True needs checkpoint_dir")
            return None
        if ud.world_size() > 1:
            raise ValueError("EM checkpoints are not supported under torchrun (each rank holds "
                             "its own per-row state); leave checkpoint_dir unset")
        params = {f"param {k}": v for k, v in est.get_params(deep=False).items()
                  if k not in _FREE}
        signature = {"engine": "em", "model": type(est).__name__,
                     **{k: (float(v) if isinstance(v, float) else v) for k, v in sig.items()},
                     "shape": list(X.shape), "dtype": str(getattr(X, "dtype", None)),
                     "generator": gen.device.type, "data": data_fingerprint(X),
                     **_plain(params)}
        rs = getattr(est, "random_state", None)
        seed = int(rs) if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) else None
        every = getattr(est, "checkpoint_every", None)
        if every is not None and (isinstance(every, bool) or not isinstance(
                every, numbers.Integral) or every < 1):
            raise ValueError(f"checkpoint_every must be an integer >= 1 or None, got {every!r}")
        return cls(est, X, gen, str(directory), None if every is None else int(every), resume,
                   signature, seed)

    def due(self, iters: int) -> bool:
        """Whether to checkpoint at the top of the iteration after ``iters`` passes."""
        if self._skip:  # the state just restored is already on disk
            self._skip = False
            return False
        if self.every is None:
            return time.monotonic() - self._last >= MIN_SECONDS
        return iters % self.every == 0

    def boundary(self, st: EMState) -> None:
        """After a batch of restarts: checkpoint (the end of the fit always)."""
        if st.finished or self.every is not None or \
                time.monotonic() - self._last >= MIN_SECONDS:
            self.save(st)

    # -- writing --------------------------------------------------------------------------------
    def _result(self, res: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> dict:
        return {"params": pack_tree(res.params, f"{prefix}.params", tensors, self.modules),
                "objective": res.objective, "n_iter": res.n_iter,
                "converged": res.converged, "history": res.history}

    def save(self, st: EMState) -> None:
        if ud.rank() != 0:
            return
        tensors: dict[str, torch.Tensor] = {}
        state: dict[str, Any] = {
            "started": st.started, "iters": st.iters, "finished": st.finished,
            "best": None if st.best is None else self._result(st.best, "best", tensors),
            "batch": None}
        b = st.batch
        if b is not None:
            state["batch"] = {
                "R": b["R"], "it": b["it"], "ids": b["ids"], "hist": b["hist"],
                "params": pack_tree(b["params"], "batch.params", tensors, self.modules),
                "prev": None if b["prev"] is None else pack_tree(b["prev"], "batch.prev",
                                                                  tensors, self.modules),
                "done": [[r, self._result(res, f"batch.done.{r}", tensors)]
                         for r, res in b["done"]]}
        private: dict[str, Any] = {}
        for k, v in vars(self.est).items():
            if not k.startswith("_") or k.startswith("__"):
                continue
            if isinstance(v, torch.Tensor):
                tensors[f"self.{k}"] = v.detach()
                private[k] = {"t": f"self.{k}"}
            elif isinstance(v, np.random.RandomState):
                private[k] = {"rs": randomstate_to_flat(v, f"self.{k}", tensors)}
        tensors["rng.gen"] = self.gen.get_state()
        meta = {"engine": "em", "signature": self.signature, "seed": self.seed,
                "state": state, "private": private}
        save_checkpoint(self.directory, unshare(tensors), meta)
        self._last = time.monotonic()

    # -- reading --------------------------------------------------------------------------------
    def restore(self, st: EMState) -> bool:
        """Fill ``st`` (and the generator, the private state) from the checkpoint, if any."""
        loaded = load_engine_checkpoint(self.directory, "em")
        if loaded is None:
            return False
        tensors, meta = loaded
        diff = signature_difference(meta.get("signature"), self.signature)
        if diff is None and None not in (meta.get("seed"), self.seed) \
                and meta.get("seed") != self.seed:
            diff = f"random_state: {meta.get('seed')} there, {self.seed} now"
        if diff:
            raise ValueError(f"cannot resume from {self.path}: it was written for a different "
                             f"run ({diff}); use a new checkpoint_dir")
        try:
            self._restore(st, tensors, meta)
        except _DAMAGE as e:
            raise ValueError(f"cannot resume from {self.path}: the checkpoint is damaged "
                             f"({type(e).__name__}: {e})") from None
        self._skip = True
        return True

    def _restore(self, st: EMState, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        from unsup.train.em import EMResult

        dev = getattr(self.X, "device", None)

        def result(d: dict) -> EMResult:
            return EMResult(unpack_tree(d["params"], tensors, dev, self.modules),
                            float(d["objective"]), int(d["n_iter"]), bool(d["converged"]),
                            list(d["history"]))

        s = meta["state"]
        st.started, st.iters = int(s["started"]), int(s["iters"])
        st.finished = bool(s["finished"])
        st.best = None if s["best"] is None else result(s["best"])
        b = s["batch"]
        st.batch = None if b is None else {
            "R": int(b["R"]), "it": int(b["it"]), "ids": [int(i) for i in b["ids"]],
            "hist": [list(h) for h in b["hist"]],
            "params": unpack_tree(b["params"], tensors, dev, self.modules),
            "prev": None if b["prev"] is None else unpack_tree(b["prev"], tensors, dev,
                                                               self.modules),
            "done": [(int(r), result(d)) for r, d in b["done"]]}
        for k, spec in meta["private"].items():
            if not (isinstance(k, str) and k.startswith("_") and not k.startswith("__")):
                raise ValueError(f"private state {k!r} is not a private attribute")
            if "rs" in spec:
                setattr(self.est, k, randomstate_from_flat(spec["rs"], tensors[f"self.{k}"]))
            else:
                t = tensors[spec["t"]]
                setattr(self.est, k, t if dev is None else t.to(dev))
        self.gen.set_state(tensors["rng.gen"])
