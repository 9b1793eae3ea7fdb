"""The energy family's report sections, registered with :func:`unsup.report.hooks.report_section`.

The generic report knows nothing of energy models' fitted attributes; the family draws its own
first-layer filters, Gibbs chains and log Z summary here. Drawing never changes the model (Gibbs
chains are seeded from the report's seed; log Z is shown as cached, or computed exactly when
small, never estimated by AIS here: that is ``unsup evaluate``'s job).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.energy._deep import _DeepEnergy
from unsup.energy._rbm import _BaseRBM, cached_log_partition
from unsup.energy.dbm import DBM
from unsup.energy.dbn import DBN
from unsup.energy.gaussian_rbm import GaussianBernoulliRBM
from unsup.energy.rbm import BernoulliRBM
from unsup.report.hooks import SectionContext, report_section

__all__ = ["first_layer_weights"]


def first_layer_weights(model: Any) -> np.ndarray | None:
    """The first layer's weights as rows over the visible units (H, D), or None."""
    if isinstance(model, DBM):
        return np.asarray(model.W1_)
    if isinstance(model, DBN):
        return np.asarray(model.weights_[0])
    comp = getattr(model, "components_", None)
    return None if comp is None else np.asarray(comp)


def _fits_image(ctx: SectionContext, D: int) -> bool:
    return ctx.image_shape is not None and int(np.prod(ctx.image_shape)) == D


@report_section(BernoulliRBM, GaussianBernoulliRBM, DBN, DBM, title="First-layer filters",
                order=60)
def first_layer_filters(model: Any, ctx: SectionContext) -> None:
    from unsup.report.plots import image_grid

    W = first_layer_weights(model)
    if W is None or W.ndim != 2:
        return
    if not _fits_image(ctx, W.shape[1]):
        ctx.report.text(f"{W.shape[0]} hidden units over {W.shape[1]} visible units (no image "
                        "shape to draw the filters as images).")
        return
    n = min(50, W.shape[0])
    ctx.report.figure(image_grid(W[:n], ctx.image_shape),
                      caption=f"weights of the first {n} hidden units (each scaled to its own "
                              "range)")


@report_section(BernoulliRBM, GaussianBernoulliRBM, DBN, DBM, title="Gibbs chains", order=70)
def gibbs_chains(model: Any, ctx: SectionContext) -> None:
    from unsup.report.plots import image_grid

    steps = (1, 10, 100, 1000)
    chain = model.gibbs_chain(8, steps=steps, random_state=ctx.seed)  # (S, C, D)
    if not _fits_image(ctx, chain.shape[2]):
        return
    rows = chain.reshape(-1, chain.shape[2])
    titles = [f"{s} steps" if c == 0 else "" for s in steps for c in range(chain.shape[1])]
    ctx.report.figure(image_grid(rows, ctx.image_shape, titles=titles, ncols=chain.shape[1]),
                      caption="8 Gibbs chains from the base-rate model: visible means after "
                              "1, 10, 100 and 1000 steps (one row each)")


@report_section(_BaseRBM, _DeepEnergy, title="log Z", order=80)
def log_partition_summary(model: Any, ctx: SectionContext) -> None:
    lz = cached_log_partition(model)
    if lz is None:
        exact = getattr(model, "_exact_log_partition", lambda: None)()
        if exact is None:
            ctx.report.text("log Z is not cached on this model; the likelihoods estimate it by "
                            "forward AIS when asked (see the likelihood section), and "
                            "model.set_log_partition(model.estimate_log_partition()) caches one.")
            return
        rows = [{"quantity": "log Z", "value": exact, "method": "exact enumeration"}]
    else:
        rows = [{"quantity": "log Z", "value": lz.log_z, "method": lz.method,
                 "interval": f"[{lz.log_z_low:.3f}, {lz.log_z_high:.3f}]",
                 "check": lz.check or ""}]
    rev = getattr(model, "log_partition_reverse_", None)
    if rev is not None:
        lo, hi = getattr(model, "log_partition_reverse_interval_", None) or (rev, rev)
        rows.append({"quantity": "log Z", "value": rev, "method": "reverse AIS",
                     "interval": f"[{lo:.3f}, {hi:.3f}]", "check": ""})
    ctx.report.table(rows, caption="log partition function (nats)")


@report_section(DBN, DBM, title="Pre-training curves", order=90)
def pretraining_curves(model: Any, ctx: SectionContext) -> None:
    """Greedy layer-wise pre-training: each layer's RBM record (``pretrain_history_``)."""
    from unsup.report.plots import curves_plot
    from unsup.report.sections import history_series

    layers = getattr(model, "pretrain_history_", None) or []
    series: dict[str, list[float]] = {}
    for i, h in enumerate(layers):
        if h:
            for k, v in history_series(h).items():
                series[f"layer {i + 1}: {k.replace('_', ' ')}"] = v
    if not series:
        return
    ctx.report.figure(curves_plot(series, xlabel="monitoring point (every few updates)",
                                  ylabel="per-layer training measure"),
                      caption="Greedy layer-wise pre-training: each layer's RBM, in the order "
                              "the layers were trained.")
