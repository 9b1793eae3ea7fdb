"""The clustering family's report sections and metrics (k-means and mixtures).

Registered by class with :func:`unsup.report.hooks.report_section` and
:func:`unsup.metrics.evaluate.model_metrics`; drawing and measuring never change the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.cluster.dp_mixture import DirichletProcessMixture
from unsup.cluster.gaussian_mixture import GaussianMixture
from unsup.cluster.kmeans import KMeans
from unsup.cluster.minibatch_kmeans import MiniBatchKMeans
from unsup.metrics.evaluate import model_metrics
from unsup.report.hooks import SectionContext, report_section

__all__ = ["cluster_centres", "kmeans_inertia", "number_of_clusters"]

_MAX_IMAGES = 100


@report_section(KMeans, MiniBatchKMeans, GaussianMixture, title="Cluster centres", order=50)
def cluster_centres(model: Any, ctx: SectionContext) -> None:
    """k-means centres or mixture means, with mixing weights for mixtures."""
    mixture = isinstance(model, GaussianMixture)
    centres = np.asarray(model.means_ if mixture else model.cluster_centers_)
    k = centres.shape[0]
    shown = centres[:_MAX_IMAGES]
    if mixture:
        w = np.asarray(model.weights_).reshape(-1)
        titles = [f"{i} (π={w[i]:.2g})" for i in range(shown.shape[0])]
    else:
        titles = [str(i) for i in range(shown.shape[0])]
    more = f" (first {_MAX_IMAGES} shown)" if k > _MAX_IMAGES else ""
    ctx.image_rows(shown, f"{k} centres{more}", titles)


@model_metrics(KMeans, MiniBatchKMeans)
def kmeans_inertia(model: Any, X: Any) -> dict[str, Any]:
    """Inertia (sum of squared distances to the nearest centre) of ``X``, and per sample."""
    inertia = -float(model.score(X))
    return {"inertia": inertia, "inertia_per_sample": inertia / max(1, len(X))}


@report_section(DirichletProcessMixture, title="Discovering K", order=45)
def number_of_clusters(model: Any, ctx: SectionContext) -> None:
    """Occupied clusters over the fit (Gibbs sweeps or VI iterations) and the posterior of K."""
    from unsup.report.plots import count_posterior_plot

    trace = getattr(model, "k_trace_", None)
    if trace is None:  # the variational fit records it in its history
        trace = [h.get("n_clusters", np.nan) for h in getattr(model, "history_", [])]
        xlabel, title = "coordinate-ascent iteration", "components holding ≥ 1 point of mass"
    else:
        xlabel, title = "Gibbs sweep", "occupied clusters"
    post = np.asarray(model.k_posterior_)
    fig = count_posterior_plot(trace, post, xlabel=xlabel, what="clusters", title=title)
    ctx.report.figure(fig, caption=f"{model.n_clusters_} clusters in the fitted partition; "
                      f"posterior mode K = {int(np.argmax(post))}")
