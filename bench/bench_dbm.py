"""Deep Boltzmann machine on binarised MNIST: AIS lower bound on train and test, log Z, fit time.

Protocol (issue 4): a two-hidden-layer DBM (784-500-1000 as in Salakhutdinov & Hinton 2009,
or smaller with ``--layers``) is pre-trained greedily with doubled weights, then trained
jointly with mean field (positive phase) and persistent Gibbs chains (negative phase) on
binarised ``mnist5k`` (pixels > 0.5); the test set is the binarised MNIST test set (10,000
digits). Reported: the mean-field variational lower bound on log p(v) per digit (nats) on both
sets with log Z from AIS (``--ais-runs`` runs, ``--betas`` temperatures), the ±3σ interval
of log Z and the bound interval it implies, and the times.

AIS estimators (``--ais-methods``, a comma-separated list): ``h1`` (the default of
``DBM.estimate_log_partition``; Salakhutdinov & Hinton 2009, §4) anneals over h1 alone with v
and h2 summed out analytically, from a factorial base model with the training marginals of v,
q(h1) and q(h2); ``composite`` is the RBM AIS on the composite RBM over [v; h2] (h1 summed out,
uniform h1 at β = 0), the earlier estimator. ``--betas 10000,30000,100000`` runs every method
once per number of temperatures on the same fitted model: a convergence study, one row each
(log Z, interval, σ, train and test bound, AIS seconds). The mean-field part of the bound does
not depend on log Z, so it is computed once and each row subtracts its own log Z.

``--directions forward,reverse`` adds reverse AIS (``DBM.estimate_log_partition_reverse``):
``--burn-in`` Gibbs sweeps from training digits, then annealing back to the base model.
Forward AIS tends to underestimate log Z and reverse AIS (given exact samples) to
overestimate it, so the two bracket log Z and the bound (bidirectional Monte Carlo, Grosse et
al. 2015); the chains' samples are not exact, so the bracket is a diagnostic, not a proof.

``--save PATH`` writes the fitted DBM (``unsup.io``); ``--load PATH`` reads one and skips
training.

The paper reports about -84.62 nats (lower bound, test set) for 784-500-1000 trained on all
60,000 MNIST digits for far longer; with 5,000 training digits and a CPU budget of minutes,
expect much worse numbers (and a larger train/test gap).

Usage::

    python -m bench.bench_dbm --quick --threads 1                 # smoke run (about a minute)
    python -m bench.bench_dbm --threads 1 --json results/dbm.json  # the real run
    python -m bench.bench_dbm --threads 1 --lr 0.001 --save /tmp/dbm.safetensors \
        --betas 10000,30000 --ais-methods h1,composite --json results/dbm_ais.json
    python -m bench.bench_dbm --threads 1 --load /tmp/dbm.safetensors --betas 100000
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    apply_threads,
    binarised_mnist,
    comma_list,
    fit_timed,
    fmt,
    int_list,
    machine_info,
    machine_markdown,
    markdown_table,
)


def fit(X: np.ndarray, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Train the DBM of the protocol (or load it with ``--load``); returns (model, info)."""
    from unsup.energy.dbm import DBM

    if args.load is not None:
        import unsup.io

        dbm = unsup.io.load(args.load)
        if not isinstance(dbm, DBM):
            raise SystemExit(f"{args.load} holds a {type(dbm).__name__}, not a DBM")
        print(f"loaded {args.load} (training skipped)", flush=True)
        return dbm, {"layers": [X.shape[1], *map(int, dbm.layer_sizes)],
                     "loaded_from": str(args.load), "fit_seconds": None,
                     "fit_cpu_seconds": None}
    layers = tuple(int(s) for s in args.layers.split(","))
    dbm = DBM(layers, learning_rate=args.lr, batch_size=100, n_updates=args.updates,
              n_chains=100, cd_k=args.cd_k, mean_field_iters=10, momentum=0.9,
              weight_decay=args.weight_decay, pretrain=args.pretrain_updates > 0,
              pretrain_updates=args.pretrain_updates, pretrain_learning_rate=args.pretrain_lr,
              random_state=args.seed, device="cpu")
    fit_s, fit_cpu = fit_timed(dbm, X, args.save)
    return dbm, {
        "layers": [X.shape[1], *layers], "loaded_from": None, "n_updates": args.updates,
        "pretrain_updates": args.pretrain_updates, "learning_rate": args.lr,
        "pretrain_learning_rate": args.pretrain_lr, "cd_k": args.cd_k,
        "weight_decay": args.weight_decay, "seed": args.seed,
        "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu,
        "final_reconstruction_error": (dbm.history_[-1]["reconstruction_error"]
                                       if dbm.history_ else None)}


def log_z_floor(dbm: Any, X: np.ndarray) -> float:
    """A certain lower bound on log Z: the log-sum of the unnormalised marginals
    p*(h1) = exp(c1'h1) prod_i (1 + exp(b_u + [W1, W2']' h1)_i) (v and h2 summed out) over the
    distinct h1 states of the thresholded mean field (mu1 > 0.5) of the rows of X. An AIS
    estimate below it is certainly wrong."""
    import torch
    import torch.nn.functional as F

    mu1 = np.concatenate([dbm.mean_field(X[s:s + 5000])[0] for s in range(0, len(X), 5000)])
    h = torch.unique(torch.as_tensor(mu1 > 0.5, dtype=torch.float64), dim=0)
    W = torch.as_tensor(np.concatenate([dbm.W1_, dbm.W2_.T], 1), dtype=torch.float64)
    bu = torch.as_tensor(np.concatenate([dbm.intercept_visible_, dbm.intercept_hidden2_]),
                         dtype=torch.float64)
    c1 = torch.as_tensor(np.asarray(dbm.intercept_hidden1_), dtype=torch.float64)
    return float(torch.logsumexp(h @ c1 + F.softplus(torch.addmm(bu, h, W)).sum(1), 0))


def evaluate(dbm: Any, X: np.ndarray, Xt: np.ndarray, args: argparse.Namespace
             ) -> list[dict[str, Any]]:
    """AIS for every (number of temperatures, method) and the bounds each log Z implies."""
    t0 = time.perf_counter()
    terms = (float(np.mean(dbm.lower_bound(X))), float(np.mean(dbm.lower_bound(Xt))))
    score_s = time.perf_counter() - t0
    print(f"mean-field terms (bound + log Z): train {terms[0]:.3f}, test {terms[1]:.3f} "
          f"({score_s:.1f} s)", flush=True)
    floor = log_z_floor(dbm, np.concatenate([X, Xt]))
    print(f"log Z >= {floor:.3f} (certain: distinct thresholded mean-field h1 of the train and "
          f"test rows), so the true bounds are at most {terms[0] - floor:.2f} (train), "
          f"{terms[1] - floor:.2f} (test)", flush=True)
    rows = []
    for nb in args.betas:
        for method, direction in itertools.product(args.ais_methods, args.directions):
            t0 = time.perf_counter()
            if direction == "reverse":
                r = dbm.estimate_log_partition_reverse(
                    n_runs=args.ais_runs, n_betas=nb, burn_in=args.burn_in,
                    random_state=12345, method=method, X=X)
            else:
                r = dbm.estimate_log_partition(n_runs=args.ais_runs, n_betas=nb,
                                               random_state=12345, method=method)
            ais_s = time.perf_counter() - t0
            lo, hi = r.log_z_low, r.log_z_high
            row = {
                "method": method, "direction": direction, "ais_betas": nb,
                "burn_in": args.burn_in if direction == "reverse" else None,
                "ais_runs": args.ais_runs,
                "log_z": r.log_z, "log_z_interval": [lo, hi], "log_z_std": r.log_z_std,
                "ais_seconds": ais_s, "train_bound": terms[0] - r.log_z,
                "test_bound": terms[1] - r.log_z,
                "train_bound_interval": [terms[0] - hi, terms[0] - lo],
                "test_bound_interval": [terms[1] - hi, terms[1] - lo],
                "score_seconds": score_s, "likelihood_kind": dbm.likelihood_kind_,
                "log_z_floor": floor}
            print(json.dumps({"ais": row}, default=float), flush=True)
            if not (np.isfinite(lo) and np.isfinite(hi)):
                print(f"WARNING ({method} {direction}, {nb} temperatures): the AIS interval "
                      "of log Z is unbounded (the importance weights are dominated by a few "
                      "runs): the estimate has not converged", flush=True)
            if r.log_z < floor:
                print(f"WARNING ({method}, {nb} temperatures): log Z estimate below the certain "
                      "lower bound: the AIS has not converged", flush=True)
            rows.append(row)
    return rows


def _ais_table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        ["method", "direction", "betas", "runs", "log Z", "log Z ±3σ", "σ", "train bound",
         "test bound", "AIS s"],
        [[r["method"], r.get("direction", "forward"), r["ais_betas"], r["ais_runs"],
          f"{r['log_z']:.2f}",
          f"[{r['log_z_interval'][0]:.2f}, {r['log_z_interval'][1]:.2f}]",
          f"{r['log_z_std']:.3f}", f"{r['train_bound']:.2f}", f"{r['test_bound']:.2f}",
          f"{r['ais_seconds']:.0f}"] for r in rows])




def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run; numbers not meaningful")
    p.add_argument("--layers", default="500,1000", help="hidden sizes H1,H2 (default 500,1000)")
    p.add_argument("--updates", type=int, default=20000,
                   help="joint-training updates (default 20000, the library's)")
    p.add_argument("--pretrain-updates", type=int, default=5000,
                   help="CD-1 updates per pre-training RBM (0: no pre-training; default "
                        "5000, the library's)")
    p.add_argument("--lr", type=float, default=0.001, help="joint-training learning rate")
    p.add_argument("--pretrain-lr", type=float, default=0.02)
    p.add_argument("--cd-k", type=int, default=1, help="Gibbs steps of the chains per update")
    p.add_argument("--weight-decay", type=float, default=2e-4)
    p.add_argument("--ais-runs", "--runs", dest="ais_runs", type=int, default=100,
                   help="AIS runs (default 100)")
    p.add_argument("--betas", type=int_list, default=[10000],
                   help="AIS temperatures, comma-separated for a convergence study "
                        "(default 10000)")
    p.add_argument("--ais-methods", type=comma_list, default=["h1"],
                   help="AIS estimators, comma-separated: h1 (default), composite")
    p.add_argument("--directions", type=comma_list, default=["forward"],
                   help="forward (AIS, default) and/or reverse (reverse AIS from Gibbs chains "
                        "started at training digits: the other side of the sandwich)")
    p.add_argument("--burn-in", type=int, default=5000,
                   help="Gibbs sweeps of the reverse chains before annealing (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--save", type=Path, default=None, metavar="PATH",
                   help="write the fitted DBM here (before AIS)")
    p.add_argument("--load", type=Path, default=None, metavar="PATH",
                   help="read a fitted DBM instead of training one")
    p.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = p.parse_args(argv)
    if args.save:  # before any training: a missing folder must not cost the run
        args.save.parent.mkdir(parents=True, exist_ok=True)
    bad = [m for m in args.ais_methods if m not in ("h1", "composite")]
    if bad:
        p.error(f"unknown AIS method(s) {bad}: use h1, composite")
    bad = [d for d in args.directions if d not in ("forward", "reverse")]
    if bad:
        p.error(f"unknown direction(s) {bad}: use forward, reverse")
    apply_threads(args.threads)
    if args.quick:
        args.updates = min(args.updates, 200)
        args.pretrain_updates = min(args.pretrain_updates, 200)
        args.betas = [min(b, 500) for b in args.betas]
        args.ais_runs = min(args.ais_runs, 20)
        args.burn_in = min(args.burn_in, 100)
    X, Xt, test_name = binarised_mnist(args.quick)
    info = machine_info()
    print(machine_markdown(info))
    print(f"train: binarised mnist5k ({len(X)}); test: binarised {test_name} ({len(Xt)})")
    dbm, row = fit(X, args)
    rows = evaluate(dbm, X, Xt, args)
    name = f"DBM {'-'.join(map(str, row['layers']))}"
    print(f"\n{name}: fit {fmt(row['fit_seconds'])} s; AIS convergence "
          f"({args.ais_runs} runs; bounds in nats):")
    print(_ais_table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "quick": args.quick, "dbm": row,
                                         "ais": rows}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
