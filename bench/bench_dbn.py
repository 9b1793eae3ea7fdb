"""Deep belief network on binarised MNIST: the AIS lower bound on log p(v), train and test.

Protocol (issue 4): a DBN 784-500-2000 (``--layers 500,2000``; 784-500-500-2000 with
``--layers 500,500,2000``) trained greedily on binarised ``mnist5k`` (pixels > 0.5), one
BernoulliRBM per layer (CD-1 below, PCD for the top RBM, batch 100, momentum 0.9, weight decay
1e-3, linear learning-rate decay, ``--updates`` updates per layer), evaluated on the binarised
MNIST test set (10,000 digits). Reported:

* the variational lower bound on log p(v) (Salakhutdinov & Murray 2008), estimated with
  ``--bound-samples`` draws of h1 ~ q(h1|v) per row, minus log Z of the top RBM by AIS
  (``--runs`` runs, ``--betas`` temperatures) with its ±3σ interval; the bound's interval is
  the same shift;
* the first layer alone (an RBM, ``DBN.from_rbms([first layer])``): its AIS log-likelihood,
  for comparison (``--no-baseline`` skips it);
* optionally (``--updown N``) the bound after N up-down fine-tuning updates;
* fit time per layer.

Usage::

    python -m bench.bench_dbn --quick                              # smoke run
    python -m bench.bench_dbn --threads 1 --updates 5000 --json results/dbn.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import apply_threads, fmt, machine_info, machine_markdown, markdown_table


def _data(quick: bool) -> tuple[np.ndarray, np.ndarray, str]:
    from unsup.data import find_mnist_dir, load

    X = load("mnist5k", binarize=0.5).X
    if find_mnist_dir() is not None:
        Xt, name = load("mnist-test", binarize=0.5).X, "MNIST test set"
    else:  # pragma: no cover - the benchmark needs the real test set for its numbers
        Xt, name = X[4000:], "last 1,000 rows of mnist5k (MNIST test set not found)"
        X = X[:4000]
    if quick:
        Xt = Xt[:1000]
        name += " (first 1,000)"
    return X, Xt, name


def _evaluate(model: Any, X: np.ndarray, Xt: np.ndarray, args: argparse.Namespace
              ) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = model.estimate_log_partition(n_runs=args.runs, n_betas=args.betas, random_state=12345)
    ais_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    train = model.score(X, n_samples=args.bound_samples)
    test = model.score(Xt, n_samples=args.bound_samples)
    lo, hi = r.log_z_low, r.log_z_high
    return {"kind": model.likelihood_kind_, "log_z": r.log_z, "log_z_interval": [lo, hi],
            "log_z_std": r.log_z_std, "train": train, "test": test,
            "test_interval": [test + r.log_z - hi, test + r.log_z - lo],
            "ais_seconds": ais_s, "bound_seconds": time.perf_counter() - t0,
            "ais_runs": args.runs, "ais_betas": args.betas, "bound_samples": args.bound_samples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="500,2000", help="hidden layer sizes (default 500,2000)")
    p.add_argument("--updates", type=int, default=10000, help="RBM updates per layer")
    p.add_argument("--lr", type=float, default=0.01, help="RBM learning rate (all layers)")
    p.add_argument("--bound-samples", type=int, default=10, help="h1 draws per row")
    p.add_argument("--runs", type=int, default=100, help="AIS runs (default 100)")
    p.add_argument("--betas", type=int, default=10000, help="AIS temperatures (default 10000)")
    p.add_argument("--updown", type=int, default=0, help="up-down fine-tuning updates")
    p.add_argument("--updown-lr", type=float, default=1e-3)
    p.add_argument("--no-baseline", action="store_true", help="skip the first-layer RBM's LL")
    p.add_argument("--quick", action="store_true", help="smoke run; numbers not meaningful")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--save-model", type=Path, default=None, metavar="PATH")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    from unsup.energy.dbn import DBN

    layers = [int(s) for s in args.layers.split(",") if s.strip()]
    if args.quick:
        args.updates = min(args.updates, 300)
        args.betas = min(args.betas, 500)
        args.runs = min(args.runs, 20)
        args.bound_samples = min(args.bound_samples, 2)
        args.updown = min(args.updown, 50)
    X, Xt, test_name = _data(args.quick)
    info = machine_info()
    print(machine_markdown(info))
    print(f"train: binarised mnist5k ({len(X)}); test: binarised {test_name} ({len(Xt)})")
    dbn = DBN(layers, n_updates=args.updates, learning_rate=args.lr, batch_size=100,
              momentum=0.9, weight_decay=1e-3, persistent="top", device="cpu",
              random_state=0, ais_runs=args.runs, ais_betas=args.betas)
    t0 = time.perf_counter()
    c0 = time.process_time()
    dbn.fit(X)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"fit: {fmt(fit_s)} s wall, {fmt(fit_cpu)} s CPU", flush=True)
    res: dict[str, Any] = {
        "machine": info, "quick": args.quick, "layers": [X.shape[1], *layers],
        "updates_per_layer": args.updates, "learning_rate": args.lr, "threads": args.threads,
        "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu}
    rows = []
    if not args.no_baseline:
        first = DBN.from_rbms([_first_layer_rbm(dbn, X)], device="cpu", random_state=0,
                              ais_runs=args.runs, ais_betas=args.betas)
        res["first_layer_rbm"] = _evaluate(first, X, Xt, args)
        print(json.dumps({"first_layer_rbm": res["first_layer_rbm"]}, default=float), flush=True)
        rows.append(("RBM (layer 1 alone)", res["first_layer_rbm"]))
    res["dbn"] = _evaluate(dbn, X, Xt, args)
    print(json.dumps({"dbn": res["dbn"]}, default=float), flush=True)
    rows.append((f"DBN {'-'.join(map(str, res['layers']))}", res["dbn"]))
    if args.updown > 0:
        t0 = time.perf_counter()
        dbn.fine_tune_updown(X, n_updates=args.updown, learning_rate=args.updown_lr)
        res["updown_seconds"] = time.perf_counter() - t0
        res["dbn_updown"] = _evaluate(dbn, X, Xt, args)
        print(json.dumps({"dbn_updown": res["dbn_updown"]}, default=float), flush=True)
        rows.append((f"+ up-down ({args.updown})", res["dbn_updown"]))
    if args.save_model is not None:
        dbn.save(str(args.save_model))
    print(markdown_table(
        ["model", "kind", "train (nats)", "test (nats)", "test ±3σ of log Z", "log Z"],
        [[name, r["kind"], r["train"], r["test"],
          f"[{fmt(r['test_interval'][0])}, {fmt(r['test_interval'][1])}]", r["log_z"]]
         for name, r in rows]))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2, default=float))
    return 0


def _first_layer_rbm(dbn: Any, X: np.ndarray) -> Any:
    """Layer 1 of a fitted DBN as a fitted BernoulliRBM (AIS base rate: the data marginals)."""
    from unsup.energy.rbm import BernoulliRBM

    w = dbn.weights_[0]
    r = BernoulliRBM(w.shape[0], device="cpu", random_state=0)
    r.components_, r.intercept_hidden_ = w, dbn.hidden_biases_[0]
    r.intercept_visible_ = dbn.visible_biases_[0]
    p = X.mean(0).clip(1e-3, 1 - 1e-3)
    r.base_rate_logits_ = (np.log(p) - np.log1p(-p)).astype(np.float32)
    r.n_features_in_ = w.shape[1]
    return r


if __name__ == "__main__":
    raise SystemExit(main())
