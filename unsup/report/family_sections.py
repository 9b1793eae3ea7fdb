"""Interim home of family-specific report sections and metrics (to move into the families).

The generic report and ``evaluate`` never read a family's fitted attributes; what only a family
knows how to draw or measure is registered by class, through
:func:`unsup.report.hooks.report_section` and :func:`unsup.metrics.evaluate.model_metrics`.
The families below have not yet registered their own, so their sections live here for now:

* clustering (``unsup.cluster``): centres as images; k-means inertia;
* decomposition (``unsup.decomposition``): principal components as images;
* autoencoders (``unsup.autoencoders``): first-layer filters as images.

TO MOVE: each block belongs in its family package (e.g. ``unsup/cluster/_report.py``, imported
by the package's ``__init__``), as the energy family does in ``unsup/energy/_report.py``.
Nothing else changes when it moves: the registrations are keyed by class.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.autoencoders import Autoencoder
from unsup.cluster import GaussianMixture, KMeans, MiniBatchKMeans
from unsup.decomposition import PCA
from unsup.metrics.evaluate import model_metrics
from unsup.report.hooks import SectionContext, report_section

__all__: list[str] = []

_MAX_IMAGES = 100
_MAX_FILTERS = 50


def _np(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _images(ctx: SectionContext, rows: np.ndarray, caption: str,
            titles: list[str] | None = None) -> None:
    from unsup.report.plots import image_grid

    if ctx.image_shape is None:
        ctx.report.text("Not drawn: the data has no image shape.")
        return
    if rows.ndim != 2 or rows.shape[1] != int(np.prod(ctx.image_shape)):
        ctx.report.text(f"Not drawn: rows of shape {rows.shape[1:]} are not images of shape "
                        f"{ctx.image_shape}.")
        return
    ctx.report.figure(image_grid(rows, ctx.image_shape, titles=titles), caption=caption)


# -- clustering (move to unsup/cluster) ------------------------------------------------------
@report_section(KMeans, GaussianMixture, title="Cluster centres", order=50)
def cluster_centres(model: Any, ctx: SectionContext) -> None:
    """k-means centres or mixture means, with mixing weights for mixtures."""
    centres = _np(model.means_ if isinstance(model, GaussianMixture) else model.cluster_centers_)
    k = centres.shape[0]
    shown = centres[:_MAX_IMAGES]
    if isinstance(model, GaussianMixture):
        w = _np(model.weights_).reshape(-1)
        titles = [f"{i} (π={w[i]:.2g})" for i in range(shown.shape[0])]
    else:
        titles = [str(i) for i in range(shown.shape[0])]
    _images(ctx, shown, f"{k} centres" + (f" (first {_MAX_IMAGES} shown)"
                                          if k > _MAX_IMAGES else ""), titles)


@model_metrics(KMeans, MiniBatchKMeans)
def kmeans_inertia(model: Any, X: Any) -> dict[str, Any]:
    """Inertia (sum of squared distances to the nearest centre) of ``X``, and per sample."""
    inertia = -float(model.score(X))
    return {"inertia": inertia, "inertia_per_sample": inertia / max(1, len(X))}


# -- decomposition (move to unsup/decomposition) -----------------------------------------------
@report_section(PCA, title="First-layer filters (principal components)", order=50)
def pca_components(model: Any, ctx: SectionContext) -> None:
    comp = _np(model.components_)
    _images(ctx, comp[:_MAX_FILTERS], f"The first {min(len(comp), _MAX_FILTERS)} of "
            f"{len(comp)} principal directions, each scaled to its own range.")


# -- autoencoders (move to unsup/autoencoders) ---------------------------------------------------
@report_section(Autoencoder, title="First-layer filters", order=50)
def autoencoder_filters(model: Any, ctx: SectionContext) -> None:
    """Weights of the encoder's first linear layer (none for convolutional encoders)."""
    for m in model.module_.encoder.modules():
        if type(m).__name__.startswith("Conv"):
            ctx.report.text("Not drawn: the encoder starts with a convolution.")
            return
        if type(m).__name__ == "Linear":
            W = _np(m.weight)
            _images(ctx, W[:_MAX_FILTERS], f"First-layer weights of "
                    f"{min(len(W), _MAX_FILTERS)} of {len(W)} units, each scaled to its own "
                    "range.")
            return
    ctx.report.text("Not drawn: no linear layer in the encoder.")
