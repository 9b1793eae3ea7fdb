"""Worker for tests/test_distributed.py, launched by ``torchrun --nproc_per_node 2``.

Each rank builds the same data set, keeps its shard (``unsup.distributed.shard``), fits
KMeans and GaussianMixture (full, diag) on it and writes the fitted parameters to
``<out>/rank<r>.npz``. The test compares them with a one-process fit on the full data.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def make_data() -> np.ndarray:
    """Deterministic, shared with the test: 4 overlapping blobs in 3-D, float64."""
    rng = np.random.RandomState(0)
    centers = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, 4.0, -1.0], [3.0, 3.0, 3.0]])
    X = np.concatenate([c + rng.standard_normal((150, 3)) * (0.6 + 0.2 * i)
                        for i, c in enumerate(centers)])
    return X[rng.permutation(len(X))][:599]  # odd size: shards of unequal length


def fit_all(X: np.ndarray) -> dict[str, np.ndarray]:
    """The fits whose results must not depend on how the rows are sharded."""
    from unsup.cluster import GaussianMixture, KMeans

    out: dict[str, np.ndarray] = {}
    km = KMeans(4, n_init=3, random_state=0, device="cpu").fit(X)
    out["km_centers"] = km.cluster_centers_
    out["km_inertia"] = np.array(km.inertia_)
    out["km_n_iter"] = np.array(km.n_iter_)
    out["km_labels"] = km.labels_
    for ct in ("full", "diag"):
        gm = GaussianMixture(4, covariance_type=ct, tol=1e-8, max_iter=200, random_state=0,
                             device="cpu").fit(X)
        out[f"gm_{ct}_weights"] = gm.weights_
        out[f"gm_{ct}_means"] = gm.means_
        out[f"gm_{ct}_cov"] = gm.covariances_
        out[f"gm_{ct}_lower_bound"] = np.array(gm.lower_bound_)
        out[f"gm_{ct}_n_iter"] = np.array(gm.n_iter_)
        out[f"gm_{ct}_ll"] = np.array([h["log_likelihood"] for h in gm.history_])
    return out


def main() -> None:
    import torch.distributed as dist

    import unsup.distributed as ud

    out_dir = sys.argv[1]
    ud.init(backend="gloo")
    assert ud.is_distributed(), "the process group did not start"
    X = make_data()
    X_local = ud.shard(X)
    res = fit_all(X_local)
    res["n_local"] = np.array(len(X_local))
    res["world_size"] = np.array(ud.world_size())
    np.savez(os.path.join(out_dir, f"rank{ud.rank()}.npz"), **res)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
