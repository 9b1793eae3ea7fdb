r"""Retrieval metrics: labelled queries against a labelled database, ranked by code distance.

For a query ``q`` the database is sorted by distance (Hamming for binary codes, cosine or
Euclidean for real-valued codes); item ``i`` at rank ``n`` is *relevant* when it shares the
query's label (or, for 2-D indicator labels, any label). With ``rel_n ∈ {0, 1}`` the relevance at
rank ``n``, ``H_n = Σ_{m≤n} rel_m`` the hits in the first ``n`` and ``R`` the number of relevant
items in the database:

.. math::

    P@n = H_n / n, \qquad \mathrm{Recall}@n = H_n / R, \qquad
    \mathrm{AP} = \frac{1}{R} \sum_{n=1}^{N} \mathrm{rel}_n\, P@n,

and mAP is the mean of AP over the queries (queries with ``R = 0`` are left out and counted).
``map_at=K`` gives the truncated AP@K of the hashing literature, ``Σ_{n≤K} rel_n P@n / H_K``
(0 when ``H_K = 0``). The precision-recall curve is taken at fractions of the database
retrieved (as in semantic hashing [1]_). For binary codes, *precision within Hamming radius r*
is the fraction of relevant items among those at distance ``≤ r`` (0 for a query with none;
``success@r`` is the fraction of queries with at least one).

**Ties.** Binary codes put many items at the same distance, and the order inside a tie changes
the scores. It is deterministic: a stable sort keeps the database order inside a tie, and by
default (``ties=0``) that order is a fixed pseudo-random permutation of the database drawn
from seed 0 — a database sorted by label (mnist5k is) would otherwise favour the classes stored
first. ``ties=None`` keeps the stored order; another integer draws another permutation.

**Memory.** Queries are processed in blocks whose distance, order and hit arrays fit in
``memory_mb`` (default 256 MB), so 10,000 x 10,000 or 100 x 10^6 fit on a laptop; the cost is
one distance computation and one sort per query (exhaustive ranking).

References
----------
.. [1] Salakhutdinov & Hinton, "Semantic hashing", Int. J. Approximate Reasoning 50(7), 2009.
.. [2] Manning, Raghavan & Schütze, *Introduction to Information Retrieval*, ch. 8, 2008.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from unsup.metrics._hamming import (
    HammingIndex,
    hamming_blocks,
    hamming_distances,
    pack_bits,
    unpack_bits,
)

__all__ = ["retrieval_scores", "mean_average_precision", "precision_at_k",
           "precision_recall_curve", "nearest", "retrieval_report", "pack_bits", "unpack_bits",
           "hamming_distances", "HammingIndex", "FRACTIONS", "METRICS"]

METRICS = ("auto", "hamming", "cosine", "euclidean")
FRACTIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
_BYTES_PER_ENTRY = 40  # distance, order, sorted relevance, hits and temporaries per pair


# -- inputs ---------------------------------------------------------------------------------
def _is_binary(a: np.ndarray) -> bool:
    if a.dtype == bool or a.dtype == np.uint64:
        return True
    return bool(np.issubdtype(a.dtype, np.integer) and a.size and np.isin(a, (0, 1)).all())


def _codes(Q: Any, D: Any, metric: str) -> tuple[np.ndarray, np.ndarray, str]:
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not one of {METRICS}")
    Q, D = np.asarray(Q), np.asarray(D)
    for name, a in (("queries", Q), ("database", D)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_items, n_dims), got shape {a.shape}")
        if len(a) == 0:
            raise ValueError(f"{name} are empty: at least 1 item is needed")
    if Q.shape[1] != D.shape[1]:
        raise ValueError(f"queries have {Q.shape[1]} columns but the database has {D.shape[1]}")
    if metric == "auto":
        metric = "hamming" if _is_binary(Q) and _is_binary(D) else "cosine"
    if metric == "hamming":
        if (Q.dtype == np.uint64) != (D.dtype == np.uint64):
            raise ValueError("queries and database must both be packed (uint64) or both 0/1")
        if Q.dtype != np.uint64:
            Q, D = pack_bits(Q), pack_bits(D)
        return Q, D, metric
    dtype = np.float64 if np.float64 in (Q.dtype, D.dtype) else np.float32
    Q, D = Q.astype(dtype, copy=False), D.astype(dtype, copy=False)
    if not (np.isfinite(Q).all() and np.isfinite(D).all()):
        raise ValueError("codes contain NaN or infinite values")
    if metric == "cosine":  # cosine ranking = Euclidean ranking of unit vectors
        Q = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), np.finfo(dtype).tiny)
        D = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), np.finfo(dtype).tiny)
    return Q, D, metric


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim not in (1, 2) or len(y) != n:
        raise ValueError(f"{name} must be 1-D labels or a 2-D indicator matrix with {n} rows, "
                         f"got shape {y.shape}")
    if y.ndim == 2:
        return y.astype(bool)
    return y


def _relevance(yq: np.ndarray, yd: np.ndarray) -> np.ndarray:
    if yq.ndim == 2:
        return (yq.astype(np.float32) @ yd.T.astype(np.float32)) > 0
    return yq[:, None] == yd[None, :]


def _distance_blocks(Q: np.ndarray, D: np.ndarray, metric: str, block: int
                     ) -> Iterator[tuple[int, np.ndarray]]:
    if metric == "hamming":
        yield from hamming_blocks(Q, D, block)
        return
    if metric == "cosine":  # unit vectors: 1 - cos
        for s in range(0, len(Q), block):
            yield s, 1.0 - Q[s:s + block] @ D.T
        return
    dn = np.einsum("ij,ij->i", D, D)
    for s in range(0, len(Q), block):
        q = Q[s:s + block]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] - 2.0 * (q @ D.T) + dn[None, :]
        yield s, np.sqrt(np.maximum(d2, 0.0))


def _tie_permutation(n: int, ties: int | None) -> np.ndarray | None:
    if ties is None:
        return None
    if isinstance(ties, bool) or not isinstance(ties, (int, np.integer)):
        raise ValueError(f"ties must be None (database order) or an integer seed, got {ties!r}")
    return np.random.default_rng(int(ties)).permutation(n)


# -- the metrics ----------------------------------------------------------------------------
def retrieval_scores(
    queries: Any, query_labels: Any, database: Any, database_labels: Any, *,
    metric: str = "auto", k: Sequence[int] | int | None = None, map_at: int | None = None,
    fractions: Sequence[float] = FRACTIONS, radius: int | None = 2, ties: int | None = 0,
    per_query: bool = False, memory_mb: float = 256,
) -> dict[str, Any]:
    """mAP, precision@k, the precision-recall curve (and Hamming-radius precision) of ranking
    ``database`` by distance to each of ``queries``.

    Parameters
    ----------
    queries, database : ndarray of shape (n, d)
        Codes. 0/1 codes (bool or integers) or packed uint64 words (``pack_bits``) are ranked
        by Hamming distance under ``metric="auto"``, real codes by cosine distance.
    query_labels, database_labels : ndarray of shape (n,) or (n, n_labels)
        Labels (relevant: same label) or indicator matrices (relevant: a label in common).
    metric : {"auto", "hamming", "cosine", "euclidean"}
        Distance used for ranking.
    k : int or sequence of int or None
        Cut-offs of precision@k (None: 100, or the database size if smaller).
    map_at : int or None
        Truncate AP at this rank (AP@K); None: the whole ranking.
    fractions : sequence of float
        Fractions of the database retrieved at which the precision-recall curve is taken.
    radius : int or None
        Hamming radius of "precision@r" and "success@r" (binary codes only; None: skip).
    ties : int or None
        Order inside ties: a permutation of the database from this seed, or the stored order.
    per_query : bool
        Also return the per-query arrays (``ap``, ``precision_at``).
    memory_mb : float
        Memory bound of one block of queries.

    Returns
    -------
    dict
        ``metric``, ``n_queries``, ``n_database``, ``map``, ``map_at``, ``precision@K`` for each
        cut-off, ``pr_curve`` (``fraction``, ``n_retrieved``, ``precision``, ``recall``),
        ``precision@rR``/``success@rR`` for binary codes, ``n_queries_without_relevant``,
        ``ties``, ``seconds``, ``ms_per_query``.
    """
    t0 = time.perf_counter()
    Q, D, metric = _codes(queries, database, metric)
    yq = _labels(query_labels, len(Q), "query_labels")
    yd = _labels(database_labels, len(D), "database_labels")
    if yq.ndim != yd.ndim or (yq.ndim == 2 and yq.shape[1] != yd.shape[1]):
        raise ValueError("query_labels and database_labels must be of the same kind and width")
    n = len(D)
    if k is None:
        k = min(100, n)
    ks = [int(k)] if isinstance(k, (int, np.integer)) else [int(v) for v in k]
    if any(not 1 <= v <= n for v in ks):
        raise ValueError(f"every k must be in [1, {n}] (the database size), got {ks}")
    if map_at is not None and not 1 <= int(map_at) <= n:
        raise ValueError(f"map_at must be in [1, {n}] or None, got {map_at!r}")
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or ((fr <= 0) | (fr > 1)).any():
        raise ValueError(f"fractions must lie in (0, 1], got {fractions!r}")
    if radius is not None and (isinstance(radius, bool) or int(radius) != radius or radius < 0):
        raise ValueError(f"radius must be a non-negative integer or None, got {radius!r}")
    perm = _tie_permutation(n, ties)
    if perm is not None:
        D, yd = D[perm], yd[perm]
    depth = n if map_at is None else int(map_at)
    cuts = np.maximum(1, np.round(fr * n).astype(np.int64))
    block = max(1, int(memory_mb * 2**20 // (_BYTES_PER_ENTRY * n)))
    ap = np.zeros(len(Q))
    n_rel = np.zeros(len(Q), dtype=np.int64)
    p_at = {v: np.zeros(len(Q)) for v in ks}
    hits_at = np.zeros((len(Q), len(cuts)))
    rad_p = np.zeros(len(Q))
    rad_n = np.zeros(len(Q), dtype=np.int64)
    ranks = np.arange(1, depth + 1)
    for s, dist in _distance_blocks(Q, D, metric, block):
        e = s + len(dist)
        rel = _relevance(yq[s:e], yd)
        n_rel[s:e] = rel.sum(1)
        order = np.argsort(dist, axis=1, kind="stable")[:, :depth]
        rs = np.take_along_axis(rel, order, axis=1)
        del order
        hits = np.cumsum(rs, axis=1, dtype=np.int32)
        denom = n_rel[s:e] if map_at is None else hits[:, -1]
        num = (rs * (hits / ranks)).sum(1)
        ap[s:e] = np.divide(num, denom, out=np.zeros(len(num)), where=denom > 0)
        for v in ks:  # k beyond map_at needs the deeper ranking: recomputed only then
            p_at[v][s:e] = (hits[:, v - 1] if v <= depth else
                            _hits_at(dist, rel, v)) / v
        for j, c in enumerate(cuts):
            hits_at[s:e, j] = hits[:, c - 1] if c <= depth else _hits_at(dist, rel, c)
        if metric == "hamming" and radius is not None:
            within = dist <= radius
            cnt = within.sum(1)
            rad_n[s:e] = cnt
            rad_p[s:e] = np.divide((within & rel).sum(1), cnt, out=np.zeros(len(cnt)),
                                   where=cnt > 0)
    has = n_rel > 0
    out: dict[str, Any] = {
        "metric": metric, "n_queries": int(len(Q)), "n_database": int(n),
        "map": float(ap[has].mean()) if has.any() else float("nan"),
        "map_at": None if map_at is None else int(map_at),
    }
    for v in ks:
        out[f"precision@{v}"] = float(p_at[v].mean())
    rec = np.divide(hits_at, n_rel[:, None], out=np.zeros_like(hits_at), where=has[:, None])
    out["pr_curve"] = {"fraction": [float(f) for f in fr], "n_retrieved": cuts.tolist(),
                       "precision": (hits_at / cuts).mean(0).tolist(),
                       "recall": (rec[has].mean(0) if has.any() else rec.mean(0)).tolist()}
    if metric == "hamming" and radius is not None:
        out[f"precision@r{radius}"] = float(rad_p.mean())
        out[f"success@r{radius}"] = float((rad_n > 0).mean())
    out["n_queries_without_relevant"] = int((~has).sum())
    out["ties"] = "database order" if ties is None else f"permutation seed {int(ties)}"
    out["seconds"] = time.perf_counter() - t0
    out["ms_per_query"] = 1000.0 * out["seconds"] / len(Q)
    if per_query:
        out["ap"] = ap
        out["precision_at"] = p_at
    return out


def _hits_at(dist: np.ndarray, rel: np.ndarray, c: int) -> np.ndarray:
    order = np.argsort(dist, axis=1, kind="stable")[:, :c]
    return np.take_along_axis(rel, order, axis=1).sum(1)


def mean_average_precision(queries: Any, query_labels: Any, database: Any,
                           database_labels: Any, **kw: Any) -> float:
    """mAP of :func:`retrieval_scores` (same arguments)."""
    return retrieval_scores(queries, query_labels, database, database_labels, **kw)["map"]


def precision_at_k(queries: Any, query_labels: Any, database: Any, database_labels: Any,
                   k: int = 100, **kw: Any) -> float:
    """Mean precision among the ``k`` nearest items (:func:`retrieval_scores`)."""
    return retrieval_scores(queries, query_labels, database, database_labels, k=(k,),
                            **kw)[f"precision@{k}"]


def precision_recall_curve(queries: Any, query_labels: Any, database: Any,
                           database_labels: Any, fractions: Sequence[float] = FRACTIONS,
                           **kw: Any) -> dict[str, list[float]]:
    """Mean precision and recall after retrieving each fraction of the database."""
    return retrieval_scores(queries, query_labels, database, database_labels,
                            fractions=fractions, k=(1,), **kw)["pr_curve"]


def nearest(queries: Any, database: Any, k: int, *, metric: str = "auto",
            ties: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances and database indices (n_queries, k) of each query's ``k`` nearest items,
    with the same ranking (and tie order) as :func:`retrieval_scores`."""
    Q, D, metric = _codes(queries, database, metric)
    if not 1 <= int(k) <= len(D):
        raise ValueError(f"k must be in [1, {len(D)}], got {k}")
    perm = _tie_permutation(len(D), ties)
    Dp = D if perm is None else D[perm]
    dist_out, idx_out = [], []
    for _, dist in _distance_blocks(Q, Dp, metric, max(1, 2**25 // (8 * len(D)))):
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        dist_out.append(np.take_along_axis(dist, order, axis=1))
        idx_out.append(order if perm is None else perm[order])
    return np.concatenate(dist_out), np.concatenate(idx_out)


def retrieval_report(model: Any, train_X: Any, train_y: Any, test_X: Any, test_y: Any, *,
                     k: Sequence[int] | int | None = None, metric: str = "auto",
                     map_at: int | None = None, radius: int | None = 2, ties: int | None = 0,
                     max_queries: int | None = None) -> dict[str, Any]:
    """Retrieval with a fitted model's codes: ``test_X`` are the queries, ``train_X`` the
    database, labels decide relevance (what ``unsup evaluate RUN --retrieval`` records).

    Binary codes (a model whose ``transform`` returns 0/1, such as ``semantic-hashing``) are
    ranked by Hamming distance, real codes by cosine distance (``metric`` to choose). The
    result is :func:`retrieval_scores`'s dictionary plus ``n_codes`` (code width),
    ``encode_seconds`` and ``model``; it is JSON-ready.
    """
    if not callable(getattr(model, "transform", None)):
        raise ValueError(f"{type(model).__name__} has no transform: retrieval ranks codes")
    if train_y is None or test_y is None:
        raise ValueError("retrieval needs labels for the database and the queries")
    if max_queries is not None:
        test_X, test_y = test_X[:int(max_queries)], np.asarray(test_y)[:int(max_queries)]
    t0 = time.perf_counter()
    db, q = np.asarray(model.transform(train_X)), np.asarray(model.transform(test_X))
    enc = time.perf_counter() - t0
    out = retrieval_scores(q, test_y, db, train_y, metric=metric, k=k, map_at=map_at,
                           radius=radius, ties=ties)
    return {"model": type(model).__name__, "n_codes": int(db.shape[1]),
            "encode_seconds": enc, **out}
