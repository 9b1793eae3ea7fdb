"""Documents in: text to a sparse document-term matrix with its vocabulary.

Sources: a list of strings, a ``.txt`` file with one document per line, a folder of ``.txt``
files (one document each, in sorted file-name order), or an existing document-term matrix
(scipy sparse, a dense array, or scikit-learn ``CountVectorizer`` output with its vectoriser).
The result is a :class:`DocumentTermMatrix`: a scipy CSR matrix of counts (float64) that
carries its :class:`Vocabulary`. A corpus is never made dense.

Tokeniser: lower-case, then words of letters (apostrophes inside words kept: ``we'll``), at
least ``min_length`` letters; an embedded English stop-word list (scikit-learn's
``ENGLISH_STOP_WORDS``, 318 words, shipped with the installed scikit-learn); then
``min_df`` / ``max_df`` (document frequency: a count, or a fraction of the documents) and
``max_features`` (the most frequent words) as in ``CountVectorizer``, which does the counting.

Embedded corpora (``unsup.data.load(name)``):

- ``shakespeare``: Tiny Shakespeare (shipped in ``unsup/data/corpora`` with its README and
  licence) split into speeches, ``min_df=5``, ``max_df=0.5``, English stop words;
- ``lee``: the Lee background corpus (300 news articles) that gensim ships in its test data,
  read from the installed gensim package when present (nothing is downloaded).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from unsup.data.dataset import Dataset
from unsup.data.datasets import register_dataset
from unsup.data.validation import DataError

__all__ = ["STOP_WORDS", "TOKEN_PATTERN", "Vocabulary", "DocumentTermMatrix", "TextDataset",
           "tokenize", "read_documents", "vectorize", "as_doc_term", "load_shakespeare",
           "load_lee", "shakespeare_speeches"]

STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS)
TOKEN_PATTERN = r"[^\W\d_]+(?:'[^\W\d_]+)*"  # letters, with inner apostrophes
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_CORPORA = Path(__file__).resolve().parent / "corpora"


def tokenize(text: str, *, min_length: int = 2, stop_words: Iterable[str] | None = None
             ) -> list[str]:
    """Lower-cased word tokens of ``text`` (stop words removed when given)."""
    stop = frozenset(stop_words or ())
    return [t for t in _TOKEN_RE.findall(text.lower()) if len(t) >= min_length and t not in stop]


@dataclass(frozen=True)
class Vocabulary:
    """The words of a document-term matrix, column ``j`` being ``words[j]``.

    Saved with a topic model (as the JSON list ``vocabulary_``), so that its topics print as
    words and new text is encoded with the same columns.
    """

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(str(w) for w in self.words))
        if len(set(self.words)) != len(self.words):
            raise DataError("a vocabulary lists a word twice")

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @property
    def index(self) -> dict[str, int]:
        """word -> column."""
        idx = self.__dict__.get("_index")
        if idx is None:
            idx = {w: i for i, w in enumerate(self.words)}
            object.__setattr__(self, "_index", idx)
        return idx

    def to_list(self) -> list[str]:
        return list(self.words)


class DocumentTermMatrix(sp.csr_matrix):
    """A CSR matrix of word counts (documents x words) that carries its :class:`Vocabulary`.

    ``len(X)`` is the number of documents (scipy refuses ``len`` on sparse matrices; the
    CLI and the metrics count rows with it). Arithmetic and slicing return plain CSR.
    """

    vocabulary: Vocabulary | None = None

    def __len__(self) -> int:
        return int(self.shape[0])


@dataclass(eq=False)
class TextDataset(Dataset):
    """A :class:`Dataset` whose ``X`` is a sparse :class:`DocumentTermMatrix`.

    ``documents`` keeps the raw texts (for reports and bigram models); ``vocabulary`` the
    columns.
    """

    documents: list[str] | None = None
    vocabulary: Vocabulary | None = None

    def __post_init__(self) -> None:
        if not sp.issparse(self.X):
            super().__post_init__()
        if self.vocabulary is None:
            self.vocabulary = getattr(self.X, "vocabulary", None)

    def __repr__(self) -> str:
        nnz = self.X.nnz if sp.issparse(self.X) else int(np.count_nonzero(self.X))
        return (f"TextDataset(name={self.name!r}, documents={self.X.shape[0]}, "
                f"vocabulary={self.X.shape[1]}, tokens={int(self.X.sum())}, nnz={nnz})")

    def subset(self, indices: Any) -> TextDataset:
        idx = np.asarray(indices)
        docs = None if self.documents is None else [self.documents[i] for i in idx]
        return TextDataset(X=_wrap(sp.csr_matrix(self.X)[idx], self.vocabulary),
                           name=self.name, info=dict(self.info), documents=docs,
                           vocabulary=self.vocabulary)


def _wrap(X: Any, vocabulary: Vocabulary | None) -> DocumentTermMatrix:
    out = DocumentTermMatrix(sp.csr_matrix(X, dtype=np.float64))
    out.vocabulary = vocabulary
    return out


def read_documents(source: str | Path | Sequence[str]) -> list[str]:
    """Documents from a list of strings, a one-document-per-line file or a folder of .txt."""
    if isinstance(source, (str, Path)) and (isinstance(source, Path) or "\n" not in source):
        path = Path(source).expanduser()
        if path.is_dir():
            files = sorted(path.glob("*.txt"))
            if not files:
                raise DataError(f"no .txt files in folder {path}")
            return [f.read_text(encoding="utf-8", errors="replace") for f in files]
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                return [line.rstrip("\n") for line in fh if line.strip()]
        if isinstance(source, Path):
            raise FileNotFoundError(f"no such file or folder: {path}")
        raise DataError(f"{source!r} is neither a file nor a folder; pass a list of strings "
                        "for documents given as text")
    if isinstance(source, Iterable):
        docs = list(source)
        bad = [i for i, d in enumerate(docs) if not isinstance(d, str)]
        if bad:
            raise DataError(f"documents must be strings; item {bad[0]} is "
                            f"{type(docs[bad[0]]).__name__}")
        return docs
    raise DataError(f"cannot read documents from {type(source).__name__}")


def as_doc_term(X: Any, vocabulary: Vocabulary | Sequence[str] | Any = None
                ) -> DocumentTermMatrix:
    """An existing document-term matrix (scipy sparse, dense array) as a DocumentTermMatrix.

    ``vocabulary`` may be a :class:`Vocabulary`, a list of words, or a fitted
    ``CountVectorizer`` (its ``get_feature_names_out()``). Counts must be finite and >= 0.
    """
    if hasattr(vocabulary, "get_feature_names_out"):
        vocabulary = vocabulary.get_feature_names_out()
    if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
        vocabulary = Vocabulary(tuple(vocabulary))
    # copy: sum_duplicates sorts indices in place, and a cast may share them with the caller's
    M = sp.csr_matrix(X, dtype=np.float64, copy=True) if sp.issparse(X) else sp.csr_matrix(
        np.asarray(X, dtype=np.float64))
    if M.ndim != 2 or M.shape[0] == 0:
        raise DataError(f"empty corpus: the document-term matrix has shape {M.shape}")
    if not np.isfinite(M.data).all():
        raise DataError("the document-term matrix contains NaN or infinity")
    if (M.data < 0).any():
        raise DataError("the document-term matrix has negative counts")
    if vocabulary is not None and len(vocabulary) != M.shape[1]:
        raise DataError(f"vocabulary mismatch: {len(vocabulary)} words for a matrix with "
                        f"{M.shape[1]} columns")
    M.sum_duplicates()
    return _wrap(M, getattr(X, "vocabulary", None) if vocabulary is None else vocabulary)


def vectorize(source: Any, *, min_df: float = 1, max_df: float = 1.0,
              max_features: int | None = None, stop_words: Iterable[str] | None = STOP_WORDS,
              min_length: int = 2, vocabulary: Vocabulary | Sequence[str] | None = None,
              empty: str = "error") -> DocumentTermMatrix:
    """Count the words of documents into a sparse matrix with its vocabulary.

    Parameters
    ----------
    source : list of str, path, or sparse / dense matrix
        See :func:`read_documents`; a matrix is passed to :func:`as_doc_term`.
    min_df, max_df : int or float
        Keep words in at least ``min_df`` and at most ``max_df`` documents (a float in (0, 1]
        is a fraction of the documents), as in scikit-learn's ``CountVectorizer``.
    max_features : int or None
        Keep the most frequent words only.
    stop_words : iterable of str or None
        Words dropped before counting (default: :data:`STOP_WORDS`).
    vocabulary : Vocabulary or list of str, optional
        Encode with these columns (e.g. a fitted model's ``vocabulary_``); unknown words are
        dropped and the df / size filters are not applied.
    empty : {"error", "drop", "keep"}
        Documents with no word left: a :class:`DataError` naming them, dropped, or kept as
        empty rows.
    """
    if empty not in ("error", "drop", "keep"):
        raise ValueError(f"empty must be 'error', 'drop' or 'keep', got {empty!r}")
    if sp.issparse(source) or isinstance(source, np.ndarray):
        return as_doc_term(source, vocabulary)
    docs = read_documents(source)
    if not docs:
        raise DataError("empty corpus: no documents")
    stop = frozenset(stop_words or ())
    vocab = None
    if vocabulary is not None:
        vocab = vocabulary if isinstance(vocabulary, Vocabulary) else Vocabulary(tuple(vocabulary))
    cv = CountVectorizer(
        tokenizer=lambda s: tokenize(s, min_length=min_length, stop_words=stop),
        lowercase=False, token_pattern=None, dtype=np.float64,
        vocabulary=None if vocab is None else vocab.index,
        **({} if vocab is not None else {"min_df": min_df, "max_df": max_df,
                                          "max_features": max_features}))
    try:
        M = cv.fit_transform(docs) if vocab is None else cv.transform(docs)
    except ValueError as e:  # "empty vocabulary; perhaps the documents only contain stop words"
        raise DataError(f"no words left to count ({e}); check stop_words, min_df and "
                        "max_df") from None
    if vocab is None:
        vocab = Vocabulary(tuple(cv.get_feature_names_out()))
    lengths = np.asarray(M.sum(1)).ravel()
    if (lengths == 0).any() and empty != "keep":
        bad = np.flatnonzero(lengths == 0)
        if empty == "error":
            raise DataError(f"{len(bad)} document(s) have no word left after tokenising, stop "
                            f"words and the vocabulary filters (first: document {bad[0]}: "
                            f"{docs[bad[0]][:60]!r}); pass empty='drop' to drop them")
        M = M[lengths > 0]
        if M.shape[0] == 0:
            raise DataError("empty corpus: every document is empty after stop words")
    return _wrap(M, vocab)


# -- embedded corpora ---------------------------------------------------------------------------
def shakespeare_speeches() -> list[str]:
    """Tiny Shakespeare as speeches: blocks between blank lines, without the speaker line."""
    with gzip.open(_CORPORA / "tinyshakespeare" / "input.txt.gz", "rt", encoding="utf-8") as f:
        text = f.read()
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().split("\n")
        if len(lines) > 1 and lines[0].endswith(":"):
            out.append(" ".join(lines[1:]))
    return out


def _text_dataset(name: str, docs: list[str], info: dict[str, Any], **kw: Any) -> TextDataset:
    stop = frozenset(kw.pop("stop_words", STOP_WORDS))
    X = vectorize(docs, stop_words=stop, empty="keep", **kw)
    keep = np.flatnonzero(np.asarray(X.sum(1)).ravel() > 0)
    X = _wrap(X[keep], X.vocabulary)
    return TextDataset(X=X, name=name, documents=[docs[i] for i in keep],
                       vocabulary=X.vocabulary, info={**info, **kw, "n_dropped_empty":
                                                      len(docs) - len(keep)})


def load_shakespeare(min_df: float = 5, max_df: float = 0.5,
                     max_features: int | None = None) -> TextDataset:
    """Tiny Shakespeare split into speeches (speeches empty after stop words are dropped)."""
    return _text_dataset("shakespeare", shakespeare_speeches(),
                         {"source": "unsup/data/corpora/tinyshakespeare (char-rnn, MIT; "
                                    "public-domain text)", "unit": "speech"},
                         min_df=min_df, max_df=max_df, max_features=max_features)


def _lee_path() -> Path | None:
    try:
        import gensim.test.utils as gtu
    except ImportError:
        return None
    p = Path(gtu.__file__).resolve().parent / "test_data" / "lee_background.cor"
    return p if p.is_file() else None


def load_lee(min_df: float = 2, max_df: float = 0.5,
             max_features: int | None = None) -> TextDataset:
    """The Lee background corpus (300 news articles), from the installed gensim package."""
    p = _lee_path()
    if p is None:
        raise FileNotFoundError("the 'lee' corpus is read from gensim's test data "
                                "(gensim/test/test_data/lee_background.cor); install gensim "
                                "(pip install gensim) — unsup never downloads data")
    return _text_dataset("lee", read_documents(p), {"source": str(p), "unit": "article"},
                         min_df=min_df, max_df=max_df, max_features=max_features)


register_dataset("shakespeare", "text: Tiny Shakespeare split into ~7,000 speeches "
                 "(sparse word counts, English stop words removed, min_df=5, max_df=0.5)",
                 load_shakespeare, aliases=("tinyshakespeare", "tiny-shakespeare"))
register_dataset("lee", lambda: "text: Lee background corpus, 300 news articles (read from "
                 "the installed gensim's test data; " + ("found)" if _lee_path() else
                                                         "gensim not installed)"),
                 load_lee)
