"""Linear and sparse decompositions: PCA (full and randomized SVD), sparse coding, PSD."""

from unsup.decomposition.pca import PCA
from unsup.decomposition.psd import PSD
from unsup.decomposition.sparse_coding import (
    DictionaryLearning,
    SparseCoding,
    sparse_coding_objective,
    sparse_encode,
)

__all__ = ["PCA", "PSD", "SparseCoding", "DictionaryLearning", "sparse_encode",
           "sparse_coding_objective"]

from unsup.decomposition import _report  # noqa: E402,F401,I001  (registers the report sections)
