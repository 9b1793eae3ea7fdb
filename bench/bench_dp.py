"""Dirichlet-process mixture: does it find K? Against scikit-learn's truncated variational DP.

Synthetic Gaussian mixtures with known K (well separated, unit within-cluster variance, random
cluster sizes), several seeds: the posterior mode of K from :class:`DirichletProcessMixture`
(collapsed Gibbs with split-merge moves) and from :class:`VariationalDPMixture` (truncated
stick-breaking VI, T = 2K + 5, the same truncation as the peer's), the number of clusters
scikit-learn's
``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process",
covariance_type="diag", n_components=2K+5)`` uses (weight > 1%), the ARI of each against the truth,
and wall time.

    python -m bench.bench_dp --ks 2 5 10 20 --ds 2 10 50 --seeds 3 --n-per 50
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

from unsup.cluster import DirichletProcessMixture, VariationalDPMixture


def mixture(K: int, D: int, n_per: int, seed: int, sep: float = 6.0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(n_per // 2, 2 * n_per, K)
    centres = rng.normal(scale=sep, size=(K, D))
    y = np.repeat(np.arange(K), sizes)
    return centres[y] + rng.normal(size=(len(y), D)), y


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ks", type=int, nargs="+", default=[2, 5, 10, 20])
    p.add_argument("--ds", type=int, nargs="+", default=[2, 10, 50])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--n-per", type=int, default=50)
    p.add_argument("--sweeps", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print("| K | D | seed | N | Gibbs: mode K | Gibbs ARI | Gibbs s | VI: mode K | VI ARI | VI s "
          "| sklearn K | sklearn ARI | sklearn s |\n|---|---|---|---|---|---|---|---|---|---|---|"
          "---|---|")
    hits = sk_hits = wins = total = vi_hits = vi_wins = 0
    for K in a.ks:
        for D in a.ds:
            for seed in range(a.seeds):
                X, y = mixture(K, D, a.n_per, seed)
                t = time.perf_counter()
                dp = DirichletProcessMixture(n_sweeps=a.sweeps, random_state=seed).fit(X)
                t_ours = time.perf_counter() - t
                mode = int(np.argmax(dp.k_posterior_))
                ari = adjusted_rand_score(y, dp.labels_)
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    vi = VariationalDPMixture(2 * K + 5, max_iter=500,
                                              random_state=seed).fit(X)
                t_vi = time.perf_counter() - t
                vi_mode = int(np.argmax(vi.k_posterior_))
                vi_ari = adjusted_rand_score(y, vi.labels_)
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    bg = BayesianGaussianMixture(
                        n_components=2 * K + 5, covariance_type="diag", max_iter=500,
                        weight_concentration_prior_type="dirichlet_process",
                        random_state=seed).fit(X)
                t_sk = time.perf_counter() - t
                sk_k = int((bg.weights_ > 0.01).sum())
                sk_ari = adjusted_rand_score(y, bg.predict(X))
                hits += mode == K
                sk_hits += sk_k == K
                wins += ari >= sk_ari - 1e-9
                vi_hits += vi_mode == K
                vi_wins += vi_ari >= sk_ari - 1e-9
                total += 1
                print(f"| {K} | {D} | {seed} | {len(y)} | {mode} | {ari:.3f} | {t_ours:.2f} | "
                      f"{vi_mode} | {vi_ari:.3f} | {t_vi:.2f} | "
                      f"{sk_k} | {sk_ari:.3f} | {t_sk:.2f} |", flush=True)
    print(f"\nposterior mode of K = truth: Gibbs {hits}/{total}, VI {vi_hits}/{total} "
          f"(scikit-learn: {sk_hits}/{total}); ARI >= scikit-learn's: Gibbs {wins}/{total}, "
          f"VI {vi_wins}/{total}")


if __name__ == "__main__":
    main()
