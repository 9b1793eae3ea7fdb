"""The flows' report sections (:func:`unsup.report.hooks.report_section`).

For a flow on 2-D vectors: the learned density ``exp(score_samples)`` over a grid around the
data, with the data on top, and the mass the grid holds (the change-of-variables density
integrates to one, so this is close to 1 when the grid covers the data). For an image flow:
samples at temperatures 0.5, 0.7 and 1 (Kingma & Dhariwal 2018, §5: lower temperatures give
smoother, less varied samples). Drawing is seeded from the report's seed and never changes the
model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.report.hooks import SectionContext, report_section

__all__: list[str] = []


def density_grid(model: Any, X: np.ndarray, n: int = 120, margin: float = 0.25
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(xs, ys, density (n, n), mass on the grid)`` of a 2-D flow over the box around ``X``
    widened by ``margin`` of its size on each side."""
    lo, hi = X.min(0), X.max(0)
    pad = margin * (hi - lo + 1e-9)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    G = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
    dens = np.exp(model.score_samples(G)).reshape(n, n)
    mass = float(dens.sum() * (xs[1] - xs[0]) * (ys[1] - ys[0]))
    return xs, ys, dens, mass


def _register() -> None:
    from unsup.flows._base import FlowEstimator

    @report_section(FlowEstimator, title="Learned density", order=60)
    def learned_density(model: Any, ctx: SectionContext) -> None:
        if model.image_shape_ or int(model.n_features_in_) != 2 or model.dequantize_ != "none":
            ctx.report.text("Drawn for flows on continuous 2-D data only.")
            return
        from matplotlib.figure import Figure

        X = (np.asarray(ctx.X, dtype=np.float32) if ctx.X is not None
             else model.sample(1000, random_state=ctx.seed))
        xs, ys, dens, mass = density_grid(model, X)
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.add_subplot()
        im = ax.pcolormesh(xs, ys, dens, shading="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, label="p(x)")
        show = X[np.random.default_rng(ctx.seed).permutation(len(X))[:1000]]
        ax.scatter(show[:, 0], show[:, 1], s=2, c="white", alpha=0.5, linewidths=0)
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ctx.report.figure(fig, caption=f"learned density exp(score_samples) on a 120 x 120 grid "
                                       f"(white: up to 1,000 data points); the grid holds "
                                       f"{mass:.3f} of the probability mass")

    @report_section(FlowEstimator, title="Samples at lower temperatures", order=61)
    def temperature_samples(model: Any, ctx: SectionContext) -> None:
        shape = [int(s) for s in model.image_shape_]
        if not shape:
            ctx.report.text("Drawn for image flows only.")
            return
        from unsup.report.plots import image_grid

        rows = np.concatenate([model.sample(8, random_state=ctx.seed, temperature=t)
                               for t in (0.5, 0.7, 1.0)])
        img = tuple(shape[1:]) if shape[0] == 1 else tuple(shape)
        ctx.report.figure(image_grid(rows, img, ncols=8),
                          caption="samples x = f^-1(T z), z ~ N(0, I), at T = 0.5, 0.7 and 1 "
                                  "(one row each)")


_register()
