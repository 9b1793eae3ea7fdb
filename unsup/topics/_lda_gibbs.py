"""LDA's collapsed Gibbs fit (``LDA(method="gibbs")``): the chain, its checkpoints, learned
priors every ``_PRIOR_EVERY`` sweeps, the training trace, and the mean of the counts over the
last ``average_sweeps`` sweeps. The sweep itself is
:func:`unsup.topics._gibbs.gibbs_sweep`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from unsup.base import report_progress
from unsup.topics._docs import SparseDocs
from unsup.topics._gibbs import gibbs_sweep
from unsup.topics._priors import polya_fixed_point, polya_fixed_point_symmetric
from unsup.train._loop_checkpoint import LoopCheckpoint, generator_from_state, generator_state

__all__ = ["fit_gibbs"]

_PRIOR_EVERY = 10  # sweeps between updates of learned priors (tomotopy, Mallet: 10)
# fixed-point iterations per update, from the previous value (tomotopy: 10). Iterating to
# convergence on each sample was worse at K = 100 over 8 seeds (held-out nats/word at 500
# sweeps -7.0686 against -7.0545 with 10): the small α_k of a shrinking topic follows the
# noise of one sample all the way down.
_PRIOR_STEPS = 10
_TRACE_WORDS = 10  # top words per topic in the training trace's coherence


def fit_gibbs(est: Any, M: Any, gen: torch.Generator) -> None:
    """Collapsed Gibbs sampling for :class:`unsup.topics.LDA` (``method="gibbs"``): sets its
    ``components_``, ``doc_topic_``, priors, ``history_`` and ``n_iter_``."""
    c = np.rint(M.data).astype(np.int64)
    if not np.array_equal(c, M.data):
        raise ValueError("method='gibbs' needs integer word counts (X has fractional "
                         "values); use method='vb' or round the counts")
    K, (D, V) = int(est.n_components), M.shape
    T = int(est.max_iter)
    lc = LoopCheckpoint(est, SparseDocs(M), gen, n_total=D, max_iter=T, loop="gibbs")
    doc = np.repeat(np.repeat(np.arange(D), np.diff(M.indptr)), c)
    word = np.repeat(M.indices.astype(np.int64), c)
    state = lc.result.params if lc.result is not None else lc.params
    alpha, eta = np.full(K, est._alpha()), est._eta()
    learn, learn_eta = est._learns()
    if state is not None and learn:
        alpha, eta = np.array(state["alpha"], dtype=np.float64), float(state["eta"])
    if state is None:  # a fresh chain
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen, device=gen.device))
        rng = np.random.default_rng(seed)
        z = rng.integers(0, K, doc.size)
    else:  # the counts are a function of z: rebuilt exactly
        rng = generator_from_state(state["rng"])
        z = np.array(state["z"], dtype=np.int64, copy=True)
        if z.shape != doc.shape or (z.size and not 0 <= z.min() <= z.max() < K):
            raise ValueError(f"cannot resume from {lc.ck.path}: the checkpoint is damaged "
                             f"(topic assignments of shape {z.shape} for {doc.size} tokens)")
    ndk = np.zeros((D, K), np.int64)
    nwk = np.zeros((V, K), np.int64)
    np.add.at(ndk, (doc, z), 1)
    np.add.at(nwk, (word, z), 1)
    nk = nwk.sum(0)
    ev = int(est.evaluate_every)
    # the posterior mean of the counts over the last n_avg sweeps (kept as integer sums)
    n_avg = T // 2 if est.average_sweeps is None else min(int(est.average_sweeps), T)
    if state is not None and n_avg and "sum_wk" in state:
        sum_wk = np.array(state["sum_wk"], dtype=np.int64, copy=True)
        sum_dk = np.array(state["sum_dk"], dtype=np.int64, copy=True)
    else:
        sum_wk = np.zeros((V, K) if n_avg else (0, 0), np.int64)
        sum_dk = np.zeros((D, K) if n_avg else (0, 0), np.int64)

    def snapshot() -> dict[str, Any]:
        st = {"z": z, "rng": generator_state(rng)}
        if learn:
            st.update(alpha=alpha.copy(), eta=np.float64(eta))
        if n_avg:
            st.update(sum_wk=sum_wk, sum_dk=sum_dk)
        return st

    if lc.result is not None:  # resumed a finished fit
        est.history_ = list(lc.result.history)
    else:
        est.history_ = lc.history
        for sweep in range(lc.it, T):
            lc.top(sweep, snapshot(), est.history_)
            gibbs_sweep(doc, word, z, ndk, nwk, nk, alpha, eta, V * eta,
                        rng.random(doc.size))
            if learn and (sweep + 1) % _PRIOR_EVERY == 0:
                alpha = polya_fixed_point(alpha, ndk, max_iter=_PRIOR_STEPS)
                if learn_eta:
                    eta = polya_fixed_point_symmetric(eta, nwk.T, max_iter=_PRIOR_STEPS)
            if ev and ((sweep + 1) % ev == 0 or sweep + 1 == T):
                est.history_.append(_gibbs_record(sweep + 1, nwk, nk, eta, M))
            if sweep >= T - n_avg:
                sum_wk += nwk
                sum_dk += ndk
            report_progress("LDA Gibbs", sweep + 1, T)
        last = est.history_[-1]["log_p_w_given_z"] if est.history_ else 0.0
        lc.finish(snapshot(), last, T, est.history_)
    est.doc_topic_prior_, est.topic_word_prior_ = alpha, float(eta)
    if n_avg:
        nwk, ndk = sum_wk / n_avg, sum_dk / n_avg
    est.components_ = (nwk.T + eta).astype(np.float64)
    th = ndk + alpha
    est.doc_topic_ = th / th.sum(1, keepdims=True)
    est.n_iter_ = T


def _gibbs_record(sweep: int, nwk: np.ndarray, nk: np.ndarray, eta: float,
                  M: Any) -> dict[str, float]:
    """A Gibbs trace entry: log p(w | z) per document, its perplexity exp(−log p(w | z) /
    tokens), and the UMass coherence of the top words on the training documents."""
    from unsup.metrics.topics import coherence

    D, n = M.shape[0], min(_TRACE_WORDS, nwk.shape[0])
    lp = _log_p_w_given_z(nwk, nk, eta)
    return {"iter": sweep, "log_p_w_given_z": lp / D,
            "perplexity": math.exp(-lp / max(float(nk.sum()), 1.0)),
            "umass": coherence(nwk.T + eta, M, measure="umass", top_n=n, window=None)}


def _log_p_w_given_z(nwk: np.ndarray, nk: np.ndarray, eta: float) -> float:
    """Exact collapsed log p(w | z) = Σ_k [lnΓ(Vη) − lnΓ(n_k + Vη) + Σ_w lnΓ(n_kw + η) − lnΓ(η)]."""
    from scipy.special import gammaln

    V, K = nwk.shape
    return float(K * (gammaln(V * eta) - V * gammaln(eta)) - gammaln(nk + V * eta).sum()
                 + gammaln(nwk + eta).sum())

