"""The latent family's report sections (:func:`unsup.report.hooks.report_section`).

For a VAE: samples from the prior (decoder means), the 2-D latent manifold when the code has
two units, interpolations between test images in code space, latent traversals (one unit
varied, the others held at a test image's posterior mean: Higgins et al.'s "disentangled
attributes" view) and the ELBO / KL / reconstruction curves. For a Helmholtz machine: the
wake and recognition losses against the validation bound. Drawing is seeded from the report's
seed and never changes the model.
"""

from __future__ import annotations

import numpy as np
import torch

from unsup.latent.helmholtz import HelmholtzMachine
from unsup.latent.vae import VAE
from unsup.report.hooks import SectionContext, report_section

__all__: list[str] = []


def _fits(ctx: SectionContext, D: int) -> bool:
    return ctx.image_shape is not None and int(np.prod(ctx.image_shape)) == D


def _grid(ctx: SectionContext, rows: np.ndarray, caption: str, ncols: int,
          titles: list[str] | None = None) -> None:
    from unsup.report.plots import image_grid

    if not _fits(ctx, rows.shape[1]):
        ctx.report.text("Not drawn: the data has no image shape.")
        return
    ctx.report.figure(image_grid(rows, ctx.image_shape, titles=titles, ncols=ncols),
                      caption=caption)


@report_section(VAE, title="Samples from the prior", order=60)
def prior_samples(model: VAE, ctx: SectionContext) -> None:
    x = model.sample(40, random_state=ctx.seed, mean=True)
    _grid(ctx, x, "decoder means E[x | z] of 40 codes z ~ N(0, I)", ncols=10)


@report_section(VAE, title="Latent manifold", order=61)
def latent_manifold(model: VAE, ctx: SectionContext) -> None:
    if int(model.n_components) != 2:
        ctx.report.text(f"Drawn only for a 2-D code (this one has {model.n_components} units).")
        return
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, 12)).numpy()
    Z = np.array([[a, b] for b in q[::-1] for a in q], dtype=np.float32)
    _grid(ctx, model.inverse_transform(Z), "decoder means over a 12 x 12 grid of Gaussian "
          "quantiles (5% to 95%) of the two latent units", ncols=12)


def _test_codes(model: VAE, ctx: SectionContext, n: int) -> np.ndarray | None:
    if ctx.X is None or len(ctx.X) < 2:
        ctx.report.text("Not drawn: no data given to the report.")
        return None
    idx = np.random.default_rng(ctx.seed).choice(len(ctx.X), size=min(n, len(ctx.X)),
                                                 replace=False)
    return model.transform(np.asarray(ctx.X)[idx])


@report_section(VAE, title="Interpolations", order=62)
def interpolations(model: VAE, ctx: SectionContext) -> None:
    Z = _test_codes(model, ctx, 8)
    if Z is None:
        return
    t = np.linspace(0, 1, 8, dtype=np.float32)[:, None]
    pairs = [(Z[i], Z[i + 1]) for i in range(0, len(Z) - 1, 2)]
    path = np.concatenate([(1 - t) * a + t * b for a, b in pairs]).astype(np.float32)
    _grid(ctx, model.inverse_transform(path), "decoded straight lines between the posterior "
          "means of pairs of images (one pair per row, 8 steps)", ncols=8)


@report_section(VAE, title="Latent traversals", order=63)
def traversals(model: VAE, ctx: SectionContext) -> None:
    Z = _test_codes(model, ctx, 200)
    if Z is None:
        return
    active = np.argsort(-Z.var(0))[:8]  # the units the encoder uses most (variance of μ)
    steps = np.linspace(-3, 3, 9, dtype=np.float32)
    rows = []
    for j in active:
        z = np.repeat(Z[:1], len(steps), axis=0)
        z[:, j] = steps
        rows.append(z)
    titles = [f"z{j}={s:+.1f}" if i == 0 or s in (-3.0, 3.0) else ""
              for j in active for i, s in enumerate(steps)]
    _grid(ctx, model.inverse_transform(np.concatenate(rows)),
          "one latent unit varied from -3 to +3 (rows: the 8 units whose posterior means vary "
          "most over the data), the others held at one image's posterior mean", ncols=9,
          titles=titles)


@report_section(VAE, title="ELBO, KL and reconstruction", order=64)
def bound_curves(model: VAE, ctx: SectionContext) -> None:
    from unsup.report.plots import curves_plot

    hist = [h for h in getattr(model, "history_", []) if "recon" in h]
    if not hist:
        ctx.report.text("No per-epoch KL / reconstruction record (a model trained elsewhere).")
        return
    series = {"-(training objective)": [-h["loss"] for h in hist],
              "reconstruction E_q log p(x|z)": [-h["recon"] for h in hist],
              "KL(q(z|x) || p(z))": [h["kl"] for h in hist]}
    if all("val_loss" in h for h in hist):
        series["validation bound"] = [-h["val_loss"] for h in hist]
    ctx.report.figure(curves_plot(series, xlabel="epoch", ylabel="nats per sample"),
                      caption="training objective (ELBO, β-weighted, or IWAE bound), its "
                              "reconstruction and KL terms, and the validation bound (β = 1)")


@report_section(HelmholtzMachine, title="Wake-sleep losses", order=64)
def wake_sleep_curves(model: HelmholtzMachine, ctx: SectionContext) -> None:
    from unsup.report.plots import curves_plot

    hist = getattr(model, "history_", [])
    keys = [k for k in ("loss_wake", "loss_sleep", "loss_recognition", "val_loss")
            if hist and all(k in h for h in hist)]
    if not keys:
        return
    ctx.report.figure(curves_plot({k: [h[k] for h in hist] for k in keys}, xlabel="epoch",
                                  ylabel="nats per sample"),
                      caption="wake (generative) and sleep / recognition losses; val_loss is "
                              "minus the IS-K bound on held-out rows")
