"""The collapsed Gibbs sweep of LDA, compiled with numba when it is installed.

Without numba the same function runs as Python (correct, about 100x slower: fine for tests on
toy corpora; install numba, e.g. ``pip install unsup[bench]``, for real corpora). The random
numbers are drawn by numpy outside the kernel, so a seed gives the same chain either way.
"""

from __future__ import annotations

import numpy as np

from unsup._numba import HAVE_NUMBA, njit

__all__ = ["gibbs_sweep", "HAVE_NUMBA"]


@njit(cache=True, nogil=True, fastmath=True)
def gibbs_sweep(doc, word, z, ndk, nwk, nk, alpha, eta, v_eta, u):  # noqa: ANN001, ANN201
    """One sweep over the tokens: z_i ~ p(z_i = k | z_-i, w) ∝ (n_dk + α_k)(n_kw + η)/(n_k + Vη).

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
