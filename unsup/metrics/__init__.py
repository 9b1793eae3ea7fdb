"""Metrics for unsupervised models.

(``sample_quality`` the function stays in :mod:`unsup.metrics.sample_quality`: exported here
it would hide its module.)
"""

from unsup.metrics.clustering import (
    ari,
    clustering_accuracy,
    clustering_report,
    contingency_matrix,
    match_labels,
    nmi,
    silhouette,
)
from unsup.metrics.embedding import trustworthiness
from unsup.metrics.evaluate import evaluate_model
from unsup.metrics.likelihood import (
    AISResult,
    ais,
    beta_schedule,
    rbm_log_partition_exact,
    reverse_ais,
)
from unsup.metrics.pretraining import build_classifier, pretraining_experiment
from unsup.metrics.probes import (
    balanced_subset,
    knn_accuracy,
    label_fraction_curve,
    linear_probe,
    probe_summary,
)
from unsup.metrics.retrieval import mean_average_precision, precision_at_k, retrieval_report
from unsup.metrics.sample_quality import ModeTracker, fid, kid, mode_coverage  # noqa: I001
from unsup.metrics.topics import coherence

__all__ = [
    "evaluate_model",
    "ari",
    "clustering_accuracy",
    "clustering_report",
    "contingency_matrix",
    "match_labels",
    "nmi",
    "silhouette",
    "balanced_subset",
    "build_classifier",
    "knn_accuracy",
    "label_fraction_curve",
    "linear_probe",
    "probe_summary",
    "pretraining_experiment",
    "AISResult",
    "ais",
    "reverse_ais",
    "beta_schedule",
    "rbm_log_partition_exact",
    "trustworthiness",
    "mean_average_precision",
    "precision_at_k",
    "retrieval_report",
    "fid",
    "kid",
    "mode_coverage",
    "ModeTracker",
    "coherence",
]
