"""Metrics for unsupervised models."""

from unsup.metrics.clustering import (
    ari,
    clustering_accuracy,
    clustering_report,
    contingency_matrix,
    match_labels,
    nmi,
    silhouette,
)

__all__ = [
    "ari",
    "clustering_accuracy",
    "clustering_report",
    "contingency_matrix",
    "match_labels",
    "nmi",
    "silhouette",
]
