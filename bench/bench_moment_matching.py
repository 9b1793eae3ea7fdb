"""GMMN, GMMN+AE, the adversarial autoencoder and VAE-GAN on mnist5k: wall time and sample
quality (issue 13 §1).

Every model is trained on the 5,000 mnist5k digits (grey levels in [0, 1]) with library
defaults except the budget (``--epochs``, ``--gmmn-epochs``, ``--ae-epochs``), one torch
thread. Sample quality of ``--n-samples`` draws, against the first ``--n-samples`` digits of the
real MNIST test set:

* when ``unsup.metrics.sample_quality`` exists: its FID / KID / mode counts (whatever it
  returns is recorded as is);
* always, statistics of the samples themselves:

  - ``mmd2``: unbiased MMD² in pixel space (Gaussian kernels, bandwidths 0.2 ... 8 times the
    median distance of the test digits); the row ``real digits`` (mnist5k rows against the
    test digits) is the floor a perfect model would reach;
  - ``modes`` / ``class_kl``: a logistic regression trained on mnist5k's labels classifies
    the samples; digits (of 10) receiving at least 2 % of them, and KL(class histogram ||
    uniform) in nats (0: balanced);
  - ``lr_score``: exp(E_x KL(p(y|x) || p(y))) with that classifier, an Inception-score
    analogue (10 at best; a reference only, the classifier is weak);
  - ``nn_train``: mean Euclidean distance of a sample to its nearest training digit (a sample
    copying the training set has 0).

Usage::

    python -m bench.bench_moment_matching --quick
    python -m bench.bench_moment_matching --epochs 20 --gmmn-epochs 100 --json out.json
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import (
    apply_threads,
    load_mnist_test,
    machine_info,
    machine_markdown,
    markdown_table,
    write_json,
)

MODELS = ("gmmn", "gmmn-ae", "aae", "vae-gan")


def _models(args: argparse.Namespace) -> dict[str, Any]:
    from unsup.adversarial import GMMN, VAEGAN, AdversarialAutoencoder

    e, g = args.epochs, args.gmmn_epochs
    return {
        "gmmn": lambda: GMMN(epochs=g, random_state=0),
        "gmmn-ae": lambda: GMMN(autoencoder="auto", ae_epochs=args.ae_epochs, epochs=g,
                                random_state=0),
        "aae": lambda: AdversarialAutoencoder(epochs=e, random_state=0),
        "vae-gan": lambda: VAEGAN(epochs=e, random_state=0),
    }


def _stats(S: np.ndarray, Xtest: np.ndarray, Xtrain: np.ndarray, clf: Any) -> dict[str, float]:
    from unsup.adversarial._mmd import median_distance, mmd2

    t = torch.as_tensor(Xtest)
    bw = [f * median_distance(t) for f in (0.2, 0.5, 1, 2, 4, 8)]
    out = {"mmd2": float(mmd2(torch.as_tensor(S, dtype=torch.float32), t, bw, unbiased=True))}
    p = clf.predict_proba(S)
    hist = np.bincount(p.argmax(1), minlength=10) / len(S)
    out["modes"] = int((hist >= 0.02).sum())
    nz = hist[hist > 0]
    out["class_kl"] = float((nz * np.log(nz * 10)).sum())
    py = p.mean(0)
    out["lr_score"] = float(np.exp((p * (np.log(p + 1e-12) - np.log(py + 1e-12))).sum(1).mean()))
    d = torch.cdist(torch.as_tensor(S, dtype=torch.float32), torch.as_tensor(Xtrain))
    out["nn_train"] = float(d.min(1).values.mean())
    return out


def _sample_quality(S: np.ndarray, Xtest: np.ndarray) -> dict[str, Any] | str:
    try:
        mod = importlib.import_module("unsup.metrics.sample_quality")
    except ImportError:
        return "pending (unsup.metrics.sample_quality not available)"
    fn = getattr(mod, "sample_quality", None)
    if not callable(fn):
        return f"pending (unsup.metrics.sample_quality has no sample_quality(); {dir(mod)})"
    try:
        res = fn(S, Xtest)
    except Exception as e:  # noqa: BLE001 - a benchmark records what happened
        return f"failed: {type(e).__name__}: {e}"
    return res if isinstance(res, dict) else getattr(res, "to_dict", lambda: repr(res))()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epochs", type=int, default=20, help="AAE and VAE-GAN epochs")
    p.add_argument("--gmmn-epochs", type=int, default=100, help="GMMN epochs (batch 500)")
    p.add_argument("--ae-epochs", type=int, default=30, help="GMMN+AE's autoencoder epochs")
    p.add_argument("--n-samples", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="2 epochs each, 500 samples")
    p.add_argument("--json", type=Path)
    p.add_argument("--grid", type=Path, help="save 64 samples per model to <grid>_<model>.npy")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.gmmn_epochs, args.ae_epochs, args.n_samples = 2, 2, 2, 500
    apply_threads(args.threads)
    torch.set_num_threads(args.threads)
    from sklearn.linear_model import LogisticRegression

    from unsup.data import load

    ds = load("mnist5k")
    X, y = ds.X.astype(np.float32), ds.y
    Xt, _, test_desc = load_mnist_test()
    Xt = Xt[:args.n_samples]
    clf = LogisticRegression(max_iter=500).fit(X, y)
    info = machine_info()
    print(machine_markdown(info), flush=True)
    rows: list[dict[str, Any]] = []
    # the floor: real training digits (a random subset: mnist5k is sorted by class)
    R = X[np.random.default_rng(0).permutation(len(X))[:args.n_samples]]
    ref = {"model": "real digits (mnist5k)", "fit_seconds": 0.0, "cpu_seconds": 0.0,
           **_stats(R, Xt, X[-1:], clf), "sample_quality": _sample_quality(R, Xt)}
    ref["nn_train"] = float("nan")  # they are training digits: the distance means nothing
    rows.append(ref)
    factories = _models(args)
    for name in args.models.split(","):
        model = factories[name]()
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(X)
        fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        S = model.sample(args.n_samples, random_state=1)
        finite = bool(np.isfinite(S).all())
        row = {"model": name, "fit_seconds": round(fit_s, 1), "cpu_seconds": round(cpu_s, 1),
               "steps": model.n_steps_,
               "finite": finite, "last_losses": {k: round(v, 4) for k, v in
                                                 model.history_[-1].items()
                                                 if k.startswith("loss")},
               **(_stats(S, Xt, X, clf) if finite else {}),
               "sample_quality": _sample_quality(S, Xt) if finite else "non-finite samples"}
        rows.append(row)
        if args.grid:
            np.save(f"{args.grid}_{name}.npy", S[:64])
        print(f"  {name}: {row}", flush=True)
    nan = float("nan")
    head = ["model", "fit s (wall)", "CPU s", "FID", "KID", "precision", "recall", "modes",
            "IS", "MMD² (pixels)", "LR modes", "NN dist"]

    def q(r: dict[str, Any], k: str) -> Any:
        sq = r.get("sample_quality")
        return sq.get(k, nan) if isinstance(sq, dict) else nan

    print(markdown_table(head, [[r["model"], r["fit_seconds"], r["cpu_seconds"], q(r, "fid"),
                                 q(r, "kid"), q(r, "precision"), q(r, "recall"), q(r, "modes"),
                                 q(r, "inception_score"), r.get("mmd2", nan),
                                 r.get("modes", 0), r.get("nn_train", nan)] for r in rows]))
    print(f"test digits: {test_desc}, first {args.n_samples}")
    write_json(args.json, {"machine": info, "args": vars(args) | {"json": str(args.json),
                                                                  "grid": str(args.grid)},
                           "rows": rows})


if __name__ == "__main__":
    main()
