"""What a model file's parameters imply about its tensors, checked before anything is built.

A model file is untrusted input (``docs/trust.md``). :func:`check_state` is called by
:func:`unsup.io.load` after the header's parameters have passed the estimator's own constraints
and before any state is restored, so a file whose tensors disagree with its parameters (a k-means
file claiming ``n_clusters=3`` with 10 centres) is refused, and nothing is allocated from the
parameters that the file's own bytes do not already pay for.

Two mechanisms, generic first:

- **Gradient models** (``GradientEstimator``): the network is built on PyTorch's ``meta``
  device (shapes only, no memory) from the header's parameters, and its ``state_dict`` must equal
  the file's ``state__*`` tensors name for name, shape for shape, dtype for dtype. Only then is
  the real network built.
- **Declared shapes**: a class may declare ``_state_shapes``, a dict ``{array: dims}`` or a
  callable ``(params, fitted) -> dict``. A dim is an int or an expression over parameter names,
  fitted scalars (``n_features_in_``) and free symbols (lower-case single words not found in
  either, bound on first use and then held equal): ``"n_clusters"``, ``"n_features_in_ *
  n_ratings"``, ``"layer_sizes[0]"``. An array name ending in ``?`` is optional; arrays not
  declared are allowed (their size is already bounded by the file). Each model declares its own,
  beside its code (e.g. ``KMeans._state_shapes``; the RBMs extend
  ``unsup.energy._rbm.RBM_STATE_SHAPES``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["A", "check_state", "check_fitted_scalars", "ALLOWED_DTYPES", "MAX_NDIM"]

ALLOWED_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64", "int8", "int16",
                            "int32", "int64", "uint8", "bool"})
MAX_NDIM = 8
Dims = tuple[Any, ...]
Spec = Mapping[str, Dims] | Callable[[dict[str, Any], dict[str, Any]], Mapping[str, Dims]]

class A(tuple):
    """A declared array: its dtype and dims. ``"f32"``: the model's working float (float32 or
    float64, the same for every ``"f32"`` array of a file: it follows the training data);
    ``"f64"``: float32 or float64; ``"i64"``, ``"u8"``: exactly that."""

    def __new__(cls, dtype: str, *dims: Any) -> A:
        obj = super().__new__(cls, dims)
        obj.dtype = _DTYPES[dtype]
        return obj


_DTYPES = {"f32": "float32", "f64": "float64", "i64": "int64", "u8": "uint8"}
_TOKEN = re.compile(r"\s*([A-Za-z_]\w*(?:\[\d+\])?|\d+|[+*])\s*")


def _value(tok: str, env: dict[str, Any], free: dict[str, int], actual: int | None) -> int:
    if tok.isdigit():
        return int(tok)
    m = re.fullmatch(r"(\w+)\[(\d+)\]", tok)
    if m:
        seq = env.get(m.group(1))
        if not isinstance(seq, (list, tuple)) or int(m.group(2)) >= len(seq):
            raise ValueError(f"{m.group(1)} has no entry {m.group(2)}")
        v = seq[int(m.group(2))]
    elif tok in env:
        v = env[tok]
    elif tok.endswith("_"):  # a fitted attribute the shapes depend on
        raise ValueError(f"the fitted value {tok} is missing")
    else:  # a free symbol: bound by the first array that uses it
        if tok not in free:
            if actual is None:
                raise ValueError(f"{tok} is not known")
            free[tok] = actual
        v = free[tok]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{tok} = {v!r} is not an integer")
    return int(v)


def _dim(expr: Any, env: dict[str, Any], free: dict[str, int], actual: int) -> int:
    """The value of one declared dim (int or ``a + b * c`` over names)."""
    if isinstance(expr, (int, np.integer)):
        return int(expr)
    toks = _TOKEN.findall(str(expr))
    if "".join(toks) != str(expr).replace(" ", ""):
        raise ValueError(f"bad shape expression {expr!r}")
    # a lone free symbol binds to the actual size; in expressions symbols must be known
    lone = len(toks) == 1
    total = 0
    for term in "".join(toks).split("+"):
        prod = 1
        for factor in term.split("*"):
            prod *= _value(factor, env, free, actual if lone else None)
        total += prod
    return total


def spec_for_class(cls: type) -> Spec | None:
    """The class's own ``_state_shapes`` (not inherited: a subclass may hold other arrays)."""
    return cls.__dict__.get("_state_shapes")


def check_state(cls: type, params: dict[str, Any], fitted: dict[str, Any],
                arrays: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """Refuse (``ValueError``) fitted arrays whose shapes or dtypes disagree with the declared
    ones (``arrays``: name -> (shape, dtype))."""
    spec = spec_for_class(cls)
    if spec is None:
        return
    decl = dict(spec(params, fitted) if callable(spec) else spec)
    env = {**params, **fitted}
    for k in decl.pop("__fitted__", ()):
        if k not in fitted:
            raise ValueError(f"the fitted value {k} is missing")
    for a, b in decl.pop("__equal__", ()):
        if env.get(a) != env.get(b):
            raise ValueError(f"{a} = {env.get(a)!r} but {b} = {env.get(b)!r}")
    free: dict[str, int] = {}
    working: list[str] = []
    for raw, dims in decl.items():
        name = raw.rstrip("?")
        if name not in arrays:
            if raw.endswith("?"):
                continue
            raise ValueError(f"the array {name} is missing")
        got, dtype = arrays[name]
        want_dtype = getattr(dims, "dtype", None)
        if want_dtype in ("float32", "float64"):
            if dtype not in ("float32", "float64"):
                raise ValueError(f"{name} is {dtype}; {cls.__name__} stores float32 or float64")
            if want_dtype == "float32":
                working.append(dtype)
                if len(set(working)) > 1:
                    raise ValueError(f"{name} is {dtype}, the model's other arrays "
                                     f"{working[0]}")
        elif want_dtype is not None and dtype != want_dtype:
            raise ValueError(f"{name} is {dtype}, {cls.__name__} stores {want_dtype}")
        if len(got) != len(dims):
            raise ValueError(f"{name} has {len(got)} dimensions, {cls.__name__} stores "
                             f"{len(dims)}")
        want = tuple(_dim(e, env, free, a) for e, a in zip(dims, got, strict=True))
        if want != tuple(got):
            raise ValueError(f"{name} has shape {tuple(got)} but the parameters imply {want}")


def check_fitted_scalars(fitted: dict[str, Any]) -> None:
    """Counts (``n_*_``) are non-negative numbers; ``n_features_in_`` a positive integer."""
    for k, v in fitted.items():
        if not (k.startswith("n_") and k.endswith("_")) or v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise ValueError(f"fitted {k} = {v!r} is not a count")
    nf = fitted.get("n_features_in_")
    if nf is not None and (not isinstance(nf, int) or isinstance(nf, bool) or nf < 1):
        raise ValueError(f"fitted n_features_in_ = {nf!r} is not a positive integer")


def check_module(est: Any, tensors: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """Gradient models: the network the parameters imply, built on the ``meta`` device (no
    memory), must have exactly the file's ``state__*`` tensors."""
    import torch

    with torch.device("meta"):
        module = est._build_module()
    want = {f"state__{k}_": (tuple(v.shape), str(v.dtype).removeprefix("torch."))
            for k, v in module.state_dict().items()}
    have = {k: v for k, v in tensors.items() if k.startswith("state__")}
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        raise ValueError(f"the network's tensors do not match the parameters (missing "
                         f"{missing[:3]}, unexpected {extra[:3]})")
    for k, (shape, dtype) in want.items():
        if have[k] != (shape, dtype):
            raise ValueError(f"{k[7:-1]} has shape {have[k][0]} ({have[k][1]}) but the "
                             f"parameters imply {shape} ({dtype})")
