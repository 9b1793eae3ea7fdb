"""One function that measures whatever a fitted estimator can be measured on, by capability.

:func:`evaluate_model` asks what a model can do (``predict``, ``score_samples`` /
``log_likelihood``, ``score``, ``rating_metrics``, ``perplexity``) and measures that; the
likelihood is the typed record of :func:`unsup.likelihood.likelihood_of`. A family adds metrics
that only it knows about with :func:`model_metrics` beside its code, so this module never reads
a family's fitted attributes. Measuring never changes the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from unsup.metrics.clustering import clustering_report, silhouette

__all__ = ["evaluate_model", "model_metrics", "metrics_for"]

_METRICS: list[tuple[tuple[type, ...], Callable[[Any, Any], dict[str, Any]]]] = []


def model_metrics(*classes: type) -> Callable[[Callable[[Any, Any], dict[str, Any]]],
                                              Callable[[Any, Any], dict[str, Any]]]:
    """Decorator: ``fn(model, X) -> dict`` adds family metrics for instances of ``classes``."""
    if not classes:
        raise ValueError("model_metrics needs at least one model class")

    def deco(fn: Callable[[Any, Any], dict[str, Any]]) -> Callable[[Any, Any], dict[str, Any]]:
        key = (fn.__module__, fn.__qualname__)
        _METRICS[:] = [m for m in _METRICS if (m[1].__module__, m[1].__qualname__) != key]
        _METRICS.append((tuple(classes), fn))
        return fn

    return deco


def metrics_for(model: Any) -> list[Callable[[Any, Any], dict[str, Any]]]:
    """The family metric functions registered for ``model``'s class, in registration order."""
    from unsup.registry import load_families

    try:
        load_families()
    except ImportError as e:  # a broken family must not take every other model's metrics
        warnings.warn(f"family metrics unavailable ({e})", RuntimeWarning, stacklevel=2)
    return [fn for classes, fn in _METRICS if isinstance(model, classes)]


def evaluate_model(model: Any, X: Any, y: Any = None, *, silhouette_samples: int = 2000,
                   given: Any = None) -> dict[str, Any]:
    """Metrics of ``model`` on ``X`` (and labels ``y`` when given), by capability.

    - clusters (``predict``): accuracy under the Hungarian matching, NMI, ARI (with labels);
      silhouette on a seeded sample of ``silhouette_samples`` points;
    - density (``score_samples`` or ``log_likelihood``): ``likelihood``, the typed record of
      :func:`unsup.likelihood.likelihood_of` (nats per sample, kind, estimator, support,
      uncertainty, bits/dim for discrete data), and the flat keys ``log_likelihood``
      (nats/sample), ``log_likelihood_kind``, ``log_likelihood_support`` and, when the
      estimator gives an interval, ``log_likelihood_low`` / ``log_likelihood_high``;
      ``perplexity`` for models with a ``perplexity`` method (topic models: per word);
    - ``score`` for models without a density (e.g. k-means: minus the inertia);
    - recommenders (``rating_metrics``): RMSE and MAE of the predicted ratings at the observed
      entries of ``X``, conditioning on ``given`` (the same users' training ratings) when
      given, else on ``X`` itself (reconstruction);
    - whatever the model's family registered with :func:`model_metrics` (e.g. inertia).
    """
    from unsup.likelihood import LikelihoodUndefined, likelihood_of

    out: dict[str, Any] = {"n_samples": int(len(X))}
    if callable(getattr(model, "rating_metrics", None)):
        out.update(model.rating_metrics(X, given))
        out["rating_metrics_kind"] = "reconstruction" if given is None else "held-out"
        return out
    if callable(getattr(model, "predict", None)):
        pred = np.asarray(model.predict(X))
        if y is not None:
            out.update(clustering_report(y, pred))
        # a silhouette needs distances between rows: not on a sparse document-term matrix
        if len(np.unique(pred)) > 1 and silhouette_samples and not sp.issparse(X):
            out["silhouette"] = silhouette(X, pred, sample_size=silhouette_samples,
                                           random_state=0)
    try:
        lk = likelihood_of(model, X)
    except LikelihoodUndefined as e:  # e.g. PCA keeping every component
        lk = None
        out["likelihood_undefined"] = str(e)
    if lk is not None:
        out["likelihood"] = lk.to_dict()
        out["log_likelihood"] = lk.nats
        out["log_likelihood_kind"] = lk.kind
        out["log_likelihood_support"] = lk.support
        if lk.interval is not None and lk.interval[0] != lk.interval[1]:
            out["log_likelihood_low"], out["log_likelihood_high"] = (float(t)
                                                                      for t in lk.interval)
        if lk.bits_per_dim is not None:
            out["bits_per_dim"] = lk.bits_per_dim
        if callable(getattr(model, "perplexity", None)):
            n_words = float(np.asarray(X, dtype=np.float64).sum())
            if n_words > 0:
                out["perplexity"] = float(np.exp(-lk.nats * lk.n_samples / n_words))
    elif callable(getattr(model, "score", None)) and "likelihood_undefined" not in out:
        out["score"] = float(model.score(X))
    for fn in metrics_for(model):
        out.update(fn(model, X))
    return out
