"""Reconstruction at 30 dimensions: PCA-30 against the deep (stacked) autoencoder.

Protocol (issue 3): train on ``mnist5k`` (5,000 MNIST training digits, pixels in [0, 1]); test on
the MNIST test set (10,000 digits, ``../shared/data/mnist``); report the sum of squared errors
per test image between each image and its reconstruction from a 30-dimensional code.

* PCA-30: ``unsup.decomposition.PCA(30)`` (and scikit-learn's PCA for reference; about 14.1).
* ``StackedAutoencoder(layer_sizes=[1000, 500, 250, 30])`` with its *default* training
  (greedy layer-wise pre-training, then fine-tuning). Target: SSE <= 7.0 (half of PCA's).
  Hinton & Salakhutdinov (2006) report 3.00 (deep AE) vs 13.87 (PCA) with 60,000 images.

Usage::

    python -m bench.bench_autoencoders                 # full protocol
    python -m bench.bench_autoencoders --quick         # smoke run (numbers not meaningful)
    python -m bench.bench_autoencoders --threads 2 --json results/autoencoders.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import apply_threads, machine_info, machine_markdown, write_json


def sse(R: np.ndarray, X: np.ndarray) -> float:
    return float(((np.asarray(R, dtype=np.float64) - X) ** 2).sum(1).mean())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    from sklearn.decomposition import PCA as SkPCA

    from unsup.autoencoders import StackedAutoencoder
    from unsup.data import load
    from unsup.decomposition import PCA

    X = load("mnist5k").X
    T = load("mnist-test").X
    kw: dict[str, Any] = {}
    if args.quick:
        X, T = X[::5], T[:1000]
        kw = dict(pretrain_epochs=1, epochs=1)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    pca = PCA(30, random_state=args.seed).fit(X)
    rows.append({"model": "unsup PCA-30", "test_sse": sse(pca.reconstruct(T), T),
                 "train_sse": sse(pca.reconstruct(X), X), "fit_s": time.perf_counter() - t0})
    t0 = time.perf_counter()
    sk = SkPCA(30, random_state=args.seed).fit(X)
    rows.append({"model": "scikit-learn PCA-30",
                 "test_sse": sse(sk.inverse_transform(sk.transform(T)), T),
                 "train_sse": sse(sk.inverse_transform(sk.transform(X)), X),
                 "fit_s": time.perf_counter() - t0})
    t0 = time.perf_counter()
    sae = StackedAutoencoder([1000, 500, 250, 30], random_state=args.seed, **kw).fit(X)
    rows.append({"model": "StackedAutoencoder([1000, 500, 250, 30]) defaults",
                 "test_sse": sse(sae.reconstruct(T), T), "train_sse": sse(sae.reconstruct(X), X),
                 "fit_s": time.perf_counter() - t0})
    res = {"rows": rows, "quick": args.quick, "threads": args.threads, "seed": args.seed,
           "params": {k: v for k, v in sae.get_params().items()},
           "target_sse": 7.0, "met": rows[-1]["test_sse"] <= 7.0, "machine": machine_info()}
    print(machine_markdown(res["machine"]))
    print("| model | test SSE / image | train SSE / image | fit time (s) |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['test_sse']:.2f} | {r['train_sse']:.2f} | {r['fit_s']:.1f} |")
    print(f"\ntarget: stacked AE test SSE <= 7.0: {'met' if res['met'] else 'NOT met'}")
    write_json(args.json, res)
    return res


if __name__ == "__main__":
    main()
