"""Dirichlet-process mixture: does it find K? Against scikit-learn's truncated variational DP.

Synthetic Gaussian mixtures with known K (well separated, unit within-cluster variance, random
cluster sizes), several seeds: the posterior mode of K from :class:`DirichletProcessMixture`
(collapsed Gibbs with split-merge moves) and from :class:`VariationalDPMixture` (truncated
stick-breaking VI, T = 2K + 5, the same truncation as the peer's), the number of clusters
scikit-learn's
``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process",
covariance_type="diag", n_components=2K+5)`` uses (weight > 1%), the ARI of each against the truth,
and wall time and CPU time (time.process_time) of each fit.

    python -m bench.bench_dp --ks 2 5 10 20 --ds 2 10 50 --seeds 2 --sweeps 30

``--seed-start 10`` runs other seeds (10, 11, ...) than the published ones, to tune defaults on
data the table does not use; ``--gibbs KEY=VALUE ...`` passes parameters to the Gibbs sampler
(``--gibbs n_split_merge=5 learn_variance_prior=False alpha_prior_shape=1.0``);
``--no-peers`` skips VI and scikit-learn.
"""

from __future__ import annotations

import argparse
import ast
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
    p.add_argument("--sweeps", type=int, default=None,
                   help="Gibbs sweeps (default: the estimator's default)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--gibbs", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-peers", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    kw = {k: _value(v) for k, v in (item.split("=", 1) for item in a.gibbs)}
    if "n_sweeps" not in kw and a.sweeps is not None:
        kw["n_sweeps"] = a.sweeps
    print(f"Gibbs: DirichletProcessMixture({', '.join(f'{k}={v!r}' for k, v in kw.items())})")
    print("| K | D | seed | N | Gibbs: mode K | Gibbs ARI | Gibbs s (CPU s) | VI: mode K | VI ARI "
          "| VI s (CPU s) | sklearn K | sklearn ARI | sklearn s (CPU s) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    hits = sk_hits = wins = total = vi_hits = vi_wins = 0
    nan = float("nan")
    for K in a.ks:
        for D in a.ds:
            for seed in range(a.seed_start, a.seed_start + a.seeds):
                X, y = mixture(K, D, a.n_per, seed)
                with _Clock() as c_ours:
                    dp = DirichletProcessMixture(random_state=seed, **kw).fit(X)
                mode = int(np.argmax(dp.k_posterior_))
                ari = adjusted_rand_score(y, dp.labels_)
                vi_mode, vi_ari, sk_k, sk_ari = -1, nan, -1, nan
                c_vi = c_sk = _Clock()
                if not a.no_peers:
                    with warnings.catch_warnings(), _Clock() as c_vi:
                        warnings.simplefilter("ignore")
                        vi = VariationalDPMixture(2 * K + 5, max_iter=500,
                                                  random_state=seed).fit(X)
                    vi_mode = int(np.argmax(vi.k_posterior_))
                    vi_ari = adjusted_rand_score(y, vi.labels_)
                    with warnings.catch_warnings(), _Clock() as c_sk:
                        warnings.simplefilter("ignore")
                        bg = BayesianGaussianMixture(
                            n_components=2 * K + 5, covariance_type="diag", max_iter=500,
                            weight_concentration_prior_type="dirichlet_process",
                            random_state=seed).fit(X)
                    sk_k = int((bg.weights_ > 0.01).sum())
                    sk_ari = adjusted_rand_score(y, bg.predict(X))
                hits += mode == K
                sk_hits += sk_k == K
                wins += ari >= sk_ari - 1e-9
                vi_hits += vi_mode == K
                vi_wins += vi_ari >= sk_ari - 1e-9
                total += 1
                print(f"| {K} | {D} | {seed} | {len(y)} | {mode} | {ari:.3f} | {c_ours} | "
                      f"{vi_mode} | {vi_ari:.3f} | {c_vi} | "
                      f"{sk_k} | {sk_ari:.3f} | {c_sk} |", flush=True)
    print(f"\nposterior mode of K = truth: Gibbs {hits}/{total}, VI {vi_hits}/{total} "
          f"(scikit-learn: {sk_hits}/{total}); ARI >= scikit-learn's: Gibbs {wins}/{total}, "
          f"VI {vi_wins}/{total}")


class _Clock:
    """Wall and CPU seconds (time.process_time) of a ``with`` block: "wall (cpu)"."""

    wall = cpu = float("nan")

    def __enter__(self) -> _Clock:
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t
        self.cpu = time.process_time() - self._c

    def __str__(self) -> str:
        return f"{self.wall:.2f} ({self.cpu:.2f})"


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a string such as "gamma"


if __name__ == "__main__":
    main()
