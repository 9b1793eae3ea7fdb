"""A CPU stand-in for a CUDA device, to catch device mix-ups where no GPU runs the tests.

Inside ``with fake_cuda():`` tensors put "on cuda" stay CPU tensors but are tagged (by
storage), report ``.device == cuda:0`` / ``.is_cuda``, so library code takes its GPU
branches, and the rules of a real CUDA device that a CPU never checks are enforced:

- an op mixing a cuda tensor with a CPU tensor of one or more dimensions raises (0-dim CPU
  tensors are allowed, as on CUDA); CPU indices into a cuda tensor are allowed, cuda indices
  into a CPU tensor are not;
- ``.numpy()`` / ``np.asarray`` of a cuda tensor raises;
- a random draw's generator must be on the draw's device (``torch.Generator("cuda")`` is
  emulated);
- ``torch.cuda.is_available()`` is True, autocast is off (its numerics are not emulated).

Not a numerical emulation: kernels, TF32, bf16 and non-deterministic atomics are not modelled.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")
_RealGenerator = torch.Generator
_by_storage: dict[int, torch.Tensor] = {}  # storage pointer -> a tensor keeping it alive
_by_id: dict[int, torch.Tensor] = {}  # id -> tensor (empty or non-strided tensors)


class DeviceError(RuntimeError):
    """What a real CUDA device would have raised."""


class _FakeGenerator(_RealGenerator):
    def __new__(cls, device: Any = "cpu") -> _FakeGenerator:
        obj = super().__new__(cls)
        obj._cuda = torch.device(device).type == "cuda"
        return obj

    def __init__(self, device: Any = "cpu") -> None:
        pass

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return CUDA if self._cuda else CPU


def _key(t: torch.Tensor) -> tuple[str, int]:
    if t.layout != torch.strided or t.numel() == 0:
        return ("id", id(t))
    try:
        p = t.untyped_storage().data_ptr()
    except Exception:
        return ("id", id(t))
    return ("p", p) if p else ("id", id(t))


def on_cuda(t: torch.Tensor) -> bool:
    """Whether ``t`` is (emulated to be) on the GPU."""
    k = _key(t)
    return (k[0] == "p" and k[1] in _by_storage) or id(t) in _by_id


def _tag(t: torch.Tensor) -> None:
    k = _key(t)
    if k[0] == "p":
        _by_storage[k[1]] = t
    _by_id[id(t)] = t


def _is_cuda(d: Any) -> bool | None:
    """Whether a device argument (a device, a string, an index, a tensor) names the GPU."""
    if d is None or isinstance(d, (torch.dtype, bool)):
        return None
    if isinstance(d, torch.Tensor):
        return on_cuda(d)
    if isinstance(d, (str, torch.device)):
        return torch.device(d).type == "cuda"
    return True if isinstance(d, int) else None


def _where() -> str:
    frames = [f for f in traceback.extract_stack() if "/unsup/" in f.filename]
    return " <- ".join(f"{f.filename.rsplit('/unsup/', 1)[-1]}:{f.lineno}"
                       for f in frames[-3:][::-1])


def _fresh(t: torch.Tensor) -> torch.Tensor:
    """A copy (a real transfer never shares memory with its source)."""
    return t.detach().clone() if not t.requires_grad else t.clone()


_SHAPE_ONLY = {"expand_as", "view_as", "reshape_as", "size", "dim", "new_zeros", "new_ones",
               "new_empty", "new_full", "new_tensor"}
_MIXING_ALLOWED = {"copy_", "_has_compatible_shallow_copy_type", "is_same_size", "__repr__",
                   "__str__", "__format__", "set_", "_is_view", "is_set_to", "__set__"}
_INDEXING = {"__getitem__", "__setitem__", "index_put_", "index_put", "_index_put_impl_"}
_DRAWS = ("randint", "randperm", "rand", "randn", "normal")


class _FakeCuda(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        owner = getattr(func, "__self__", None)
        if (getattr(func, "__name__", "") == "__get__"
                and getattr(owner, "__name__", "") in ("device", "is_cuda", "is_cpu")):
            return self._getter(owner.__name__, func, args, kwargs)
        name = getattr(func, "__name__", str(func))
        if name == "_parse_to":
            return func(*args, **kwargs)
        if name in ("numpy", "__array__") and args and isinstance(args[0], torch.Tensor) \
                and on_cuda(args[0]):
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use "
                            f"Tensor.cpu() to copy the tensor to host memory first. [{_where()}]")
        if name in ("to", "cuda", "cpu", "type_as") and args and isinstance(args[0], torch.Tensor):
            return self._transfer(name, func, args, kwargs)
        target = None
        if "device" in kwargs:  # a factory (or a draw) with a device
            target = _is_cuda(kwargs["device"])
            if target:
                kwargs["device"] = "cpu"
        flat, _ = tree_flatten((args, kwargs))
        tensors = [x for x in flat if isinstance(x, torch.Tensor)]
        gpu = [t for t in tensors if on_cuda(t)]
        if name in ("as_tensor", "tensor") and target is False and tensors and on_cuda(tensors[0]):
            return _fresh(tensors[0]).to(kwargs.get("dtype") or tensors[0].dtype)
        if name in _SHAPE_ONLY:
            return self._shape_only(name, func, args, kwargs, target)
        if gpu and any(not on_cuda(t) and t.dim() > 0 for t in tensors):
            self._check_mixing(name, args, tensors)
        gens = [x for x in flat if isinstance(x, _RealGenerator)]
        if gens:
            self._check_generator(name, gens[0], target, tensors)
        out = func(*args, **kwargs)
        if target and isinstance(out, torch.Tensor) and not gpu:
            out = out.clone()
        if gpu or target:
            for o in tree_flatten(out)[0]:
                if isinstance(o, torch.Tensor) and not on_cuda(o):
                    _tag(o)
        return out

    @staticmethod
    def _getter(which: str, func: Any, args: tuple, kwargs: dict) -> Any:
        t = args[0]
        if which == "device":
            return CUDA if on_cuda(t) else func(*args, **kwargs)
        return on_cuda(t) if which == "is_cuda" else not on_cuda(t)

    @staticmethod
    def _transfer(name: str, func: Any, args: tuple, kwargs: dict) -> torch.Tensor:
        src_t = args[0]
        if name == "cuda":
            out = _fresh(src_t)
            _tag(out)
            return out
        if name == "cpu":
            return _fresh(src_t) if on_cuda(src_t) else func(*args, **kwargs)
        if name == "type_as":
            other = args[1]
            out = func(src_t, other)
            if on_cuda(other) != on_cuda(src_t):
                out = _fresh(out)
                if on_cuda(other):
                    _tag(out)
            return out
        target, rest = None, []
        for a in args[1:]:  # .to(device), .to(tensor), .to(dtype), .to(device, dtype)
            c = _is_cuda(a)
            if c is not None:
                target = c
                rest.append(a.dtype if isinstance(a, torch.Tensor) else "cpu")
            else:
                rest.append(a)
        if "device" in kwargs:
            target = _is_cuda(kwargs.pop("device"))
        if "other" in kwargs:
            o = kwargs.pop("other")
            target, kwargs["dtype"] = on_cuda(o), o.dtype
        out = func(src_t, *rest, **kwargs)
        src = on_cuda(src_t)
        target = src if target is None else target
        if target == src:
            if target and not on_cuda(out):
                _tag(out)
            return out
        if out is src_t or _key(out) == _key(src_t):
            out = _fresh(out)
        if target:
            _tag(out)
        return out

    @staticmethod
    def _shape_only(name: str, func: Any, args: tuple, kwargs: dict, target: bool | None
                    ) -> Any:
        out = func(*args, **kwargs)
        src = args[0] if args and isinstance(args[0], torch.Tensor) else None
        want = on_cuda(src) if src is not None else False
        if name.startswith("new_") and target is not None:
            want = target
        if want and isinstance(out, torch.Tensor):
            _tag(out)
        return out

    @staticmethod
    def _check_mixing(name: str, args: tuple, tensors: list[torch.Tensor]) -> None:
        if name in _MIXING_ALLOWED:
            return
        if name in _INDEXING:
            index = [x for x in tree_flatten(args[1] if len(args) > 1 else ())[0]
                     if isinstance(x, torch.Tensor)]
            if on_cuda(args[0]) or not any(on_cuda(x) for x in index):
                return  # CPU indices into a cuda tensor, or a cuda value copied into a CPU one
            raise DeviceError("indices should be either on cpu or on the same device as the "
                              f"indexed tensor (cpu) [{name} at {_where()}]")
        shapes = [tuple(t.shape) for t in tensors if not on_cuda(t) and t.dim() > 0][:3]
        raise DeviceError("Expected all tensors to be on the same device, but found at least "
                          f"two devices, cuda:0 and cpu! [{name} at {_where()}; CPU shapes "
                          f"{shapes}]")

    @staticmethod
    def _check_generator(name: str, g: Any, target: bool | None,
                         tensors: list[torch.Tensor]) -> None:
        if target is None:
            draws_like_input = tensors and (name not in _DRAWS or name == "normal")
            target = on_cuda(tensors[0]) if draws_like_input else False
        g_cuda = bool(getattr(g, "_cuda", False))
        if g_cuda != target:
            raise DeviceError(f"Expected a '{'cuda' if target else 'cpu'}' device type for "
                              f"generator but found '{'cuda' if g_cuda else 'cpu'}' "
                              f"[{name} at {_where()}]")


@contextlib.contextmanager
def fake_cuda() -> Iterator[None]:
    """Run the block with the emulated device (see the module docstring)."""
    import unsup.train.engine as engine
    import unsup.train.runtime as runtime

    def no_amp(amp: Any, dev: Any) -> tuple[Any, None]:
        return contextlib.nullcontext, None

    patches = {
        (torch.cuda, "is_available"): lambda: True,
        (torch.cuda, "device_count"): lambda: 1,
        (torch.cuda, "current_device"): lambda: 0,
        (torch.cuda, "is_initialized"): lambda: False,
        (torch.cuda, "synchronize"): lambda *a, **k: None,
        (torch.cuda, "is_bf16_supported"): lambda *a, **k: True,
        (torch.cuda, "get_device_name"): lambda *a, **k: "fake",
        (torch.cuda, "get_rng_state"): lambda *a, **k: torch.zeros(0, dtype=torch.uint8),
        (torch.cuda, "set_rng_state"): lambda *a, **k: None,
        (torch, "Generator"): _FakeGenerator,
        (runtime, "amp_context"): no_amp,
        (engine, "amp_context"): no_amp,
    }
    saved = {k: getattr(*k) for k in patches}
    for (mod, attr), v in patches.items():
        setattr(mod, attr, v)
    try:
        with _FakeCuda():
            yield
    finally:
        for (mod, attr), v in saved.items():
            setattr(mod, attr, v)
        _by_storage.clear()
        _by_id.clear()
