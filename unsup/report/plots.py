"""Figures for reports.

Every function returns a :class:`matplotlib.figure.Figure` built directly (not through
pyplot), so nothing here touches matplotlib's global backend or pyplot's figure registry:
the figures render with Agg when saved and are garbage-collected like any object. Pass them
to :meth:`unsup.report.Report.figure`, or call ``fig.savefig(...)`` yourself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.optimize import linear_sum_assignment

from unsup.metrics.clustering import contingency_matrix

__all__ = [
    "image_grid",
    "confusion_matrix_plot",
    "em_trace_plot",
    "embedding_plot",
    "curves_plot",
]


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def image_grid(
    images: np.ndarray,
    image_shape: tuple[int, ...],
    titles: Sequence[str] | None = None,
    ncols: int = 10,
) -> Figure:
    """Draw flattened grayscale images in a grid, each scaled to its own min/max.

    Parameters
    ----------
    images : array-like of shape (n, D)
        One flattened image per row; ``D`` must equal ``prod(image_shape)``.
    image_shape : tuple of int
        ``(height, width)`` of each image (a trailing channel of size 1 is allowed).
    titles : sequence of str, optional
        One title per image.
    ncols : int, default=10
        Maximum number of images per row.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with one axes showing the mosaic (white gaps between cells; a title, when
        given, above its cell). One axes for the whole grid, not one per image: a 12 x 12
        manifold grid took seconds to lay out as 144 axes.
    """
    imgs = _to_numpy(images).astype(np.float64, copy=False)
    if imgs.ndim == 1:
        imgs = imgs[None, :]
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 3 and shape[-1] == 1:
        shape = shape[:2]
    if len(shape) != 2:
        raise ValueError(f"image_shape must be (height, width); got {tuple(image_shape)}")
    n = imgs.shape[0]
    imgs = imgs.reshape(n, -1)
    if imgs.shape[1] != shape[0] * shape[1]:
        raise ValueError(
            f"images have {imgs.shape[1]} values each but image_shape {shape} needs "
            f"{shape[0] * shape[1]}"
        )
    if n == 0:
        raise ValueError("images is empty; nothing to draw")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} images")
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    cell = 1.1 if titles is None else 1.35
    fig = Figure(figsize=(max(2.0, 1.1 * ncols), max(1.2, cell * nrows)))
    h, w = shape
    gap = max(1, round(0.1 * max(h, w)))
    band = round(0.3 * h) if titles is not None else 0  # room for each row's titles
    step_y, step_x = h + gap + band, w + gap
    canvas = np.full((nrows * step_y - gap, ncols * step_x - gap), np.nan)
    for i in range(n):
        img = imgs[i].reshape(shape)
        finite = np.isfinite(img)
        lo = float(img[finite].min()) if finite.any() else 0.0
        hi = float(img[finite].max()) if finite.any() else 1.0
        if hi <= lo:
            hi = lo + 1.0
        y0, x0 = (i // ncols) * step_y + band, (i % ncols) * step_x
        canvas[y0:y0 + h, x0:x0 + w] = np.clip((img - lo) / (hi - lo), 0.0, 1.0)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="white")
    ax.imshow(canvas, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if titles is not None:
        for i, t in enumerate(titles):
            ax.text((i % ncols) * step_x + w / 2, (i // ncols) * step_y + band - 0.5, str(t),
                    ha="center", va="bottom", fontsize=7)
    return fig


def _hungarian_order(counts: np.ndarray) -> np.ndarray:
    """Column order putting each class's matched cluster on the diagonal, the rest after."""
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = [c for _, c in sorted(zip(rows, cols, strict=True))]
    rest = [c for c in range(counts.shape[1]) if c not in set(matched)]
    rest.sort(key=lambda c: (int(np.argmax(counts[:, c])), -int(counts[:, c].max())))
    return np.array(matched + rest, dtype=np.int64)


def confusion_matrix_plot(y_true: Any, y_pred: Any, annotate: bool | None = None) -> Figure:
    """Class-by-cluster counts with clusters reordered by the Hungarian matching.

    Rows are classes, columns clusters. Each class's matched cluster sits on the diagonal;
    unmatched clusters (when there are more clusters than classes) come last.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Class labels.
    y_pred : array-like of shape (n_samples,)
        Cluster labels.
    annotate : bool, optional
        Write the counts in the cells; by default only when the matrix has at most
        30 rows and columns.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with one axes.
    """
    counts, classes, clusters = contingency_matrix(y_true, y_pred)
    order = _hungarian_order(counts)
    counts = counts[:, order]
    clusters = clusters[order]
    n_cls, n_clu = counts.shape
    if annotate is None:
        annotate = max(n_cls, n_clu) <= 30
    w = min(16.0, max(3.5, 0.45 * n_clu + 1.8))
    h = min(16.0, max(3.0, 0.45 * n_cls + 1.4))
    fig = Figure(figsize=(w, h))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(counts, cmap="Blues", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_clu))
    ax.set_yticks(range(n_cls))
    ax.set_xticklabels([str(c) for c in clusters], fontsize=8)
    ax.set_yticklabels([str(c) for c in classes], fontsize=8)
    ax.set_xlabel("cluster (Hungarian-matched order)")
    ax.set_ylabel("true class")
    acc = counts[np.arange(min(n_cls, n_clu)), np.arange(min(n_cls, n_clu))].sum() / counts.sum()
    ax.set_title(f"Confusion matrix (matched accuracy {acc:.4g})")
    if annotate:
        thresh = counts.max() / 2.0 if counts.max() > 0 else 1.0
        for i in range(n_cls):
            for j in range(n_clu):
                v = int(counts[i, j])
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                            color="white" if v > thresh else "black")
    fig.tight_layout()
    return fig


def _series(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array(
        [float(h[key]) if h.get(key) is not None else np.nan for h in history], dtype=np.float64
    )


def em_trace_plot(history: Sequence[Mapping[str, Any]]) -> Figure:
    """Trace of an EM fit: log-likelihood and bound on top, KL gap below.

    Visualises the decomposition ``ln p(X|θ) = L(q, θ) + KL(q ‖ p(Z|X, θ))``: after each
    E-step the KL term is zero and the bound touches the log-likelihood; the M-step raises
    the bound, opening a KL gap that the next E-step closes.

    Parameters
    ----------
    history : sequence of dict
        One dict per recorded step with keys ``"iter"``, ``"log_likelihood"``, ``"bound"``
        and ``"kl"`` (per-sample means, in nats). ``"iter"`` defaults to the position; a
        missing ``"kl"`` is computed as ``log_likelihood - bound``.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with two axes (sharing the x-axis).
    """
    history = list(history)
    if not history:
        raise ValueError("history is empty; nothing to plot")
    it = np.array([float(h.get("iter", i)) for i, h in enumerate(history)])
    ll = _series(history, "log_likelihood")
    bound = _series(history, "bound")
    if all("kl" in h for h in history):
        kl = _series(history, "kl")
    else:
        kl = ll - bound
    fig = Figure(figsize=(7.0, 5.0))
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    ax1.plot(it, ll, marker="o", ms=3, lw=1.5, label="log-likelihood ln p(X|θ)")
    ax1.plot(it, bound, marker="s", ms=3, lw=1.2, ls="--", label="bound L(q, θ)")
    ax1.set_ylabel("nats / sample")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.grid(True, alpha=0.3)
    ax2.plot(it, kl, marker="o", ms=3, lw=1.2, color="C3", label="KL(q ‖ p(Z|X, θ))")
    ax2.set_ylabel("KL (nats / sample)")
    ax2.set_xlabel("EM iteration")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.legend(loc="upper right", fontsize=8)
    ax2.grid(True, alpha=0.3)
    fig.suptitle("EM trace: ln p(X|θ) = L(q, θ) + KL(q ‖ p(Z|X, θ))")
    fig.tight_layout()
    return fig


def embedding_plot(
    Z: Any,
    labels: Any | None = None,
    title: str = "2-D embedding",
    max_legend: int = 20,
    xlabel: str = "dimension 1",
    ylabel: str = "dimension 2",
    legend_title: str | None = None,
) -> Figure:
    """Scatter plot of a 2-D embedding, coloured by label.

    Parameters
    ----------
    Z : array-like of shape (n, 2)
        Embedded points.
    labels : array-like of shape (n,), optional
        Colour per point: a categorical legend when there are at most ``max_legend``
        distinct labels, a continuous colour map otherwise.
    title : str, default="2-D embedding"
        Axes title.
    max_legend : int, default=20
        Largest number of labels drawn with a legend.
    xlabel, ylabel : str
        Axis labels: say what the coordinates are and their unit (e.g. "PC 1 of the codes
        (31% of variance)").
    legend_title : str, optional
        What the colours are ("true digit", "predicted cluster").

    Returns
    -------
    matplotlib.figure.Figure
        A figure with one axes.
    """
    Zn = _to_numpy(Z).astype(np.float64, copy=False)
    if Zn.ndim != 2 or Zn.shape[1] != 2:
        raise ValueError(f"Z must have shape (n, 2); got {Zn.shape}")
    n = Zn.shape[0]
    size = float(np.clip(8000.0 / max(n, 1), 5.0, 30.0))
    fig = Figure(figsize=(6.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    if labels is None:
        ax.scatter(Zn[:, 0], Zn[:, 1], s=size, alpha=0.7, linewidths=0)
    else:
        lab = _to_numpy(labels).reshape(-1)
        if lab.shape[0] != n:
            raise ValueError(f"labels has length {lab.shape[0]} but Z has {n} points")
        uniq, inv = np.unique(lab, return_inverse=True)
        inv = inv.reshape(-1)
        if uniq.size <= max_legend:
            palette = "tab10" if uniq.size <= 10 else "tab20"
            colours = matplotlib.colormaps[palette]
            for k, u in enumerate(uniq):
                m = inv == k
                ax.scatter(Zn[m, 0], Zn[m, 1], s=size, alpha=0.75, linewidths=0,
                           color=colours(k % colours.N), label=str(u))
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7,
                      markerscale=max(1.0, 12.0 / size) ** 0.5, title=legend_title,
                      title_fontsize=8, ncols=1 if uniq.size <= 10 else 2, framealpha=0.7)
        else:
            sc = ax.scatter(Zn[:, 0], Zn[:, 1], c=inv, cmap="viridis", s=size, alpha=0.75,
                            linewidths=0)
            fig.colorbar(sc, ax=ax, label=legend_title or "label (rank)")
    ax.set_title(str(title))
    ax.set_xlabel(str(xlabel))
    ax.set_ylabel(str(ylabel))
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.2)
    fig.tight_layout()
    return fig


def curves_plot(
    series: Mapping[str, Sequence[float]],
    xlabel: str = "step",
    ylabel: str = "value",
    title: str | None = None,
    logy: bool = False,
    x: Sequence[float] | None = None,
    panels: bool = False,
    integer_ticks: bool = True,
) -> Figure:
    """Line plot of several named series, against ``x`` (default ``0, 1, ..., len - 1``).

    Parameters
    ----------
    series : mapping of str to sequence of float
        Name → values (the names label the lines, or the panels' y-axes).
    xlabel, ylabel : str
        Axis labels (``ylabel`` is unused with ``panels``: each panel is labelled by its name).
    title : str, optional
        Title of the figure.
    logy : bool, default=False
        Logarithmic y-axis.
    x : sequence of float, optional
        Common x values (e.g. the epoch of each record); integer x values get integer ticks.
    panels : bool, default=False
        One panel per series, stacked with a shared x-axis: for series on different scales
        or in different units, which one y-axis would misrepresent.
    integer_ticks : bool, default=True
        Ticks at whole numbers only (epochs, steps, iterations), even when records fall
        between them.

    Returns
    -------
    matplotlib.figure.Figure
    """
    items = [(str(k), _to_numpy(v).astype(np.float64, copy=False).reshape(-1))
             for k, v in series.items()]
    xs = None if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
    n_ax = len(items) if panels and items else 1
    fig = Figure(figsize=(6.5, 4.0 if n_ax == 1 else 1.2 + 1.7 * n_ax))
    axes = [fig.add_subplot(n_ax, 1, 1)]
    for i in range(1, n_ax):
        axes.append(fig.add_subplot(n_ax, 1, i + 1, sharex=axes[0]))
    for i, (name, v) in enumerate(items):
        ax = axes[i if panels else 0]
        xv = np.arange(v.size) if xs is None or xs.size != v.size else xs
        ax.plot(xv, v, lw=1.5, marker="o" if v.size <= 30 else None, ms=3, label=name,
                color=f"C{i % 10}")
        if panels:
            ax.set_ylabel(name, fontsize=8)
    for ax in axes:
        if logy:
            ax.set_yscale("log")
        if integer_ticks:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel(str(xlabel))
    if not panels:
        axes[0].set_ylabel(str(ylabel))
        if items:
            axes[0].legend(fontsize=8)
    if title:
        (fig.suptitle if panels else axes[0].set_title)(str(title))
    fig.tight_layout()
    return fig


def count_posterior_plot(trace: Sequence[float], posterior: Any, *, xlabel: str, what: str,
                         title: str = "") -> Figure:
    """Discovering K: the count in use along a fit (left) and its posterior (right)."""
    post = np.asarray(posterior, dtype=float)
    fig = Figure(figsize=(9, 3))
    a, b = fig.subplots(1, 2)
    a.plot(np.arange(1, len(trace) + 1), trace, drawstyle="steps-post")
    a.set_xlabel(xlabel)
    a.set_ylabel(f"{what} in use")
    if title:
        a.set_title(title, fontsize=9)
    ks = np.nonzero(post)[0]
    b.bar(ks, post[ks])
    b.set_xlabel(f"number of {what} K")
    b.set_ylabel("posterior probability")
    b.set_xticks(ks)
    return fig
