"""Sparse coding and t-SNE against their peers (issue 15, §6).

**Dictionary learning** on 8x8 MNIST patches (random patches of mnist5k with some ink, each
centred): ours (``SparseCoding``, online, FISTA codes) against scikit-learn's
``MiniBatchDictionaryLearning``: 100 atoms, the same ``alpha``, batch size and number of epochs.
Both dictionaries are scored by the same objective, ``mean ½‖x - zD‖² + α‖z‖₁`` with the codes
of one solver (ours, FISTA to 1e-6), on the training patches. Target: objective within 1% of
scikit-learn's in <= 0.5x its time.

**t-SNE** on MNIST (mnist5k + the test set: 15,000 digits; PCA to 50 dimensions first, as is
usual) against openTSNE (FFT gradient) and scikit-learn (Barnes-Hut): perplexity 30, 250
early-exaggeration iterations (12) + 500, learning rates "auto", the same PCA initialisation
array for all three. Each map is scored the same way: KL(P‖Q) under one P (ours: exact 90
nearest neighbours, perplexity 30) with the exact Z over all pairs, and trustworthiness
(k = 10, :func:`unsup.metrics.trustworthiness`, equal to scikit-learn's). Targets: KL within 2%
of openTSNE's, trustworthiness within 0.01, time <= 1.0x openTSNE's.

Usage::

    python -m bench.bench_embedding --threads 2              # both parts, full size
    python -m bench.bench_embedding --quick --threads 2      # small sizes (smoke run)
    python -m bench.bench_embedding --part tsne --n-tsne 100000   # synthetic-size runs
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from bench.common import (
    Target,
    apply_threads,
    fmt,
    machine_info,
    machine_markdown,
    markdown_table,
    write_json,
)


def _patches(n: int, seed: int = 0) -> np.ndarray:
    """``n`` centred 8x8 patches of mnist5k with some ink (std > 0.1)."""
    from unsup.data import load

    imgs = load("mnist5k").X.reshape(-1, 28, 28)
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while sum(len(o) for o in out) < n:
        i = rng.integers(0, len(imgs), 4 * n)
        r, c = rng.integers(0, 21, 4 * n), rng.integers(0, 21, 4 * n)
        P = np.stack([imgs[a, b:b + 8, d:d + 8].ravel() for a, b, d in zip(i, r, c, strict=True)])
        out.append(P[P.std(1) > 0.1])
    X = np.concatenate(out)[:n].astype(np.float32)
    return X - X.mean(1, keepdims=True)


_LAST_CPU = [0.0]  # CPU seconds of the last _timed call (all threads of this process)


def _timed(fn: Any) -> tuple[float, Any]:
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    _LAST_CPU[0] = time.process_time() - c
    return time.perf_counter() - t, out


def bench_dictionary(quick: bool, repeats: int) -> dict[str, Any]:
    from sklearn.decomposition import MiniBatchDictionaryLearning

    from unsup.decomposition import SparseCoding, sparse_coding_objective, sparse_encode

    n, k, alpha, bs, epochs = (5000, 100, 0.5, 256, 2) if quick else (30000, 100, 0.5, 256, 5)
    X = _patches(n)
    ours = lambda: SparseCoding(k, alpha=alpha, batch_size=bs, max_iter=epochs,  # noqa: E731
                                random_state=0, device="cpu").fit(X)
    theirs = lambda: MiniBatchDictionaryLearning(  # noqa: E731
        k, alpha=alpha, batch_size=bs, max_iter=epochs, random_state=0, tol=0,
        max_no_improvement=None).fit(X)
    t_o, t_t = [], []
    for r in range(repeats):  # interleaved, so background load hits both alike
        for who in (("o", "t") if r % 2 == 0 else ("t", "o")):
            t, m = _timed(ours if who == "o" else theirs)
            (t_o if who == "o" else t_t).append(t)
            if who == "o":
                m_o = m
            else:
                m_t = m
    obj = {}
    for name, m in (("ours", m_o), ("scikit-learn", m_t)):
        Z = sparse_encode(X, m.components_, alpha, device="cpu")
        obj[name] = sparse_coding_objective(X, Z, m.components_, alpha)
    res = {"n_patches": n, "atoms": k, "alpha": alpha, "batch_size": bs, "epochs": epochs,
           "objective": obj, "time_ours": min(t_o), "time_sklearn": min(t_t),
           "times_ours": t_o, "times_sklearn": t_t}
    res["targets"] = [
        Target("objective ours / scikit-learn", obj["ours"] / obj["scikit-learn"], "<=", 1.01,
               "one seed").as_dict(),
        Target("time ours / scikit-learn", min(t_o) / min(t_t), "<=", 0.5,
               f"best of {repeats}").as_dict()]
    return res


def _kl_under(Y: np.ndarray, rows: torch.Tensor, cols: torch.Tensor, p: torch.Tensor) -> float:
    from unsup.manifold._gradient import kernel_sums_exact, kl_divergence

    Yt = torch.as_tensor(Y, dtype=torch.float64)
    phi0, _, _ = kernel_sums_exact(Yt, Yt)
    return kl_divergence(Yt, rows, cols, p.double(), float((phi0 - 1).sum()))


def bench_tsne(quick: bool, n_target: int | None, threads: int) -> dict[str, Any]:
    import openTSNE
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE as SkTSNE

    from unsup.data import load
    from unsup.manifold import TSNE
    from unsup.manifold._affinity import calibrate, joint_affinities, knn
    from unsup.metrics import trustworthiness

    if n_target is not None and n_target > 15000:  # the synthetic set: a 10-blob mixture
        rng = np.random.default_rng(0)
        lab = rng.integers(0, 10, n_target)
        X = (rng.normal(size=(10, 50)) * 3)[lab] + rng.normal(size=(n_target, 50))
        y, desc = lab, f"synthetic 10-blob mixture ({n_target}×50)"
    else:
        a, b = load("mnist5k"), load("mnist-test")
        X = np.concatenate([a.X, b.X]).astype(np.float32)
        y = np.concatenate([a.y, b.y])
        n = 3000 if quick else (n_target or len(X))
        X, y = X[:n], y[:n]
        desc = f"MNIST (mnist5k + test) first {n}, PCA-50"
    X = PCA(50, random_state=0).fit_transform(X).astype(np.float32)
    n = len(X)
    init = X[:, :2] / X[:, 0].std() * 1e-4  # PCA initialisation, scaled as all three do
    runs: dict[str, Any] = {}
    t, m = _timed(lambda: TSNE(perplexity=30, init=init, method="fft", random_state=0,
                               device="cpu").fit(X))
    runs["unsup"] = {"time": t, "cpu": _LAST_CPU[0], "Y": m.embedding_,
                     "own_kl": m.kl_divergence_}
    t, e = _timed(lambda: openTSNE.TSNE(perplexity=30, initialization=init, n_jobs=threads,
                                        negative_gradient_method="fft", random_state=0,
                                        n_iter=500, early_exaggeration_iter=250).fit(X))
    runs["openTSNE"] = {"time": t, "cpu": _LAST_CPU[0], "Y": np.asarray(e),
                        "own_kl": float(e.kl_divergence)}
    if n <= 20000:
        t, s = _timed(lambda: SkTSNE(perplexity=30, init=init, max_iter=750, n_jobs=threads,
                                     random_state=0).fit(X))
        runs["scikit-learn"] = {"time": t, "cpu": _LAST_CPU[0], "Y": s.embedding_,
                                "own_kl": float(s.kl_divergence_)}
    Xt = torch.as_tensor(X, dtype=torch.float64)
    D, idx = knn(Xt, 90)
    rows, cols, p = joint_affinities(calibrate(D, 30.0)[0], idx)
    for r in runs.values():
        r["kl"] = _kl_under(r["Y"], rows, cols, p)
        r["trustworthiness"] = trustworthiness(X, r["Y"], 10)
        del r["Y"]
    o, ref = runs["unsup"], runs["openTSNE"]
    res = {"data": desc, "n": n, "runs": runs, "targets": [
        Target("KL ours / openTSNE", o["kl"] / ref["kl"], "<=", 1.02, "one seed").as_dict(),
        Target("trustworthiness openTSNE - ours", ref["trustworthiness"] - o["trustworthiness"],
               "<=", 0.01, "one seed").as_dict(),
        Target("time ours / openTSNE", o["time"] / ref["time"], "<=", 1.0, "one run").as_dict()]}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("all", "dictionary", "tsne"), default="all")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="dictionary-learning fits each")
    ap.add_argument("--n-tsne", type=int, default=None,
                    help="t-SNE points (<= 15000: MNIST rows; more: a synthetic mixture)")
    ap.add_argument("--json", type=str, default=None)
    a = ap.parse_args(argv)
    apply_threads(a.threads)
    out: dict[str, Any] = {"machine": machine_info()}
    print(machine_markdown(out["machine"]))
    if a.part in ("all", "dictionary"):
        d = bench_dictionary(a.quick, a.repeats)
        out["dictionary"] = d
        print(f"\n### Dictionary learning: {d['n_patches']} 8x8 MNIST patches, {d['atoms']} "
              f"atoms, alpha={d['alpha']}, batch {d['batch_size']}, {d['epochs']} epochs\n")
        print(markdown_table(["library", "objective", "time (s, best)", "times"], [
            ["unsup", fmt(d["objective"]["ours"]), fmt(d["time_ours"], 3),
             ", ".join(f"{t:.1f}" for t in d["times_ours"])],
            ["scikit-learn", fmt(d["objective"]["scikit-learn"]), fmt(d["time_sklearn"], 3),
             ", ".join(f"{t:.1f}" for t in d["times_sklearn"])]]))
        print()
        print(markdown_table(Target.HEADERS, [_row(t) for t in d["targets"]]))
    if a.part in ("all", "tsne"):
        t = bench_tsne(a.quick, a.n_tsne, a.threads)
        out["tsne"] = t
        print(f"\n### t-SNE: {t['data']}\n")
        print(markdown_table(["library", "KL (common P)", "own KL", "trustworthiness (k=10)",
                              "time (s)", "CPU s"],
                             [[k, fmt(r["kl"]), fmt(r["own_kl"]), fmt(r["trustworthiness"]),
                               fmt(r["time"], 3), fmt(r["cpu"], 3)]
                              for k, r in t["runs"].items()]))
        print()
        print(markdown_table(Target.HEADERS, [_row(x) for x in t["targets"]]))
    if a.json:
        from pathlib import Path

        write_json(Path(a.json), out)
    return 0


def _row(t: dict[str, Any]) -> list[Any]:
    return [t["name"], fmt(t["value"]), f"{t['op']} {t['threshold']}", t["judged_on"],
            "**met**" if t["met"] else "**NOT met**"]


if __name__ == "__main__":
    raise SystemExit(main())
