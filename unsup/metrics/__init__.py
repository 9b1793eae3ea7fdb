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
from unsup.metrics.evaluate import evaluate_model

__all__ = [
    "evaluate_model",
    "ari",
    "clustering_accuracy",
    "clustering_report",
    "contingency_matrix",
    "match_labels",
    "nmi",
    "silhouette",
]
