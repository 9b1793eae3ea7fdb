"""Documents in: tokeniser, stop words, document-frequency filters, sources, corpora, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from unsup.data import load
from unsup.data.text import (
    STOP_WORDS,
    DocumentTermMatrix,
    as_doc_term,
    read_documents,
    tokenize,
    vectorize,
)
from unsup.data.validation import DataError

DOCS = ["The cat sat on the mat.", "A dog and a cat; the dog's bone!", "Dogs chase cats."]


def test_tokenize_lowercases_keeps_inner_apostrophes_and_drops_stop_words():
    assert tokenize("We'll SEE 3 cats, o'er-the hill") == ["we'll", "see", "cats", "o'er",
                                                          "the", "hill"]
    assert tokenize("The cat and the hat", stop_words=STOP_WORDS) == ["cat", "hat"]
    assert "the" in STOP_WORDS and len(STOP_WORDS) > 300


def test_vectorize_counts_exactly_and_stays_sparse():
    X = vectorize(DOCS)
    assert isinstance(X, DocumentTermMatrix) and sp.issparse(X) and len(X) == 3
    words = X.vocabulary.words
    assert words == tuple(sorted(words)) and "the" not in words
    dense = X.toarray()
    assert dense[1, words.index("dog")] == 1 and dense[1, words.index("dog's")] == 1
    assert dense[0, words.index("cat")] == 1 and dense[2, words.index("cats")] == 1


def test_document_frequency_filters_and_max_features():
    docs = ["apple pear", "apple plum", "apple fig", "pear kiwi"]
    assert vectorize(docs, min_df=2).vocabulary.words == ("apple", "pear")
    assert vectorize(docs, max_df=0.5, empty="keep").vocabulary.words == ("fig", "kiwi",
                                                                          "pear", "plum")
    assert vectorize(docs, max_features=1, empty="keep").vocabulary.words == ("apple",)


def test_sources_file_folder_list_and_matrices(tmp_path):
    f = tmp_path / "docs.txt"
    f.write_text("\n".join(DOCS) + "\n\n")
    (tmp_path / "dir").mkdir()
    for i, d in enumerate(DOCS):
        (tmp_path / "dir" / f"{i}.txt").write_text(d)
    a = vectorize(DOCS)
    for src in (f, str(f), tmp_path / "dir"):
        b = vectorize(src)
        assert b.vocabulary == a.vocabulary
        assert (b != a).nnz == 0
    cv = CountVectorizer()
    M = cv.fit_transform(DOCS)
    before = M.copy()
    X = as_doc_term(M, cv)
    assert (M != before).nnz == 0  # the caller's matrix is not touched
    assert X.vocabulary.words == tuple(cv.get_feature_names_out())
    assert (X != M).nnz == 0


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="empty corpus"):
        vectorize([])
    with pytest.raises(DataError, match="document 1"):
        vectorize(["cat dog", "the and of"])
    assert vectorize(["cat dog", "the and of"], empty="drop").shape == (1, 2)
    with pytest.raises(DataError, match="no words left"):
        vectorize(["the and", "of a"])
    with pytest.raises(DataError, match="negative"):
        as_doc_term(np.array([[1.0, -1.0]]))
    with pytest.raises(DataError, match="vocabulary mismatch"):
        as_doc_term(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(DataError, match="no .txt"):
        read_documents(tmp_path)
    with pytest.raises(DataError, match="strings"):
        read_documents(["a", 3])


def test_encoding_with_a_fixed_vocabulary_drops_unknown_words():
    X = vectorize(["zebra cat cat"], vocabulary=["cat", "dog"])
    np.testing.assert_array_equal(X.toarray(), [[2, 0]])


def test_embedded_corpora_load_by_name():
    ds = load("shakespeare")
    assert sp.issparse(ds.X) and ds.X.shape[0] > 6000 and ds.X.shape[1] == len(ds.vocabulary)
    assert len(ds.documents) == ds.X.shape[0]
    assert np.asarray(ds.X.sum(1)).min() > 0  # speeches empty after stop words are dropped
    assert "king" in ds.vocabulary and "the" not in ds.vocabulary
    assert load("tiny-shakespeare").X.shape == ds.X.shape
    pytest.importorskip("gensim")
    lee = load("lee")
    assert lee.X.shape[0] == 300
