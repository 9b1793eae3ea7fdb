"""Report sections of the exact autoregressive image models (NADE, MADE, PixelCNN).

- **Completions**: test images cut after half their pixels (in the model's order), the rest
  drawn from the model three times — what the conditionals have learned about shape.
- **Conditionals**: for a few test images, every pixel's predicted value given the pixels
  before it (P(x_d = 1 | x_<d) for binary pixels, the expected grey level otherwise): the
  model's "surprise" map, one forward pass.

Drawing is seeded from the report's seed and never changes the model (the MADE mask in use is
restored to mask 0, which every likelihood evaluation sets anyway).
"""

from __future__ import annotations

import numpy as np
import torch

from unsup.autoregressive._img_base import ExactAutoregressive
from unsup.report.hooks import SectionContext, report_section

__all__: list[str] = []


def _test_rows(model: ExactAutoregressive, ctx: SectionContext, n: int) -> np.ndarray | None:
    if ctx.image_shape is None or int(np.prod(ctx.image_shape)) != model.n_features_in_:
        ctx.report.text("Not drawn: the data has no image shape.")
        return None
    if ctx.X is None or len(ctx.X) == 0:
        ctx.report.text("Not drawn: no data given to the report.")
        return None
    X = np.asarray(ctx.X)
    idx = np.random.default_rng(ctx.seed).choice(len(X), size=min(n, len(X)), replace=False)
    try:
        model._x(X[idx])  # data the model cannot score (e.g. grey rows for a Bernoulli model)
    except ValueError as e:
        ctx.report.text(f"Not drawn: {e}")
        return None
    return X[idx]


def _unit(model: ExactAutoregressive, rows: np.ndarray) -> np.ndarray:
    """Rows on [0, 1] for drawing."""
    if model.output_ == "bernoulli":
        return rows
    return rows / (model.pixel_scale_ * (int(model.n_levels) - 1))


@report_section(ExactAutoregressive, title="Completions", order=60)
def completions(model: ExactAutoregressive, ctx: SectionContext) -> None:
    from unsup.report.plots import image_grid

    X = _test_rows(model, ctx, 6)
    if X is None:
        return
    D = model.n_features_in_
    half = D // 2
    seen = model._order(0)[:half].numpy()
    shown = np.full_like(_unit(model, X), 0.5)
    shown[:, seen] = _unit(model, X)[:, seen]
    draws = [_unit(model, model._complete(X, half, random_state=ctx.seed + i))
             for i in range(3)]
    rows = np.concatenate([np.stack([_unit(model, X)[i], shown[i], *(d[i] for d in draws)])
                           for i in range(len(X))])
    titles = ["image", "first half", "completion", "completion", "completion"] * len(X)
    ctx.report.figure(image_grid(rows, ctx.image_shape, titles=titles, ncols=5),
                      caption="per row: a test image, its first half of pixels in the model's "
                              "order (grey: not given), and three completions drawn from the "
                              "model's conditionals")


@report_section(ExactAutoregressive, title="Conditionals", order=61)
def conditionals(model: ExactAutoregressive, ctx: SectionContext) -> None:
    from unsup.report.plots import image_grid

    X = _test_rows(model, ctx, 5)
    if X is None:
        return
    with torch.no_grad():
        model.module_.eval()
        if hasattr(model, "_use"):
            model._use(0)
        x = model._x(X)
        out = model._params(x)
        if model.output_ == "bernoulli":
            pred = torch.sigmoid(out[..., 0])
            what = "P(x_d = 1 | pixels before d)"
        elif model.output_ == "categorical":
            L = out.shape[-1]
            levels = torch.arange(L, dtype=out.dtype, device=out.device) / (L - 1)
            pred = (torch.softmax(out, -1) * levels).sum(-1)
            what = "E[x_d | pixels before d] (grey level on [0, 1])"
        else:
            pred = out[..., 0].clamp(0, 1)
            what = "location of the logistic of x_d given the pixels before d"
    rows = np.concatenate([np.stack([_unit(model, X)[i], pred[i].cpu().numpy()])
                           for i in range(len(X))])
    ctx.report.figure(image_grid(rows, ctx.image_shape,
                                 titles=["image", "predicted"] * len(X), ncols=10),
                      caption=f"test images and, beside each, {what} for every pixel d: "
                              "where the model is sure, and where it is surprised")
