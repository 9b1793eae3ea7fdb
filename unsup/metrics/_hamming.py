r"""Binary codes packed into 64-bit words: packing, Hamming distances with popcount, and a
Hamming-ball / Hamming-ranking index.

A ``b``-bit code is stored as ``W = ⌈b/64⌉`` unsigned 64-bit words, bit ``j`` of the code being
bit ``j mod 64`` (least significant first) of word ``j // 64``; the padding bits are 0. The
Hamming distance of two codes is ``Σ_w popcount(q_w XOR d_w)`` (``numpy.bitwise_count``), computed
for a block of queries against the whole database at a time, so memory stays bounded.

Ties are broken by database index (a stable sort): of two items at the same distance, the one
stored first comes first. This is deterministic; callers that want another order permute the
database (see ``unsup.metrics.retrieval``, argument ``ties``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np

__all__ = ["pack_bits", "unpack_bits", "hamming_distances", "hamming_blocks", "HammingIndex"]

_BLOCK_BYTES = 64 * 2**20  # the XOR buffer of one block of queries


def _check_bits(bits: np.ndarray) -> np.ndarray:
    b = np.asarray(bits)
    if b.ndim != 2:
        raise ValueError(f"binary codes must be 2-D (n_items, n_bits), got shape {b.shape}")
    if b.dtype != bool:
        if not (np.issubdtype(b.dtype, np.integer) or np.issubdtype(b.dtype, np.floating)):
            raise ValueError(f"binary codes must be 0/1 numbers or booleans, got {b.dtype}")
        if b.size and not np.isin(b, (0, 1)).all():
            raise ValueError("binary codes must hold only 0 and 1 (threshold real codes first, "
                             "or use a real-valued metric)")
    return b.astype(bool, copy=False)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 codes of shape (n, b) into uint64 words of shape (n, ⌈b/64⌉)."""
    b = _check_bits(bits)
    n, n_bits = b.shape
    if n_bits == 0:
        raise ValueError("binary codes need at least one bit")
    n_words = -(-n_bits // 64)
    padded = np.zeros((n, n_words * 64), dtype=bool)
    padded[:, :n_bits] = b
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def unpack_bits(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """The inverse of :func:`pack_bits`: uint8 0/1 codes of shape (n, n_bits)."""
    p = np.ascontiguousarray(np.asarray(packed, dtype=np.uint64)).astype("<u8")
    if p.ndim != 2 or not 0 < n_bits <= 64 * p.shape[1]:
        raise ValueError(f"packed codes of shape {p.shape} cannot hold {n_bits} bits")
    return np.unpackbits(p.view(np.uint8), axis=1, bitorder="little")[:, :n_bits]


def _check_packed(Q: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Q, D = np.asarray(Q), np.asarray(D)
    if Q.dtype != np.uint64 or D.dtype != np.uint64:
        raise ValueError(f"packed codes must be uint64 (pack_bits), got {Q.dtype} and {D.dtype}")
    if Q.ndim != 2 or D.ndim != 2 or Q.shape[1] != D.shape[1]:
        raise ValueError(f"packed codes must be 2-D with the same number of words, got shapes "
                         f"{Q.shape} and {D.shape}")
    return Q, D


def hamming_blocks(Q: np.ndarray, D: np.ndarray, block: int | None = None
                   ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, distances)`` for blocks of query rows: ``distances[i, j]`` is the Hamming
    distance of packed query ``start + i`` to packed item ``j`` (uint16)."""
    Q, D = _check_packed(Q, D)
    n_words = Q.shape[1]
    if block is None:
        block = max(1, _BLOCK_BYTES // max(1, 8 * n_words * len(D)))
    for s in range(0, len(Q), block):
        q = Q[s:s + block]
        dist = np.zeros((len(q), len(D)), dtype=np.uint16)
        for w in range(n_words):  # one word at a time: the buffer is (block, n_db) words
            dist += np.bitwise_count(q[:, w, None] ^ D[None, :, w])
        yield s, dist


def hamming_distances(Q: np.ndarray, D: np.ndarray) -> np.ndarray:
    """All Hamming distances between packed codes ``Q`` (n_q, W) and ``D`` (n_d, W), (n_q, n_d)."""
    Q, D = _check_packed(Q, D)
    out = np.empty((len(Q), len(D)), dtype=np.uint16)
    for s, dist in hamming_blocks(Q, D):
        out[s:s + len(dist)] = dist
    return out


class HammingIndex:
    """Packed binary codes of a database, searched by Hamming distance.

    Two searches, with the same answers in the same order (distance, then database index):

    - :meth:`radius_search`: every item within Hamming distance ``r`` of a query. With codes of
      at most 64 bits the index is a table of the distinct codes (sorted, with the items at each
      address), and a query probes the ``Σ_{i≤r} C(b, i)`` addresses within its Hamming ball, as
      in semantic hashing's "memory address" lookup [1]_ — the cost does not grow with the
      database; otherwise (or when the ball has more addresses than the database has items) it
      scans every item.
    - :meth:`kneighbors`: exhaustive Hamming ranking, the ``k`` nearest items.

    Parameters
    ----------
    codes : ndarray of shape (n_items, n_bits)
        0/1 codes (bool or integers); or packed uint64 words with ``n_bits`` given.
    n_bits : int, optional
        The code length when ``codes`` are packed.

    References
    ----------
    .. [1] Salakhutdinov & Hinton, "Semantic hashing", Int. J. Approximate Reasoning 50(7), 2009.
    """

    def __init__(self, codes: np.ndarray, n_bits: int | None = None) -> None:
        codes = np.asarray(codes)
        if codes.dtype == np.uint64 and n_bits is not None:
            if codes.ndim != 2 or codes.shape[1] != -(-int(n_bits) // 64):
                raise ValueError(f"packed codes of shape {codes.shape} do not hold {n_bits} bits")
            self.packed, self.n_bits = codes, int(n_bits)
        else:
            self.packed, self.n_bits = pack_bits(codes), codes.shape[1]
        if len(self.packed) == 0:
            raise ValueError("a Hamming index needs at least one item")
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.packed)

    def _queries(self, Q: np.ndarray) -> np.ndarray:
        Q = np.asarray(Q)
        if Q.ndim == 1:
            Q = Q[None]
        if Q.dtype == np.uint64:
            _check_packed(Q, self.packed)
            return Q
        if Q.ndim != 2 or Q.shape[1] != self.n_bits:
            raise ValueError(f"queries must have {self.n_bits} bits, got shape {Q.shape}")
        return pack_bits(Q)

    def kneighbors(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices (n_queries, k) of the ``k`` nearest items, by exhaustive
        ranking; ties by database index."""
        Q = self._queries(Q)
        if not 1 <= k <= len(self):
            raise ValueError(f"k must be in [1, {len(self)}], got {k}")
        dist = np.empty((len(Q), k), dtype=np.uint16)
        idx = np.empty((len(Q), k), dtype=np.int64)
        for s, d in hamming_blocks(Q, self.packed):
            order = np.argsort(d, axis=1, kind="stable")[:, :k]  # radix sort on uint16
            idx[s:s + len(d)] = order
            dist[s:s + len(d)] = np.take_along_axis(d, order, axis=1)
        return dist, idx

    def _build_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._table is None:
            keys = self.packed[:, 0]
            order = np.argsort(keys, kind="stable")  # items of one address stay in index order
            uniq, start = np.unique(keys[order], return_index=True)
            self._table = (uniq, np.append(start, len(keys)), order)
        return self._table

    def n_probes(self, r: int) -> int:
        """How many addresses a Hamming ball of radius ``r`` holds."""
        return sum(comb(self.n_bits, i) for i in range(min(r, self.n_bits) + 1))

    def radius_search(self, Q: np.ndarray, r: int, method: str = "auto"
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query, ``(distances, indices)`` of every item within Hamming distance ``r``,
        sorted by distance then index.

        ``method``: "table" (probe the ball's addresses; codes of <= 64 bits), "scan" (compare
        with every item) or "auto" (the table when its ball has fewer addresses than there are
        items).
        """
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
            raise ValueError(f"the radius must be a non-negative integer, got {r!r}")
        if method not in ("auto", "table", "scan"):
            raise ValueError(f"method={method!r} is not 'auto', 'table' or 'scan'")
        Q = self._queries(Q)
        if method == "table" and self.n_bits > 64:
            raise ValueError(f"the address table needs codes of at most 64 bits, not {self.n_bits}")
        if method == "auto":
            method = "table" if self.n_bits <= 64 and self.n_probes(r) < len(self) else "scan"
        if method == "scan":
            out = []
            for _, d in hamming_blocks(Q, self.packed):
                for row in d:
                    hit = np.flatnonzero(row <= r)
                    order = np.argsort(row[hit], kind="stable")
                    out.append((row[hit][order], hit[order]))
            return out
        uniq, bounds, order = self._build_table()
        masks, mdist = _flip_masks(self.n_bits, r)
        out = []
        for q in Q[:, 0]:
            keys = q ^ masks  # the ball's addresses, by distance
            pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
            found = np.flatnonzero(uniq[pos] == keys)
            ids = [order[bounds[p]:bounds[p + 1]] for p in pos[found]]
            dists = [np.full(len(i), mdist[f], dtype=np.uint16)
                     for i, f in zip(ids, found, strict=True)]
            if not ids:
                out.append((np.zeros(0, np.uint16), np.zeros(0, np.int64)))
                continue
            d, i = np.concatenate(dists), np.concatenate(ids)
            o = np.lexsort((i, d))
            out.append((d[o], i[o].astype(np.int64)))
        return out


@lru_cache(maxsize=8)
def _flip_masks(n_bits: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Every uint64 with at most ``r`` of its low ``n_bits`` bits set, by popcount."""
    masks, dist = [0], [0]
    for i in range(1, min(r, n_bits) + 1):
        for bits in combinations(range(n_bits), i):
            masks.append(sum(1 << b for b in bits))
            dist.append(i)
    return np.array(masks, dtype=np.uint64), np.array(dist, dtype=np.uint16)
