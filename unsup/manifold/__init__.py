"""Neighbour embeddings: t-SNE (exact or FFT-interpolated gradient, transform for new points)."""

from unsup.manifold.tsne import TSNE

__all__ = ["TSNE"]

from unsup.manifold import _report  # noqa: E402,F401,I001  (registers the report sections)
