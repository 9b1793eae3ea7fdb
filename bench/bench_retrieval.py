"""Retrieval benchmark: semantic hashing codes against LSH, PCA sign bits, PCA-ITQ, PCA and
raw pixels (issue 15 §3, §6).

Database: mnist5k (5,000 digits, labels); queries: the MNIST test set (10,000 digits); an item
is relevant to a query when it has the same digit label. For every representation:
mAP over the whole ranking, precision@100, precision within Hamming radius 2 (binary codes),
and the search time per query (exhaustive ranking for the 100 nearest; Hamming-ball lookup of
radius 2 in the address table for binary codes of <= 64 bits). Ties in Hamming distance are
broken by a fixed permutation of the database (seed 0): mnist5k is sorted by label.

No labelled text corpus ships with unsup (shakespeare and lee have no labels, and scikit-learn's
20 newsgroups downloads), so there is no text benchmark.

    python bench/bench_retrieval.py --threads 1 --bits 16,32,64 --ablation-bits 32 \
        --epochs 30 --pretrain-epochs 5 --json /tmp/retrieval.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    apply_threads,
    int_list,
    machine_info,
    machine_markdown,
    markdown_table,
    write_json,
)
from unsup.autoencoders.semantic_hashing import SemanticHashing  # noqa: E402
from unsup.data import load  # noqa: E402
from unsup.metrics.retrieval import HammingIndex, nearest, retrieval_scores  # noqa: E402


# -- baselines: each ~10 lines --------------------------------------------------------------
def lsh_codes(Xd: np.ndarray, Xq: np.ndarray, n_bits: int, seed: int = 0):
    """Random-hyperplane LSH (Charikar 2002): sign bits of Gaussian projections of the
    centred data."""
    W = np.random.default_rng(seed).normal(size=(Xd.shape[1], n_bits))
    mu = Xd.mean(0)
    return ((Xd - mu) @ W > 0).astype(np.uint8), ((Xq - mu) @ W > 0).astype(np.uint8)


def pca_fit(Xd: np.ndarray, k: int):
    mu = Xd.mean(0)
    _, _, Vt = np.linalg.svd(Xd - mu, full_matrices=False)
    return mu, Vt[:k].T


def pca_sign_codes(Xd: np.ndarray, Xq: np.ndarray, n_bits: int):
    """Sign bits of the top ``n_bits`` principal components."""
    mu, V = pca_fit(Xd, n_bits)
    return ((Xd - mu) @ V > 0).astype(np.uint8), ((Xq - mu) @ V > 0).astype(np.uint8)


def itq_codes(Xd: np.ndarray, Xq: np.ndarray, n_bits: int, n_iter: int = 50, seed: int = 0):
    """PCA-ITQ (Gong & Lazebnik 2011): rotate the PCA projections to minimise the
    quantisation error ||B - V R||_F by alternating B = sign(V R) and an orthogonal Procrustes
    step for R."""
    mu, P = pca_fit(Xd, n_bits)
    V = (Xd - mu) @ P
    R, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n_bits, n_bits)))
    for _ in range(n_iter):
        B = np.where(V @ R >= 0, 1.0, -1.0)
        U, _, Wt = np.linalg.svd(B.T @ V)
        R = (U @ Wt).T
    return ((V @ R) >= 0).astype(np.uint8), (((Xq - mu) @ P @ R) >= 0).astype(np.uint8)


def pca_real(Xd: np.ndarray, Xq: np.ndarray, k: int):
    mu, V = pca_fit(Xd, k)
    return ((Xd - mu) @ V).astype(np.float32), ((Xq - mu) @ V).astype(np.float32)


# -- measuring -------------------------------------------------------------------------------
def measure(name: str, bits: Any, D: np.ndarray, Q: np.ndarray, yd: np.ndarray,
            yq: np.ndarray, metric: str, fit_s: float) -> dict[str, Any]:
    r = retrieval_scores(Q, yq, D, yd, metric=metric, k=(100,), radius=2, ties=0)
    row: dict[str, Any] = {"representation": name, "code": bits, "metric": metric,
                           "map": r["map"], "precision@100": r["precision@100"],
                           "precision@r2": r.get("precision@r2"),
                           "success@r2": r.get("success@r2"), "fit_s": fit_s,
                           "score_ms_per_query": r["ms_per_query"],
                           "pr_curve": r["pr_curve"]}
    t = time.perf_counter()
    if metric == "hamming":
        index = HammingIndex(D)
        index.kneighbors(Q, 100)
        row["rank100_ms_per_query"] = 1e3 * (time.perf_counter() - t) / len(Q)
        t = time.perf_counter()
        method = "table" if D.shape[1] <= 64 else "scan"
        index.radius_search(Q, 2, method=method)
        row["ball_r2_ms_per_query"] = 1e3 * (time.perf_counter() - t) / len(Q)
        row["ball_method"] = method
    else:
        nearest(Q, D, 100, metric=metric)
        row["rank100_ms_per_query"] = 1e3 * (time.perf_counter() - t) / len(Q)
    print(f"  {name:28s} {str(bits):>5s} {metric:9s} mAP {row['map']:.4f}  "
          f"P@100 {row['precision@100']:.4f}  rank {row['rank100_ms_per_query']:.3f} ms/q",
          flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", type=int_list, default=[16, 32, 64])
    p.add_argument("--hidden", type=int_list, default=None,
                   help="hidden layers of the semantic hashing encoder (default: the class's)")
    p.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs")
    p.add_argument("--pretrain-epochs", type=int, default=None, help="pre-training epochs/layer")
    p.add_argument("--code-noise", type=float, default=None, help="code noise s")
    p.add_argument("--ablation-bits", type=int_list, default=[32],
                   help="code lengths at which a no-noise model (code_noise=0) is also trained")
    p.add_argument("--activation", default=None, help="hidden units of semantic hashing")
    p.add_argument("--fine-tune-noise", type=float, default=None,
                   help="input masking noise of semantic hashing's fine-tuning")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="fine-tuning learning rate of semantic hashing")
    p.add_argument("--validation", action="store_true",
                   help="model selection: 1,000 random mnist5k digits (seed 12345) as queries "
                        "against the other 4,000 as the database; the MNIST test set unused")
    p.add_argument("--no-baselines", action="store_true",
                   help="only the semantic hashing models (another configuration)")
    p.add_argument("--queries", type=int, default=None, help="use the first N test digits")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    apply_threads(a.threads)
    machine = machine_info()
    train = load("mnist5k")
    Xd, yd = np.asarray(train.X, np.float32), np.asarray(train.y)
    if a.validation:
        perm = np.random.default_rng(12345).permutation(len(Xd))
        Xq, yq, Xd, yd = Xd[perm[:1000]], yd[perm[:1000]], Xd[perm[1000:]], yd[perm[1000:]]
    else:
        test = load("mnist-test")
        Xq, yq = np.asarray(test.X, np.float32), np.asarray(test.y)
    if a.queries:
        Xq, yq = Xq[:a.queries], yq[:a.queries]
    print(f"database {Xd.shape}, queries {Xq.shape}, threads {a.threads}", flush=True)
    rows = [] if a.no_baselines else [
        measure("raw pixels", 784, Xd, Xq, yd, yq, "euclidean", 0.0),
        measure("raw pixels", 784, Xd, Xq, yd, yq, "cosine", 0.0)]
    for b in a.bits:
        for name, fn in (() if a.no_baselines else (
                ("LSH (random hyperplanes)", lsh_codes), ("PCA sign bits", pca_sign_codes),
                ("PCA-ITQ", itq_codes))):
            t = time.perf_counter()
            D, Q = fn(Xd, Xq, b)
            rows.append(measure(name, b, D, Q, yd, yq, "hamming", time.perf_counter() - t))
        if not a.no_baselines:
            t = time.perf_counter()
            D, Q = pca_real(Xd, Xq, b)
            rows.append(measure("PCA (real-valued)", b, D, Q, yd, yq, "euclidean",
                                time.perf_counter() - t))
        given = {"hidden_layer_sizes": None if a.hidden is None else tuple(a.hidden),
                 "activation": a.activation, "epochs": a.epochs,
                 "pretrain_epochs": a.pretrain_epochs, "fine_tune_noise": a.fine_tune_noise,
                 "learning_rate": a.learning_rate}
        given = {k: v for k, v in given.items() if v is not None}
        base = SemanticHashing(b, random_state=a.seed, **given)
        if a.code_noise is not None:
            base.set_params(code_noise=a.code_noise)
        for s in [base.code_noise] + ([0.0] if b in a.ablation_bits else []):
            model = SemanticHashing(**{**base.get_params(), "code_noise": s})
            t, c = time.perf_counter(), time.process_time()
            model.fit(Xd)
            fit_s, fit_cpu = time.perf_counter() - t, time.process_time() - c
            t = time.perf_counter()
            D, Q = model.transform(Xd), model.transform(Xq)
            enc = time.perf_counter() - t
            p_ = model.code_probabilities(Xq)
            label = f"semantic hashing (noise {s:g}" + "".join(
                f", {k}={v}" for k, v in given.items()) + ")"
            row = measure(label, b, D, Q, yd, yq, "hamming", fit_s)
            row["encode_ms_per_query"] = 1e3 * enc / (len(Xd) + len(Xq))
            row["near_binary"] = float(((p_ < 0.05) | (p_ > 0.95)).mean())
            row["fit_cpu_s"] = fit_cpu
            usage = D.mean(0)
            row["constant_bits"] = int(((usage < 0.05) | (usage > 0.95)).sum())
            rows.append(row)
    headers = ["representation", "bits/dims", "distance", "mAP", "P@100", "P@r≤2",
               "success r≤2", "rank top-100 ms/query", "ball r=2 ms/query", "fit s", "fit CPU s"]
    table = markdown_table(headers, [
        [r["representation"], str(r["code"]), r["metric"], r["map"], r["precision@100"],
         "-" if r["precision@r2"] is None else r["precision@r2"],
         "-" if r["success@r2"] is None else r["success@r2"], r["rank100_ms_per_query"],
         r.get("ball_r2_ms_per_query", "-"), r["fit_s"], r.get("fit_cpu_s", "-")] for r in rows])
    print()
    print(machine_markdown(machine))
    print()
    print(table)
    near = [(r["code"], r["representation"], r["near_binary"]) for r in rows if "near_binary" in r]
    for b, n, v in near:
        print(f"- {n}, {b} bits: {100 * v:.1f}% of query code activations within 0.05 of 0 "
              f"or 1")
    for r in rows:
        if "constant_bits" in r:
            print(f"- {r['representation']}, {r['code']} bits: {r['constant_bits']} bits "
                  f"constant (on for < 5% or > 95% of the database)")
    args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}
    write_json(a.json, {"machine": machine, "args": args, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
