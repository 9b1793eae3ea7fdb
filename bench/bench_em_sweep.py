"""EM engine speed on every data shape: KMeans and GaussianMixture against scikit-learn.

Issue 9 §6. For each point of the grid (N, D, K) × model × thread count, both libraries fit the
same data with the same ``random_state`` and the same number of initialisations, back to back
in this process (interleaved when ``--repeats`` > 1; the best time is kept), both capped at the
same number of threads (``torch.set_num_threads`` + ``threadpoolctl`` for scikit-learn's
OpenMP/BLAS), after one small untimed warm-up fit of each (thread pools, lazy imports). With
several ``--seeds`` the times are summed and the quality averaged over the seeds (each seed is
a different local optimum for both libraries: one seed is a coin toss for the quality).
Printed: a markdown table with the times, the time ratio (ours / scikit-learn) and the
quality: inertia ratio for k-means (target ≤ 1.01), mean log-likelihood shortfall
(scikit-learn − ours) / |scikit-learn| for mixtures (target ≤ 0.5%).

Models: ``kmeans`` (``KMeans(K, n_init=--kmeans-n-init)``, k-means++), ``gmm-diag`` and
``gmm-full`` (``GaussianMixture(K, n_init=1)``, k-means initialisation, default ``tol``).

Data: ``synthetic`` (the grid: a K-component Gaussian mixture in D dimensions, N rows,
float32, from :func:`bench.common.synthetic_mixture`), ``mnist`` (MNIST test, 10,000 × 784,
float32), ``mnist-pca50`` (its PCA-50, float64 as in issue 9's measurement) and
``mnist-pca50-f32`` (the same in float32). Real data use ``--k`` for K.

Usage::

    python -m bench.bench_em_sweep --n 1e4,1e5 --d 2,16,64 --k 8,64 --threads 1,2
    python -m bench.bench_em_sweep --data mnist,mnist-pca50 --k 10 --models gmm-diag,gmm-full
    python -m bench.bench_em_sweep --profile --n 1e5 --d 64 --k 64 --models kmeans --threads 1
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    comma_list,
    fmt_ratio,
    int_list,
    machine_info,
    machine_markdown,
    markdown_table,
    synthetic_mixture,
    time_pair,
    write_json,
)

MODELS = ("kmeans", "gmm-diag", "gmm-full")


def make_models(model: str, K: int, seed: int, kmeans_n_init: int) -> tuple[Any, Any]:
    """(ours, scikit-learn's), same hyper-parameters."""
    import sklearn.cluster
    import sklearn.mixture

    from unsup.cluster import GaussianMixture, KMeans

    if model == "kmeans":
        return (KMeans(K, n_init=kmeans_n_init, random_state=seed, device="cpu"),
                sklearn.cluster.KMeans(K, n_init=kmeans_n_init, random_state=seed))
    ct = model.split("-")[1]
    return (GaussianMixture(K, covariance_type=ct, random_state=seed, device="cpu"),
            sklearn.mixture.GaussianMixture(K, covariance_type=ct, random_state=seed))


def load_data(name: str, n: int, d: int, k: int) -> tuple[np.ndarray, str]:
    from bench.common import load_mnist_test, mnist_pca

    if name in ("synthetic", "synthetic-f64"):
        X, _, _ = synthetic_mixture(n, d, k)
        if name.endswith("f64"):
            return X.astype(np.float64), f"synth f64 {n}×{d}"
        return X, f"synth {n}×{d}"
    if name == "mnist":
        X, _, _ = load_mnist_test()
        return X, "MNIST test 10000×784"
    if name in ("mnist-pca50", "mnist-pca50-f32"):
        X, _, _ = mnist_pca()
        if name.endswith("f32"):
            return X.astype(np.float32), "MNIST PCA-50 (f32)"
        return X, "MNIST PCA-50 (f64)"
    raise SystemExit(f"unknown data {name!r}")


def set_threads(n: int) -> Any:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    return threadpool_limits(limits=n)


def profile_ours(model: str, X: np.ndarray, K: int, seed: int, n_init: int) -> str:
    ours, _ = make_models(model, K, seed, n_init)
    pr = cProfile.Profile()
    pr.enable()
    ours.fit(X)
    pr.disable()
    out = io.StringIO()
    pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(16)
    return out.getvalue()


def run_point(model: str, X: np.ndarray, k: int, th: int, a: argparse.Namespace
              ) -> dict[str, Any]:
    """Both libraries on one point, every seed; times summed over seeds, quality averaged."""
    lim = set_threads(th)
    try:
        for m in make_models(model, min(k, 4), 0, 1):  # warm-up, untimed
            m.fit(X[:1000])
        t_o = t_t = 0.0
        it_o, it_t, ll = [], [], []
        for seed in a.seeds:
            ours, theirs = make_models(model, k, seed, a.kmeans_n_init)
            res = time_pair(lambda o=ours: o.fit(X), lambda t=theirs: t.fit(X), a.repeats)
            t_o += res["ours"]["best"]
            t_t += res["theirs"]["best"]
            mo, mt = res["ours"]["model"], res["theirs"]["model"]
            if model == "kmeans":
                ll.append((mo.inertia_, mt.inertia_))
            else:
                ll.append((mo.score(X), mt.score(X)))
            it_o.append(mo.n_iter_)
            it_t.append(mt.n_iter_)
            if a.profile:
                print(profile_ours(model, X, k, seed, a.kmeans_n_init))
    finally:
        lim.restore_original_limits()
    o = float(np.mean([v[0] for v in ll]))
    t = float(np.mean([v[1] for v in ll]))
    if model == "kmeans":
        q, qtxt = o / t, fmt_ratio(o / t)
    else:
        q = (t - o) / abs(t)
        qtxt = f"{100 * q:+.3f}% ({o:.4g} vs {t:.4g})"
    return {"model": model, "K": k, "threads": th, "seeds": a.seeds, "ours_s": t_o,
            "sklearn_s": t_t, "ratio": t_o / t_t, "quality": q, "quality_text": qtxt,
            "per_seed": ll, "n_iter": (float(np.mean(it_o)), float(np.mean(it_t)))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int_list, default=int_list("1e4,1e5"))
    p.add_argument("--d", type=int_list, default=int_list("2,16,64"))
    p.add_argument("--k", type=int_list, default=int_list("8,64"))
    p.add_argument("--models", type=comma_list, default=list(MODELS))
    p.add_argument("--threads", type=int_list, default=[1, 2])
    p.add_argument("--data", type=comma_list, default=["synthetic"],
                   help="synthetic (float32), synthetic-f64, mnist, mnist-pca50, "
                        "mnist-pca50-f32")
    p.add_argument("--seeds", type=int_list, default=[0],
                   help="random_state values; times are summed and quality averaged over them")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--kmeans-n-init", type=int, default=3)
    p.add_argument("--max-full-d", type=int, default=64,
                   help="skip gmm-full above this D (K·D² parameters; hours per fit)")
    p.add_argument("--profile", action="store_true", help="cProfile our fit at each point")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    for m in a.models:
        if m not in MODELS:
            raise SystemExit(f"unknown model {m!r}; choose from {MODELS}")

    import sklearn.cluster  # noqa: F401  (load every OpenMP/BLAS pool before capping them)
    import sklearn.mixture  # noqa: F401
    import torch  # noqa: F401

    import unsup.cluster  # noqa: F401

    print(machine_markdown(machine_info()))
    print("command: python -m bench.bench_em_sweep " + " ".join(sys.argv[1:] if argv is None
                                                                 else argv))
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n", flush=True)
    points = []
    for data in a.data:
        grid = ([(n, d, k) for n in a.n for d in a.d for k in a.k]
                if data.startswith("synthetic") else [(0, 0, k) for k in a.k])
        for n, d, k in grid:
            X, label = load_data(data, n, d, k)
            for model in a.models:
                if model == "gmm-full" and X.shape[1] > a.max_full_d:
                    print(f"skip {model} on {label}: D > --max-full-d", flush=True)
                    continue
                for th in a.threads:
                    pt = run_point(model, X, k, th, a)
                    pt["data"] = label
                    points.append(pt)
                    print(f"{label} {model} K={k} threads={th}: ours {pt['ours_s']:.3f} s, "
                          f"sklearn {pt['sklearn_s']:.3f} s, ratio {pt['ratio']:.3f}, "
                          f"quality {pt['quality_text']}, n_iter {pt['n_iter']}", flush=True)
    print(f"\nfinished {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    rows = [[p_["data"], p_["model"], p_["K"], p_["threads"], f"{p_['ours_s']:.3f}",
             f"{p_['sklearn_s']:.3f}", fmt_ratio(p_["ratio"], 3), p_["quality_text"],
             f"{p_['n_iter'][0]:.4g} / {p_['n_iter'][1]:.4g}"] for p_ in points]
    print(markdown_table(["data", "model", "K", "threads", "ours (s)", "sklearn (s)", "ratio",
                          "quality (inertia ratio / LL shortfall)", "n_iter ours / sk"], rows))
    for model in a.models:
        rs = [p_["ratio"] for p_ in points if p_["model"] == model]
        if rs:
            print(f"\n{model}: {len(rs)} points, time ratio max {max(rs):.3f}, "
                  f"median {statistics.median(rs):.3f}")
    write_json(a.json, {"argv": sys.argv[1:], "points": points})
    return 0


if __name__ == "__main__":
    sys.exit(main())
