"""Worker for tests/test_distributed.py, launched by ``torchrun --nproc_per_node 2``.

Each rank builds the same data sets, keeps its shard (``unsup.distributed.shard``), fits
KMeans, GaussianMixture (full, diag; diag with its k-means initialisation on a
subsample) and the variational DP mixture on the points, and batch
variational LDA and pLSA on a word-count matrix, and writes the fitted parameters to
``<out>/rank<r>.npz``. The test compares them with a one-process fit on the full data.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np


def make_data() -> np.ndarray:
    """Deterministic, shared with the test: 4 overlapping blobs in 3-D, float64."""
    rng = np.random.RandomState(0)
    centers = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, 4.0, -1.0], [3.0, 3.0, 3.0]])
    X = np.concatenate([c + rng.standard_normal((150, 3)) * (0.6 + 0.2 * i)
                        for i, c in enumerate(centers)])
    return X[rng.permutation(len(X))][:599]  # odd size: shards of unequal length


def make_counts() -> np.ndarray:
    """Deterministic word counts: 61 documents, 24 words, 3 topics (odd size: unequal shards)."""
    rng = np.random.RandomState(1)
    topics = rng.dirichlet(np.full(24, 0.2), 3)
    theta = rng.dirichlet(np.full(3, 0.5), 61)
    return np.stack([rng.multinomial(40, t @ topics) for t in theta]).astype(np.float64)


def fit_all(X: np.ndarray, C: np.ndarray) -> dict[str, np.ndarray]:
    """The fits whose results must not depend on how the rows are sharded."""
    from unsup.cluster import GaussianMixture, KMeans, VariationalDPMixture
    from unsup.topics import LDA, PLSA

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
    # the k-means initialisation on a subsample (256 of the 599 rows): each rank must pick
    # the rows a one-process fit picks
    import unsup.cluster.gaussian_mixture as gmm_module

    rows, gmm_module.INIT_ROWS = gmm_module.INIT_ROWS, 200
    try:
        gm = GaussianMixture(4, covariance_type="diag", tol=1e-8, max_iter=200, random_state=0,
                             device="cpu").fit(X)
    finally:
        gmm_module.INIT_ROWS = rows
    out["gm_sub_means"] = gm.means_
    out["gm_sub_n_iter"] = np.array(gm.n_iter_)
    out["gm_sub_ll"] = np.array([h["log_likelihood"] for h in gm.history_])
    vi = VariationalDPMixture(8, tol=1e-9, max_iter=100, random_state=0, device="cpu").fit(X)
    out["vi_weights"] = vi.weights_
    out["vi_means"] = vi.means_
    out["vi_lower_bound"] = np.array(vi.lower_bound_)
    out["vi_n_iter"] = np.array(vi.n_iter_)
    out["vi_labels"] = vi.labels_
    out["vi_ll"] = np.array([h["elbo"] for h in vi.history_])
    lda = LDA(3, method="vb", max_iter=30, tol=0.0, random_state=0, device="cpu")
    with warnings.catch_warnings():  # a fixed number of iterations on purpose
        warnings.simplefilter("ignore")
        lda.fit(C)
    out["lda_components"] = lda.components_
    out["lda_ll"] = np.array([h[lda._em_objective_name] for h in lda.history_])
    # the training trace's statistics are summed over ranks too
    out["lda_trace"] = np.array([[h["perplexity"], h["umass"]] for h in lda.history_])
    plsa = PLSA(3, max_iter=30, tol=0.0, random_state=0, device="cpu")
    with warnings.catch_warnings():  # a fixed number of iterations on purpose
        warnings.simplefilter("ignore")
        plsa.fit(C)
    out["plsa_components"] = plsa.components_
    out["plsa_ll"] = np.array([h[plsa._em_objective_name] for h in plsa.history_])
    return out


def main() -> None:
    import torch.distributed as dist

    import unsup.distributed as ud

    out_dir = sys.argv[1]
    ud.init(backend="gloo")
    assert ud.is_distributed(), "the process group did not start"
    X = make_data()
    X_local = ud.shard(X)
    res = fit_all(X_local, ud.shard(make_counts()))
    res["n_local"] = np.array(len(X_local))
    res["world_size"] = np.array(ud.world_size())
    np.savez(os.path.join(out_dir, f"rank{ud.rank()}.npz"), **res)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
