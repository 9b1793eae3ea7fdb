"""Neighbour embeddings: t-SNE (exact or FFT-interpolated gradient, transform for new points)."""

from unsup.manifold.tsne import TSNE

__all__ = ["TSNE"]
