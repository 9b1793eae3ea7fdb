"""Linear and sparse decompositions: PCA (full and randomized SVD), sparse coding, PSD."""

from unsup.decomposition.pca import PCA
from unsup.decomposition.psd import PSD
from unsup.decomposition.sparse_coding import (
    DictionaryLearning,
    SparseCoding,
    sparse_coding_objective,
    sparse_encode,
)
from unsup.registry import import_family_modules  # noqa: E402,I001

__all__ = ["PCA", "PSD", "SparseCoding", "DictionaryLearning", "sparse_encode",
           "sparse_coding_objective"]
# the models above keep their listing order; any other model file is found here
__all__ = import_family_modules(__name__, globals())

from unsup.decomposition import _report  # noqa: E402,F401,I001  (registers the report sections)
