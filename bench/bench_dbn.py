"""Deep belief network on binarised MNIST: the AIS lower bound on log p(v), train and test.

Protocol (issue 4): a DBN 784-500-2000 (``--layers 500,2000``; 784-500-500-2000 with
``--layers 500,500,2000``) trained greedily on binarised ``mnist5k`` (pixels > 0.5), one
BernoulliRBM per layer (CD-1 below, PCD for the top RBM, batch 100, momentum 0.9, weight decay
1e-3, linear learning-rate decay, ``--updates`` updates per layer), evaluated on the binarised
MNIST test set (10,000 digits). Reported:

* the variational lower bound on log p(v) (Salakhutdinov & Murray 2008), estimated with
  ``--bound-samples`` draws of h1 ~ q(h1|v) per row, minus log Z of the top RBM by AIS
  (``--ais-runs`` runs, ``--betas`` temperatures) with its ±3σ interval; the bound's interval
  is the same shift;
* a convergence study of that AIS estimate: ``--betas 10000,30000,100000`` runs AIS once per
  number of temperatures on the same fitted model (one table row each: log Z, interval, σ,
  train and test bound, AIS seconds). The bound's expectation term does not depend on log Z,
  so it is computed once and each row subtracts its own log Z;
* ``--ais-estimators library,reverse`` adds reverse AIS on the top RBM
  (``DBN.estimate_log_partition_reverse``, chains from training states, ``--burn-in`` sweeps):
  forward AIS tends to underestimate log Z and reverse AIS to overestimate it, so the two
  bracket it (a diagnostic: the chains' samples are not exact);
* the first layer alone (an RBM, ``DBN.from_rbms([first layer])``): its AIS log-likelihood,
  for comparison (``--no-baseline`` skips it);
* optionally (``--updown N``) the bound after N up-down fine-tuning updates;
* fit time per layer.

``--save PATH`` writes the fitted DBN (``unsup.io``); ``--load PATH`` reads one and skips
training (only AIS and the bounds are run).

Usage::

    python -m bench.bench_dbn --quick                              # smoke run
    python -m bench.bench_dbn --threads 1 --updates 6000 --save /tmp/dbn.safetensors \
        --betas 10000,30000,100000 --no-baseline --json results/dbn_ais.json
    python -m bench.bench_dbn --threads 1 --load /tmp/dbn.safetensors --betas 300000
"""

from __future__ import annotations

import argparse
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


def _evaluate(model: Any, X: np.ndarray, Xt: np.ndarray, args: argparse.Namespace
              ) -> dict[str, Any]:
    """AIS with the first ``--betas`` value and the last ``--ais-estimators`` entry, then
    the bounds (baseline and up-down rows; the other estimators are printed as well)."""
    return _convergence(model, X, Xt, args, args.betas[:1], args.ais_estimators)[-1]


def _two_sided_ais(model: Any, X: np.ndarray, n_runs: int, n_betas: int, seed: int) -> Any:
    """AIS for the top RBM with the state on its *hidden* layer (its visible layer summed out)
    and a factorial base model with data marginals on both layers: ``top_base_rate_logits_``
    on the visible side and the logits of the training mean of q(h_top | mean up-pass) on the
    hidden side (``_BernoulliMath.ais_callbacks_hidden``, the library's hidden-side AIS).
    Before commit 82b16ac the library's ``DBN.estimate_log_partition`` sampled the visible
    side from *uniform* hidden units, far from the model for a 2000-unit top layer; it now
    samples the larger layer itself (``BernoulliRBM(ais_side="auto")``), with base logits from
    the top RBM's own training states."""
    import torch

    from unsup.energy.rbm import _BernoulliMath
    from unsup.metrics.likelihood import ais

    def t(a: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)

    h = torch.as_tensor(X, dtype=torch.float32)
    for W, c in zip(model.weights_, model.hidden_biases_, strict=True):
        h = torch.sigmoid(torch.addmm(t(c), h, t(W).T))
    p = h.double().mean(0).clamp(1e-3, 1 - 1e-3)
    a_hid = (torch.log(p) - torch.log1p(-p)).float()
    top = _BernoulliMath(t(model.weights_[-1]), t(model.visible_biases_[-1]),
                         t(model.hidden_biases_[-1]))
    gen = torch.Generator().manual_seed(seed)
    init, step = top.ais_callbacks_hidden(t(model.top_base_rate_logits_), a_hid, gen)
    return ais(init, step, n_runs=n_runs, betas=n_betas)


def _convergence(model: Any, X: np.ndarray, Xt: np.ndarray, args: argparse.Namespace,
                 betas: list[int], estimators: list[str]) -> list[dict[str, Any]]:
    """One AIS estimate of log Z per number of temperatures in ``betas`` and estimator (same
    model, seed 12345), each with the train/test bounds it implies and the AIS time."""
    rows: list[dict[str, Any]] = []
    terms: tuple[float, float, float] | None = None
    for nb in betas:
        for est in estimators:
            t0 = time.perf_counter()
            if est == "library":
                r = model.estimate_log_partition(n_runs=args.ais_runs, n_betas=nb,
                                                 random_state=12345)
                model.set_log_partition(r)
            elif est == "reverse":  # the other side of the bracket; never the bound's log Z
                r = model.estimate_log_partition_reverse(n_runs=args.ais_runs, n_betas=nb,
                                                         burn_in=args.burn_in,
                                                         random_state=12345)
            else:
                r = _two_sided_ais(model, X, args.ais_runs, nb, 12345)
                model.set_log_partition(r)
            ais_s = time.perf_counter() - t0
            if terms is None:  # E_q[...] part of the bound, without log Z: independent of it
                t0 = time.perf_counter()
                train = model.score(X, n_samples=args.bound_samples)
                test = model.score(Xt, n_samples=args.bound_samples)
                log_z = model.log_partition_result().log_z  # what score subtracted
                terms = (train + log_z, test + log_z, time.perf_counter() - t0)
            lo, hi = r.log_z_low, r.log_z_high
            train, test = terms[0] - r.log_z, terms[1] - r.log_z
            row = {"estimator": est, "kind": model.likelihood_kind_, "log_z": r.log_z,
                   "log_z_interval": [lo, hi], "log_z_std": r.log_z_std, "train": train,
                   "test": test, "train_interval": [terms[0] - hi, terms[0] - lo],
                   "test_interval": [terms[1] - hi, terms[1] - lo],
                   "ais_seconds": ais_s, "bound_seconds": terms[2], "ais_runs": args.ais_runs,
                   "ais_betas": nb, "bound_samples": args.bound_samples}
            print(json.dumps({"ais": row}, default=float), flush=True)
            rows.append(row)
    return rows


def _log_z_floor(model: Any, X: np.ndarray) -> float:
    """A certain lower bound on log Z of the top RBM: the log-sum of its unnormalised
    probabilities exp(-F_top(h)) over the distinct states h of its visible layer that the
    thresholded up-pass (q > 0.5) gives for the rows of X. An AIS estimate below it is wrong."""
    import torch
    import torch.nn.functional as F

    h = torch.as_tensor(X, dtype=torch.float64)
    Ws = [torch.as_tensor(np.asarray(w), dtype=torch.float64) for w in model.weights_]
    cs = [torch.as_tensor(np.asarray(c), dtype=torch.float64) for c in model.hidden_biases_]
    for W, c in zip(Ws[:-1], cs[:-1], strict=True):
        h = (torch.addmm(c, h, W.T) > 0).double()
    h = torch.unique(h, dim=0)
    b = torch.as_tensor(np.asarray(model.visible_biases_[-1]), dtype=torch.float64)
    neg_f = h @ b + F.softplus(torch.addmm(cs[-1], h, Ws[-1].T)).sum(1)
    return float(torch.logsumexp(neg_f, 0))


def _ais_table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        ["estimator", "betas", "runs", "log Z", "log Z ±3σ", "σ", "train bound", "test bound",
         "AIS s"],
        [[r["estimator"], r["ais_betas"], r["ais_runs"], f"{r['log_z']:.2f}",
          f"[{r['log_z_interval'][0]:.2f}, {r['log_z_interval'][1]:.2f}]",
          f"{r['log_z_std']:.3f}", f"{r['train']:.2f}", f"{r['test']:.2f}",
          f"{r['ais_seconds']:.0f}"] for r in rows])




def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="500,2000", help="hidden layer sizes (default 500,2000)")
    p.add_argument("--updates", type=int, default=10000, help="RBM updates per layer")
    p.add_argument("--lr", type=float, default=0.01, help="RBM learning rate (all layers)")
    p.add_argument("--bound-samples", type=int, default=10, help="h1 draws per row")
    p.add_argument("--ais-runs", "--runs", dest="ais_runs", type=int, default=100,
                   help="AIS runs (default 100)")
    p.add_argument("--betas", type=int_list, default=[10000],
                   help="AIS temperatures, a comma-separated list for a convergence study "
                        "(default 10000)")
    p.add_argument("--ais-estimators", type=comma_list, default=["library"],
                   help="top-RBM AIS estimators, comma-separated: library "
                        "(DBN.estimate_log_partition, default), two-sided (state on the top "
                        "hidden layer, data base rates on both layers), reverse (reverse AIS "
                        "from Gibbs chains started at the top RBM's training states: the "
                        "upper side of the bracket on log Z)")
    p.add_argument("--burn-in", type=int, default=5000,
                   help="Gibbs sweeps of the reverse-AIS chains (default 5000)")
    p.add_argument("--updown", type=int, default=0, help="up-down fine-tuning updates")
    p.add_argument("--updown-lr", type=float, default=1e-3)
    p.add_argument("--no-baseline", action="store_true", help="skip the first-layer RBM's LL")
    p.add_argument("--quick", action="store_true", help="smoke run; numbers not meaningful")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--save", "--save-model", dest="save", type=Path, default=None,
                   metavar="PATH", help="write the fitted DBN here (before AIS)")
    p.add_argument("--load", type=Path, default=None, metavar="PATH",
                   help="read a fitted DBN instead of training one")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.save:  # before any training: a missing folder must not cost the run
        args.save.parent.mkdir(parents=True, exist_ok=True)
    bad = [e for e in args.ais_estimators if e not in ("library", "two-sided", "reverse")]
    if bad:
        p.error(f"unknown AIS estimator(s) {bad}: use library, two-sided, reverse")
    apply_threads(args.threads)
    from unsup.energy.dbn import DBN

    layers = [int(s) for s in args.layers.split(",") if s.strip()]
    if args.quick:
        args.burn_in = min(args.burn_in, 100)
        args.updates = min(args.updates, 300)
        args.betas = [min(b, 500) for b in args.betas]
        args.ais_runs = min(args.ais_runs, 20)
        args.bound_samples = min(args.bound_samples, 2)
        args.updown = min(args.updown, 50)
    X, Xt, test_name = binarised_mnist(args.quick, quick_test_rows=1000)
    info = machine_info()
    print(machine_markdown(info))
    print(f"train: binarised mnist5k ({len(X)}); test: binarised {test_name} ({len(Xt)})")
    fit_s = fit_cpu = None
    if args.load is not None:
        import unsup.io

        dbn = unsup.io.load(args.load)
        if not isinstance(dbn, DBN):
            raise SystemExit(f"{args.load} holds a {type(dbn).__name__}, not a DBN")
        layers = [int(w.shape[0]) for w in dbn.weights_]
        print(f"loaded {args.load} (training skipped)", flush=True)
    else:
        dbn = DBN(layers, n_updates=args.updates, learning_rate=args.lr, batch_size=100,
                  momentum=0.9, weight_decay=1e-3, persistent="top", device="cpu",
                  random_state=0, ais_runs=args.ais_runs, ais_betas=args.betas[0])
        fit_s, fit_cpu = fit_timed(dbn, X, args.save)
    res: dict[str, Any] = {
        "machine": info, "quick": args.quick, "layers": [X.shape[1], *layers],
        "loaded_from": None if args.load is None else str(args.load),
        "updates_per_layer": None if args.load is not None else args.updates,
        "learning_rate": None if args.load is not None else args.lr, "threads": args.threads,
        "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu}
    rows = []
    if not args.no_baseline:
        first = DBN.from_rbms([_first_layer_rbm(dbn, X)], device="cpu", random_state=0,
                              ais_runs=args.ais_runs, ais_betas=args.betas[0])
        res["first_layer_rbm_ais"] = _convergence(first, X, Xt, args, args.betas[:1],
                                                  args.ais_estimators)
        res["first_layer_rbm"] = res["first_layer_rbm_ais"][-1]
        print(json.dumps({"first_layer_rbm": res["first_layer_rbm"]}, default=float), flush=True)
        rows.append(("RBM (layer 1 alone)", res["first_layer_rbm"]))
    if len(dbn.weights_) > 1:
        res["log_z_floor"] = _log_z_floor(dbn, np.concatenate([X, Xt]))
        print(f"log Z >= {res['log_z_floor']:.3f} (certain: distinct up-pass states of the "
              "train and test rows)", flush=True)
    res["dbn_ais"] = _convergence(dbn, X, Xt, args, args.betas, args.ais_estimators)
    res["dbn"] = res["dbn_ais"][-1]  # the most temperatures
    rows.append((f"DBN {'-'.join(map(str, res['layers']))}", res["dbn"]))
    if args.updown > 0:
        t0 = time.perf_counter()
        dbn.fine_tune_updown(X, n_updates=args.updown, learning_rate=args.updown_lr)
        res["updown_seconds"] = time.perf_counter() - t0
        res["dbn_updown"] = _evaluate(dbn, X, Xt, args)
        print(json.dumps({"dbn_updown": res["dbn_updown"]}, default=float), flush=True)
        rows.append((f"+ up-down ({args.updown})", res["dbn_updown"]))
    print(markdown_table(
        ["model", "kind", "train (nats)", "test (nats)", "test ±3σ of log Z", "log Z"],
        [[name, r["kind"], r["train"], r["test"],
          f"[{fmt(r['test_interval'][0])}, {fmt(r['test_interval'][1])}]", r["log_z"]]
         for name, r in rows]))
    if "first_layer_rbm_ais" in res:
        print(f"\nAIS, layer-1 RBM alone ({args.ais_runs} runs; log-likelihoods in nats):")
        print(_ais_table(res["first_layer_rbm_ais"]))
    print(f"\nAIS convergence, top RBM of the DBN ({args.ais_runs} runs; bounds in nats):")
    print(_ais_table(res["dbn_ais"]))
    floor = res.get("log_z_floor")
    if floor is not None:
        r0 = res["dbn_ais"][0]
        res["bound_ceiling"] = [r0["train"] + r0["log_z"] - floor,
                                r0["test"] + r0["log_z"] - floor]
        print(f"certain lower bound on log Z (data states): {floor:.2f}, so the true bounds are "
              f"at most {res['bound_ceiling'][0]:.2f} (train), {res['bound_ceiling'][1]:.2f} "
              "(test)")
        if any(r["log_z"] < floor for r in res["dbn_ais"]):
            print("WARNING: an AIS estimate of log Z lies below that certain lower bound: the "
                  "AIS has not converged and its bounds are not bounds")
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
