"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint directory holds ``checkpoint.safetensors`` whose header metadata carries the JSON
(step, epoch, position in the epoch, optimiser hyper-parameters, scheduler state, early-stopping
state, history). Tensors are the module's ``state_dict`` (``model.*``), the best weights kept for
early stopping (``best.*``), each named optimiser's per-parameter state
(``optim.<name>.<i>.<key>``; ``optim.<i>.<key>`` in checkpoints written before named
optimisers, still read) and the
random-number-generator states (``rng.*``, as uint8 tensors). The file is written to a temporary
name and renamed (:func:`os.replace`), so a crash never leaves a half-written checkpoint.

The EM and MCMC engines (:mod:`unsup.train.em`, :mod:`unsup.train.mcmc`) write the same file
format; their metadata carries ``"engine": "em"`` or ``"mcmc"``. The helpers below serve them:
:data:`checkpoint_params` (the ``checkpoint_dir`` / ``checkpoint_every`` / ``resume`` parameters,
named as in the gradient engine), :func:`pack_tree` / :func:`unpack_tree` (nested parameters of
an EM model as tensors plus a JSON skeleton), the state of a NumPy ``RandomState``
(:func:`randomstate_to_flat`), :func:`data_fingerprint` and :func:`load_engine_checkpoint`, which
refuses a checkpoint of another engine or another run with a message that names the difference.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_NAME", "optimizer_to_flat",
           "optimizer_from_flat", "checkpoint_params", "pack_tree", "unpack_tree",
           "randomstate_to_flat", "randomstate_from_flat", "data_fingerprint",
           "load_engine_checkpoint", "signature_difference"]

CHECKPOINT_NAME = "checkpoint.safetensors"


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return {"__tuple__": [_jsonable(x) for x in v]}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, torch.Tensor):
        return v.item()
    return v


def _from_json(v: Any) -> Any:
    if isinstance(v, dict):
        if set(v) == {"__tuple__"}:
            return tuple(_from_json(x) for x in v["__tuple__"])
        return {k: _from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


def optimizer_to_flat(opt: torch.optim.Optimizer, prefix: str = "optim."
                      ) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``opt.state_dict()`` into tensors named ``<prefix><param>.<key>`` and JSON."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{prefix}{idx}.{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = _jsonable(v)
    meta = {"param_groups": _jsonable(sd["param_groups"]), "scalars": scalars}
    return tensors, meta


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                        meta: dict, prefix: str = "optim.") -> None:
    """Inverse of :func:`optimizer_to_flat`: load the state into ``opt``."""
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if not name.startswith(prefix):
            continue
        idx, key = name[len(prefix):].split(".", 1)
        if idx.isdigit():
            state.setdefault(int(idx), {})[key] = t
    for idx, st in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(_from_json(st))
    opt.load_state_dict({"state": state, "param_groups": _from_json(meta["param_groups"])})


def save_checkpoint(directory: str | os.PathLike, tensors: dict[str, torch.Tensor],
                    meta: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``meta`` atomically to ``directory/checkpoint.safetensors``."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / CHECKPOINT_NAME
    tmp = d / f".{CHECKPOINT_NAME}.tmp-{os.getpid()}"
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(flat, str(tmp), metadata={"format": "unsup-checkpoint",
                                        "json": json.dumps(_jsonable(meta))})
    os.replace(tmp, path)
    return path


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict] | None:
    """Read a checkpoint written by :func:`save_checkpoint`; ``None`` when there is none."""
    from safetensors import safe_open

    path = Path(directory) / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            # copied into fresh (aligned) storage: MKL's GEMM on the reader's buffer differed
            # in the last bit, and a resumed fit must equal one never stopped
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - any reader failure means a bad file
        raise ValueError(f"{path} is not a readable checkpoint: {e}") from None
    if header.get("format") != "unsup-checkpoint":
        raise ValueError(f"{path} is not an unsup checkpoint")
    try:
        meta = json.loads(header["json"])
    except (KeyError, ValueError, RecursionError) as e:
        raise ValueError(f"{path} is not a readable checkpoint: its metadata is damaged "
                         f"({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a readable checkpoint: its metadata is not an object")
    return tensors, _from_json(meta)


# -- shared by the EM and MCMC engines ----------------------------------------------------------
def checkpoint_params(every_doc: str) -> list:
    """The ``checkpoint_dir``, ``checkpoint_every`` and ``resume`` parameters (the gradient
    engine's names) for a parameter group; ``every_doc`` says what ``checkpoint_every`` counts."""
    from unsup.params import Integral, Interval, Param

    path = [str, os.PathLike, None]
    return [
        Param("checkpoint_dir", None, path,
              "Directory for atomic checkpoints of the fit (None: no checkpoints).",
              "str or None"),
        Param("checkpoint_every", None, [Interval(Integral, 1, None, closed="left"), None],
              every_doc, "int or None"),
        Param("resume", False, ["boolean"],
              "Continue exactly from the checkpoint in checkpoint_dir when there is one.",
              "bool"),
    ]


_SCALARS = (bool, int, float, str, type(None))


def pack_tree(obj: Any, prefix: str, tensors: dict[str, torch.Tensor],
              modules: frozenset[str]) -> Any:
    """A JSON skeleton of ``obj`` whose tensors go to ``tensors`` (named from ``prefix``).

    Takes tensors, NumPy arrays, scalars, str-keyed dicts, lists, tuples and objects of a
    class defined in one of ``modules`` whose constructor arguments are attributes of the same
    name (rebuilt by calling the constructor, so derived attributes are recomputed).
    """
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach()
        return {"t": prefix}
    if isinstance(obj, np.ndarray):
        tensors[prefix] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"a": prefix}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        obj = obj.item()
    if isinstance(obj, _SCALARS):
        return {"v": obj}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"cannot checkpoint a dict with non-string keys at {prefix}")
        return {"d": {k: pack_tree(v, f"{prefix}.{k}", tensors, modules) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        key = "l" if isinstance(obj, list) else "u"
        return {key: [pack_tree(v, f"{prefix}.{i}", tensors, modules) for i, v in enumerate(obj)]}
    import inspect

    cls = type(obj)
    if cls.__module__ in modules:
        names = [p.name for p in inspect.signature(cls).parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if all(hasattr(obj, n) for n in names):
            return {"o": [cls.__module__, cls.__qualname__],
                    "a": {n: pack_tree(getattr(obj, n), f"{prefix}.{n}", tensors, modules)
                          for n in names}}
    raise TypeError(f"cannot checkpoint a {cls.__qualname__} at {prefix} (tensors, arrays, "
                    "scalars, dicts, lists and the model module's own classes can be)")


def unpack_tree(spec: Any, tensors: dict[str, torch.Tensor], device: torch.device | None,
                modules: frozenset[str]) -> Any:
    """Inverse of :func:`pack_tree` (tensors moved to ``device``); KeyError/TypeError/ValueError
    on a skeleton that does not fit."""
    if not isinstance(spec, dict) or len(spec) not in (1, 2):
        raise ValueError(f"bad skeleton entry {spec!r:.80}")
    if "o" in spec:
        mod, qual = spec["o"]
        if mod not in modules or mod not in sys.modules:
            raise ValueError(f"class {mod}.{qual} is not one of the model's")
        cls: Any = sys.modules[mod]
        for part in str(qual).split("."):
            cls = getattr(cls, part)
        if not isinstance(cls, type) or cls.__module__ != mod:
            raise ValueError(f"{mod}.{qual} is not a class of the model's module")
        return cls(**{k: unpack_tree(v, tensors, device, modules) for k, v in spec["a"].items()})
    if "t" in spec:
        t = tensors[spec["t"]]
        return t if device is None else t.to(device)
    if "a" in spec:
        return tensors[spec["a"]].numpy()
    if "v" in spec:
        return spec["v"]
    if "d" in spec:
        return {k: unpack_tree(v, tensors, device, modules) for k, v in spec["d"].items()}
    if "l" in spec:
        return [unpack_tree(v, tensors, device, modules) for v in spec["l"]]
    if "u" in spec:
        return tuple(unpack_tree(v, tensors, device, modules) for v in spec["u"])
    raise ValueError(f"bad skeleton entry {spec!r:.80}")


def unshare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Clone tensors that share storage with an earlier one (safetensors refuses them)."""
    seen: set[int] = set()
    out = {}
    for k, t in tensors.items():
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        out[k] = t.clone() if ptr in seen else t
        if ptr != -1:
            seen.add(ptr)
    return out


def randomstate_to_flat(rs: np.random.RandomState, name: str,
                        tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Store a NumPy ``RandomState`` (its Mersenne-Twister keys as a tensor ``name``)."""
    kind, keys, pos, has_gauss, cached = rs.get_state(legacy=True)
    tensors[name] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    return {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}


def randomstate_from_flat(meta: dict[str, Any], keys: torch.Tensor) -> np.random.RandomState:
    """Inverse of :func:`randomstate_to_flat`."""
    rs = np.random.RandomState()
    rs.set_state((meta["kind"], keys.numpy().astype(np.uint32), int(meta["pos"]),
                  int(meta["has_gauss"]), float(meta["cached"])))
    return rs


def data_fingerprint(X: Any) -> str | None:
    """sha256 of the training data's tensors (a tensor, or the ``row``/``col``/``val`` of
    sparse documents): a resumed fit must see the data the checkpoint was written for."""
    parts = [X] if isinstance(X, torch.Tensor) else [
        getattr(X, a) for a in ("row", "col", "val") if isinstance(getattr(X, a, None),
                                                                   torch.Tensor)]
    if not parts:
        return None
    h = hashlib.sha256()
    for t in parts:
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{tuple(t.shape)}{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy())
    return h.hexdigest()


def signature_difference(saved: Any, now: dict[str, Any]) -> str | None:
    """``None`` when equal, else the first differing entries, as ``name: A there, B now``."""
    if not isinstance(saved, dict):
        return f"no signature there (found {saved!r:.60})"
    saved = json.loads(json.dumps(_jsonable(saved)))
    now = json.loads(json.dumps(_jsonable(now)))
    diff = [f"{k}: {saved.get(k)!r:.80} there, {now.get(k)!r:.80} now"
            for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    return "; ".join(diff[:3]) if diff else None


def load_engine_checkpoint(directory: str | os.PathLike, engine: str
                           ) -> tuple[dict[str, torch.Tensor], dict] | None:
    """Read a checkpoint of the ``engine`` ("em" or "mcmc"); ``None`` when there is none.

    A damaged file, or one of another engine, is a ``ValueError`` that names it (never a
    silent fresh start: the caller asked to resume).
    """
    loaded = load_checkpoint(directory)
    if loaded is None:
        return None
    path = Path(directory) / CHECKPOINT_NAME
    got = loaded[1].get("engine", "gradient")
    if got != engine:
        raise ValueError(f"cannot resume from {path}: it was written by the {got} engine, not "
                         f"the {engine} engine; use a new checkpoint_dir")
    return loaded
