"""Cost of checkpoints in the EM and MCMC engines: the same fit with and without checkpoint_dir.

    python bench/bench_checkpoint_overhead.py [--repeats 3]

Fits on mnist5k (5,000 MNIST digits, 784 features; the CLI's default data): KMeans (K=10,
n_init=3), a diagonal GaussianMixture on 50 PCA components (K=10), a BernoulliRBM (PCD, 128
hidden units, 2,000 updates); each once without checkpoints, once with the CLI's default
(``checkpoint_every=None``: every EM iteration, once per pass over the data for the RBM) and,
for EM, with ``checkpoint_every=10``. Reports the median wall time of ``--repeats`` runs, one
thread, and checks that every variant gives the identical model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch

from unsup.cluster import GaussianMixture, KMeans
from unsup.data import datasets
from unsup.energy import BernoulliRBM


def _time(make, X, repeats: int) -> tuple[float, object]:
    times, est = [], None
    for _ in range(repeats):
        est = make()
        t = time.perf_counter()
        est.fit(X)
        times.append(time.perf_counter() - t)
    return statistics.median(times), est


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    X = datasets.load("mnist5k").X.astype(np.float32)
    from sklearn.decomposition import PCA

    Xp = PCA(50, random_state=0).fit_transform(X).astype(np.float32)
    Xb = (X > 0.5).astype(np.float32)
    cases = [
        ("KMeans K=10 n_init=3", KMeans, dict(n_clusters=10, n_init=3, random_state=0), X,
         "cluster_centers_", (None, 10)),
        ("GMM diag K=10 PCA-50", GaussianMixture,
         dict(n_components=10, covariance_type="diag", max_iter=100, random_state=0), Xp,
         "means_", (None, 10)),
        ("RBM PCD H=128 2000 updates", BernoulliRBM,
         dict(n_components=128, persistent=True, n_updates=2000, random_state=0), Xb,
         "components_", (None,)),
    ]
    print("| fit | checkpoint_every | wall s (median) | overhead | same model |")
    print("| --- | --- | --- | --- | --- |")
    for name, cls, kw, data, attr, everies in cases:
        base, ref = _time(lambda: cls(**kw), data, args.repeats)  # noqa: B023
        print(f"| {name} | no checkpoints | {base:.2f} | | |")
        for every in everies:
            with tempfile.TemporaryDirectory() as d:
                t, est = _time(lambda: cls(**kw, checkpoint_dir=d,  # noqa: B023
                                           checkpoint_every=every), data, args.repeats)  # noqa: B023
            same = np.array_equal(getattr(est, attr), getattr(ref, attr))
            label = "None (default)" if every is None else str(every)
            print(f"| {name} | {label} | {t:.2f} | {100 * (t / base - 1):+.0f}% | {same} |")


if __name__ == "__main__":
    main()
