"""Tuning the VAE's regularisation on a held-out part of the TRAINING set (never the test set).

Split: binarised mnist5k (sorted by class, so the split is a fixed random permutation), 4,500
rows to fit (the model's own ``validation_fraction`` of them for early stopping), the other
500 rows to judge (IS-k, default k = 500). One config per
call, given as JSON keyword arguments of the model; one JSON line appended to ``--out``.

Usage::

    python -m bench.bench_latent_tune '{"dropout": 0.2}' --out bench/results/latent_tune.jsonl

``--refit``: fit with early stopping (the model's own validation split), take its best
validation epoch E, then fit a fresh model (same seed) on all the fit rows for E epochs without
a validation split; the held-out rows judge the second model, the fit times are the sum.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("params", help="JSON keyword arguments of the model")
    p.add_argument("--model", default="vae", choices=["vae", "iwae", "helmholtz"])
    p.add_argument("--k", type=int, default=500)
    p.add_argument("--out", type=Path, default=Path("bench/results/latent_tune.jsonl"))
    p.add_argument("--sharpen", type=float, default=None,
                   help="with --grey: grey levels mapped to clip((x - 0.5) / (2a) + 0.5, 0, 1) "
                   "first (a = 0.5: unchanged; a -> 0: the 0.5 threshold)")
    p.add_argument("--refine", default="",
                   help="comma-separated refine_steps: also the held-out NLL with refined "
                   "proposals (log_likelihood(refine_steps=...))")
    p.add_argument("--refit", action="store_true",
                   help="early-stopped fit to choose the epochs E, then a fit on all the fit "
                   "rows for E epochs (no validation split)")
    p.add_argument("--grey", action="store_true",
                   help="fit on the grey-level rows (the model binarises them itself, e.g. "
                   "binarize_input='stochastic'); held-out and train rows judged at 0.5")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from unsup.data import load
    from unsup.latent import IWAE, VAE, HelmholtzMachine

    X = load("mnist5k", binarize=0.5).X
    perm = np.random.default_rng(12345).permutation(len(X))
    Xfit, Xheld = X[perm[:4500]], X[perm[4500:]]
    Xtrain = load("mnist5k").X[perm[:4500]] if args.grey else Xfit  # same rows, grey levels
    if args.grey and args.sharpen is not None:
        Xtrain = np.clip((Xtrain - 0.5) / (2 * args.sharpen) + 0.5, 0, 1).astype(np.float32)
    params = json.loads(args.params)
    cls = {"vae": VAE, "iwae": IWAE, "helmholtz": HelmholtzMachine}[args.model]
    for key in ("hidden_layer_sizes", "latent_dims"):
        if key in params:
            params[key] = tuple(params[key])
    model = cls(random_state=0, **params)
    w0, c0 = time.perf_counter(), time.process_time()
    model.fit(Xtrain)
    first = {}
    if args.refit:
        best = int(np.argmin([h["val_loss"] for h in model.history_])) + 1
        first = {"first_epochs": len(model.history_), "refit_epochs": best}
        model = cls(random_state=0, **{**params, "validation_fraction": 0.0,
                                       "early_stopping": False, "epochs": best})
        model.fit(Xtrain)
    fit_s, fit_cpu = time.perf_counter() - w0, time.process_time() - c0
    held = model.log_likelihood(Xheld, n_samples=args.k)
    train = model.log_likelihood(Xfit[:500], n_samples=args.k)
    refined = {}
    for steps in (int(t) for t in args.refine.split(",") if t.strip()):
        r = model.log_likelihood(Xheld, n_samples=args.k, refine_steps=steps)
        refined[str(steps)] = round(-r.nats, 3)
    row = {"model": args.model, "params": json.loads(args.params), "fit_s": round(fit_s, 1),
           "fit_cpu_s": round(fit_cpu, 1), "epochs": len(model.history_),
           "held_nll": round(-held.nats, 3), "held_se": round(held.stderr, 3),
           "train_nll": round(-train.nats, 3), "k": args.k,
           "grey": bool(args.grey), "sharpen": args.sharpen, "held_nll_refined": refined,
           **first}
    print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
