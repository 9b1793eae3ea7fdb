"""Measures and pictures of Super Mario Bros. levels (grids of tiles, :mod:`unsup.data.sequences`).

- :func:`pipe_counts`: well-formed and malformed pipes. A pipe is well formed when its top
  ``<>`` stands directly above zero or more ``[]`` rows (same two columns) and the lowest of
  them rests on a solid tile (``smb.json``'s "solid" tag) or is on the bottom row. Malformed:
  a top that is not so (a ``<`` without ``>`` to its right, a ``>`` without ``<`` to its left,
  a body that ends on a non-solid tile or half a body), and every vertical run of body tiles
  (``[`` or ``]``; a ``[]`` pair counts once) that no top claims. All 89 pipes of the corpus
  are well formed.
- :func:`tile_frequencies` and :func:`total_variation`: the tile distribution of levels and the
  total-variation distance ½ Σ |p - q| between two of them.
- :func:`tile_map`: a level drawn as coloured tiles with the tile names as legend.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from unsup.data.sequences import mario_tiles

__all__ = ["pipe_counts", "tile_frequencies", "total_variation", "tile_map", "TILE_COLOURS"]

TILE_COLOURS = {"-": "#9ecbff", "X": "#8b4513", "S": "#c0602a", "?": "#ffd700", "Q": "#b8860b",
                "E": "#d62728", "<": "#2ca02c", ">": "#2ca02c", "[": "#1f7a1f",
                "]": "#1f7a1f", "o": "#ffef5c", "B": "#222222", "b": "#555555"}
_OTHER = "#ff00ff"  # a tile outside the legend


def _solid() -> set[str]:
    return {c for c, names in mario_tiles().items() if "solid" in names}


def _rows(grid: str) -> list[str]:
    return [r for r in grid.split("\n") if r != ""]


def pipe_counts(grid: str) -> tuple[int, int]:
    """``(well_formed, malformed)`` pipes of one level grid (rows top first)."""
    rows = _rows(grid)
    H, W = len(rows), max((len(r) for r in rows), default=0)
    rows = [r.ljust(W, "-") for r in rows]
    solid = _solid()
    claimed = np.zeros((H, W), dtype=bool)
    good = bad = 0
    for r in range(H):
        for c in range(W):
            t = rows[r][c]
            if t == ">" and (c == 0 or rows[r][c - 1] != "<"):
                bad += 1  # a right half with no left half
                continue
            if t != "<":
                continue
            if c + 1 >= W or rows[r][c + 1] != ">":
                bad += 1
                continue
            claimed[r, c] = claimed[r, c + 1] = True
            k = r + 1
            while k < H and rows[k][c] == "[" and rows[k][c + 1] == "]":
                claimed[k, c] = claimed[k, c + 1] = True
                k += 1
            if k == H or (rows[k][c] in solid and rows[k][c + 1] in solid
                          and rows[k][c] not in "[]" and rows[k][c + 1] not in "[]"):
                good += 1
            else:
                bad += 1  # hangs in the air, or a half body below
    orphan = np.array([[rows[r][c] in "[]" and not claimed[r, c] for c in range(W)]
                       for r in range(H)], dtype=bool).reshape(H, W)
    for c in range(W):  # body tiles no top claimed: one malformed pipe per vertical run
        for r in range(H):
            if not orphan[r, c] or (r and orphan[r - 1, c]):
                continue  # not the top of a run
            if rows[r][c] == "]" and c and orphan[r, c - 1] and rows[r][c - 1] == "[":
                continue  # the right half of a headless "[]": counted with its left half
            bad += 1
    return good, bad


def tile_frequencies(grids: Iterable[str], tiles: Iterable[str] | None = None
                     ) -> dict[str, float]:
    """Share of every tile over all the grids' cells (``tiles``: the keys to report)."""
    n: Counter[str] = Counter()
    for g in grids:
        n.update(g.replace("\n", ""))
    total = sum(n.values()) or 1
    keys = sorted(set(tiles) if tiles is not None else set(n))
    return {k: n.get(k, 0) / total for k in keys}


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    """½ Σ_t |p(t) - q(t)| over the union of the tiles."""
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


_TAGS = {"solid", "passable", "pipe", "hazard", "damaging", "moving", "collectable", "cannon",
         "question block"}


def _name(names: list[str]) -> str:
    """The specific name of a tile ("top-left pipe", "enemy"), not a shared tag ("solid")."""
    return next((n for n in names if n not in _TAGS), names[0])


def tile_map(grids: list[str], titles: list[str] | None = None, max_width: int = 220) -> Any:
    """A matplotlib figure: each level as coloured tiles (first ``max_width`` columns), with
    ``smb.json``'s tile names as the legend."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    legend = mario_tiles()
    keys = list(TILE_COLOURS)
    index = {k: i for i, k in enumerate(keys)}
    cmap = ListedColormap([TILE_COLOURS[k] for k in keys] + [_OTHER])
    n = max(len(grids), 1)
    fig, axes = plt.subplots(n, 1, figsize=(12, 1.0 + 1.25 * n), squeeze=False)
    for i, g in enumerate(grids):
        rows = [r[:max_width] for r in _rows(g)]
        W = max((len(r) for r in rows), default=1)
        A = np.array([[index.get(ch, len(keys)) for ch in r.ljust(W, "-")] for r in rows])
        ax = axes[i, 0]
        ax.imshow(A, cmap=cmap, vmin=0, vmax=len(keys), interpolation="nearest",
                  aspect="equal")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(titles[i], fontsize=8, loc="left")
    handles = [Patch(color=TILE_COLOURS[k], label=f"{k} {_name(legend.get(k, ['?']))}")
               for k in keys]
    fig.legend(handles=handles, loc="lower center", ncol=7, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
