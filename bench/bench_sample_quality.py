"""Sample-quality metrics: speed of FID + KID + precision/recall, the FID floor, and two models.

    python bench/bench_sample_quality.py [--threads 2] [--models rbm,vae] [--json PATH]

1. Speed: 10,000 samples (MNIST test digits with Gaussian pixel noise of std 0.1, clipped,
   standing in for a model's samples) against the 10,000 MNIST test digits, in the shipped
   digit network's feature space: features, FID, KID (100 subsets of 1,000) and
   precision/recall (k=3), timed cold (reference features computed) and warm (reference
   statistics cached). Target: under 30 s on a 2-core CPU.
2. Floor: what real data scores. MNIST test (10,000) against mnist5k (5,000 training digits),
   and 1,000 test digits against mnist5k (the report's sample size); grey and binarised at 0.5.
3. Models trained briefly on mnist5k, 10,000 samples each against the MNIST test set: a binary
   RBM (PCD, 100 hidden units, pixels binarised at 0.5; samples compared with the binarised
   test set) and a VAE (20-dim code, decoder means compared with the grey test set).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import apply_threads, machine_info, machine_markdown  # noqa: E402


def _row(name: str, q: dict, extra: str = "") -> str:
    return (f"| {name} | {q['n_samples']} | {q['n_reference']} | {q['fid']:.3f} | "
            f"{q['kid']:.5f} ± {q['kid_std']:.5f} | {q['precision']:.3f} | {q['recall']:.3f} | "
            f"{q.get('inception_score', float('nan')):.3f} | {q.get('modes', '-')} | "
            f"{q.get('kl_uniform', float('nan')):.4f} |{extra}")


HEADER = ("| samples | n | reference n | FID | KID ± std (100 subsets) | precision | recall | "
          "IS | modes | KL(uniform) |\n|---|---|---|---|---|---|---|---|---|---|")


def speed(test: np.ndarray, results: dict) -> None:
    from unsup.metrics import sample_quality as sq

    rng = np.random.default_rng(0)
    S = np.clip(test + 0.1 * rng.normal(size=test.shape).astype(np.float32), 0, 1)
    sq._MEMORY.clear()
    t: dict = {}

    def timed(name, fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        t[name] = (time.perf_counter() - w, time.process_time() - c)
        return out

    q = timed("cold: sample_quality (reference features computed)",
              lambda: sq.sample_quality(S, test, random_state=0))
    timed("warm: sample_quality (reference cached)",
          lambda: sq.sample_quality(S, test, random_state=0))
    F = timed("features of 10,000 samples (digit net)", lambda: sq.extract_features(S))
    ref = sq.reference_statistics(test)

    def fid():
        a = sq._stats(F)
        return sq.frechet_distance(a["mu"], a["sigma"], ref["mu"], ref["sigma"])

    timed("FID from features", fid)
    timed("KID, 100 subsets of 1,000", lambda: sq.kernel_inception_distance(F, ref["features"]))
    timed("precision/recall, k=3", lambda: sq.precision_recall(F, ref["features"]))
    results["speed_seconds"] = t
    results["speed_quality"] = q
    print("\n## Speed (10,000 samples vs 10,000 reference digits)\n")
    print("| step | wall s | CPU s (process, all threads) |\n|---|---|---|")
    for k, (w, c) in t.items():
        print(f"| {k} | {w:.2f} | {c:.2f} |")


def floor(test: np.ndarray, train: np.ndarray, results: dict) -> None:
    from unsup.metrics import sample_quality as sq

    print("\n## Floor: real digits against mnist5k\n")
    print(HEADER)
    rows = {}
    for tag, t, r in (("grey", test, train),
                      ("binarised 0.5", (test > 0.5).astype(np.float32),
                       (train > 0.5).astype(np.float32))):
        for n in (10000, 1000):
            q = sq.sample_quality(t[:n], r, random_state=0)
            rows[f"{tag} test[:{n}]"] = q
            print(_row(f"MNIST test[:{n}] ({tag})", q))
    results["floor"] = rows


def models(names: list[str], test: np.ndarray, train: np.ndarray, results: dict) -> None:
    from unsup.metrics import sample_quality as sq

    print("\n## Models trained briefly on mnist5k (10,000 samples vs MNIST test)\n")
    head, rule = HEADER.split("\n")
    print(f"{head} fit s | sample s |\n{rule}---|---|")
    out = {}
    for name in names:
        t0 = time.perf_counter()
        if name == "rbm":
            from unsup.energy import BernoulliRBM

            m = BernoulliRBM(n_components=100, persistent=True, binarize_input=0.5,
                             n_updates=3000, random_state=0).fit(train)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            S = m.sample(10000, burn_in=500, thinning=5, n_chains=500, random_state=0)
            ref, what = (test > 0.5).astype(np.float32), "PCD, 3000 updates; vs binarised test"
        elif name == "vae":
            from unsup.latent import VAE

            m = VAE(n_components=20, epochs=30, early_stopping=False, random_state=0).fit(train)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            S, ref, what = m.sample(10000, random_state=0, mean=True), test, \
                "30 epochs, decoder means; vs grey test"
        else:
            raise SystemExit(f"unknown model {name}")
        samp_s = time.perf_counter() - t0
        q = sq.sample_quality(np.asarray(S, np.float32), ref, random_state=0)
        out[name] = {**q, "fit_seconds": fit_s, "sample_seconds": samp_s, "setup": what}
        print(_row(f"{name} ({what})", q, f" {fit_s:.0f} | {samp_s:.0f} |"))
    results["models"] = out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="rbm,vae", help="comma list, or 'none'")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    apply_threads(args.threads)
    from unsup.data import load
    from unsup.metrics._feature_net import WEIGHTS_SHA256

    test, train = load("mnist-test").X, load("mnist5k").X
    results: dict = {"machine": machine_info(), "threads": args.threads,
                     "weights_sha256": WEIGHTS_SHA256}
    print(machine_markdown(results["machine"]))
    speed(test, results)
    floor(test, train, results)
    if args.models != "none":
        models([m for m in args.models.split(",") if m], test, train, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
