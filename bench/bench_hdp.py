"""HDP against tomotopy's HDPModel: topics found, held-out likelihood, NPMI and time.

    python -m bench.bench_hdp --sweeps 100 300 --seeds 0 1 2

Two corpora: a synthetic one with 4 topics on disjoint vocabularies (the truth is known), and
Tiny Shakespeare's speeches (``unsup.data.load("shakespeare")``, 10% of the documents held out,
seed 0). Same hyper-parameters for both libraries (α, γ, η, initial topics, sweeps). Held-out
measure: document completion (:func:`unsup.topics.completion_log_likelihood`) with each model's
topics in use and the prior α × (each topic's share of the training tokens), the same rule for
both (tomotopy does not expose its global weights β).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unsup.data import load
from unsup.metrics.topics import coherence
from unsup.topics import HDP, completion_log_likelihood


def synthetic(seed=0, K=4, V=40, D=120, length=50):
    rng = np.random.default_rng(seed)
    block = V // K
    topics = np.zeros((K, V))
    for k in range(K):
        topics[k, k * block:(k + 1) * block] = rng.dirichlet(np.ones(block))
    return np.array([rng.multinomial(length, rng.dirichlet(np.full(K, 0.3)) @ topics)
                     for _ in range(D)])


def _split(X, frac=0.1, seed=0):
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    k = int(X.shape[0] * frac)
    return X[np.sort(perm[k:])], X[np.sort(perm[:k])]


def ours(X, a, g, eta, sweeps, seed):
    t = time.perf_counter()
    m = HDP(a, gamma=g, eta=eta, n_sweeps=sweeps, random_state=seed).fit(X)
    s = time.perf_counter() - t
    share = m.doc_topic_.sum(0) if m.n_topics_ else np.ones(1)
    return s, int(np.argmax(m.k_posterior_)), m._topics(), a * share / share.sum()


def tomotopy(X, a, g, eta, sweeps, seed):
    import tomotopy as tp

    t = time.perf_counter()
    mdl = tp.HDPModel(alpha=a, gamma=g, eta=eta, initial_k=1, seed=seed)
    for row in (X.toarray() if hasattr(X, "toarray") else X):
        words = np.repeat(np.arange(len(row)), np.rint(row).astype(int))
        if len(words):
            mdl.add_doc([f"w{j}" for j in words])
    trace = []
    for _ in range(sweeps):
        mdl.train(1, workers=1)
        trace.append(mdl.live_k)
    s = time.perf_counter() - t
    cols = np.array([int(w[1:]) for w in mdl.used_vocabs])
    live = [k for k in range(mdl.k) if mdl.is_live_topic(k)]
    phi = np.full((len(live), X.shape[1]), 1e-12)
    for i, k in enumerate(live):
        phi[i, cols] = mdl.get_topic_word_dist(k)
    counts = np.asarray(mdl.get_count_by_topics(), dtype=float)[live]
    return s, int(np.bincount(trace[sweeps // 2:]).argmax()), phi, a * counts / counts.sum()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweeps", type=int, nargs="+", default=[100, 300])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--eta", type=float, default=0.1)
    a = p.parse_args()
    corpora = {"synthetic (4 topics)": _split(synthetic()), "shakespeare": _split(load(
        "shakespeare").X)}
    print("| corpus | library | sweeps | seed | s | K (posterior mode) | held-out nats/word "
          "| NPMI |\n|---|---|---|---|---|---|---|---|")
    for name, (train, test) in corpora.items():
        for sweeps in a.sweeps:
            for seed in a.seeds:
                for lib, fn in (("unsup", ours), ("tomotopy", tomotopy)):
                    s, k, phi, prior = fn(train, a.alpha, a.gamma, a.eta, sweeps, seed)
                    lk = completion_log_likelihood(phi, prior, test)
                    npmi = (coherence(phi, test, measure="npmi", window=None)
                            if len(phi) > 1 else float("nan"))
                    print(f"| {name} | {lib} | {sweeps} | {seed} | {s:.2f} | {k} | "
                          f"{lk.counts['nats_per_held_out_word']:.4f} | {npmi:.3f} |",
                          flush=True)


if __name__ == "__main__":
    main()
