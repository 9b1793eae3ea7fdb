"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint directory holds ``checkpoint.safetensors`` whose header metadata carries the JSON
(step, epoch, position in the epoch, optimiser hyper-parameters, scheduler state, early-stopping
state, history). Tensors are the module's ``state_dict`` (``model.*``), the best weights kept for
early stopping (``best.*``), each named optimiser's per-parameter state
(``optim.<name>.<i>.<key>``; ``optim.<i>.<key>`` in checkpoints written before named
optimisers, still read) and the
random-number-generator states (``rng.*``, as uint8 tensors). The file is written to a temporary
name and renamed (:func:`os.replace`), so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_NAME", "optimizer_to_flat",
           "optimizer_from_flat"]

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
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - any reader failure means a bad file
        raise ValueError(f"{path} is not a readable checkpoint: {e}") from None
    if header.get("format") != "unsup-checkpoint":
        raise ValueError(f"{path} is not an unsup checkpoint")
    return tensors, _from_json(json.loads(header["json"]))
