"""One function that measures whatever a fitted estimator can be measured on."""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.metrics.clustering import clustering_report, silhouette

__all__ = ["evaluate_model"]


def evaluate_model(model: Any, X: Any, y: Any = None, *, silhouette_samples: int = 2000,
                   given: Any = None) -> dict[str, Any]:
    """Metrics of ``model`` on ``X`` (and labels ``y`` when given), by capability.

    - clusterers (``predict``): accuracy under the Hungarian matching, NMI, ARI (with labels);
      silhouette on a seeded sample of ``silhouette_samples`` points;
    - k-means (``inertia_``): inertia and inertia per sample;
    - density models (``score_samples``): mean log-likelihood per sample in nats, with its
      kind (``exact`` here; bounds and estimates say so) and, for AIS estimates, the
      interval implied by the model's ``log_partition_interval_``;
    - recommenders (``_estimator_type == "recommender"``): RMSE and MAE of the predicted
      ratings at the observed entries of ``X``, conditioning on ``given`` (the same users'
      training ratings) when given, else on ``X`` itself (reconstruction).
    """
    out: dict[str, Any] = {"n_samples": int(len(X))}
    if getattr(model, "_estimator_type", None) == "recommender":
        out.update(model.rating_metrics(X, given))
        out["rating_metrics_kind"] = "reconstruction" if given is None else "held-out"
        return out
    pred = None
    if hasattr(model, "predict"):
        pred = np.asarray(model.predict(X))
        if y is not None:
            out.update(clustering_report(y, pred))
        if len(np.unique(pred)) > 1 and silhouette_samples:
            out["silhouette"] = silhouette(X, pred, sample_size=silhouette_samples,
                                           random_state=0)
    if hasattr(model, "inertia_") and hasattr(model, "score"):
        inertia = -float(model.score(X))
        out["inertia"] = inertia
        out["inertia_per_sample"] = inertia / max(1, len(X))
    if hasattr(model, "score_samples"):
        ll = np.asarray(model.score_samples(X), dtype=np.float64)
        out["log_likelihood"] = float(ll.mean())
        out["log_likelihood_kind"] = getattr(model, "likelihood_kind_", "exact")
        # stochastic estimates of log Z (AIS) carry an interval: log p(v) = -F(v) - log Z
        interval = getattr(model, "log_partition_interval_", None)
        log_z = getattr(model, "log_partition_", None)
        if interval is not None and log_z is not None and out["log_likelihood_kind"] != "exact":
            lo, hi = (float(t) for t in interval)
        else:
            lo = hi = None
        if lo is not None and lo != hi:  # an exact log Z has no interval to report
            out["log_likelihood_low"] = out["log_likelihood"] + float(log_z) - hi
            out["log_likelihood_high"] = out["log_likelihood"] + float(log_z) - lo
        rev = getattr(model, "log_partition_reverse_", None)
        if rev is not None and log_z is not None:  # the other side of the AIS sandwich
            out["log_likelihood_reverse_ais"] = out["log_likelihood"] + float(log_z) - rev
        check = getattr(model, "log_partition_check_", None)
        if check:  # AIS estimates are checked against a certain lower bound on log Z
            out["log_partition_check"] = check
        if callable(getattr(model, "perplexity", None)):  # topic models: per-word perplexity
            n_words = float(np.asarray(X, dtype=np.float64).sum())
            if n_words > 0:
                out["perplexity"] = float(np.exp(-ll.sum() / n_words))
    return out
