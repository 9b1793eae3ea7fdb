"""Clustering and mixture models trained by (hard or soft) EM on sufficient statistics."""

from unsup.cluster.kmeans import KMeans  # noqa: I001  (registration order: listing order)
from unsup.cluster.minibatch_kmeans import MiniBatchKMeans
from unsup.cluster.gaussian_mixture import GaussianMixture
from unsup.cluster.dp_mixture import DirichletProcessMixture
from unsup.registry import import_family_modules

__all__ = ["KMeans", "MiniBatchKMeans", "GaussianMixture", "DirichletProcessMixture"]
# the classic models above keep their listing order; any other model file is found here
__all__ = import_family_modules(__name__, globals())

from unsup.cluster import _report  # noqa: E402,F401,I001  (registers the report sections)
