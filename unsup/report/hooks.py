"""Report sections registered by the families, dispatched on the model's class.

The generic report (:func:`unsup.report.model_report`) draws what every model's capabilities
allow (clusters, codes, reconstructions, samples, likelihoods, training curves). A family adds
its own sections beside its code (topic tables, Gibbs chains, latent traversals, filters)::

    from unsup.report.hooks import report_section

    @report_section(BernoulliRBM, DBN, title="Gibbs chains")
    def gibbs_chains(model, ctx):
        ctx.report.images(...)

A section applies to instances of the given classes and their subclasses, in the order of
``order`` (then registration). This module imports nothing heavy, so families can register
at import time without pulling in plotting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SectionContext", "report_section", "sections_for"]


@dataclass
class SectionContext:
    """What a section may draw on: the report, the data (numpy, may be ``None``), labels,
    the image shape of a row (or ``None``) and the run's metrics."""

    report: Any
    X: Any = None
    y: Any = None
    image_shape: tuple[int, ...] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def fits_image(self, n_features: int) -> bool:
        """Whether rows of ``n_features`` values can be drawn as images of the data's shape."""
        if self.image_shape is None:
            return False
        size = 1
        for d in self.image_shape:
            size *= int(d)
        return size == int(n_features)

    def image_rows(self, rows: Any, caption: str, titles: list[str] | None = None,
                   ncols: int | None = None) -> bool:
        """Draw 2-D ``rows`` as a grid of images, or say in one line why they are not drawn.

        Returns whether a figure was drawn.
        """
        import numpy as np

        from unsup.report.plots import image_grid

        if hasattr(rows, "detach"):
            rows = rows.detach().cpu().numpy()
        rows = np.asarray(rows)
        if self.image_shape is None:
            self.report.text("Not drawn: the data has no image shape.")
            return False
        if rows.ndim != 2 or not self.fits_image(rows.shape[1]):
            self.report.text(f"Not drawn: rows of shape {rows.shape[1:]} are not images of "
                             f"shape {self.image_shape}.")
            return False
        kw = {} if ncols is None else {"ncols": ncols}
        self.report.figure(image_grid(rows, self.image_shape, titles=titles, **kw),
                           caption=caption)
        return True


@dataclass(frozen=True)
class _Section:
    classes: tuple[type, ...]
    fn: Callable[[Any, SectionContext], None]
    title: str
    order: int


_SECTIONS: list[_Section] = []


def report_section(*classes: type, title: str = "", order: int = 100
                   ) -> Callable[[Callable[[Any, SectionContext], None]],
                                 Callable[[Any, SectionContext], None]]:
    """Decorator: ``fn(model, ctx)`` draws a section for instances of ``classes``."""
    if not classes:
        raise ValueError("report_section needs at least one model class")

    def deco(fn: Callable[[Any, SectionContext], None]) -> Callable[[Any, SectionContext], None]:
        key = (fn.__module__, fn.__qualname__)
        _SECTIONS[:] = [s for s in _SECTIONS if (s.fn.__module__, s.fn.__qualname__) != key]
        _SECTIONS.append(_Section(tuple(classes), fn, title or fn.__name__, order))
        return fn

    return deco


def sections_for(model: Any) -> list[tuple[str, Callable[[Any, SectionContext], None]]]:
    """The registered sections that apply to ``model``: (title, function), in order."""
    hits = [(s.order, i, s) for i, s in enumerate(_SECTIONS) if isinstance(model, s.classes)]
    return [(s.title, s.fn) for _, _, s in sorted(hits, key=lambda t: (t[0], t[1]))]
