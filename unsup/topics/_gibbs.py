"""The collapsed Gibbs sweep of LDA, compiled with numba when it is installed.

Two exact samplers of the same conditional: the dense sweep (O(K) per token, a vectorisable
product pass) and, from ``SPARSE_FROM_K`` topics on, SparseLDA (Yao, Mimno & McCallum 2009),
where the conditional splits into three buckets,

    p(z = k) ∝ α_k η/(n_k + Vη)  +  n_dk η/(n_k + Vη)  +  (α_k + n_dk) n_kw/(n_k + Vη)
                  s (smoothing)       r (document)          q (word)

s and r are kept up to date as counts change (r rebuilt at every document from its tokens), q
is summed over the topics the word has (lists kept per word), and a draw walks the bucket its
uniform falls in. The cost per token is the number of topics of the word
and of the document, not K: exact sampling from the same conditional as the dense sweep.

Without numba the same function runs as Python (correct, about 100x slower: fine for tests on
toy corpora; install numba, e.g. ``pip install unsup[bench]``, for real corpora). The random
numbers are drawn by numpy outside the kernel, so a seed gives the same chain either way.
"""

from __future__ import annotations

import numpy as np

from unsup._numba import HAVE_NUMBA, njit

__all__ = ["gibbs_sweep", "dense_sweep", "sparse_sweep", "HAVE_NUMBA"]

# topics from which the sparse sweep is used; ms per sweep on Shakespeare (72k tokens) after
# 100 sweeps, dense / sparse: K = 50 5.3 / 5.3, 100 8.5 / 7.6, 200 16.1 / 9.3, 500 42.0 / 11.6
SPARSE_FROM_K = 64


@njit(cache=True, nogil=True, fastmath=True)
def dense_sweep(doc, word, z, ndk, nwk, nk, alpha, eta, v_eta, u):  # noqa: ANN001, ANN201
    """One sweep over the tokens, O(K) per token: z_i ~ p(z_i = k | z_-i, w) ∝
    (n_dk + α_k)(n_kw + η)/(n_k + Vη).

    ``doc``, ``word``, ``z``: int64 per token; ``ndk`` (D, K), ``nwk`` (V, K), ``nk`` (K,)
    int64 counts updated in place; ``u``: one uniform per token.
    """
    K = nk.shape[0]
    p = np.empty(K)
    inv = np.empty(K)  # 1 / (n_k + Vη), refreshed for the two topics a token moves between
    for j in range(K):
        inv[j] = 1.0 / (nk[j] + v_eta)
    for i in range(doc.shape[0]):
        d = doc[i]
        w = word[i]
        k = z[i]
        ndk[d, k] -= 1
        nwk[w, k] -= 1
        nk[k] -= 1
        inv[k] = 1.0 / (nk[k] + v_eta)
        # the K products vectorise; one pass sums them, a second finds the draw (on average
        # half way): a running cumulative sum would chain K dependent additions per token
        for j in range(K):
            p[j] = (ndk[d, j] + alpha[j]) * (nwk[w, j] + eta) * inv[j]
        tot = 0.0
        for j in range(K):
            tot += p[j]
        x = u[i] * tot
        k = 0
        acc = p[0]
        while k < K - 1 and acc < x:
            k += 1
            acc += p[k]
        z[i] = k
        ndk[d, k] += 1
        nwk[w, k] += 1
        nk[k] += 1
        inv[k] = 1.0 / (nk[k] + v_eta)


@njit(cache=True, nogil=True)
def sparse_sweep(doc, word, z, ndk, nwk, nk, alpha, eta, v_eta, u):  # noqa: ANN001, ANN201
    """One sweep over the tokens (grouped by document): z_i ~ p(z_i = k | z_-i, w) ∝
    (n_dk + α_k)(n_kw + η)/(n_k + Vη), sampled by SparseLDA's three buckets (module docstring).

    ``doc``, ``word``, ``z``: int64 per token; ``ndk`` (D, K), ``nwk`` (V, K), ``nk`` (K,)
    int64 counts updated in place; ``u``: one uniform per token.
    """
    K, V = nk.shape[0], nwk.shape[0]
    inv = np.empty(K)  # 1 / (n_k + Vη)
    for k in range(K):
        inv[k] = 1.0 / (nk[k] + v_eta)
    # the topics of each word with n_kw > 0, and each topic's place in its word's list
    wlist = np.empty((V, K), np.int32)
    wpos = np.full((V, K), -1, np.int32)
    wcnt = np.zeros(V, np.int64)
    for w in range(V):
        for k in range(K):
            if nwk[w, k] > 0:
                wpos[w, k] = wcnt[w]
                wlist[w, wcnt[w]] = k
                wcnt[w] += 1
    # coef_k = (α_k + n_dk) / (n_k + Vη): α_k / (n_k + Vη) outside the current document
    coef = np.empty(K)
    s = 0.0
    for k in range(K):
        coef[k] = alpha[k] * inv[k]
        s += alpha[k] * eta * inv[k]
    dlist = np.empty(K, np.int32)  # the current document's topics with n_dk > 0
    dpos = np.full(K, -1, np.int32)
    qv = np.empty(K)
    dcnt = 0
    r = 0.0
    cur = -1
    n = doc.shape[0]
    for i in range(n):
        d = doc[i]
        w = word[i]
        if d != cur:  # a new document: O(its length), not O(K), for short documents
            for t in range(dcnt):
                k = dlist[t]
                dpos[k] = -1
                coef[k] = alpha[k] * inv[k]
            dcnt = 0
            r = 0.0
            j = i
            while j < n and doc[j] == d:
                k = z[j]
                if dpos[k] < 0:
                    dpos[k] = dcnt
                    dlist[dcnt] = k
                    dcnt += 1
                    coef[k] = (alpha[k] + ndk[d, k]) * inv[k]
                    r += ndk[d, k] * eta * inv[k]
                j += 1
            cur = d
        for step in range(2):  # 0: take the token out of its topic; 1: put it in the new one
            if step == 1:
                q = 0.0
                for t in range(wcnt[w]):
                    kk = wlist[w, t]
                    qv[t] = coef[kk] * nwk[w, kk]
                    q += qv[t]
                x = u[i] * (s + r + q)
                k = -1
                if x < q:  # the word's topics: most of the mass
                    acc = 0.0
                    for t in range(wcnt[w]):
                        acc += qv[t]
                        k = wlist[w, t]
                        if acc >= x:
                            break
                elif x < q + r:  # the document's topics
                    x -= q
                    acc = 0.0
                    for t in range(dcnt):
                        k = dlist[t]
                        acc += ndk[d, k] * eta * inv[k]
                        if acc >= x:
                            break
                if k < 0:  # the smoothing bucket (or rounding at a bucket's end)
                    x = max(x - q - r, 0.0)
                    acc = 0.0
                    for kk in range(K):
                        k = kk
                        acc += alpha[kk] * eta * inv[kk]
                        if acc >= x:
                            break
                z[i] = k
                delta = 1
            else:
                k = z[i]
                delta = -1
            s -= alpha[k] * eta * inv[k]
            r -= ndk[d, k] * eta * inv[k]
            ndk[d, k] += delta
            nwk[w, k] += delta
            nk[k] += delta
            inv[k] = 1.0 / (nk[k] + v_eta)
            s += alpha[k] * eta * inv[k]
            r = max(r + ndk[d, k] * eta * inv[k], 0.0)
            coef[k] = (alpha[k] + ndk[d, k]) * inv[k]
            if delta < 0 and ndk[d, k] == 0:  # out of the document's list (swap with last)
                p = dpos[k]
                dcnt -= 1
                dlist[p] = dlist[dcnt]
                dpos[dlist[p]] = p
                dpos[k] = -1
            elif delta > 0 and ndk[d, k] == 1:
                dpos[k] = dcnt
                dlist[dcnt] = k
                dcnt += 1
            if delta < 0 and nwk[w, k] == 0:  # out of the word's list
                p = wpos[w, k]
                wcnt[w] -= 1
                last = wlist[w, wcnt[w]]
                wlist[w, p] = last
                wpos[w, last] = p
                wpos[w, k] = -1
            elif delta > 0 and nwk[w, k] == 1:
                wpos[w, k] = wcnt[w]
                wlist[w, wcnt[w]] = k
                wcnt[w] += 1


def gibbs_sweep(doc, word, z, ndk, nwk, nk, alpha, eta, v_eta, u):  # noqa: ANN001, ANN201
    """One collapsed Gibbs sweep (arguments of :func:`dense_sweep`): the dense sweep for few
    topics, SparseLDA's from ``SPARSE_FROM_K`` on (the same conditional either way)."""
    sweep = sparse_sweep if nk.shape[0] >= SPARSE_FROM_K else dense_sweep
    sweep(doc, word, z, ndk, nwk, nk, alpha, eta, v_eta, u)
