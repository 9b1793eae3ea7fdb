"""The autoencoder family's report sections (``report_section``): first-layer filters.

Drawing never changes the model.
"""

from __future__ import annotations

from typing import Any

from unsup.autoencoders.autoencoder import Autoencoder
from unsup.report.hooks import SectionContext, report_section

__all__ = ["autoencoder_filters"]

_MAX_FILTERS = 50


@report_section(Autoencoder, title="First-layer filters", order=50)
def autoencoder_filters(model: Any, ctx: SectionContext) -> None:
    """Weights of the encoder's first linear layer (none for convolutional encoders)."""
    for m in model.module_.encoder.modules():
        if type(m).__name__.startswith("Conv"):
            ctx.report.text("Not drawn: the encoder starts with a convolution.")
            return
        if type(m).__name__ == "Linear":
            W = m.weight.detach().cpu().numpy()
            ctx.image_rows(W[:_MAX_FILTERS], f"First-layer weights of "
                           f"{min(len(W), _MAX_FILTERS)} of {len(W)} units, each scaled to its "
                           "own range.")
            return
    ctx.report.text("Not drawn: no linear layer in the encoder.")
