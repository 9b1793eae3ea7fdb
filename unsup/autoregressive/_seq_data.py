"""Input handling of the char-RNN: what ``X`` is, symbols, training rows for TBPTT.

``X`` is one of

- a string (one text) or a list / 1-D array of strings (``layout="text"``: one sequence each;
  ``layout="columns"``: each string a grid of rows, read column by column, bottom to top);
- a 2-D array of non-negative integer symbol ids, one sequence per row (what scikit-learn's
  conformance checks and ``unsup fit --data x.npy`` give).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from unsup.data.sequences import build_vocabulary, encode, level_to_sequence

__all__ = ["is_text", "text_sequences", "id_sequences", "training_rows", "grid_context",
           "split_rows", "PAD", "POS_MAX"]

PAD = -1  # a padded position: no input, no target
POS_MAX = 63  # rows of a column told apart by the grid context (higher rows share the last)


def grid_context(s: np.ndarray, end: int, n_symbols: int) -> np.ndarray:
    """The grid context of every position of a column sequence ``s`` (columns ended by the
    symbol ``end``): an ``(len(s), 2)`` int64 array of

    - the row of ``s[t]`` in its column (0 = bottom; the column end is row ``n_rows``),
      capped at ``POS_MAX``;
    - the symbol at that row of the previous column (its left neighbour in the grid), or
      ``n_symbols`` ("none") in the first column or above the previous column's end.

    Both are functions of ``s[:t]`` only (the column ends before ``t`` and the symbols of
    the previous column), so feeding them as inputs keeps ``p(s_t | s_<t)`` a conditional
    of the chain rule: the likelihood stays exact.
    """
    s = np.asarray(s, dtype=np.int64)
    n = len(s)
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64)
    is_end = s == end
    col = np.zeros(n, dtype=np.int64)
    col[1:] = np.cumsum(is_end)[:-1]  # column of every position: column ends before it
    starts = np.concatenate([[0], np.flatnonzero(is_end) + 1])
    start = starts[col]
    pos = np.arange(n) - start
    prev = starts[np.maximum(col - 1, 0)]
    j = prev + pos
    ok = (col > 0) & (j < start)  # the previous column reaches this row
    left = np.where(ok, s[np.minimum(j, n - 1)], n_symbols)
    return np.stack([np.minimum(pos, POS_MAX), left], 1)


def split_rows(batch: torch.Tensor, grid: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Training rows as ``(ids, context)``: with the grid context a row holds the ids, then
    the rows and the left neighbours of its targets (:func:`training_rows`)."""
    if not grid:
        return batch.long(), None
    w = batch.shape[1] // 3
    b = batch.long()
    return b[:, :w], torch.stack([b[:, w:2 * w], b[:, 2 * w:]], -1)


def is_text(X: Any) -> bool:
    """Whether ``X`` is text (a string, or a sequence of strings) rather than an array."""
    if isinstance(X, str):
        return True
    if isinstance(X, np.ndarray):
        return X.ndim == 1 and X.size > 0 and all(isinstance(v, str) for v in X)
    if isinstance(X, (list, tuple)) and X:
        return all(isinstance(v, str) for v in X)
    return False


def text_sequences(X: Any, layout: str) -> tuple[list[str], list[int]]:
    """The strings of ``X`` as sequences (levels read column-wise), and each grid's row count
    (layout "columns"; empty otherwise)."""
    texts = [X] if isinstance(X, str) else [str(v) for v in X]
    if not any(texts):
        raise ValueError("empty text: there is no character to learn from or to score")
    if layout != "columns":
        return texts, []
    heights = []
    for t in texts:
        heights.append(len([r for r in t.split("\n") if r != ""]))
    return [level_to_sequence(t) for t in texts], heights


def text_ids(texts: list[str], vocabulary: Any, reset: bool) -> tuple[list[np.ndarray], str]:
    """Symbol ids of ``texts`` and the vocabulary (built from them on ``reset`` when None)."""
    if vocabulary is None:
        vocabulary = build_vocabulary(texts)
    voc = "".join(vocabulary)
    if len(set(voc)) != len(voc) or any(len(c) != 1 for c in vocabulary):
        raise ValueError("vocabulary must be distinct single characters")
    return encode(texts, voc), voc


def id_sequences(t: torch.Tensor, n_symbols: int | None) -> list[np.ndarray]:
    """Rows of a checked 2-D tensor as int64 id sequences; ids must be integers in
    ``[0, n_symbols)`` (any non-negative integer when ``n_symbols`` is None)."""
    a = t.detach().cpu().numpy()
    if a.min() < 0:
        raise ValueError("Negative values in data: a numeric X holds symbol ids, "
                         "non-negative integers, one sequence per row (pass strings for text)")
    if not np.all(a == np.round(a)):
        raise ValueError("a numeric X holds symbol ids: non-negative integers, one sequence "
                         "per row (pass strings for text); got non-integer values")
    ids = a.astype(np.int64)
    if n_symbols is not None and ids.max() >= n_symbols:
        raise ValueError(f"symbol id {int(ids.max())} is outside the vocabulary of "
                         f"{n_symbols} symbols (ids 0..{n_symbols - 1})")
    return list(ids)


def training_rows(seqs: list[np.ndarray], n_symbols: int, segment: int,
                  end: int | None = None) -> np.ndarray:
    """Cut every sequence into rows of ``segment`` targets: ``[input_0, x_a, ..., x_b]`` with
    ``input_0`` the start symbol for a sequence's first row, else the symbol before ``x_a``;
    padded with ``PAD``. Float32 (ids are exact below 2**24), as the engine holds rows.

    With ``end`` (the column-end symbol: grid context) a row is three rows side by side: the
    ids, then the :func:`grid_context` row and left neighbour of each target (position ``k``
    for the target at ``k``; position 0 and padding hold 0 and ``n_symbols``)."""
    rows = []
    for s in seqs:
        full = np.concatenate([[n_symbols], s])
        ctx = None
        if end is not None:
            ctx = np.concatenate([[[0, n_symbols]], grid_context(s, end, n_symbols)])
        for a in range(0, len(s), segment):
            r = np.full(segment + 1, PAD, dtype=np.float32)
            chunk = full[a:a + segment + 1]
            r[:len(chunk)] = chunk
            if ctx is not None:
                pos = np.zeros(segment + 1, dtype=np.float32)
                left = np.full(segment + 1, n_symbols, dtype=np.float32)
                c = ctx[a:a + segment + 1]
                pos[1:len(c)], left[1:len(c)] = c[1:, 0], c[1:, 1]
                r = np.concatenate([r, pos, left])
            rows.append(r)
    if not rows:
        raise ValueError("empty sequences: there is no symbol to learn from")
    return np.stack(rows)


def n_chunks(segment: int, seq_length: int) -> int:
    return math.ceil(segment / seq_length)
