"""LDA against scikit-learn, gensim and tomotopy on one corpus: wall time and the one held-out
measure (document completion, :func:`unsup.topics.completion_log_likelihood`) applied to
every model's topics with the same α.

    python bench/bench_topics.py --data shakespeare --k 20 --threads 1

Same corpus, vocabulary, K and priors (α = η = 1/K unless given) for every model; 10% of the
documents (seed 0) are held out. Peers that are not installed are skipped. A second held-out
measure, the left-to-right estimate of whole documents' probability (Wallach et al. 2009, 20
particles), is taken on the first ``--ltr-docs`` held-out documents.
"""

from __future__ import annotations

import argparse
import time
import warnings
from math import nan

import numpy as np
import torch

from unsup.data import load
from unsup.metrics.topics import coherence, left_to_right_log_likelihood
from unsup.topics import LDA, PLSA, MixtureOfUnigrams, UnigramLM, completion_log_likelihood


def _split(X, frac=0.1, seed=0):
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    k = int(n * frac)
    return X[np.sort(perm[k:])], X[np.sort(perm[:k])]


def _tokens(X):
    """Per document, the token ids (for gensim's bag of words and tomotopy's word lists)."""
    X = X.tocsr()
    return [(X.indices[X.indptr[d]:X.indptr[d + 1]],
             np.rint(X.data[X.indptr[d]:X.indptr[d + 1]]).astype(int)) for d in range(X.shape[0])]


def run(args):
    ds = load(args.data)
    train, test = _split(ds.X)
    K, a = args.k, 1.0 / args.k
    eta = a
    rows = []

    def record(name, seconds, topics, alpha, cpu=None):
        lk = completion_log_likelihood(topics, alpha, test)
        # NPMI of the top 10 words, whole-document co-occurrence in the held-out documents
        npmi = coherence(topics, test, measure="npmi", window=None) if len(topics) > 1 else nan
        ltr = nan
        if args.ltr_docs > 0 and np.all(np.asarray(alpha) > 0):
            sub = test[: args.ltr_docs]
            ltr = left_to_right_log_likelihood(topics, alpha, sub).counts["nats_per_word"]
        cpu = last_cpu[0] if cpu is None else cpu
        rows.append((name, seconds, cpu, lk.counts["nats_per_held_out_word"],
                     lk.counts["perplexity"], npmi, ltr))
        print(f"{name:40s} {seconds:8.2f} s {cpu:8.2f} cpu-s "
              f"{lk.counts['nats_per_held_out_word']:8.4f} nats/word"
              f"  perplexity {lk.counts['perplexity']:8.1f}  NPMI {npmi:6.3f}"
              f"  left-to-right {ltr:8.4f} nats/word", flush=True)

    last_cpu = [nan]

    def timed(fn):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        last_cpu[0] = time.process_time() - c  # CPU seconds of this process (all threads)
        return out, time.perf_counter() - t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m, s = timed(lambda: UnigramLM().fit(train))
        record("unsup UnigramLM", s, m._topics(), 0.0)
        m, s = timed(lambda: MixtureOfUnigrams(K, device="cpu", random_state=0).fit(train))
        rows_mix = m.log_likelihood(test).counts
        print(f"{'unsup MixtureOfUnigrams (exact)':34s} {s:8.2f} s  "
              f"{rows_mix['nats_per_held_out_word']:8.4f} nats/word  "
              f"perplexity {rows_mix['perplexity']:8.1f}")
        m, s = timed(lambda: PLSA(K, device="cpu", random_state=0, max_iter=100).fit(train))
        record("unsup PLSA (EM, 100 it)", s, m.components_, 0.0)
        for it in args.vb_iters:
            m, s = timed(lambda it=it: LDA(K, method="vb", max_iter=it, tol=0, device="cpu",
                                           random_state=0).fit(train))
            record(f"unsup LDA VB batch ({it} it)", s, m._topics(), a)
        for opt in ("none", "alpha"):
            m, s = timed(lambda opt=opt: LDA(K, method="online", max_iter=10, evaluate_every=0,
                                             optimize_priors=opt, device="cpu",
                                             random_state=0).fit(train))
            record("unsup LDA VB online (10 passes)" + (" +α" if opt == "alpha" else ""), s,
                   m._topics(), m.doc_topic_prior_)
        LDA(K, method="gibbs", max_iter=1).fit(train[:10])  # compile numba outside the timing
        for it in args.gibbs_iters:
            # the default averages the counts of the last half of the sweeps; "final sample"
            # (average_sweeps=0) is the estimate tomotopy and Mallet return
            for opt, avg in (("none", None), ("alpha", None), ("alpha", 0)):
                m, s = timed(lambda it=it, opt=opt, avg=avg: LDA(
                    K, method="gibbs", max_iter=it, evaluate_every=0, optimize_priors=opt,
                    average_sweeps=avg, random_state=0).fit(train))
                record(f"unsup LDA Gibbs ({it} sweeps)" + (" +α" if opt == "alpha" else "")
                       + (", final sample" if avg == 0 else ""), s,
                       m._topics(), m.doc_topic_prior_)

        from sklearn.decomposition import LatentDirichletAllocation as SK

        for it in args.vb_iters:
            m, s = timed(lambda it=it: SK(K, learning_method="batch", max_iter=it,
                                          doc_topic_prior=a, topic_word_prior=eta,
                                          n_jobs=args.threads, random_state=0).fit(train))
            record(f"sklearn LDA batch ({it} it)", s, m.components_, a)
        m, s = timed(lambda: SK(K, learning_method="online", max_iter=10, doc_topic_prior=a,
                                topic_word_prior=eta, n_jobs=args.threads,
                                random_state=0).fit(train))
        record("sklearn LDA online (10 passes)", s, m.components_, a)
        try:
            from gensim.models import LdaModel

            bow = [list(zip(i.tolist(), c.tolist(), strict=True)) for i, c in _tokens(train)]
            m, s = timed(lambda: LdaModel(bow, num_topics=K, alpha=a, eta=eta, passes=10,
                                          id2word={j: str(j) for j in range(train.shape[1])},
                                          random_state=0))
            record("gensim LdaModel (10 passes)", s, m.get_topics(), a)
            m, s = timed(lambda: LdaModel(bow, num_topics=K, alpha="auto", eta=eta, passes=10,
                                          id2word={j: str(j) for j in range(train.shape[1])},
                                          random_state=0))
            record("gensim LdaModel (10 passes) +α", s, m.get_topics(), m.alpha)
            if args.threads > 1:
                from gensim.models import LdaMulticore

                m, s = timed(lambda: LdaMulticore(
                    bow, num_topics=K, alpha=a, eta=eta, passes=10, workers=args.threads,
                    id2word={j: str(j) for j in range(train.shape[1])}, random_state=0))
                record(f"gensim LdaMulticore ({args.threads} workers)", s, m.get_topics(), a)
        except ImportError:
            print("gensim not installed: skipped")
        try:
            import tomotopy as tp

            docs = [[str(j) for j, c in zip(i, cs, strict=True) for _ in range(c)]
                    for i, cs in _tokens(train)]
            # tomotopy learns α every 10 sweeps by default (optim_interval=10): both settings
            for it in args.gibbs_iters:
                for optim in (0, 10):
                    def fit_tp(it=it, optim=optim):
                        mdl = tp.LDAModel(k=K, alpha=a, eta=eta, seed=1)
                        mdl.optim_interval = optim
                        for d in docs:
                            if d:
                                mdl.add_doc(d)
                        mdl.train(it, workers=args.threads)
                        return mdl
                    mdl, s = timed(fit_tp)
                    vocab = list(mdl.used_vocabs)
                    phi = np.full((K, train.shape[1]), 1e-12)
                    cols = np.array([int(w) for w in vocab])
                    for k in range(K):
                        phi[k, cols] = mdl.get_topic_word_dist(k)
                    record(f"tomotopy LDA Gibbs ({it} sweeps)" + (" +α" if optim else ""),
                           s, phi, np.asarray(mdl.alpha) if optim else a)
        except ImportError:
            print("tomotopy not installed: skipped")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="shakespeare")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vb-iters", type=int, nargs="+", default=[20, 50])
    p.add_argument("--gibbs-iters", type=int, nargs="+", default=[100, 300])
    p.add_argument("--ltr-docs", type=int, default=100,
                   help="held-out documents for the left-to-right estimate (0: skip)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run(args)


if __name__ == "__main__":
    main()
