"""k-means, ours against scikit-learn's, side by side.

Same protocol for both libraries: K = 10, ``n_init=10``, k-means++ seeding, default
``max_iter`` (300) and ``tol`` (1e-4), the same ``random_state``. Measured per seed: the fit's
wall time (best of ``--repeats`` interleaved fits), the inertia, NMI against the true labels,
and the iteration count of the kept run.

Targets (from the issue), judged on aggregates over all seeds run:

* inertia: mean inertia of ours <= 1.01 × mean inertia of scikit-learn's;
* time: sum over seeds of our best times <= 1.0 × the same sum for scikit-learn;
* NMI (MNIST only): mean NMI of ours >= 0.48.

Usage::

    python -m bench.bench_kmeans                       # MNIST (seeds 0-2) + synthetic (seed 0)
    python -m bench.bench_kmeans --quick               # smoke run, small data
    python -m bench.bench_kmeans --seeds 0-2 --repeats 3 --json results/kmeans.json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
from typing import Any

import numpy as np

from bench.common import (
    Target,
    add_common_args,
    apply_threads,
    fmt,
    fmt_ratio,
    load_mnist_test,
    machine_info,
    machine_markdown,
    markdown_table,
    parse_seeds,
    ratio,
    summary,
    synthetic_mixture,
    time_pair,
    write_json,
)

K = 10
N_INIT = 10
TARGET_INERTIA = 1.01
TARGET_TIME = 1.0
TARGET_NMI = 0.48


def _ours(seed: int) -> Any:
    from unsup.cluster import KMeans

    return KMeans(K, n_init=N_INIT, random_state=seed, device="cpu")


def _theirs(seed: int) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(K, n_init=N_INIT, init="k-means++", random_state=seed)


def _warm_up(X: np.ndarray) -> None:
    """One small untimed fit per library (one-time costs: thread pools, lazy imports)."""
    sub = X[: min(len(X), 1000)]
    from sklearn.cluster import KMeans as SK

    from unsup.cluster import KMeans as Ours

    Ours(K, n_init=1, random_state=0, device="cpu").fit(sub)
    SK(K, n_init=1, random_state=0).fit(sub)


def profile_ours(X: np.ndarray, seed: int, top: int = 14) -> str:
    pr = cProfile.Profile()
    pr.enable()
    _ours(seed).fit(X)
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def run_case(name: str, X: np.ndarray, y: np.ndarray, seeds: list[int], repeats: int,
             nmi_target: bool) -> dict[str, Any]:
    from unsup.metrics import nmi

    _warm_up(X)
    per_seed = []
    for seed in seeds:
        r = time_pair(lambda s=seed: _ours(s).fit(X), lambda s=seed: _theirs(s).fit(X),
                      repeats, check=lambda m: m.inertia_)
        rec: dict[str, Any] = {"seed": seed}
        for who in ("ours", "theirs"):
            m = r[who]["model"]
            rec[who] = {
                "times": r[who]["times"], "best_time": r[who]["best"],
                "cpu_times": r[who]["cpu"], "best_cpu": r[who]["best_cpu"],
                "median_time": r[who]["median"], "inertia": float(m.inertia_),
                "nmi": nmi(y, m.labels_), "n_iter": int(m.n_iter_),
                "nondeterministic": r[who].get("nondeterministic"),
            }
        per_seed.append(rec)
        o, t = rec["ours"], rec["theirs"]
        print(f"  [{name}] seed {seed}: ours {o['best_time']:.2f}s inertia {o['inertia']:.6g} "
              f"NMI {o['nmi']:.3f} | sklearn {t['best_time']:.2f}s inertia {t['inertia']:.6g} "
              f"NMI {t['nmi']:.3f}", file=sys.stderr, flush=True)

    agg = {who: {k: summary([p[who][k] for p in per_seed])
                 for k in ("best_time", "best_cpu", "inertia", "nmi", "n_iter")}
           for who in ("ours", "theirs")}
    time_ratio = ratio(sum(p["ours"]["best_time"] for p in per_seed),
                       sum(p["theirs"]["best_time"] for p in per_seed))
    cpu_ratio = ratio(sum(p["ours"]["best_cpu"] for p in per_seed),
                      sum(p["theirs"]["best_cpu"] for p in per_seed))
    inertia_ratio = ratio(agg["ours"]["inertia"]["mean"], agg["theirs"]["inertia"]["mean"])
    targets = [
        Target("inertia ours/sklearn", inertia_ratio, "<=", TARGET_INERTIA,
               f"mean inertia over seeds {seeds}"),
        Target("time ours/sklearn", time_ratio, "<=", TARGET_TIME,
               f"sum over seeds of best-of-{repeats} times"),
    ]
    if nmi_target:
        targets.append(Target("NMI ours", agg["ours"]["nmi"]["mean"], ">=", TARGET_NMI,
                              f"mean NMI over seeds {seeds}"))
    return {"name": name, "shape": list(X.shape), "seeds": seeds, "repeats": repeats,
            "per_seed": per_seed, "aggregate": agg, "time_ratio": time_ratio,
            "cpu_ratio": cpu_ratio,
            "inertia_ratio": inertia_ratio, "targets": [t.as_dict() for t in targets],
            "_targets": targets}


def render_case(case: dict[str, Any]) -> str:
    headers = ["seed", "wall ours (s)", "wall sklearn (s)", "wall ratio", "CPU ours (s)",
               "CPU sklearn (s)", "CPU ratio", "inertia ours", "inertia sklearn",
               "inertia ratio", "NMI ours", "NMI sklearn", "n_iter ours", "n_iter sklearn"]
    rows = []
    for p in case["per_seed"]:
        o, t = p["ours"], p["theirs"]
        rows.append([p["seed"], fmt(o["best_time"], 3), fmt(t["best_time"], 3),
                     fmt_ratio(ratio(o["best_time"], t["best_time"])), fmt(o["best_cpu"], 3),
                     fmt(t["best_cpu"], 3), fmt_ratio(ratio(o["best_cpu"], t["best_cpu"])),
                     fmt(o["inertia"], 7), fmt(t["inertia"], 7),
                     fmt_ratio(ratio(o["inertia"], t["inertia"]), 5),
                     fmt(o["nmi"], 4), fmt(t["nmi"], 4), o["n_iter"], t["n_iter"]])
    if len(case["per_seed"]) > 1:
        a = case["aggregate"]
        o, t = a["ours"], a["theirs"]
        rows.append(["**mean**", fmt(o["best_time"]["mean"], 3), fmt(t["best_time"]["mean"], 3),
                     fmt_ratio(case["time_ratio"]), fmt(o["best_cpu"]["mean"], 3),
                     fmt(t["best_cpu"]["mean"], 3), fmt_ratio(case["cpu_ratio"]),
                     fmt(o["inertia"]["mean"], 7), fmt(t["inertia"]["mean"], 7),
                     fmt_ratio(case["inertia_ratio"], 5), fmt(o["nmi"]["mean"], 4),
                     fmt(t["nmi"]["mean"], 4), fmt(o["n_iter"]["mean"], 3),
                     fmt(t["n_iter"]["mean"], 3)])
        rows.append(["best", fmt(o["best_time"]["min"], 3), fmt(t["best_time"]["min"], 3),
                     fmt_ratio(ratio(o["best_time"]["min"], t["best_time"]["min"])),
                     fmt(o["best_cpu"]["min"], 3), fmt(t["best_cpu"]["min"], 3),
                     fmt_ratio(ratio(o["best_cpu"]["min"], t["best_cpu"]["min"])),
                     fmt(o["inertia"]["min"], 7), fmt(t["inertia"]["min"], 7),
                     fmt_ratio(ratio(o["inertia"]["min"], t["inertia"]["min"]), 5),
                     fmt(o["nmi"]["max"], 4), fmt(t["nmi"]["max"], 4), "", ""])
    notes = []
    for p in case["per_seed"]:
        for who in ("ours", "theirs"):
            if p[who]["nondeterministic"]:
                notes.append(f"- seed {p['seed']}: {who} gave different inertias across "
                             f"repeats: {p[who]['nondeterministic']}")
    out = [f"### {case['name']}", "",
           markdown_table(headers, rows), "",
           "wall / CPU: best of the repeats per seed (CPU = process CPU time over all threads); "
           "the mean row's ratios are Σ ours / Σ sklearn. Best row: each library's best seed "
           "separately. n_iter: Lloyd iterations of the kept run.", ""]
    if notes:
        out += ["Nondeterminism:", *notes, ""]
    out += [markdown_table(Target.HEADERS, [t.row() for t in case["_targets"]]), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, seeds="0-2", repeats=3)
    p.add_argument("--synthetic-seeds", type=parse_seeds, default=parse_seeds("0"),
                   help="seeds for the synthetic data set (default 0: one 200k-row fit takes "
                        "~30 s per library on 2 cores)")
    p.add_argument("--datasets", default="mnist,synthetic",
                   help="comma-separated subset of: mnist, synthetic (default both)")
    p.add_argument("--profile", action="store_true",
                   help="also print a cProfile of one of our fits per data set (untimed)")
    args = p.parse_args(argv)
    which = [s.strip() for s in args.datasets.split(",") if s.strip()]
    unknown = set(which) - {"mnist", "synthetic"}
    if unknown:
        p.error(f"unknown data sets: {sorted(unknown)}")
    apply_threads(args.threads)

    machine = machine_info()
    print("## k-means: unsup vs scikit-learn\n")
    print(machine_markdown(machine))
    print(f"- command: `python -m bench.bench_kmeans {' '.join(argv or sys.argv[1:])}`".rstrip())
    print(f"- protocol: K={K}, n_init={N_INIT}, k-means++, default max_iter/tol, seeds "
          f"{args.seeds} (synthetic: {args.synthetic_seeds}), best of {args.repeats} "
          "interleaved fits per seed and library, after one small untimed warm-up fit each\n")

    cases = []
    for ds in which:
        if ds == "mnist":
            X, y, name = load_mnist_test(args.quick)
            seeds = args.seeds
        else:
            n = 20_000 if args.quick else 200_000
            X, y, name = synthetic_mixture(n=n)
            seeds = args.synthetic_seeds
        print(f"running {name} ...", file=sys.stderr, flush=True)
        case = run_case(name, X, y, seeds, args.repeats, nmi_target=(ds == "mnist"))
        if args.profile:
            case["profile"] = profile_ours(X, seeds[0])
        cases.append(case)
        write_json(args.json, {"benchmark": "kmeans", "argv": sys.argv, "quick": args.quick,
                               "machine": machine, "cases": cases, "complete": False},
                   quiet=True)  # partial results survive an interrupted run
        print(render_case(case))
        if args.profile:
            print("<details><summary>cProfile of our fit</summary>\n\n```\n"
                  + case["profile"] + "```\n</details>\n")

    all_met = all(t.met for c in cases for t in c["_targets"])
    print(f"**All k-means targets met: {'yes' if all_met else 'NO'}**")
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"- load average at end: {machine['load_average_at_end']}")
    write_json(args.json, {"benchmark": "kmeans", "argv": sys.argv, "quick": args.quick,
                           "machine": machine, "cases": cases, "all_targets_met": all_met,
                           "complete": True})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
