"""Learned priors in collapsed Gibbs LDA, over seeds: fixed α = η = 1/K, learned α, learned α
and η (ours, averaging the last half of the sweeps, and learned α from the final sample alone),
and tomotopy with and without its α optimisation (``optim_interval``).

    python -m bench.bench_topic_priors --k 20 --sweeps 100 300 --seeds 0 1 2

Held-out measure: document completion (:func:`unsup.topics.completion_log_likelihood`) on the
10% of documents held out by ``bench_topics`` (seed 0), each model scored with its own α.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from bench.bench_topics import _split, _tokens
from unsup.data import load
from unsup.topics import LDA, completion_log_likelihood


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="shakespeare")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--sweeps", type=int, nargs="+", default=[100, 300])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    train, test = _split(load(args.data).X)
    K = args.k

    def score(phi, alpha):
        return completion_log_likelihood(phi, alpha, test).counts["nats_per_held_out_word"]

    try:
        import tomotopy as tp
        docs = [[str(j) for j, c in zip(i, cs, strict=True) for _ in range(c)]
                for i, cs in _tokens(train)]
    except ImportError:
        tp = None
    for sweeps in args.sweeps:
        res: dict[str, list[float]] = {}
        for seed in args.seeds:
            # the default averages the last half of the sweeps; average_sweeps=0 keeps the
            # final sample, the estimate tomotopy returns
            for opt, avg in (("none", None), ("alpha", None), ("both", None), ("alpha", 0)):
                m = LDA(K, method="gibbs", max_iter=sweeps, evaluate_every=0,
                        optimize_priors=opt, average_sweeps=avg, random_state=seed).fit(train)
                name = f"unsup optimize_priors={opt}" + (" final sample" if avg == 0 else "")
                res.setdefault(name, []).append(score(m._topics(), m.doc_topic_prior_))
            if tp is None:
                continue
            for optim in (0, 10):
                mdl = tp.LDAModel(k=K, alpha=1 / K, eta=1 / K, seed=seed + 1)
                mdl.optim_interval = optim
                for d in docs:
                    if d:
                        mdl.add_doc(d)
                mdl.train(sweeps, workers=1)
                cols = np.array([int(w) for w in mdl.used_vocabs])
                phi = np.full((K, train.shape[1]), 1e-12)
                for k in range(K):
                    phi[k, cols] = mdl.get_topic_word_dist(k)
                res.setdefault(f"tomotopy optim_interval={optim}", []).append(
                    score(phi, np.asarray(mdl.alpha) if optim else 1 / K))
        for name, v in res.items():
            print(f"{sweeps:4d} sweeps  {name:32s} {np.mean(v):8.4f} ± {np.std(v):.4f}  "
                  f"({', '.join(f'{x:.4f}' for x in v)})", flush=True)


if __name__ == "__main__":
    main()
