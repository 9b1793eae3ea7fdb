"""The GAN's report sections (:func:`unsup.report.hooks.report_section`).

- **Samples over training**: one strip per kept snapshot (``N_STRIPS`` over the run), the same
  fixed codes each time, so a row shows how the generator's image of each code evolved;
- **Discriminator and generator losses**: both players' losses per epoch;
- **BEGAN convergence**: the convergence measure M and the control variable k_t per epoch.

Everything drawn comes from the fitted model (buffers and history); drawing changes nothing.
"""

from __future__ import annotations

import numpy as np

from unsup.adversarial._gan_nets import STRIP_WIDTH
from unsup.adversarial.gan import GAN
from unsup.report.hooks import SectionContext, report_section

__all__: list[str] = []


@report_section(GAN, title="Samples over training", order=60)
def sample_strips(model: GAN, ctx: SectionContext) -> None:
    steps = model.module_.strip_steps.cpu().numpy()
    kept = np.flatnonzero(steps >= 0)
    if not len(kept):
        ctx.report.text("No sample strips were kept (a model trained elsewhere).")
        return
    rows = model.module_.strips[kept].cpu().numpy().reshape(-1, model.n_features_in_)
    titles = [f"step {steps[i]}" if j == 0 else "" for i in kept for j in range(STRIP_WIDTH)]
    who = "EMA generator" if model.module_.has_ema else "generator"
    ctx.image_rows(rows, f"G(z) of {STRIP_WIDTH} fixed codes z (columns), one strip per "
                   f"snapshot over training (rows, step of the snapshot on the left; {who})",
                   titles=titles, ncols=STRIP_WIDTH)


@report_section(GAN, title="Discriminator and generator losses", order=61)
def player_losses(model: GAN, ctx: SectionContext) -> None:
    from unsup.report.plots import curves_plot

    hist = [h for h in getattr(model, "history_", [])
            if "loss_discriminator" in h and "loss_generator" in h]
    if not hist:
        ctx.report.text("No per-epoch losses recorded.")
        return
    series = {"discriminator L_D": [h["loss_discriminator"] for h in hist],
              "generator L_G": [h["loss_generator"] for h in hist]}
    ctx.report.figure(curves_plot(series, xlabel="epoch", ylabel="loss",
                                  x=[h["epoch"] for h in hist], panels=True),
                      caption=f"both players' mean losses per epoch ({model.loss}); in a GAN "
                              "neither falls to zero: each is measured against the other "
                              "player as it was at that step")


@report_section(GAN, title="BEGAN convergence", order=62)
def began_convergence(model: GAN, ctx: SectionContext) -> None:
    if model.loss != "began":
        return
    from unsup.report.plots import curves_plot

    hist = [h for h in getattr(model, "history_", []) if "convergence" in h]
    if not hist:
        ctx.report.text("No convergence record (a model trained elsewhere, or resumed).")
        return
    series = {"M = D(x) + |γ D(x) - D(G(z))|": [h["convergence"] for h in hist],
              "k_t": [h["k"] for h in hist]}
    ctx.report.figure(curves_plot(series, xlabel="epoch", x=[h["epoch"] for h in hist],
                                  panels=True),
                      caption=f"BEGAN's global convergence measure (falls as training "
                              f"converges) and its equilibrium control k_t (γ = "
                              f"{model.began_gamma}), epoch means")
