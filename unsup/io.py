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

# numpy, torch and the checks are imported where used: ``import unsup`` (and so every CLI
# command's start-up) stays light

__all__ = ["save", "load", "file_sha256", "ModelFileError", "FORMAT_VERSION", "TRUSTED_ENV"]

FORMAT_VERSION = 1
#: environment variable naming a file of trusted model digests (``sha256sum`` format)
TRUSTED_ENV = "UNSUP_TRUSTED_MODELS"


class ModelFileError(ValueError):
    """The file is not a valid unsup model file (truncated, tampered, foreign or too new)."""


def _load_device(stored: Any, wanted: str | None) -> Any:
    """The device a loaded model runs on: the caller's choice, else the stored one if usable."""
    import torch

    if wanted is not None:
        return wanted
    if isinstance(stored, str) and stored.startswith("cuda"):
        if not torch.cuda.is_available():
            return "cpu"
        try:
            index = torch.device(stored).index
        except (RuntimeError, TypeError):
            return stored  # a malformed name: resolve_device says what is wrong with it
        if index is not None and index >= torch.cuda.device_count():
            return "cuda"  # trained on a GPU this machine lacks: its first one
    return stored


def _digest(meta_json: str, arrays: dict[str, Any]) -> str:
    import numpy as np

    h = hashlib.sha256(meta_json.encode())
    for k in sorted(arrays):
        a = np.require(arrays[k], requirements="C")  # keeps 0-d arrays 0-d
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
    import numpy as np
    import torch
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
        elif isinstance(v, torch.device):
            params[k] = str(v)  # device=torch.device("cuda", 1) is saved as "cuda:1"
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
    # np.ascontiguousarray would turn a 0-d array (a BatchNorm's batch counter) into shape (1,)
    tensors = {k: np.require(v, requirements="C") for k, v in tensors.items()}
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


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of the file's bytes (what ``sha256sum`` prints): the digest to share."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _trusted_set(trusted_sha256: Any) -> set[str] | None:
    """The caller's trusted digests, else those listed in the file ``$UNSUP_TRUSTED_MODELS``
    (``sha256sum`` format: one digest per line, optionally followed by a name)."""
    if trusted_sha256 is None:
        listing = os.environ.get(TRUSTED_ENV)
        if not listing:
            return None
        try:
            lines = open(listing).read().splitlines()
        except OSError as e:
            raise ModelFileError(f"{TRUSTED_ENV}={listing}: cannot read it ({e.strerror})"
                                 ) from None
        trusted_sha256 = [ln.split()[0] for ln in lines if ln.strip() and not ln.startswith("#")]
    if isinstance(trusted_sha256, str):
        trusted_sha256 = [trusted_sha256]
    return {str(h).strip().lower() for h in trusted_sha256}


def _read_tensors(path: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Header and tensors; each tensor's dtype and rank are checked before it is read, and the
    reader allocates no more than the tensors' bytes, which the file itself contains."""
    from safetensors import SafetensorError, safe_open

    from unsup._io_checks import ALLOWED_DTYPES, MAX_NDIM

    try:
        with safe_open(path, framework="numpy") as f:
            header = f.metadata() or {}
            if header.get("format") != "unsup":
                raise ModelFileError(f"{path} is a safetensors file but not an unsup model file")
            tensors = {}
            for k in f.keys():
                sl = f.get_slice(k)
                dtype, shape = str(sl.get_dtype()).lower(), sl.get_shape()
                dtype = {"f16": "float16", "bf16": "bfloat16", "f32": "float32",
                         "f64": "float64", "i8": "int8", "i16": "int16", "i32": "int32",
                         "i64": "int64", "u8": "uint8"}.get(dtype, dtype)
                if dtype not in ALLOWED_DTYPES or len(shape) > MAX_NDIM:
                    raise ModelFileError(f"{path}: tensor {k!r} has dtype {dtype} and "
                                         f"{len(shape)} dimensions, which no unsup model writes")
                tensors[k] = f.get_tensor(k)
    except (SafetensorError, OSError, ValueError, OverflowError, TypeError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(
            f"{path} is not a readable unsup model file (truncated or not safetensors): {e}"
        ) from None
    return header, tensors


def load(path: str | os.PathLike, device: str | None = None,
         trusted_sha256: Any = None) -> Any:
    """Load an estimator written by :func:`save`. Never unpickles; the file is untrusted input.

    ``device`` ("cpu", "cuda", "auto") replaces the device the model was trained on, so a model
    trained on a GPU loads on a CPU-only machine. When it is not given, the stored device is
    kept if it is available here, else the model is loaded on the CPU.

    Every parameter in the file must pass the estimator's own constraints (as in ``fit``),
    and every tensor's shape and dtype must be what the parameters imply, before any state is
    built (``docs/trust.md``).

    ``trusted_sha256``: digests of the files you trust (:func:`file_sha256`, what
    ``sha256sum`` prints); a file whose digest is not among them is refused before it is
    parsed. When not given, the file named by ``$UNSUP_TRUSTED_MODELS`` (if set) lists them.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is truncated, tampered with, inconsistent, not trusted, not an unsup file,
        or from a newer format.
    """
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
    trusted = _trusted_set(trusted_sha256)
    if trusted is not None and file_sha256(path) not in trusted:
        raise ModelFileError(f"{path} is not among the trusted model files (its sha256 "
                             f"{file_sha256(path)} is not listed)")
    header, tensors = _read_tensors(path)
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
    except RecursionError:  # nesting deeper than any model writes
        raise ModelFileError(f"{path} has malformed model metadata (nested too deeply)") from None
    except (ValueError, KeyError, TypeError):
        raise ModelFileError(f"{path} names an unknown estimator class") from None
    try:
        est = _build(cls, meta, tensors, device)
    except ModelFileError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - whatever a crafted file provokes is the file's fault
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"{path} has malformed or inconsistent model data: {msg}") from None
    return est


def _build(cls: type, meta: Any, tensors: dict[str, Any], device: str | None) -> Any:
    """The estimator, after every check; raises on anything inconsistent."""
    from unsup._io_checks import check_fitted_scalars, check_module, check_state
    from unsup.params import InvalidParameterError

    if not isinstance(meta, dict) or not isinstance(meta.get("params"), dict) \
            or not isinstance(meta.get("fitted"), dict):
        raise ValueError("the metadata has no params/fitted records")
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
    bad = [k for k in [*fitted, *arrays] if not k.endswith("_") or k.startswith("_")
           or k in params]
    if bad:
        raise ValueError(f"unexpected fitted attributes {bad}")
    # parameters added to a class after files were written: a file without one was made by the
    # old behaviour, which the class names (e.g. CharRNN's context="sequence")
    for k, v in getattr(cls, "_params_added_later", {}).items():
        params.setdefault(k, v)
    valid = cls._get_param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"unknown parameters {unknown} for {cls.__name__}")
    if "device" in valid:
        from unsup.base import resolve_device

        params["device"] = _load_device(params.get("device"), device)
        resolve_device(params["device"])  # an unknown device string is the file's fault
    est = cls(**params)
    if callable(getattr(est, "_validate_params", None)):
        try:  # the same constraints as fit
            est._validate_params()
        except InvalidParameterError as e:
            raise ValueError(str(e).splitlines()[0]) from None
    check_fitted_scalars(fitted)
    check_state(cls, est.get_params(deep=False), fitted,
                {k: (tuple(v.shape), str(v.dtype)) for k, v in arrays.items()})
    from unsup.train import GradientEstimator

    if isinstance(est, GradientEstimator):
        # the network is built from the parameters: build it on the meta device first
        probe = cls(**params)
        vars(probe).update(fitted)
        vars(probe).update({k: v for k, v in arrays.items() if not k.startswith("state__")})
        check_module(probe, {k: (tuple(v.shape), str(v.dtype)) for k, v in arrays.items()})
    est._set_state(arrays, fitted)
    return est
