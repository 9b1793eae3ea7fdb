"""Clustering and mixture models trained by (hard or soft) EM on sufficient statistics."""

from unsup.cluster.dp_mixture import DirichletProcessMixture
from unsup.cluster.gaussian_mixture import GaussianMixture
from unsup.cluster.kmeans import KMeans
from unsup.cluster.minibatch_kmeans import MiniBatchKMeans

__all__ = ["KMeans", "MiniBatchKMeans", "GaussianMixture", "DirichletProcessMixture"]

from unsup.cluster import _report  # noqa: E402,F401,I001  (registers the report sections)
