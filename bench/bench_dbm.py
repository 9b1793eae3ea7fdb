"""Deep Boltzmann machine on binarised MNIST: AIS lower bound on train and test, log Z, fit time.

Protocol (issue 4): a two-hidden-layer DBM (784-500-1000 as in Salakhutdinov & Hinton 2009,
or smaller with ``--layers``) is pre-trained greedily with doubled weights, then trained
jointly with mean field (positive phase) and persistent Gibbs chains (negative phase) on
binarised ``mnist5k`` (pixels > 0.5); the test set is the binarised MNIST test set (10,000
digits). Reported: the mean-field variational lower bound on log p(v) per digit (nats) on both
sets with log Z from AIS on the equivalent RBM over [v; h2] (``--runs`` runs, ``--betas``
temperatures), the ±3σ interval of log Z and the bound interval it implies, and the times.

The paper reports about -84.62 nats (lower bound, test set) for 784-500-1000 trained on all
60,000 MNIST digits for far longer; with 5,000 training digits and a CPU budget of minutes,
expect much worse numbers (and a larger train/test gap).

Usage::

    python -m bench.bench_dbm --quick --threads 1                 # smoke run (about a minute)
    python -m bench.bench_dbm --threads 1 --json results/dbm.json  # the real run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import apply_threads, fmt, machine_info, machine_markdown


def _data(quick: bool) -> tuple[np.ndarray, np.ndarray, str]:
    from unsup.data import find_mnist_dir, load

    X = load("mnist5k", binarize=0.5).X
    if find_mnist_dir() is not None:
        Xt, name = load("mnist-test", binarize=0.5).X, "MNIST test set"
    else:  # pragma: no cover - the benchmark needs the real test set for its numbers
        Xt, name = X[4000:], "last 1,000 rows of mnist5k (MNIST test set not found)"
        X = X[:4000]
    if quick:
        Xt = Xt[:2000]
        name += " (first 2,000)"
    return X, Xt, name


def run(X: np.ndarray, Xt: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    from unsup.energy.dbm import DBM

    layers = tuple(int(s) for s in args.layers.split(","))
    dbm = DBM(layers, learning_rate=args.lr, batch_size=100, n_updates=args.updates,
              n_chains=100, cd_k=args.cd_k, mean_field_iters=10, momentum=0.9,
              weight_decay=args.weight_decay, pretrain=args.pretrain_updates > 0,
              pretrain_updates=args.pretrain_updates, pretrain_learning_rate=args.pretrain_lr,
              random_state=args.seed, device="cpu")
    t0 = time.perf_counter()
    c0 = time.process_time()
    dbm.fit(X)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"fit: {fit_s:.1f} s wall, {fit_cpu:.1f} s CPU", flush=True)
    t0 = time.perf_counter()
    r = dbm.estimate_log_partition(n_runs=args.runs, n_betas=args.betas, random_state=12345)
    ais_s = time.perf_counter() - t0
    print(f"AIS: log Z = {r.log_z:.3f} [{r.log_z_low:.3f}, {r.log_z_high:.3f}] "
          f"({ais_s:.1f} s)", flush=True)
    t0 = time.perf_counter()
    train, test = dbm.score(X), dbm.score(Xt)
    score_s = time.perf_counter() - t0
    lo, hi = r.log_z_low, r.log_z_high
    return {
        "layers": [X.shape[1], *layers], "n_updates": args.updates,
        "pretrain_updates": args.pretrain_updates, "learning_rate": args.lr,
        "pretrain_learning_rate": args.pretrain_lr, "cd_k": args.cd_k,
        "weight_decay": args.weight_decay, "seed": args.seed,
        "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu,
        "log_z": r.log_z, "log_z_interval": [lo, hi], "log_z_std": r.log_z_std,
        "ais_runs": args.runs, "ais_betas": args.betas, "ais_seconds": ais_s,
        "train_bound": train, "test_bound": test,
        "train_bound_interval": [train + r.log_z - hi, train + r.log_z - lo],
        "test_bound_interval": [test + r.log_z - hi, test + r.log_z - lo],
        "score_seconds": score_s, "likelihood_kind": dbm.likelihood_kind_,
        "final_reconstruction_error": (dbm.history_[-1]["reconstruction_error"]
                                       if dbm.history_ else None),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run; numbers not meaningful")
    p.add_argument("--layers", default="500,1000", help="hidden sizes H1,H2 (default 500,1000)")
    p.add_argument("--updates", type=int, default=4000, help="joint-training updates")
    p.add_argument("--pretrain-updates", type=int, default=2000,
                   help="CD-1 updates per pre-training RBM (0: no pre-training)")
    p.add_argument("--lr", type=float, default=0.001, help="joint-training learning rate")
    p.add_argument("--pretrain-lr", type=float, default=0.05)
    p.add_argument("--cd-k", type=int, default=1, help="Gibbs steps of the chains per update")
    p.add_argument("--weight-decay", type=float, default=2e-4)
    p.add_argument("--runs", type=int, default=100, help="AIS runs (default 100)")
    p.add_argument("--betas", type=int, default=10000, help="AIS temperatures (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.quick:
        args.updates = min(args.updates, 200)
        args.pretrain_updates = min(args.pretrain_updates, 200)
        args.betas = min(args.betas, 500)
        args.runs = min(args.runs, 20)
    X, Xt, test_name = _data(args.quick)
    info = machine_info()
    print(machine_markdown(info))
    print(f"train: binarised mnist5k ({len(X)}); test: binarised {test_name} ({len(Xt)})")
    row = run(X, Xt, args)
    print(json.dumps(row, default=float), flush=True)
    print(f"DBM {'-'.join(map(str, row['layers']))}: fit {fmt(row['fit_seconds'])} s; "
          f"log Z {fmt(row['log_z'])} [{fmt(row['log_z_interval'][0])}, "
          f"{fmt(row['log_z_interval'][1])}]; lower bound train {fmt(row['train_bound'])}, "
          f"test {fmt(row['test_bound'])} nats "
          f"(test interval [{fmt(row['test_bound_interval'][0])}, "
          f"{fmt(row['test_bound_interval'][1])}])")
    if not np.isfinite(row["log_z_interval"][0]):
        print("WARNING: the AIS interval of log Z is unbounded below (the importance weights are "
              "dominated by a few runs): log Z is probably underestimated and the bounds above "
              "are too optimistic; use more --runs / --betas")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "quick": args.quick, "dbm": row},
                                        indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
