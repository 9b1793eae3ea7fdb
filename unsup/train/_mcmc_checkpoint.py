"""Checkpoint and exact resume of the MCMC engine (:func:`unsup.train.mcmc.fit_mcmc`).

A fit may run the engine several times with one generator (a DBM pre-trains two RBMs, then
trains jointly): each run is a *stage*. :func:`begin_session`, called by
:func:`unsup.train.mcmc.mcmc_config` at the start of every energy model's fit, opens a session
with the estimator's ``checkpoint_dir`` / ``checkpoint_every`` / ``resume``; the engine's runs
that follow with the same generator are its stages 0, 1, 2, ... One checkpoint file holds the
finished stages (final parameters, chains, history, generator state) and the stage in progress
(parameters, momentum velocities, persistent chains, sparsity average, the epoch's permutation
and position, update count, history, generator state). On resume a finished stage is restored
without training and the stage in progress continues from its last checkpoint, so the fit
returns the model of a fit never stopped (bit for bit on the same machine and thread count).
"""

from __future__ import annotations

import numbers
import sys
import threading
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from unsup.train.checkpoint import (
    CHECKPOINT_NAME,
    data_fingerprint,
    load_engine_checkpoint,
    save_checkpoint,
    signature_difference,
    unshare,
)

__all__ = ["begin_session", "StageCheckpoint"]

_local = threading.local()
_NOT_SIGNED = {"checkpoint_dir", "checkpoint_every", "resume"}
_DAMAGE = (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError)


@dataclass
class _Session:
    directory: str
    every: int | None
    resume: bool
    seed: int | None
    gen: Any = None  # weak reference to the generator the stages share
    stages: int = 0
    done: list[dict[str, Any]] = field(default_factory=list)
    loaded: Any = None
    read: bool = False

    @property
    def path(self) -> Path:
        return Path(self.directory) / CHECKPOINT_NAME

    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        if self.resume and not self.read:
            self.loaded = load_engine_checkpoint(self.directory, "mcmc")
            self.read = True
            if self.loaded is not None:
                seed = self.loaded[1].get("seed")
                if None not in (seed, self.seed) and seed != self.seed:
                    raise ValueError(f"cannot resume from {self.path}: it was written for a "
                                     f"different run (random_state: {seed} there, {self.seed} "
                                     "now); use a new checkpoint_dir")
        return self.loaded


def _twin_state(gen: torch.Generator) -> dict[str, Any] | None:
    """State of the energy family's NumPy twin of ``gen`` (see :mod:`unsup.energy._engine`)."""
    if "unsup.energy._rbm" not in sys.modules:
        return None
    from unsup.energy._engine import twin_state

    return twin_state(gen)


def _set_twin_state(gen: torch.Generator, state: dict[str, Any] | None) -> None:
    if state is None and "unsup.energy._rbm" not in sys.modules:
        return
    from unsup.energy._engine import set_twin_state

    set_twin_state(gen, state)


def _seed(rs: Any) -> int | None:
    return int(rs) if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) else None


def begin_session(directory: Any, every: int | None, resume: bool, random_state: Any) -> None:
    """Start the checkpoint session of one estimator's fit (None: the fit keeps none)."""
    if not directory:
        if resume:
            raise ValueError("resume=True needs checkpoint_dir")
        _local.session = None
        return
    if every is not None and (isinstance(every, bool) or not isinstance(
            every, numbers.Integral) or every < 1):
        raise ValueError(f"checkpoint_every must be an integer >= 1 or None, got {every!r}")
    _local.session = _Session(str(directory), every, bool(resume), _seed(random_state))


def _session_for(cfg: Any, gen: torch.Generator) -> _Session | None:
    s = getattr(_local, "session", None)
    if s is not None and (s.gen is None or s.gen() is gen):
        s.gen = weakref.ref(gen)
        return s
    if getattr(cfg, "checkpoint_dir", None):  # a config made by hand, outside an estimator
        begin_session(cfg.checkpoint_dir, cfg.checkpoint_every, cfg.resume, None)
        _local.session.gen = weakref.ref(gen)
        return _local.session
    return None


class StageCheckpoint:
    """One stage of a session: restores it on resume and writes the session's checkpoint."""

    def __init__(self, session: _Session, index: int, signature: dict[str, Any],
                 params: dict[str, torch.Tensor], gen: torch.Generator, every: int) -> None:
        self.s, self.i, self.signature = session, index, signature
        self.params, self.gen, self.every = params, gen, every

    @classmethod
    def start(cls, model: Any, X: torch.Tensor, cfg: Any, gen: torch.Generator
              ) -> StageCheckpoint | None:
        s = _session_for(cfg, gen)
        if s is None:
            return None
        index = s.stages
        s.stages += 1
        params = model.parameters()
        B = min(cfg.batch_size, X.shape[0])
        signature = {"engine": "mcmc", "stage index": index,
                     **{k: v for k, v in asdict(cfg).items() if k not in _NOT_SIGNED},
                     "parameters": {k: [list(p.shape), str(p.dtype)] for k, p in params.items()},
                     "shape": list(X.shape), "dtype": str(X.dtype),
                     "generator": gen.device.type, "data": data_fingerprint(X)}
        every = s.every or max(1, X.shape[0] // B)  # None: once per pass over the data
        return cls(s, index, signature, params, gen, int(every))

    def due(self, t_done: int, total: int) -> bool:
        return t_done % self.every == 0 and t_done < total

    # -- reading --------------------------------------------------------------------------------
    def restore(self, vel: dict[str, torch.Tensor], device: torch.device) -> dict | None:
        """The saved state of this stage (parameters, velocities and generator restored in
        place), or None when the checkpoint does not reach it."""
        loaded = self.s.checkpoint()
        if loaded is None:
            return None
        tensors, meta = loaded
        stages = meta.get("stages")
        if not isinstance(stages, list):
            raise ValueError(f"cannot resume from {self.s.path}: the checkpoint is damaged "
                             "(no stages)")
        if self.i >= len(stages):
            return None
        rec = stages[self.i]
        diff = signature_difference(rec.get("signature") if isinstance(rec, dict) else rec,
                                    self.signature)
        if diff:
            raise ValueError(f"cannot resume from {self.s.path}: it was written for a different "
                             f"run ({diff}); use a new checkpoint_dir")
        try:
            return self._restore(tensors, rec, vel, device)
        except _DAMAGE as e:
            raise ValueError(f"cannot resume from {self.s.path}: the checkpoint is damaged "
                             f"({type(e).__name__}: {e})") from None

    def _restore(self, tensors: dict[str, torch.Tensor], rec: dict, vel: dict[str, torch.Tensor],
                 device: torch.device) -> dict:
        pre = f"s{self.i}."

        def get(name: str) -> torch.Tensor:
            return tensors[pre + name].to(device)

        saved = {k: get(f"p.{k}") for k in self.params}
        for k, p in self.params.items():
            if saved[k].shape != p.shape or saved[k].dtype != p.dtype:
                raise ValueError(f"parameter {k} has shape {tuple(saved[k].shape)}")
        chains = None if rec["n_chains"] is None else tuple(
            get(f"c.{j}") for j in range(int(rec["n_chains"])))
        out = {"done": bool(rec["done"]), "history": list(rec["history"]), "chains": chains,
               "t": int(rec["t"])}
        if not out["done"]:
            vels = {k: get(f"v.{k}") for k in vel}
            out.update(pos=int(rec["pos"]), perm=get("perm"),
                       q=get("q") if rec["has_q"] else None)
        rng = tensors[pre + "rng"]
        # nothing is changed before every piece has been read
        for k, p in self.params.items():
            p.copy_(saved[k])
        if not out["done"]:
            for k, v in vel.items():
                v.copy_(vels[k])
        self.gen.set_state(rng)
        _set_twin_state(self.gen, rec.get("twin"))
        if out["done"]:
            self.finish(out["history"], chains, write=False)
        return out

    # -- writing --------------------------------------------------------------------------------
    def _record(self, tensors: dict[str, torch.Tensor], i: int, st: dict[str, Any]) -> dict:
        pre = f"s{i}."
        for k, p in st["params"].items():
            tensors[f"{pre}p.{k}"] = p.detach()
        chains = st["chains"]
        for j, c in enumerate(chains or ()):
            tensors[f"{pre}c.{j}"] = c.detach()
        tensors[pre + "rng"] = st["rng"]
        rec = {"signature": st["signature"], "done": st["done"], "t": st["t"],
               "history": st["history"], "n_chains": None if chains is None else len(chains),
               "twin": st["twin"]}
        if not st["done"]:
            for k, v in st["vel"].items():
                tensors[f"{pre}v.{k}"] = v.detach()
            tensors[pre + "perm"] = st["perm"]
            if st["q"] is not None:
                tensors[pre + "q"] = st["q"]
            rec.update(pos=st["pos"], has_q=st["q"] is not None)
        return rec

    def _write(self, current: dict[str, Any] | None) -> None:
        tensors: dict[str, torch.Tensor] = {}
        stages = [self._record(tensors, i, d) for i, d in enumerate(self.s.done)]
        if current is not None:
            stages.append(self._record(tensors, len(stages), current))
        meta = {"engine": "mcmc", "seed": self.s.seed, "stages": stages}
        save_checkpoint(self.s.directory, unshare(tensors), meta)

    def save(self, t_done: int, pos: int, perm: torch.Tensor, vel: dict[str, torch.Tensor],
             chains: Any, q: torch.Tensor | None, history: list[dict[str, float]]) -> None:
        """Checkpoint the stage in progress after ``t_done`` updates."""
        if len(self.s.done) != self.i:  # an earlier stage of the session ran without us
            return
        self._write({"signature": self.signature, "done": False, "t": t_done, "pos": pos,
                     "perm": perm, "vel": vel, "chains": chains, "q": q, "history": history,
                     "params": self.params, "rng": self.gen.get_state(),
                     "twin": _twin_state(self.gen)})

    def finish(self, history: list[dict[str, float]], chains: Any, write: bool = True) -> None:
        """Record the finished stage (kept in the session for the next stages' files)."""
        if len(self.s.done) != self.i:
            return
        self.s.done.append({
            "signature": self.signature, "done": True, "t": self.signature["n_updates"],
            "history": list(history), "rng": self.gen.get_state(),
            "twin": _twin_state(self.gen),
            "params": {k: p.detach().clone() for k, p in self.params.items()},
            "chains": None if chains is None else tuple(c.detach().clone() for c in chains)})
        if write:
            self._write(None)
