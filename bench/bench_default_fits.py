"""How long a *default* ``unsup fit NAME`` takes, for every registered model (issue 10 §3).

Each model is fitted exactly as a new user would (``unsup fit NAME --data DATA --out DIR``, no
other option) in its own subprocess with one torch / BLAS thread, one model at a time, under a
wall-clock cap. Recorded per model: whether the fit finished, its wall and CPU seconds (the fit
alone, then fit + evaluation + save), and for a fit cut by the cap an estimate of the full fit
time extrapolated from the engines' progress reports (``unsup.base.report_progress``): the
stages already finished, plus the stage in progress scaled by ``total / done`` of its steps.
That estimate is

- an *upper bound* for the stage in progress when it can stop early (EM convergence, early
  stopping), since ``total`` is then the budget, not the count;
- a *lower bound* when stages the log has not reached yet follow (a DBM's joint training after
  its pre-training, an AIS after the fit; the "stage" column says which stage was running).

Data: ``mnist5k`` (5,000 MNIST digits in [0, 1]); ``--binarize 0.5`` for the models on binary
data (the ``binary`` test data kind: RBM, DBN, DBM, NADE, MADE, PixelCNN, Boltzmann machine);
the topic models and the replicated softmax on ``shakespeare`` (their word-count corpus); the
char-RNN on Tiny Shakespeare as rows of 256 character ids (4,357 rows); the collaborative-
filtering RBM on a synthetic MovieLens-100k-shaped ratings matrix (943 users x 1,682 items,
6.3% observed, ratings 1..5 from a rank-5 model, seed 0); the replicated softmax on the
shakespeare counts made dense (it refuses sparse input). A loop that reports no progress
(the Dirichlet-process mixture's Gibbs sweeps) is counted by the bench (``SILENT``).

Usage::

    python bench/bench_default_fits.py --cap 90 --out bench/results/default_fits.md
    python bench/bench_default_fits.py --only kmeans rbm --cap 60
    python bench/bench_default_fits.py --startup TREE [TREE ...]   # start-up times only

``--startup`` times CLI start-up instead (issue 10 §7): for each TREE (a directory holding an
``unsup`` package, e.g. ``git archive COMMIT unsup | tar -x -C TREE``), each command of
``STARTUP_COMMANDS`` runs once to warm the caches, then ``--repeat`` times (default 5), with
``sys.path`` pointed at TREE, the editable-install finder removed and a cache directory of its
own per tree; the median wall and CPU (user + sys of the child) seconds are reported.

Timings on a shared machine are contended: the load average before and after each fit and the
CPU seconds are reported beside the wall seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

# The child: the CLI's own `fit` with one thread; every progress report, and the start and the
# end of `estimator.fit`, appended to a log as JSON lines (flushed: the parent may kill it).
_CHILD = textwrap.dedent("""
    import json, os, sys, time
    t0, c0 = time.perf_counter(), time.process_time()
    import torch
    torch.set_num_threads(1)
    import unsup.cli.fitting as fitting
    from unsup.base import progress_callback
    from unsup.cli import main
    log = open(sys.argv[1], "a", buffering=1)
    def ev(kind, **kw):
        log.write(json.dumps({"ev": kind, "t": time.perf_counter() - t0,
                              "cpu": time.process_time() - c0, **kw}) + "\\n")
    def cb(stage, step, total, **m):
        ev("p", stage=stage, step=int(step), total=None if total is None else int(total))
    orig = fitting._progress_fit
    def timed(estimator, X, quiet):
        ev("fit_start")
        orig(estimator, X, quiet)
        ev("fit_end")
    fitting._progress_fit = timed
    count = os.environ.get("BENCH_COUNT_CALLS")  # module:function:total, for a silent loop
    if count:
        import importlib
        mod_name, fn_name, total = count.split(":")
        mod = importlib.import_module(mod_name)
        inner, calls = getattr(mod, fn_name), [0]
        def counted(*a, **k):
            out = inner(*a, **k)
            calls[0] += 1
            cb(f"{fn_name} calls (bench)", calls[0], int(total))
            return out
        setattr(mod, fn_name, counted)
    ev("imported")
    with progress_callback(cb):
        rc = main(sys.argv[2:])
    ev("done", rc=rc)
    sys.exit(rc)
""")

# loops that report no progress: the bench counts the calls of their per-iteration function
# (module, function, calls in a default fit)
SILENT = {"dp-mixture": ("unsup.cluster.dp_mixture", "_sweep", 100)}  # n_sweeps=100 sweeps
BINARY = {"rbm", "dbn", "dbm", "nade", "made", "pixelcnn", "boltzmann-machine"}
COUNTS = {"lda", "plsa", "mixture-of-unigrams", "unigram-lm"}


def prepare_data(d: Path) -> dict[str, str]:
    """Write the non-MNIST data files; their paths by kind."""
    from unsup.data.sequences import build_vocabulary, encode, tiny_shakespeare

    text = tiny_shakespeare()
    ids = encode([text], build_vocabulary([text]))[0]
    w = 256
    np.save(d / "shakespeare_ids.npy", ids[: len(ids) // w * w].reshape(-1, w))
    rng = np.random.default_rng(0)
    users, items, rank = 943, 1682, 5
    score = rng.normal(size=(users, rank)) @ rng.normal(size=(rank, items)) / np.sqrt(rank)
    ratings = np.clip(np.rint(3 + 1.2 * score), 1, 5)
    ratings[rng.random((users, items)) > 0.063] = 0  # 0 = missing
    np.save(d / "ratings.npy", ratings.astype(np.float64))
    from unsup.data import load

    counts = load("shakespeare").X  # sparse; the replicated softmax takes dense input only
    dense = counts.toarray() if hasattr(counts, "toarray") else np.asarray(counts)
    np.save(d / "shakespeare_dense.npy", dense.astype(np.float32))
    return {"chars": str(d / "shakespeare_ids.npy"), "ratings": str(d / "ratings.npy"),
            "dense_counts": str(d / "shakespeare_dense.npy")}


def _family(name: str) -> str:
    from unsup.registry import get_model

    return get_model(name).family


def data_for(name: str, files: dict[str, str]) -> tuple[list[str], str]:
    """The ``fit`` options giving ``name`` its natural data, and a short label."""
    if name in COUNTS or _family(name) == "topics":
        return ["--data", "shakespeare"], "shakespeare"
    if name == "char-rnn":
        return ["--data", files["chars"]], "tiny-shakespeare ids 4357x256"
    if name == "replicated-softmax":
        return ["--data", files["dense_counts"]], "shakespeare dense 6883x2941"
    if name == "cf-rbm":
        return ["--data", files["ratings"]], "ratings 943x1682"
    if name in BINARY:
        return ["--data", "mnist5k", "--binarize", "0.5"], "mnist5k bin."
    return ["--data", "mnist5k"], "mnist5k"


def _loadavg() -> float:
    return os.getloadavg()[0]


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a killed child may be cut
            pass
    return out


def estimate(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Fit time so far and extrapolated (see the module doc) from a child's log."""
    start = next((e for e in events if e["ev"] == "fit_start"), None)
    end = next((e for e in events if e["ev"] == "fit_end"), None)
    res: dict[str, Any] = {"fit_wall": None, "fit_cpu": None, "estimate": None,
                           "estimate_cpu": None, "stage": None, "progress": None}
    if start is None:
        return res
    if end is not None:
        res.update(fit_wall=end["t"] - start["t"], fit_cpu=end["cpu"] - start["cpu"])
        return res
    prog = [e for e in events if e["ev"] == "p" and e["t"] >= start["t"]]
    if not prog:
        return res
    last = prog[-1]
    # the stage in progress began where the previous stage's last report was (or at fit start)
    begin = start
    for a, b in zip(prog, prog[1:], strict=False):
        if b["stage"] != a["stage"] or b["step"] < a["step"]:
            begin = a
    res["stage"] = last["stage"]
    res["progress"] = f"{last['step']}/{last['total']}"
    if last["total"] and last["step"] > 0:
        for key, clock in (("estimate", "t"), ("estimate_cpu", "cpu")):
            res[key] = (begin[clock] - start[clock]) + (last[clock] - begin[clock]) * \
                last["total"] / last["step"]
    return res


def run_one(name: str, files: dict[str, str], cap: float, work: Path) -> dict[str, Any]:
    opts, label = data_for(name, files)
    out, log = work / name, work / f"{name}.log"
    argv = ["fit", name, *opts, "--out", str(out), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    if name in SILENT:
        env["BENCH_COUNT_CALLS"] = ":".join(map(str, SILENT[name]))
    load0 = _loadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", _CHILD, str(log), *argv], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=cap)
        capped = False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
        capped = True
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    events = _read_log(log)
    done = next((e for e in events if e["ev"] == "done"), None)
    rec = {"model": name, "data": label, "command": "unsup fit " + " ".join(
               [name, *opts, "--out", "DIR"]),
           "status": "capped" if capped else ("finished" if done and done.get("rc") == 0
                                              else f"failed rc={p.returncode}"),
           "wall": wall, "cpu": cpu, "load_before": load0, "load_after": _loadavg(),
           **estimate(events)}
    if rec["status"].startswith("failed"):
        rec["error"] = (err.strip().splitlines() or ["?"])[-1][:200]
    return rec


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    return "" if v is None else fmt.format(v)


def markdown(recs: list[dict[str, Any]], cap: float, argv: list[str]) -> str:
    rows = ["| model | data | status | fit wall s | fit CPU s | process wall s | process "
            "CPU s | stage at cap | progress | est. full fit wall s | est. full fit CPU s | "
            "load before/after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        rows.append("| " + " | ".join([
            r["model"], r["data"], r["status"] + (f": {r['error']}" if r.get("error") else ""),
            _f(r["fit_wall"]), _f(r["fit_cpu"]), _f(r["wall"]), _f(r["cpu"]),
            r["stage"] or "", r["progress"] or "", _f(r["estimate"], "{:.0f}"),
            _f(r["estimate_cpu"], "{:.0f}"),
            f"{r['load_before']:.1f}/{r['load_after']:.1f}"]) + " |")
    head = [f"Command: `python bench/bench_default_fits.py {' '.join(argv)}`",
            f"Date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}; "
            f"cap {cap:.0f} s wall per model; one torch/BLAS thread per process; models run "
            f"one at a time; {os.cpu_count()} CPUs shared with other jobs (load averages "
            "in the table), so wall times are contended: CPU seconds are the fairer number.",
            "", "fit = `estimator.fit` alone; process = the whole `unsup fit` (imports, data, "
            "fit, evaluation, save). est. full fit: extrapolated from the progress reports "
            "(upper bound when the stage can stop early, lower bound when later stages follow)."]
    return "\n".join(head + [""] + rows) + "\n"


STARTUP_COMMANDS = (["--help"], ["fit", "kmeans", "--help"], ["fit", "dbm", "--help"],
                    ["fit", "--help"], ["models"])
_STARTUP_CHILD = textwrap.dedent("""
    import sys
    tree = sys.argv[1]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
    sys.path.insert(0, tree)
    import unsup
    assert unsup.__file__.startswith(tree), unsup.__file__
    from unsup.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def startup(trees: list[Path], repeat: int = 5) -> str:
    """Median wall / CPU seconds of each start-up command for each tree (markdown table)."""
    import statistics

    rows = ["| tree | command | wall s | CPU s | load |", "|---|---|---:|---:|---:|"]
    for tree in trees:
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "XDG_CACHE_HOME": str(Path(tempfile.gettempdir()) / f"unsup-startup-{tree.name}")}
        for cmd in STARTUP_COMMANDS:
            argv = [sys.executable, "-c", _STARTUP_CHILD, str(tree.resolve()), *cmd]
            subprocess.run(argv, env=env, capture_output=True)  # warm the caches
            walls, cpus = [], []
            for _ in range(repeat):
                r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
                p = subprocess.run(argv, env=env, capture_output=True, text=True)
                walls.append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
                if p.returncode != 0:
                    raise SystemExit(f"{tree}: unsup {' '.join(cmd)} failed: {p.stderr[-300:]}")
            row = (f"| {tree.name} | `unsup {' '.join(cmd)}` | {statistics.median(walls):.2f} | "
                   f"{statistics.median(cpus):.2f} | {_loadavg():.1f} |")
            print(row, flush=True)
            rows.append(row)
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cap", type=float, default=90.0, help="wall seconds per model")
    ap.add_argument("--only", nargs="*", help="these models (registry names) only")
    ap.add_argument("--skip", nargs="*", default=[], help="leave these models out")
    ap.add_argument("--out", type=Path, help="write the markdown table here")
    ap.add_argument("--json", type=Path, help="write the records here")
    ap.add_argument("--keep", type=Path, help="keep the run directories and logs here")
    ap.add_argument("--startup", nargs="+", type=Path, metavar="TREE",
                    help="time CLI start-up for these source trees instead (see the doc)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per start-up command")
    args = ap.parse_args(argv)
    if args.startup:
        table = startup(args.startup, args.repeat)
        if args.out:
            args.out.write_text(table)
        return 0
    from unsup.registry import model_specs

    names = [s.name for s in model_specs()]
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            ap.error(f"unknown models: {sorted(unknown)}")
        names = [n for n in names if n in args.only]
    names = [n for n in names if n not in set(args.skip)]
    recs = []
    with tempfile.TemporaryDirectory(prefix="unsup-default-fits-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        files = prepare_data(work)
        for n in names:
            r = run_one(n, files, args.cap, work)
            recs.append(r)
            print(json.dumps(r), flush=True)
            if args.json:
                args.json.write_text(json.dumps(recs, indent=1))
    table = markdown(recs, args.cap, sys.argv[1:] if argv is None else argv)
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
