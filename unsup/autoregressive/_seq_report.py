"""The char-RNN's report section: samples at several temperatures and the likelihood in nats
and bits per character; levels (layout "columns") drawn as coloured tile maps."""

from __future__ import annotations

from typing import Any

from unsup.report.hooks import SectionContext, report_section

__all__: list[str] = []

TEMPERATURES = (0.5, 0.8, 1.0, 1.2)


def _char_rnn() -> type:
    from unsup.autoregressive.char_rnn import CharRNN

    return CharRNN


def _section(model: Any, ctx: SectionContext) -> None:
    import numpy as np

    if ctx.X is not None:
        try:
            lk = model.log_likelihood(ctx.X)
            ctx.report.table([{"data": "given to the report", "sequences": lk.n_samples,
                               "characters": lk.counts["n_chars"],
                               "nats/char": round(lk.counts["nats_per_char"], 4),
                               "bits/char": round(lk.counts["bits_per_char"], 4),
                               "kind": f"{lk.kind} ({lk.estimator})"}],
                             caption="exact cross-entropy -Σ log p(x_t | x_<t) / N")
        except ValueError as e:
            ctx.report.text(f"Likelihood not measured: {e}")
    if model.input_kind_ == "ids":
        rows = [{"τ": t, "sample (symbol ids)": " ".join(map(str, model.sample(
            1, random_state=ctx.seed, temperature=t)[0]))} for t in TEMPERATURES]
        ctx.report.table(rows, caption="one sample per temperature τ (seeded)")
        return
    if model.layout == "columns":
        from unsup.autoregressive._mario import tile_map

        grids, titles = [], []
        for t in (0.8, 1.0, 1.2):
            g = model.sample(2, random_state=ctx.seed, temperature=t)
            grids += list(g)
            titles += [f"τ = {t}, sample {i + 1}" for i in range(len(g))]
        ctx.report.figure(tile_map(grids, titles),
                          caption="levels drawn column by column (bottom to top), shown as "
                                  "tiles; legend from smb.json (first 220 columns)")
        return
    rows = []
    for t in TEMPERATURES:
        s = model.sample(1, random_state=ctx.seed, temperature=t, length=300)[0]
        rows.append({"τ": t, "sample (300 characters)": str(np.asarray(s))})
    ctx.report.table(rows, caption="samples at several temperatures τ (seeded; τ → 0 is "
                                   "greedy, τ > 1 flatter)")


report_section(_char_rnn(), title="Char-RNN samples and likelihood", order=70)(_section)
