"""Linear decompositions: PCA (full and randomized SVD)."""

from unsup.decomposition.pca import PCA

__all__ = ["PCA"]
