"""The topic family's report sections: top words per topic, topic sizes, a topic x document
heat map, and the training trace, registered with :func:`unsup.report.hooks.report_section`."""

from __future__ import annotations

from typing import Any

import numpy as np

from unsup.report.hooks import SectionContext, report_section
from unsup.topics.hdp import HDP
from unsup.topics.lda import LDA
from unsup.topics.mixture import MixtureOfUnigrams
from unsup.topics.plsa import PLSA
from unsup.topics.unigram import UnigramLM

__all__ = ["topic_table", "number_of_topics"]


def topic_table(model: Any, n_words: int = 10, reference: Any = None) -> list[dict[str, str]]:
    """Rows of the top-words table: topic, share of the training documents, top words, and
    with a ``reference`` count matrix each topic's UMass and NPMI coherence (whole documents)."""
    words = model.top_words(n_words)
    share = _topic_sizes(model)
    rows = [{"topic": str(k), "size": "" if share is None else f"{100 * share[k]:.1f}%",
             "top words": " ".join(w)} for k, w in enumerate(words)]
    comp = getattr(model, "components_", None)
    if reference is not None and comp is not None and np.ndim(comp) == 2 and len(comp) > 0:
        from unsup.metrics.topics import coherence

        n = min(n_words, np.shape(comp)[1])
        for measure in ("umass", "npmi"):
            per = coherence(np.asarray(comp), reference, measure=measure, top_n=n,
                            window=None, per_topic=True)
            for row, v in zip(rows, per, strict=True):
                row[measure] = f"{v:.3f}"
    return rows


def _topic_sizes(model: Any) -> np.ndarray | None:
    if isinstance(model, MixtureOfUnigrams):
        return np.asarray(model.weights_)
    dt = getattr(model, "doc_topic_", None)
    return None if dt is None else np.asarray(dt).mean(0)


@report_section(UnigramLM, MixtureOfUnigrams, PLSA, LDA, HDP, title="Topics: top words",
                order=40)
def top_words_section(model: Any, ctx: SectionContext) -> None:
    import scipy.sparse as sp

    ref = ctx.X if sp.issparse(ctx.X) else None
    rows = topic_table(model, reference=ref)
    ctx.report.table(rows, caption="size: mean topic proportion of the training documents"
                     + ("; umass, npmi: coherence of the top 10 words on the report's documents "
                        "(whole-document co-occurrence; unsup.metrics.topics)" if ref is not None
                        else ""))
    if getattr(model, "vocabulary_", None) is None:
        ctx.report.text("no vocabulary was given with the counts: words are column numbers")


@report_section(MixtureOfUnigrams, PLSA, LDA, HDP, title="Topics x documents", order=41)
def topic_document_heatmap(model: Any, ctx: SectionContext) -> None:
    import matplotlib.pyplot as plt

    if ctx.X is None:
        return
    n = min(40, ctx.X.shape[0])
    theta = np.asarray(model.transform(ctx.X[np.arange(n)]))
    fig, ax = plt.subplots(figsize=(8, 3))
    im = ax.imshow(theta.T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel(f"document (first {n})")
    ax.set_ylabel("topic")
    fig.colorbar(im, ax=ax)
    ctx.report.figure(fig, caption="topic proportions of a sample of documents")


@report_section(HDP, title="Discovering the number of topics", order=42)
def number_of_topics(model: Any, ctx: SectionContext) -> None:
    """Topics in use after each Gibbs sweep, and the posterior of their number."""
    from unsup.report.plots import count_posterior_plot

    post = np.asarray(model.k_posterior_)
    fig = count_posterior_plot(model.k_trace_, post, xlabel="Gibbs sweep", what="topics")
    ctx.report.figure(fig, caption=f"{model.n_topics_} topics in use at the end; posterior "
                      f"mode K = {int(np.argmax(post))} (sweeps after burn-in)")
