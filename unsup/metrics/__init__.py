"""Metrics for unsupervised models.

The names below are imported on first use (PEP 562 ``__getattr__``), so importing one metrics
module (a family's ``from unsup.metrics._hamming import ...``) does not pull in the others
(scikit-learn's metrics, the feature network): start-up of every command that imports a
family is shorter. ``from unsup.metrics import ari`` works as before.

(``sample_quality`` the function stays in :mod:`unsup.metrics.sample_quality`: exported here
it would hide its module.)
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# exported name -> the submodule that defines it
_WHERE = {
    "evaluate_model": "evaluate",
    **dict.fromkeys(("ari", "clustering_accuracy", "clustering_report", "contingency_matrix",
                     "match_labels", "nmi", "silhouette"), "clustering"),
    **dict.fromkeys(("balanced_subset", "knn_accuracy", "label_fraction_curve",
                     "linear_probe", "probe_summary"), "probes"),
    **dict.fromkeys(("build_classifier", "pretraining_experiment"), "pretraining"),
    **dict.fromkeys(("AISResult", "ais", "reverse_ais", "beta_schedule",
                     "rbm_log_partition_exact"), "likelihood"),
    "trustworthiness": "embedding",
    **dict.fromkeys(("mean_average_precision", "precision_at_k", "retrieval_report"),
                    "retrieval"),
    **dict.fromkeys(("fid", "kid", "mode_coverage", "ModeTracker"), "sample_quality"),
    "coherence": "topics",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        # a submodule not imported yet (``unsup.metrics.probes`` after ``import unsup.metrics``)
        if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}"):
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
