"""Symbol sequences for sequence models (the char-RNN): text, and levels read column by column.

Sources (:func:`read_texts`): a text file (``.txt`` or gzip-compressed ``.gz``), a folder of
text files (one sequence each, in sorted file-name order), or a list of strings. Symbols are
characters: the vocabulary is the sorted set of characters of the training texts
(:func:`build_vocabulary`), or a given one, in which case an unknown character is an error
naming it and its position (:func:`encode`).

Embedded corpora (shipped inside the package with their licences, nothing is downloaded):

- Tiny Shakespeare (``unsup/data/corpora/tinyshakespeare``; Karpathy's char-rnn, MIT; the
  text is in the public domain): :func:`tiny_shakespeare`, about 1.1 million characters;
- the 18 Super Mario Bros. levels of the Video Game Level Corpus (``unsup/data/corpora/
  vglc-smb``; Summerville, Snodgrass, Mateas & Ontañón 2016, MIT): :func:`mario_levels`, each
  a grid of 14 rows, and the tile names of ``smb.json``: :func:`mario_tiles`.

Levels as sequences ("Super Mario as a string", Summerville & Mateas 2016): a level is read
column by column, left to right, each column bottom to top, and every column ends with a
newline, so a sequence model sees the vertical structure (ground first, then what stands on
it). :func:`level_to_sequence` and :func:`sequence_to_level` convert both ways; the round trip
is exact on every corpus level.

Text as a data source (the command line's ``--data`` for models that take text):
:func:`load_text` reads a ``.txt`` / ``.txt.gz`` file, a folder of them, or an embedded corpus
by name (:func:`text_corpora`: ``tinyshakespeare`` and its 90% / 10% split, ``mario`` (alias
``vglc-smb``) and its 15 / 3 split); :func:`is_text_source` says whether a ``--data`` value
names text at all, so a numeric model can refuse it in one line.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_texts", "build_vocabulary", "encode", "decode", "tiny_shakespeare",
           "mario_levels", "mario_tiles", "level_to_sequence", "sequence_to_level",
           "COLUMN_END", "MARIO_ROWS", "MARIO_EMPTY", "TextData", "load_text", "text_corpora",
           "is_text_source", "corpus_layout"]

_CORPORA = Path(__file__).resolve().parent / "corpora"
COLUMN_END = "\n"  # ends every column of a level read as a sequence
MARIO_ROWS = 14
MARIO_EMPTY = "-"


def _read(path: Path, encoding: str) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding=encoding) as f:
            return f.read()
    return path.read_text(encoding=encoding)


def read_texts(source: str | os.PathLike[str] | Sequence[str], encoding: str = "utf-8"
               ) -> list[str]:
    """Sequences from a text file, a folder of text files, or a list of strings.

    Parameters
    ----------
    source : path or sequence of str
        A file (``.gz`` is decompressed): one sequence, the whole file. A folder: every
        ``*.txt`` / ``*.txt.gz`` file in it, one sequence each, sorted by name. A list of
        strings: the strings themselves.
    encoding : str, default="utf-8"

    Raises
    ------
    ValueError
        If there is no text (an empty folder, an empty list, an empty string).
    """
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str)
                                                       and "\n" in source):
        p = Path(source)
        if p.is_dir():
            files = sorted(f for f in p.iterdir()
                           if f.is_file() and (f.name.endswith(".txt")
                                               or f.name.endswith(".txt.gz")))
            if not files:
                raise ValueError(f"no .txt or .txt.gz files in the folder {p}")
            texts = [_read(f, encoding) for f in files]
        elif p.is_file():
            texts = [_read(p, encoding)]
        else:
            raise ValueError(f"{source!r} is neither a file nor a folder; pass a list of "
                             "strings for literal text")
    else:
        texts = list(source)  # type: ignore[arg-type]
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("a list of sequences must hold strings")
    if not texts or not any(texts):
        raise ValueError("no text: every sequence is empty")
    return texts


def build_vocabulary(texts: Iterable[str]) -> str:
    """The sorted set of characters of ``texts``, as one string (symbol ``i`` = ``s[i]``)."""
    chars: set[str] = set()
    for t in texts:
        chars.update(t)
    if not chars:
        raise ValueError("no text: cannot build a vocabulary from empty sequences")
    return "".join(sorted(chars))


def encode(texts: Iterable[str], vocabulary: str | Sequence[str]) -> list[np.ndarray]:
    """Each text as an int64 array of symbol indices in ``vocabulary``.

    Raises
    ------
    ValueError
        On a character outside the vocabulary (naming it, the text and the position).
    """
    index = {c: i for i, c in enumerate(vocabulary)}
    out = []
    for k, t in enumerate(texts):
        try:
            out.append(np.fromiter((index[c] for c in t), dtype=np.int64, count=len(t)))
        except KeyError as e:
            pos = next(i for i, c in enumerate(t) if c not in index)
            raise ValueError(f"unknown character {e.args[0]!r} at position {pos} of sequence "
                             f"{k}: it is not in the vocabulary {''.join(vocabulary)!r}"
                             ) from None
    return out


def decode(ids: Iterable[int], vocabulary: str | Sequence[str]) -> str:
    """The text of symbol indices ``ids``."""
    return "".join(vocabulary[int(i)] for i in ids)


def tiny_shakespeare() -> str:
    """Tiny Shakespeare, the embedded copy (1,115,394 characters, 65 distinct)."""
    return _read(_CORPORA / "tinyshakespeare" / "input.txt.gz", "utf-8")


def mario_levels() -> dict[str, str]:
    """The 18 Super Mario Bros. levels of the VGLC, ``{"mario-1-1": grid, ...}`` in world
    order; each grid is 14 lines (top row first) of equal width, joined by newlines."""
    d = _CORPORA / "vglc-smb"
    files = sorted(list(d.glob("mario-*.txt")) + list(d.glob("mario-*.txt.gz")))
    out = {}
    for f in files:
        rows = _read(f, "utf-8").splitlines()
        out[f.name.split(".")[0]] = "\n".join(rows)
    return out


def mario_tiles() -> dict[str, list[str]]:
    """The tile legend of ``smb.json``: character -> its names (``"X": ["solid", "ground"]``)."""
    return json.loads((_CORPORA / "vglc-smb" / "smb.json").read_text())["tiles"]


def _grid_rows(grid: str) -> list[str]:
    rows = grid.split("\n")
    while rows and rows[-1] == "":
        rows.pop()
    if not rows:
        raise ValueError("an empty level: a level is a grid of rows joined by newlines")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError(f"a level must be a rectangular grid: its rows have widths "
                         f"{sorted(widths)}")
    return rows


def level_to_sequence(grid: str) -> str:
    """A level grid (rows top first, joined by newlines) read column by column, left to right,
    each column bottom to top and ended by ``COLUMN_END``."""
    rows = _grid_rows(grid)
    if any(COLUMN_END in r for r in rows):  # cannot happen after split; kept for clarity
        raise ValueError("tiles cannot be newlines")
    return "".join("".join(r[c] for r in reversed(rows)) + COLUMN_END
                   for c in range(len(rows[0])))


def sequence_to_level(seq: str, n_rows: int = MARIO_ROWS, fill: str = MARIO_EMPTY
                      ) -> tuple[str, int, int]:
    """Write a column sequence back as a grid of ``n_rows`` rows.

    Columns are the pieces between ``COLUMN_END`` s (a last unfinished piece counts as a
    column; an empty sequence gives no column). A column of another height is cut at the top,
    or filled with ``fill`` above, to ``n_rows`` tiles.

    Returns
    -------
    grid : str
        ``n_rows`` lines joined by newlines (top row first).
    n_exact : int
        Columns that had exactly ``n_rows`` tiles.
    n_columns : int
    """
    cols = seq.split(COLUMN_END)
    if cols and cols[-1] == "":
        cols.pop()
    n_exact = sum(len(c) == n_rows for c in cols)
    fixed = [(c + fill * n_rows)[:n_rows] for c in cols]  # bottom first
    rows = ["".join(c[n_rows - 1 - r] for c in fixed) for r in range(n_rows)]
    return "\n".join(rows), n_exact, len(cols)


def _as_levels(X: Any) -> list[str]:  # used by the char-RNN's "columns" layout
    return [level_to_sequence(g) for g in X]


# -- text as a data source -----------------------------------------------------------------------


@dataclass
class TextData:
    """Sequences read from a text source: ``texts`` (one string per sequence), the ``name`` it
    was loaded by, and ``layout``, how the texts are meant to be read ("text", or "columns" for
    level grids such as the Mario corpus)."""

    texts: list[str]
    name: str
    layout: str = "text"

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_chars(self) -> int:
        return sum(len(t) for t in self.texts)


def _shakespeare_part(part: str) -> list[str]:
    text = tiny_shakespeare()
    cut = int(0.9 * len(text))  # the benchmark's split: first 90% train, last 10% validation
    return [{"all": text, "train": text[:cut], "valid": text[cut:]}[part]]


def _mario_part(part: str) -> list[str]:
    levels = list(mario_levels().values())
    return {"all": levels, "train": levels[:15], "test": levels[15:]}[part]


# name -> (description, loader, layout)
_TEXT_CORPORA: dict[str, tuple[str, Callable[[], list[str]], str]] = {
    "tinyshakespeare": ("text: Tiny Shakespeare as one string (1,115,394 characters, 65 "
                        "distinct; public domain)", lambda: _shakespeare_part("all"), "text"),
    "tinyshakespeare-train": ("text: the first 90% of Tiny Shakespeare (1,003,854 characters)",
                              lambda: _shakespeare_part("train"), "text"),
    "tinyshakespeare-valid": ("text: the last 10% of Tiny Shakespeare (111,540 characters)",
                              lambda: _shakespeare_part("valid"), "text"),
    "mario": ("levels: the 18 Super Mario Bros. levels of the VGLC, 14-row tile grids "
              "(read column by column; MIT)", lambda: _mario_part("all"), "columns"),
    "mario-train": ("levels: the first 15 Mario levels", lambda: _mario_part("train"),
                    "columns"),
    "mario-test": ("levels: the last 3 Mario levels", lambda: _mario_part("test"), "columns"),
}
_TEXT_ALIASES = {"vglc-smb": "mario", "tiny-shakespeare": "tinyshakespeare"}
_TEXT_SUFFIXES = (".txt", ".txt.gz")


def text_corpora() -> list[tuple[str, str]]:
    """Names and descriptions of the embedded text corpora :func:`load_text` knows."""
    return [(k, v[0]) for k, v in _TEXT_CORPORA.items()]


def _corpus_key(spec: str) -> str | None:
    key = spec.strip().lower().replace("_", "-")
    key = _TEXT_ALIASES.get(key, key)
    return key if key in _TEXT_CORPORA else None


def corpus_layout(spec: str | os.PathLike[str]) -> str | None:
    """How an embedded corpus is meant to be read ("text" or "columns"); None for a path."""
    key = _corpus_key(spec) if isinstance(spec, str) else None
    return None if key is None else _TEXT_CORPORA[key][2]


def is_text_source(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names text: an embedded corpus, a ``.txt`` / ``.txt.gz`` file, or a
    folder holding such files (and so no images)."""
    if isinstance(spec, str) and _corpus_key(spec) is not None:
        return True
    p = Path(spec).expanduser()
    if p.name.lower().endswith(_TEXT_SUFFIXES):
        return True
    if p.is_dir():
        return any(f.is_file() and f.name.lower().endswith(_TEXT_SUFFIXES)
                   for f in p.iterdir())
    return False


def load_text(spec: str | os.PathLike[str], encoding: str = "utf-8") -> TextData:
    """Text by corpus name (:func:`text_corpora`) or path (a file: one sequence; a folder:
    one sequence per ``.txt`` / ``.txt.gz`` file, sorted by name; see :func:`read_texts`).

    Raises
    ------
    ValueError
        A path that is neither a file nor a folder, a folder without text files, or no text.
    """
    key = _corpus_key(spec) if isinstance(spec, str) else None
    if key is not None:
        _, loader, layout = _TEXT_CORPORA[key]
        return TextData(loader(), key, layout)
    p = Path(spec).expanduser()
    if not p.exists():
        names = ", ".join(_TEXT_CORPORA)
        raise ValueError(f"no text at {str(spec)!r}: not a file, a folder or a corpus name "
                         f"({names})")
    return TextData(read_texts(p, encoding), str(spec))
