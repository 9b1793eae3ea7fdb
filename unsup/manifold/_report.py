"""Report sections of the neighbour embeddings (registered with ``report_section``).

The fitted map drawn coloured by label (when the report's labels belong to the training rows),
with its KL(P‖Q) and trustworthiness. Drawing never changes the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.manifold.tsne import TSNE
from unsup.report.hooks import SectionContext, report_section

__all__ = ["tsne_map"]


@report_section(TSNE, title="t-SNE map", order=50)
def tsne_map(model: Any, ctx: SectionContext) -> None:
    from unsup.metrics.embedding import trustworthiness
    from unsup.report.plots import embedding_plot

    Y = np.asarray(model.embedding_)
    n = Y.shape[0]
    labels = None
    if ctx.y is not None and len(ctx.y) == n:
        labels = np.asarray(ctx.y)
    rows = [{"points": n, "dimension": Y.shape[1], "method": model.method_,
             "KL(P‖Q)": model.kl_divergence_}]
    if 20 < n <= 20000:
        rows[0]["trustworthiness (k=10)"] = trustworthiness(model.training_data_, Y, 10)
    ctx.report.table(rows)
    if Y.shape[1] == 1:
        Y = np.c_[Y, np.zeros(n)]
    elif Y.shape[1] > 2:
        ctx.report.text(f"a {Y.shape[1]}-D map: its first two coordinates are drawn")
    ctx.report.figure(embedding_plot(Y[:, :2], labels, title="t-SNE map"),
                      caption="the fitted map" + (", coloured by label" if labels is not None
                                                  else " (no labels for these rows)"))
