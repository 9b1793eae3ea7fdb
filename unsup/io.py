"""Safe model files: tensors in safetensors, parameters and metadata in JSON. Never pickle.

One file per model. It is a standard safetensors file whose header metadata carries:

- ``format`` = ``"unsup"`` and ``format_version``;
- ``json``: the estimator class, its constructor parameters, its non-array fitted state and the
  library version that wrote it;
- ``sha256``: a digest of the JSON and every tensor's bytes, so a tampered file is refused.

Loading looks the class up in :mod:`unsup.registry` (never an arbitrary import path)
and restores attributes; nothing is ever executed from the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

__all__ = ["save", "load", "ModelFileError", "FORMAT_VERSION"]

FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """The file is not a valid unsup model file (truncated, tampered, foreign or too new)."""


def _load_device(stored: Any, wanted: str | None) -> Any:
    """The device a loaded model runs on: the caller's choice, else the stored one if usable."""
    import torch

    if wanted is not None:
        return wanted
    if isinstance(stored, str) and stored.startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return stored


def _digest(meta_json: str, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(meta_json.encode())
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _jsonable(v: Any, where: str) -> Any:
    try:
        json.dumps(v)
    except TypeError as e:
        raise TypeError(f"cannot save {where}: {type(v).__name__} is not JSON-serialisable") from e
    return v


def save(estimator: Any, path: str | os.PathLike) -> None:
    """Write ``estimator`` to ``path`` atomically (write to a temporary file, then rename)."""
    from safetensors.numpy import save_file
    from sklearn.utils.validation import check_is_fitted

    from unsup import __version__
    from unsup.registry import spec_for

    cls = type(estimator)
    if spec_for(cls) is None:
        raise TypeError(f"{cls.__name__} is not a registered unsup model (see "
                        "unsup.registry.register_model)")
    # an unfitted estimator has no state to save: refuse rather than write an empty model
    check_is_fitted(estimator)
    arrays, fitted = estimator._get_state()
    tensors = {f"fitted.{k}": v for k, v in arrays.items()}
    params: dict[str, Any] = {}
    for k, v in estimator.get_params(deep=False).items():
        if isinstance(v, np.ndarray):
            tensors[f"param.{k}"] = v
        else:
            params[k] = _jsonable(v, f"parameter {k}")
    for k, v in fitted.items():
        _jsonable(v, f"fitted attribute {k}")
    meta = {
        "class": cls.__name__,
        "library_version": __version__,
        "params": params,
        "fitted": fitted,
    }
    meta_json = json.dumps(meta, sort_keys=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    header = {
        "format": "unsup",
        "format_version": str(FORMAT_VERSION),
        "json": meta_json,
        "sha256": _digest(meta_json, tensors),
    }
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):  # say so plainly, not as a serialiser I/O error
        raise FileNotFoundError(f"cannot save to {path}: directory {parent} does not exist")
    tmp = f"{path}.tmp-{os.getpid()}"
    save_file(tensors, tmp, metadata=header)
    os.replace(tmp, path)


def load(path: str | os.PathLike, device: str | None = None) -> Any:
    """Load an estimator written by :func:`save`. Never unpickles.

    ``device`` ("cpu", "cuda", "auto") replaces the device the model was trained on, so a model
    trained on a GPU loads on a CPU-only machine. When it is not given, the stored device is
    kept if it is available here, else the model is loaded on the CPU.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is truncated, tampered with, not an unsup file, or from a newer format.
    """
    from safetensors import SafetensorError, safe_open

    from unsup.registry import class_by_name

    if device is not None:
        from unsup.base import resolve_device

        resolve_device(device)  # a clear error for an unknown or unavailable device
    path = os.fspath(path)
    if os.path.isdir(path):
        cand = os.path.join(path, "model.safetensors")
        if not os.path.exists(cand):
            raise FileNotFoundError(f"{path} is a directory without a model.safetensors file")
        path = cand
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with safe_open(path, framework="numpy") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, OverflowError) as e:
        raise ModelFileError(
            f"{path} is not a readable unsup model file (truncated or not safetensors): {e}"
        ) from None
    if header.get("format") != "unsup":
        raise ModelFileError(f"{path} is a safetensors file but not an unsup model file")
    try:
        version = int(header.get("format_version", ""))
    except ValueError:
        raise ModelFileError(f"{path} has an invalid format_version") from None
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses model format {version}; this unsup reads up to {FORMAT_VERSION}: upgrade"
        )
    meta_json = header.get("json", "")
    if _digest(meta_json, tensors) != header.get("sha256"):
        raise ModelFileError(f"{path} failed its integrity check: the file was modified or damaged")
    try:
        meta = json.loads(meta_json)
        cls = class_by_name(meta["class"])
        if cls is None:
            raise KeyError(meta["class"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ModelFileError(f"{path} names an unknown estimator class") from None
    try:
        params = dict(meta["params"])
        fitted = dict(meta["fitted"])
        arrays = {}
        for k, v in tensors.items():
            kind, _, name = k.partition(".")
            if kind == "param":
                params[name] = v
            elif kind == "fitted":
                arrays[name] = v
            else:
                raise ValueError(f"unexpected tensor {k!r}")
        # only public fitted attributes (``name_``) are ever restored
        bad = [k for k in [*fitted, *arrays] if not k.endswith("_") or k.startswith("_")]
        if bad:
            raise ValueError(f"unexpected fitted attributes {bad}")
        valid = cls._get_param_names()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(f"unknown parameters {unknown} for {cls.__name__}")
        if "device" in valid:
            params["device"] = _load_device(params.get("device"), device)
        est = cls(**params)
        est._set_state(arrays, fitted)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path} has malformed model metadata: {e}") from None
    return est
