"""Shared helpers for the side-by-side benchmarks against scikit-learn.

Timing helpers, the machine description, the benchmark data sets (MNIST test set, its 50-dim
PCA, a fixed synthetic Gaussian mixture), target bookkeeping and a markdown table printer.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Target",
    "add_common_args",
    "apply_threads",
    "fmt",
    "fmt_ratio",
    "load_mnist_test",
    "machine_info",
    "machine_markdown",
    "markdown_table",
    "mnist_pca",
    "parse_seeds",
    "ratio",
    "summary",
    "synthetic_mixture",
    "time_pair",
    "write_json",
]

# --------------------------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _threadpools() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return []
    keep = ("user_api", "internal_api", "num_threads", "version")
    return [{k: p.get(k) for k in keep} for p in threadpool_info()]


def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions and thread settings of this run."""
    import sklearn
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "sklearn": sklearn.__version__,
        "threadpools": _threadpools(),
    }


def machine_markdown(m: dict[str, Any]) -> str:
    pools = ", ".join(f"{p['internal_api']}={p['num_threads']}" for p in m.get("threadpools", []))
    return (
        f"- date: {m['date']}\n"
        f"- CPU: {m['cpu_model']}, {m['logical_cores']} logical cores "
        f"({m['usable_cores']} usable); load average at start {m['load_average_at_start']}\n"
        f"- {m['platform']}, Python {m['python']}, NumPy {m['numpy']}\n"
        f"- torch {m['torch']} ({m['torch_threads']} intra-op threads), "
        f"scikit-learn {m['sklearn']} (thread pools: {pools or 'n/a'})"
    )


# --------------------------------------------------------------------------------------------
# CLI, output
# --------------------------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (or a mix, ``"0-2,7"``) -> list of ints."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    if not out:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    return out


def comma_list(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (argparse type; an empty list is an error)."""
    out = [t.strip() for t in text.split(",") if t.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return out


def int_list(text: str) -> list[int]:
    """``"10000,3e4"`` -> ``[10000, 30000]`` (argparse type)."""
    return [int(float(t)) for t in comma_list(text)]


def fit_timed(model: Any, X: Any, save: Any = None) -> tuple[float, float]:
    """Fit ``model`` on ``X``, print wall and CPU seconds, save it to ``save`` if given;
    returns (wall, CPU) seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"fit: {fit_s:.1f} s wall, {fit_cpu:.1f} s CPU", flush=True)
    if save is not None:
        model.save(str(save))
        print(f"saved {save}", flush=True)
    return fit_s, fit_cpu


def add_common_args(p: argparse.ArgumentParser, *, seeds: str, repeats: int) -> None:
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds(seeds),
                   help=f"random_state values, e.g. 0,1,2 or 0-4 (default {seeds})")
    p.add_argument("--repeats", type=int, default=repeats,
                   help="timed fits per seed and library; the best is reported "
                        f"(default {repeats})")
    p.add_argument("--quick", action="store_true",
                   help="small data sizes, for a smoke run (numbers are not meaningful)")
    p.add_argument("--threads", type=int, default=None,
                   help="cap both libraries' threads (torch.set_num_threads and threadpoolctl "
                        "for BLAS/OpenMP); default: each library's own default")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="write all measurements to this JSON file")


_LIMITS: list[Any] = []


def apply_threads(n: int | None) -> None:
    """Cap torch's intra-op threads and every BLAS/OpenMP pool (scikit-learn's) at ``n``."""
    if n is None:
        return
    # load every BLAS / OpenMP library first: threadpoolctl only caps libraries already loaded
    import scipy.linalg  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import sklearn.mixture  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    import unsup.cluster  # noqa: F401

    torch.set_num_threads(n)
    _LIMITS.append(threadpool_limits(limits=n))  # kept alive for the whole run


def write_json(path: Path | None, payload: dict[str, Any], *, quiet: bool = False) -> None:
    """Write ``payload``; keys starting with ``_`` (in nested dicts too) are left out."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_public(payload), f, indent=2, default=_json_default)
        f.write("\n")
    tmp.replace(path)
    if not quiet:
        print(f"\nwrote {path}")


def _public(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _public(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, list):
        return [_public(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def fmt(x: Any, digits: int = 4) -> str:
    """Compact number formatting for tables."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if x != x:
            return "nan"
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.{digits}e}"
        return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"
    return str(x)


def fmt_ratio(x: float, digits: int = 4) -> str:
    """Fixed decimals, so 1.00012 does not print as 1."""
    x = float(x)
    return "nan" if x != x else f"{x:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; numbers right-aligned."""
    cells = [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    numeric = [all(_looks_numeric(r[i]) for r in cells) and bool(cells)
               for i in range(len(headers))]

    def line(vals: Sequence[str]) -> str:
        padded = (v.rjust(w) if num else v.ljust(w)
                  for v, w, num in zip(vals, widths, numeric, strict=True))
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                         for w, num in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(list(headers)), sep, *(line(r) for r in cells)])


def _looks_numeric(s: str) -> bool:
    s = s.strip().rstrip("x×%")
    try:
        float(s)
        return True
    except ValueError:
        return s in ("–", "nan")


def ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


class Target:
    """One pass/fail target: ``value <op> threshold``."""

    def __init__(self, name: str, value: float, op: str, threshold: float, judged_on: str):
        self.name, self.value, self.op, self.threshold = name, float(value), op, float(threshold)
        self.judged_on = judged_on
        self.met = value <= threshold if op == "<=" else value >= threshold

    def row(self) -> list[Any]:
        return [self.name, fmt_ratio(self.value), f"{self.op} {fmt_ratio(self.threshold)}",
                self.judged_on,
                "**met**" if self.met else "**NOT met**"]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "op": self.op,
                "threshold": self.threshold, "judged_on": self.judged_on, "met": self.met}

    HEADERS = ("target", "measured", "required", "judged on", "result")


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process summed over its threads, result)."""
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning etc.: recorded from the model
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        t, c = time.perf_counter() - t0, time.process_time() - c0
    return t, c, out


def time_pair(
    ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int,
    check: Callable[[Any], float] | None = None,
) -> dict[str, Any]:
    """Time two fits ``repeats`` times each, interleaved (the order alternates each round, so
    background load hits both alike). Returns the times, their best and median, and the
    model from the first fit of each; also the process CPU times (all threads; less
    sensitive than wall time to other processes on a shared machine, but it counts OpenMP
    spin-waiting). ``check`` maps a model to a number that must not change
    between repeats (the fits are deterministic for a fixed seed); a change is recorded.
    """
    res: dict[str, Any] = {"ours": {"times": [], "cpu": []}, "theirs": {"times": [], "cpu": []}}
    fns = {"ours": ours, "theirs": theirs}
    for r in range(max(1, repeats)):
        order = ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")
        for who in order:
            t, c, model = _timed(fns[who])
            d = res[who]
            d["times"].append(t)
            d["cpu"].append(c)
            if "model" not in d:
                d["model"] = model
                d["check"] = None if check is None else check(model)
            elif check is not None and d["check"] is not None:
                v = check(model)
                if not np.isclose(v, d["check"], rtol=1e-6, atol=0):
                    d.setdefault("nondeterministic", []).append(v)
    for d in res.values():
        d["best"] = min(d["times"])
        d["best_cpu"] = min(d["cpu"])
        d["median"] = statistics.median(d["times"])
    return res


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def load_mnist_test(quick: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """The real MNIST test set (10,000 × 784 float32 in [0, 1]) and its labels.

    ``quick`` keeps the first 2,000 rows.
    """
    from unsup.data import load

    ds = load("mnist-test")
    X, y = ds.X, ds.y
    if quick:
        X, y = X[:2000], y[:2000]
    return np.ascontiguousarray(X, dtype=np.float32), y, f"MNIST test ({X.shape[0]}×{X.shape[1]})"


def mnist_pca(quick: bool = False, n_components: int = 50) -> tuple[np.ndarray, np.ndarray, str]:
    """``sklearn.decomposition.PCA(n_components, random_state=0)`` of the MNIST test set, as
    float64 (both libraries then fit in double precision; ours always does)."""
    from sklearn.decomposition import PCA

    X, y, _ = load_mnist_test(quick)
    Z = PCA(n_components, random_state=0).fit_transform(X).astype(np.float64)
    return (np.ascontiguousarray(Z), y,
            f"MNIST test, PCA-{n_components} ({Z.shape[0]}×{Z.shape[1]}, float64)")


SYNTH_SEED = 20240601


def synthetic_mixture(
    n: int = 200_000, d: int = 64, k: int = 10, seed: int = SYNTH_SEED,
    mean_scale: float = 0.6, dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A fixed synthetic Gaussian mixture: ``k`` components in ``d`` dimensions.

    Means ~ N(0, mean_scale² I) (pairwise distances ≈ mean_scale·√(2d) ≈ 6.8 for the
    defaults); covariances A Aᵀ/d + 0.1 I with A standard normal (Wishart-like, random
    orientation, eigenvalues ≈ 0.1 … 4); weights ~ Dirichlet(5). Drawn with
    :func:`unsup.data.make_gaussian_mixture` from one fixed seed.
    """
    from unsup.data import make_gaussian_mixture

    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, mean_scale, size=(k, d))
    A = rng.standard_normal((k, d, d)) / np.sqrt(d)
    covs = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(d)
    weights = rng.dirichlet(np.full(k, 5.0))
    X, y = make_gaussian_mixture(n, means, covs, weights, random_state=rng)
    X = np.ascontiguousarray(X, dtype=dtype)
    kind = "float32" if X.dtype == np.float32 else "float64"
    return X, y, f"synthetic GMM ({n}×{d}, {k} components, data seed {seed}, {kind})"


def summary(values: Sequence[float]) -> dict[str, float]:
    v = [float(x) for x in values]
    return {"mean": statistics.fmean(v), "min": min(v), "max": max(v),
            "std": statistics.pstdev(v) if len(v) > 1 else 0.0}


def binarised_mnist(quick: bool = False, quick_test_rows: int = 2000
                    ) -> tuple[Any, Any, str]:
    """The energy-model split: binarised mnist5k (train) and binarised MNIST test set (test).

    Falls back to a 4,000/1,000 split of mnist5k when the real test set is not found (its
    numbers are then not comparable); ``quick`` keeps the first ``quick_test_rows`` test rows.
    """
    from unsup.data import find_mnist_dir, load

    X = load("mnist5k", binarize=0.5).X
    if find_mnist_dir() is not None:
        Xt, name = load("mnist-test", binarize=0.5).X, "MNIST test set"
    else:  # pragma: no cover - the benchmarks need the real test set for their numbers
        Xt, name = X[4000:], "last 1,000 rows of mnist5k (MNIST test set not found)"
        X = X[:4000]
    if quick:
        Xt = Xt[:quick_test_rows]
        name += f" (first {quick_test_rows:,})"
    return X, Xt, name
