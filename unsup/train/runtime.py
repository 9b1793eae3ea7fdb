"""Pieces of the gradient engine's loop that are not the loop: row access to the data, the
random-generator states of a checkpoint, the metrics log (JSON lines, TensorBoard), autocast."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Rows", "MetricsLog", "rng_tensors", "restore_rng", "amp_context",
           "tensorboard_available"]


class Rows:
    """Row access to a tensor (kept on the device) or a numpy / memory-mapped array."""

    def __init__(self, X: Any, device: torch.device) -> None:
        self.device = device
        if isinstance(X, torch.Tensor):
            self.t: torch.Tensor | None = X.to(device=device, dtype=torch.float32)
            self.a = None
            self.n = int(X.shape[0])
        else:
            a = np.asarray(X) if not isinstance(X, np.memmap) else X
            if isinstance(a, np.memmap):
                self.t, self.a = None, a
            else:
                self.t, self.a = torch.as_tensor(np.asarray(a, dtype=np.float32),
                                                 device=device), None
            self.n = int(a.shape[0])

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        if self.t is not None:
            return self.t.index_select(0, idx.to(self.t.device))
        rows = np.sort(idx.cpu().numpy())
        batch = torch.from_numpy(np.asarray(self.a[rows], dtype=np.float32))
        if not torch.isfinite(batch).all():
            bad = rows[(~torch.isfinite(batch)).any(1).numpy()][0]
            raise ValueError(f"X contains NaN or inf (row {int(bad)}); clean the data first")
        return batch.to(self.device, non_blocking=True)

    def value_range(self) -> tuple[float, float]:
        if self.t is not None:
            return float(self.t.min()), float(self.t.max())
        head = np.asarray(self.a[: min(self.n, 10000)], dtype=np.float32)
        return float(head.min()), float(head.max())


def rng_tensors(generators: dict[str, torch.Generator]) -> dict[str, torch.Tensor]:
    """Every random state the loop can touch: torch's CPU (and CUDA) RNG and the named
    generators, as uint8 tensors for the checkpoint."""
    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    for name, g in generators.items():
        out[f"rng.gen.{name}"] = g.get_state()
    return out


def restore_rng(tensors: dict[str, torch.Tensor], generators: dict[str, torch.Generator]) -> None:
    """Inverse of :func:`rng_tensors`."""
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    for name, g in generators.items():
        key = f"rng.gen.{name}"
        if key in tensors:
            g.set_state(tensors[key])


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` imports (it needs the ``tensorboard`` package)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure means: not usable
        return False
    return True


class MetricsLog:
    """``log_dir/metrics.jsonl`` (one JSON object per record) and, with ``tensorboard=True``,
    TensorBoard scalars in ``log_dir/tensorboard``."""

    def __init__(self, log_dir: str | None, enabled: bool, tensorboard: bool = False) -> None:
        self.f = None
        self.tb = None
        if not log_dir or not enabled:
            return
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.f = open(Path(log_dir) / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(Path(log_dir) / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        if self.f is not None:
            self.f.write(json.dumps(record) + "\n")
            self.f.flush()
        if self.tb is not None:
            for k, v in record.items():
                if k not in ("step", "epoch", "stage", "kind") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{record.get('stage', 'train')}/{k}", v, record["step"])

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
        if self.tb is not None:
            self.tb.close()


def amp_context(amp: bool | str, device: torch.device) -> tuple[Any, torch.dtype | None]:
    """``(context factory, dtype)`` of CUDA autocast for the ``amp`` setting; a null context
    (and ``None``) on CPU or when off. ``"auto"``/``True``: bf16 where supported, else fp16."""
    if device.type != "cuda" or amp in (False, "off"):
        return contextlib.nullcontext, None
    # bf16 only where the GPU computes in it (emulated bf16 on older GPUs is slow): else fp16
    if amp == "fp16" or (amp in (True, "auto")
                         and not torch.cuda.is_bf16_supported(including_emulation=False)):
        dtype = torch.float16
    else:
        dtype = torch.bfloat16
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype
