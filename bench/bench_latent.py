"""Directed latent-variable models on binarised MNIST: IS-k test NLL and fit time (issue 11).

Protocol: the energy benchmarks' split (``bench.common.binarised_mnist``: mnist5k binarised at
0.5 for training, the MNIST test set binarised at 0.5 for testing), so that every number sits
beside the RBM's, DBN's and DBM's in BENCHMARKS.md. Test log-likelihood: importance sampling
with the model's recognition network as the proposal, ``--k`` samples per digit (default 5,000),
on the first ``--test-rows`` test digits (IS-5000 on all 10,000 costs about ten times as long).

Parts (``--parts``):

* ``vae``       — ``VAE()`` with library defaults (784-200-200-50 tanh, Bernoulli decoder, Adam
  1e-3, batch 100, input dropout 0.3, early stopping on 10% of the training rows). Target: <= 94
  nats in < 3 min.
* ``iwae``      — ``IWAE()`` defaults (k = 5); ``--iwae-k`` for others (e.g. 5,50);
  ``--iwae-params '<JSON>'`` for further keyword arguments (settings chosen on
  ``bench_latent_tune``'s held-out rows, never on the test set).
* ``vae2``, ``iwae2`` — two stochastic layers (Burda et al. 2016's 784-200-200-100-100-100-50:
  ``VAE(100, prior_layers=(50,))``, the IWAE with ``--iwae-k``'s first k); library defaults
  otherwise.
* ``helmholtz`` — ``HelmholtzMachine()`` defaults (one layer of 200 binary units), wake-sleep
  and reweighted wake-sleep (K = 5).
* ``vae-dyn``, ``iwae-dyn`` — dynamic binarisation: the same 5,000 images fitted as grey levels
  with ``binarize_input="stochastic"`` (a fresh Bernoulli(grey) draw for every minibatch) and
  ``input_dropout=0``; validation, train and test rows judged binarised at 0.5.
* ``vae-vamp``, ``iwae-vamp`` — the VampPrior (``prior="vamp"``, Tomczak & Welling 2018) with
  ``--pseudo-inputs`` K (comma-separated for several), library defaults otherwise (the IWAE with
  ``--iwae-k``'s first k).
* ``--refit``  — an early-stopped fit chooses the epochs E (its best validation epoch), then
  a fresh model (same seed) is fitted on all the training rows for E epochs without a
  validation split (the model measured; fit times are the sum of both fits; the early-stopped
  model's test NLL, train NLL and test -ELBO are recorded too, as ``first_*``).
* ``--refine S`` — also the test NLL with each digit's proposal refined by S Adam steps
  (``log_likelihood(refine_steps=S)``): the same model, a tighter estimate.
* ``kconv``     — IS-k of the default VAE for k = 100 ... 5,000: the k at which the estimate is
  within 0.1 nats of k = 5,000 (the ``n_eval_samples`` default).

Usage::

    python -m bench.bench_latent --quick
    python -m bench.bench_latent --parts vae,iwae,kconv --json results/latent.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import (
    apply_threads,
    binarised_mnist,
    machine_info,
    machine_markdown,
    markdown_table,
)


def _measure(name: str, model: Any, X: Any, Xt: Any, k: int, refine: int = 0,
             X_fit: Any = None) -> dict[str, Any]:
    """Fit on ``X_fit`` (default ``X``: the grey rows for dynamic binarisation), judge train
    NLL on the binarised ``X`` and test NLL on ``Xt``; ``refine`` > 0 adds the IS-k estimate
    with refined proposals (``log_likelihood(refine_steps=...)``) beside the plain one."""
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X if X_fit is None else X_fit)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    first: dict[str, Any] = {}
    if _SAVE["refit"]:  # the early-stopped fit chose E; refit on all rows for E epochs
        best = min(range(len(model.history_)), key=lambda i: model.history_[i]["val_loss"]) + 1
        first = {"first_epochs": len(model.history_), "refit_epochs": best,
                 "first_fit_seconds": round(fit_s, 1), "first_fit_cpu_seconds": round(fit_cpu, 1)}
        if not _SAVE["fit_only"]:  # the early-stopped model measured too (not timed as fit)
            t1 = model.log_likelihood(Xt, n_samples=k)
            tr1 = model.log_likelihood(X[:len(Xt)], n_samples=min(k, 1000))
            el1 = model.elbo(Xt, n_samples=100)
            first.update(first_test_nll=-t1.nats, first_test_stderr=t1.stderr,
                         first_train_nll=-tr1.nats, first_test_neg_elbo=-el1.nats)
            print(f"  {name}, early-stopped ({len(model.history_)} epochs, fit CPU "
                  f"{fit_cpu:.0f} s): test NLL {-t1.nats:.2f} ± {t1.stderr:.2f} "
                  f"({t1.estimator}), train NLL {-tr1.nats:.2f}, test -ELBO {-el1.nats:.2f}",
                  flush=True)
        t1s, c1s = time.perf_counter(), time.process_time()
        model = type(model)(**{**model.get_params(), "validation_fraction": 0.0,
                               "early_stopping": False, "epochs": best})
        model.fit(X if X_fit is None else X_fit)
        fit_s += time.perf_counter() - t1s
        fit_cpu += time.process_time() - c1s
        name += f", refit on all rows for {best} epochs"
    fit = {"model": name, "fit_seconds": round(fit_s, 1), "fit_cpu_seconds": round(fit_cpu, 1),
           "epochs": len(model.history_), "stopped_early": bool(model.stopped_early_), **first}
    if _SAVE["dir"] is not None:  # for --evaluate in parallel processes (same numbers)
        from unsup import io

        slug = "".join(c if c.isalnum() else "_" for c in name).lower()
        _SAVE["dir"].mkdir(parents=True, exist_ok=True)
        io.save(model, _SAVE["dir"] / f"{slug}.unsup")
        (_SAVE["dir"] / f"{slug}.fit.json").write_text(json.dumps(fit))
        print(f"  {name}: fit {fit_s:.0f} s, CPU {fit_cpu:.0f} s ({fit['epochs']} epochs); "
              f"saved {_SAVE['dir'] / slug}.unsup", flush=True)
        if _SAVE["fit_only"]:
            return fit
    t0, c0 = time.perf_counter(), time.process_time()
    test = model.log_likelihood(Xt, n_samples=k)
    eval_s, eval_cpu = time.perf_counter() - t0, time.process_time() - c0
    ref: dict[str, Any] = {}
    if refine:
        c0 = time.process_time()
        r = model.log_likelihood(Xt, n_samples=k, refine_steps=refine)
        ref = {"test_nll_refined": -r.nats, "test_refined_stderr": r.stderr,
               "test_refined_estimator": r.estimator,
               "refined_eval_cpu_seconds": round(time.process_time() - c0, 1)}
        print(f"  {name}: refined proposal: test NLL {-r.nats:.2f} ± {r.stderr:.2f} "
              f"({r.estimator})", flush=True)
    train = model.log_likelihood(X[:len(Xt)], n_samples=min(k, 1000))
    elbo = model.elbo(Xt, n_samples=100)
    row = {"model": name, "fit_seconds": round(fit_s, 1), "fit_cpu_seconds": round(fit_cpu, 1),
           "epochs": len(model.history_),
           "stopped_early": bool(model.stopped_early_), "test_nll": -test.nats,
           "test_stderr": test.stderr, "test_estimator": test.estimator,
           "train_nll": -train.nats, "train_estimator": train.estimator,
           "test_neg_elbo": -elbo.nats, "eval_seconds": round(eval_s, 1),
           "eval_cpu_seconds": round(eval_cpu, 1), **ref, **first}
    print(f"  {name}: fit {fit_s:.0f} s, CPU {fit_cpu:.0f} s ({row['epochs']} epochs), "
          f"test NLL {-test.nats:.2f} "
          f"± {test.stderr:.2f} ({test.estimator}), train NLL {-train.nats:.2f}, test -ELBO "
          f"{-elbo.nats:.2f}", flush=True)
    return row


_SAVE: dict[str, Any] = {"dir": None, "fit_only": False, "refit": False}


def _evaluate(path: Path, rows: str, k: int, refine: int, out: Path) -> int:
    """Per-row test NLLs of a saved model on test rows ``A:B`` (and train NLL, IS-1000, on the
    same rows of the binarised training set): rows are independent (per-row draws), so
    slices evaluated in parallel processes give exactly the single-process numbers."""
    from unsup import io

    X, Xt, _ = binarised_mnist()
    a, b = (int(t) for t in rows.split(":"))
    model = io.load(path)
    c0 = time.process_time()
    res: dict[str, Any] = {"rows": [a, b], "k": k,
                           "test": (-model.log_likelihood(Xt[a:b], n_samples=k).per_sample
                                    ).tolist()}
    print(f"{path.name} {rows}: IS-{k} {sum(res['test']) / (b - a):.3f}", flush=True)
    if refine:
        r = model.log_likelihood(Xt[a:b], n_samples=k, refine_steps=refine)
        res["test_refined"], res["refine_steps"] = (-r.per_sample).tolist(), refine
        print(f"{path.name} {rows}: refined {-r.nats:.3f}", flush=True)
    res["train"] = (-model.log_likelihood(X[a:b], n_samples=min(k, 1000)).per_sample).tolist()
    res["test_neg_elbo"] = (-model.elbo(Xt[a:b], n_samples=100).per_sample).tolist()
    res["cpu_seconds"] = round(time.process_time() - c0, 1)
    out.write_text(json.dumps(res))
    return 0


def grey_mnist5k() -> Any:
    """mnist5k's grey levels in [0, 1]: the images behind the binarised training split."""
    from unsup.data import load

    return load("mnist5k").X


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="vae,iwae,helmholtz,kconv")
    p.add_argument("--quick", action="store_true", help="smoke run; numbers not meaningful")
    p.add_argument("--k", type=int, default=5000, help="importance samples of the test NLL")
    p.add_argument("--test-rows", type=int, default=1000)
    p.add_argument("--iwae-k", default="5")
    p.add_argument("--pseudo-inputs", default="500", help="K of the VampPrior parts")
    p.add_argument("--iwae-params", default="{}",
                   help="JSON keyword arguments of IWAE for the iwae part (lists -> tuples)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--refine", type=int, default=0,
                   help="also the test NLL with proposals refined by this many steps")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--save", type=Path, default=None,
                   help="save each fitted model (and its fit times) in this folder")
    p.add_argument("--fit-only", action="store_true", help="with --save: fit, save, stop")
    p.add_argument("--refit", action="store_true",
                   help="every part: an early-stopped fit (its own validation split) chooses "
                   "the epochs E (best validation epoch), then a fresh model (same seed) is "
                   "fitted on all training rows for E epochs; fit times are the sum")
    p.add_argument("--evaluate", type=Path, default=None,
                   help="a saved model: per-row NLLs of test rows --rows A:B into --out")
    p.add_argument("--rows", default="0:1000")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    if args.evaluate is not None:
        return _evaluate(args.evaluate, args.rows, args.k, args.refine, args.out)
    _SAVE["dir"], _SAVE["fit_only"] = args.save, bool(args.fit_only)
    _SAVE["refit"] = bool(args.refit)
    from unsup.latent import IWAE, VAE, HelmholtzMachine

    X, Xt, test_name = binarised_mnist(args.quick)
    if args.quick:
        X, args.k, args.test_rows = X[::5], min(args.k, 100), min(args.test_rows, 200)
    Xt = Xt[:args.test_rows]
    info = machine_info()
    print(machine_markdown(info))
    print(f"train: binarised mnist5k ({len(X)}); test: binarised {test_name}, first {len(Xt)}")
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    quick = {"epochs": 3} if args.quick else {}
    rows: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    rf = args.refine
    if "vae" in parts or "kconv" in parts:
        models["vae"] = VAE(random_state=0, **quick)
        rows.append(_measure("VAE (defaults)", models["vae"], X, Xt, args.k, rf))
    if "iwae" in parts:
        extra = {key: tuple(v) if isinstance(v, list) else v
                 for key, v in json.loads(args.iwae_params).items()}
        label = "".join(f", {key}={v}" for key, v in extra.items())
        for k in (int(s) for s in args.iwae_k.split(",")):
            rows.append(_measure(f"IWAE k={k}{label}",
                                 IWAE(n_importance_samples=k, random_state=0,
                                      **{**extra, **quick}), X, Xt, args.k, rf))
    # dynamic binarisation: the same 5,000 mnist5k images, fitted as grey levels and drawn
    # as Bernoulli(grey) afresh for every minibatch; validation, train and test rows are
    # judged binarised at 0.5 as everywhere else
    dyn = {"binarize_input": "stochastic", "input_dropout": 0.0}
    if "vae-dyn" in parts or "iwae-dyn" in parts:
        Xg = grey_mnist5k()[:len(X)] if not args.quick else grey_mnist5k()[::5]
    if "vae-dyn" in parts:
        rows.append(_measure("VAE, dynamic binarisation", VAE(random_state=0, **dyn, **quick),
                             X, Xt, args.k, rf, X_fit=Xg))
    if "iwae-dyn" in parts:
        for k in (int(s) for s in args.iwae_k.split(",")):
            rows.append(_measure(f"IWAE k={k}, dynamic binarisation",
                                 IWAE(n_importance_samples=k, random_state=0, **dyn, **quick),
                                 X, Xt, args.k, rf, X_fit=Xg))
    for K in (int(s) for s in args.pseudo_inputs.split(",")):
        vamp = {"prior": "vamp", "n_pseudo_inputs": K}
        if "vae-vamp" in parts:
            rows.append(_measure(f"VAE, VampPrior K={K}", VAE(random_state=0, **vamp, **quick),
                                 X, Xt, args.k, rf))
        if "iwae-vamp" in parts:
            k1 = int(args.iwae_k.split(",")[0])
            rows.append(_measure(f"IWAE k={k1}, VampPrior K={K}",
                                 IWAE(n_importance_samples=k1, random_state=0, **vamp, **quick),
                                 X, Xt, args.k, rf))
    two = {"n_components": 100, "prior_layers": (50,)}
    if "vae2" in parts:
        rows.append(_measure("VAE, two stochastic layers 100-50", VAE(random_state=0, **two,
                                                                      **quick), X, Xt, args.k))
    if "iwae2" in parts:
        k2 = int(args.iwae_k.split(",")[0])
        rows.append(_measure(f"IWAE k={k2}, two stochastic layers 100-50",
                             IWAE(n_importance_samples=k2, random_state=0, **two, **quick),
                             X, Xt, args.k))
    if "helmholtz" in parts:
        for method in ("wake-sleep", "reweighted"):
            rows.append(_measure(f"Helmholtz machine 200, {method}",
                                 HelmholtzMachine(method=method, random_state=0, **quick),
                                 X, Xt, args.k))
    results: dict[str, Any] = {"machine": info, "quick": args.quick, "test": test_name,
                               "test_rows": len(Xt), "rows": rows}
    if "kconv" in parts:
        conv = []
        for k in (100, 300, 1000, 2000, args.k):
            t0 = time.perf_counter()
            lk = models["vae"].log_likelihood(Xt, n_samples=k)
            conv.append({"k": k, "test_nll": -lk.nats,
                         "seconds": round(time.perf_counter() - t0, 1)})
        ref = conv[-1]["test_nll"]
        for c in conv:
            c["gap_to_kmax"] = c["test_nll"] - ref
        results["kconv"] = conv
        print(markdown_table(["k", "test NLL", "gap to k max", "seconds"],
                             [[c["k"], f"{c['test_nll']:.3f}", f"{c['gap_to_kmax']:.3f}",
                               c["seconds"]] for c in conv]))
    print(markdown_table(["model", "fit s", "fit CPU s", "epochs", "test NLL (IS)", "± se",
                          "refined proposal", "train NLL", "test -ELBO"],
                         [[r["model"], r["fit_seconds"], r["fit_cpu_seconds"], r["epochs"],
                           f"{r['test_nll']:.2f}", f"{r['test_stderr']:.2f}",
                           f"{r['test_nll_refined']:.2f}" if "test_nll_refined" in r else "-",
                           f"{r['train_nll']:.2f}",
                           f"{r['test_neg_elbo']:.2f}"] for r in rows if "test_nll" in r]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
