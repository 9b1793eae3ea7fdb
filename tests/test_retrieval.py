"""Retrieval metrics (unsup.metrics.retrieval) and packed Hamming codes (HammingIndex).

Hand-worked examples, a brute-force numpy/Python reference on small random sets (binary and
real codes, chunked or not, both tie orders), and scikit-learn's average precision as a peer.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from unsup.metrics.retrieval import (
    HammingIndex,
    hamming_distances,
    mean_average_precision,
    nearest,
    pack_bits,
    precision_at_k,
    precision_recall_curve,
    retrieval_report,
    retrieval_scores,
    unpack_bits,
)

rng = np.random.default_rng(0)


# -- a brute-force reference ---------------------------------------------------------------
def _ref_dist(q: np.ndarray, D: np.ndarray, metric: str) -> np.ndarray:
    if metric == "hamming":
        return np.array([int((q != d).sum()) for d in D])
    if metric == "cosine":
        return np.array([1 - q @ d / np.linalg.norm(q) / np.linalg.norm(d) for d in D])
    return np.array([np.sqrt(((q - d) ** 2).sum()) for d in D])


def _reference(Q, yq, D, yd, metric, ks, fractions, map_at=None, radius=None, perm=None):
    n = len(D)
    if perm is not None:
        D, yd = D[perm], yd[perm]
    aps, pk, prec, rec, rp = [], {k: [] for k in ks}, [], [], []
    for q, lab in zip(Q, yq, strict=True):
        dist = _ref_dist(q, D, metric)
        order = sorted(range(n), key=lambda i: (dist[i], i))  # ties: database order
        rel = [bool(yd[i] == lab) for i in order]
        R = sum(rel)
        depth = n if map_at is None else map_at
        hits, s = 0, 0.0
        for r in range(depth):
            if rel[r]:
                hits += 1
                s += hits / (r + 1)
        denom = R if map_at is None else sum(rel[:depth])
        if R:
            aps.append(s / denom if denom else 0.0)
        for k in ks:
            pk[k].append(sum(rel[:k]) / k)
        cuts = [max(1, round(f * n)) for f in fractions]
        prec.append([sum(rel[:c]) / c for c in cuts])
        if R:
            rec.append([sum(rel[:c]) / R for c in cuts])
        if radius is not None:
            inside = [i for i in range(n) if dist[i] <= radius]
            rp.append(sum(yd[i] == lab for i in inside) / len(inside) if inside else 0.0)
    return (np.mean(aps), {k: np.mean(v) for k, v in pk.items()}, np.mean(prec, 0),
            np.mean(rec, 0), np.mean(rp) if rp else None)


# -- packing and Hamming distances -----------------------------------------------------------
@pytest.mark.parametrize("n_bits", [1, 7, 63, 64, 65, 130])
def test_pack_unpack_and_popcount_distances(n_bits):
    A = rng.integers(0, 2, (9, n_bits), dtype=np.uint8)
    B = rng.integers(0, 2, (11, n_bits)).astype(bool)
    PA, PB = pack_bits(A), pack_bits(B)
    assert PA.dtype == np.uint64 and PA.shape == (9, -(-n_bits // 64))
    np.testing.assert_array_equal(unpack_bits(PA, n_bits), A)
    ref = (A[:, None, :] != B[None, :, :]).sum(2)
    np.testing.assert_array_equal(hamming_distances(PA, PB), ref)


def test_bit_order_is_documented():
    bits = np.zeros((1, 70), dtype=np.uint8)
    bits[0, [0, 3, 64]] = 1
    np.testing.assert_array_equal(pack_bits(bits), [[np.uint64(0b1001), np.uint64(1)]])


# -- hand-worked examples ---------------------------------------------------------------------
def test_hand_worked_ranking():
    # distances 0, 1, 2, 3; relevance (label 0) 1, 0, 1, 0
    D = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=np.uint8)
    yd = np.array([0, 1, 0, 1])
    Q, yq = np.zeros((1, 3), dtype=np.uint8), np.array([0])
    r = retrieval_scores(Q, yq, D, yd, k=(1, 2, 3), fractions=(0.5, 1.0), radius=1, ties=None)
    assert r["metric"] == "hamming"
    assert r["map"] == pytest.approx((1 + 2 / 3) / 2)  # AP = (P@1 + P@3) / R
    assert (r["precision@1"], r["precision@2"]) == (1.0, 0.5)
    assert r["precision@3"] == pytest.approx(2 / 3)
    assert r["pr_curve"]["precision"] == [0.5, 0.5] and r["pr_curve"]["recall"] == [0.5, 1.0]
    assert r["precision@r1"] == 0.5 and r["success@r1"] == 1.0
    # truncated AP@2: (P@1) / H_2 = 1 / 1
    assert retrieval_scores(Q, yq, D, yd, map_at=2, ties=None, k=1)["map"] == 1.0


def test_ties_follow_the_database_order_or_a_seeded_permutation():
    # both items at Hamming distance 1 from the query: a tie
    D = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    Q, yq = np.zeros((1, 2), dtype=np.uint8), np.array([0])
    assert mean_average_precision(Q, yq, D, np.array([1, 0]), ties=None) == 0.5
    assert mean_average_precision(Q, yq, D, np.array([0, 1]), ties=None) == 1.0
    a = [mean_average_precision(Q, yq, D, np.array([1, 0]), ties=s) for s in range(20)]
    assert set(a) == {0.5, 1.0}  # the seed decides, and the same seed decides the same way
    assert a == [mean_average_precision(Q, yq, D, np.array([1, 0]), ties=s) for s in range(20)]


def test_queries_without_relevant_items_are_left_out_of_map():
    D = np.array([[0], [1]], dtype=np.uint8)
    r = retrieval_scores(np.array([[0], [0]], dtype=np.uint8), np.array([0, 5]), D,
                         np.array([0, 1]), k=1, ties=None)
    assert r["map"] == 1.0 and r["n_queries_without_relevant"] == 1
    assert r["precision@1"] == 0.5


# -- against the brute-force reference ---------------------------------------------------------
@pytest.mark.parametrize("metric", ["hamming", "cosine", "euclidean"])
@pytest.mark.parametrize("ties", [None, 3])
@pytest.mark.parametrize("memory_mb", [256, 1e-6])  # one block, or one query per block
def test_matches_brute_force(metric, ties, memory_mb):
    nq, nd = 7, 53
    if metric == "hamming":
        Q = rng.integers(0, 2, (nq, 10), dtype=np.uint8)
        D = rng.integers(0, 2, (nd, 10), dtype=np.uint8)
    else:
        Q, D = rng.normal(size=(nq, 5)), rng.normal(size=(nd, 5))
    yq, yd = rng.integers(0, 3, nq), rng.integers(0, 3, nd)
    fr = (0.02, 0.1, 0.5, 1.0)
    perm = None if ties is None else np.random.default_rng(ties).permutation(nd)
    for map_at in (None, 10):
        m, pk, prec, rec, rp = _reference(Q, yq, D, yd, metric, (1, 5, 20), fr, map_at,
                                          2 if metric == "hamming" else None, perm)
        r = retrieval_scores(Q, yq, D, yd, metric=metric, k=(1, 5, 20), fractions=fr,
                             map_at=map_at, ties=ties, memory_mb=memory_mb)
        assert r["map"] == pytest.approx(m, abs=1e-12)
        for k in (1, 5, 20):
            assert r[f"precision@{k}"] == pytest.approx(pk[k], abs=1e-12)
        np.testing.assert_allclose(r["pr_curve"]["precision"], prec, atol=1e-12)
        np.testing.assert_allclose(r["pr_curve"]["recall"], rec, atol=1e-12)
        if rp is not None:
            assert r["precision@r2"] == pytest.approx(rp, abs=1e-12)


def test_packed_codes_give_the_same_scores():
    Q = rng.integers(0, 2, (6, 70), dtype=np.uint8)
    D = rng.integers(0, 2, (40, 70), dtype=np.uint8)
    yq, yd = rng.integers(0, 2, 6), rng.integers(0, 2, 40)
    a = retrieval_scores(Q, yq, D, yd, k=(5,))
    b = retrieval_scores(pack_bits(Q), yq, pack_bits(D), yd, k=(5,))
    for key in ("map", "precision@5", "precision@r2", "pr_curve"):
        assert a[key] == b[key]


def test_average_precision_equals_scikit_learn_without_ties():
    Q, D = rng.normal(size=(5, 4)), rng.normal(size=(60, 4))
    yq, yd = rng.integers(0, 3, 5), rng.integers(0, 3, 60)
    r = retrieval_scores(Q, yq, D, yd, metric="euclidean", per_query=True, ties=None, k=1)
    for i in range(5):
        dist = np.linalg.norm(D - Q[i], axis=1)
        assert r["ap"][i] == pytest.approx(average_precision_score(yd == yq[i], -dist))


def test_indicator_labels_mean_any_label_in_common():
    D = np.array([[0, 0], [0, 1], [1, 1]], dtype=np.uint8)
    Yd = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    Q, Yq = np.zeros((1, 2), dtype=np.uint8), np.array([[0, 1, 0]])  # relevant: item 1 only
    assert mean_average_precision(Q, Yq, D, Yd, ties=None) == 0.5
    assert precision_at_k(Q, Yq, D, Yd, k=2, ties=None) == 0.5


def test_curve_and_nearest_helpers():
    D = rng.normal(size=(30, 3))
    Q, y = D[:4] + 1e-3, rng.integers(0, 2, 30)
    curve = precision_recall_curve(Q, y[:4], D, y, fractions=(1.0,))
    assert curve["recall"] == [1.0] and curve["n_retrieved"] == [30]
    dist, idx = nearest(Q, D, 3, metric="euclidean")
    np.testing.assert_array_equal(idx[:, 0], np.arange(4))
    ref = np.argsort(np.linalg.norm(D[None] - Q[:, None], axis=2), axis=1)[:, :3]
    np.testing.assert_array_equal(idx, ref)


# -- the Hamming index -----------------------------------------------------------------------
def test_hamming_ball_table_and_scan_match_brute_force():
    D = rng.integers(0, 2, (300, 12), dtype=np.uint8)
    D[10:20] = D[0]  # items sharing an address
    Q = np.vstack([D[:3], rng.integers(0, 2, (5, 12), dtype=np.uint8)])
    index = HammingIndex(D)
    ref_d = (Q[:, None] != D[None]).sum(2)
    for r in range(4):
        table = index.radius_search(Q, r, method="table")
        scan = index.radius_search(Q, r, method="scan")
        for i, ((dt, it), (ds, is_)) in enumerate(zip(table, scan, strict=True)):
            want = sorted(np.flatnonzero(ref_d[i] <= r), key=lambda j: (ref_d[i, j], j))
            np.testing.assert_array_equal(it, want)
            np.testing.assert_array_equal(is_, want)
            np.testing.assert_array_equal(dt, ref_d[i, want])
            np.testing.assert_array_equal(ds, ref_d[i, want])
    assert index.n_probes(2) == 1 + 12 + 66
    dist, idx = index.kneighbors(Q, 15)
    want = np.array([sorted(range(300), key=lambda j: (ref_d[i, j], j))[:15] for i in range(8)])
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(dist, np.take_along_axis(ref_d, want, 1))


def test_long_codes_scan_and_refuse_the_table():
    D = rng.integers(0, 2, (50, 70), dtype=np.uint8)
    index = HammingIndex(D)
    (d, i), = index.radius_search(D[:1], 0)
    assert 0 in i and (d == 0).all()
    with pytest.raises(ValueError, match="at most 64 bits"):
        index.radius_search(D[:1], 1, method="table")


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: retrieval_scores(np.full((2, 3), 2), [0, 1], np.ones((4, 3), int), [0] * 4,
                              metric="hamming", k=1), "only 0 and 1"),
    (lambda: retrieval_scores(np.ones((2, 3)), [0, 1], np.ones((4, 2)), [0] * 4, k=1),
     "columns"),
    (lambda: retrieval_scores(np.ones((2, 3)), [0, 1], np.ones((4, 3)), [0] * 4, k=5), "k"),
    (lambda: retrieval_scores(np.full((2, 3), np.nan), [0, 1], np.ones((4, 3)), [0] * 4, k=1),
     "NaN"),
    (lambda: retrieval_scores(np.ones((2, 3)), [0], np.ones((4, 3)), [0] * 4, k=1), "labels"),
    (lambda: retrieval_scores(np.ones((0, 3)), [], np.ones((4, 3)), [0] * 4, k=1), "empty"),
    (lambda: retrieval_scores(np.ones((2, 3)), [0, 1], np.ones((4, 3)), [0] * 4, k=1,
                              metric="manhattan"), "metric"),
    (lambda: HammingIndex(np.ones((3, 4), np.uint8)).radius_search(np.ones((1, 4)), -1),
     "radius"),
])
def test_bad_input_is_a_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_retrieval_report_ranks_a_models_codes():
    class Halves:  # any model with transform: real codes are ranked by cosine distance
        def transform(self, X):
            return np.asarray(X)[:, :2] * 2.0

    Xd, Xq = rng.normal(size=(40, 4)), rng.normal(size=(9, 4))
    yd, yq = rng.integers(0, 3, 40), rng.integers(0, 3, 9)
    r = retrieval_report(Halves(), Xd, yd, Xq, yq, k=(5,), max_queries=6)
    ref = retrieval_scores(Xq[:6, :2], yq[:6], Xd[:, :2], yd, metric="cosine", k=(5,))
    assert r["metric"] == "cosine" and r["n_codes"] == 2 and r["n_queries"] == 6
    assert r["map"] == ref["map"] and r["precision@5"] == ref["precision@5"]
    with pytest.raises(ValueError, match="no transform"):
        retrieval_report(object(), Xd, yd, Xq, yq)
    with pytest.raises(ValueError, match="labels"):
        retrieval_report(Halves(), Xd, None, Xq, yq)
