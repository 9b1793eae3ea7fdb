"""A minimal builder of self-contained HTML reports.

A :class:`Report` collects headings, paragraphs, tables and matplotlib figures and writes
them as one UTF-8 HTML file with inline CSS and figures embedded as base64 PNG: no external
resources, no JavaScript, so the file can be mailed, archived or opened offline. Level-2
headings and collapsible sections (``<details>``, closed by default) are listed in a contents
bar at the top of the page.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from matplotlib.figure import Figure

__all__ = ["Report", "FigureRecord", "format_value"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
th, td { border: 1px solid #ccc; padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
footer { margin-top: 3em; font-size: .8em; color: #888; }
td { overflow-wrap: break-word; max-width: 40em; }
td.num { white-space: nowrap; }
nav.toc { position: sticky; top: 0; z-index: 10; background: #fff; border-bottom: 1px solid #bbb;
          padding: .45em 0; font-size: .9em; line-height: 1.9; }
nav.toc a { margin-right: .35em; padding: .1em .45em; border: 1px solid #ccd; border-radius: 3px;
            text-decoration: none; color: #124; white-space: nowrap; }
nav.toc a:hover { background: #eef; }
h2, details.section { scroll-margin-top: 4.5em; }
details.section { border: 1px solid #ccc; border-radius: 4px; margin: .8em 0; padding: 0 .8em; }
details.section > summary { cursor: pointer; padding: .4em 0; }
details.section > summary > h2 { display: inline; border: none; margin: 0; font-size: 1.25em; }
details.section > summary .hint { color: #666; font-size: .9em; margin-left: .6em; }
details.section[open] > summary { border-bottom: 1px solid #ddd; margin-bottom: .4em; }
details.sub > summary { cursor: pointer; color: #333; }
.note { background: #fff6df; border-left: 4px solid #e0a100; padding: .4em .8em; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { width: 250px; margin: 0; }
.gallery figcaption a { font-weight: 600; }
"""


@dataclass
class FigureRecord:
    """Where a figure sits: the section it belongs to (``section``/``anchor``: the collapsible
    section, e.g. one model; ``heading``: the sub-heading it was drawn under), its caption and
    its base64 PNG, so a summary can show it again."""

    png: str
    caption: str
    section: str | None
    anchor: str | None
    heading: str | None


def format_value(v: Any) -> str:
    """Format one table cell: floats to 4 significant digits, everything else via ``str``.

    Parameters
    ----------
    v : Any
        Cell value. numpy scalars and 0-d arrays/tensors are unwrapped first.

    Returns
    -------
    str
        Unescaped text of the cell.
    """
    if v is None:
        return ""
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # numpy / torch scalars
        v = v.item()
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f"{f:.4g}"
    return str(v)


def _is_number(v: Any) -> bool:
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:
        v = v.item()
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class Report:
    """A self-contained HTML report built up block by block.

    Parameters
    ----------
    title : str
        Title of the page (shown as the top ``<h1>``; HTML is escaped).

    Examples
    --------
    >>> r = Report("KMeans on digits")
    >>> r.heading("Metrics")
    >>> r.table([{"metric": "accuracy", "value": 0.91234}])
    >>> html_text = r.to_html()
    """

    def __init__(self, title: str) -> None:
        self.title = str(title)
        self._blocks: list[str] = []
        self._toc: list[tuple[str, str]] = []  # (anchor, text) of the contents bar
        self._ids: set[str] = set()
        self.figures: list[FigureRecord] = []
        # what the next figure belongs to (set by sections and by model_report)
        self._section: tuple[str, str] | None = None
        self._heading: str | None = None

    def _anchor(self, text: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:40] or "section"
        anchor, i = base, 2
        while anchor in self._ids:
            anchor, i = f"{base}-{i}", i + 1
        self._ids.add(anchor)
        return anchor

    def __len__(self) -> int:
        return len(self._blocks)

    def heading(self, text: str, level: int = 2) -> None:
        """Append a heading.

        Parameters
        ----------
        text : str
            Heading text (escaped).
        level : int, default=2
            HTML heading level, 1 to 6.
        """
        level = int(level)
        if not 1 <= level <= 6:
            raise ValueError(f"heading level must be between 1 and 6; got {level}")
        self._heading = str(text)
        if level == 2 and self._section is None:  # top-level: listed in the contents bar
            anchor = self._anchor(text)
            self._toc.append((anchor, str(text)))
            self._blocks.append(f'<h2 id="{anchor}">{html.escape(str(text))}</h2>')
            return
        self._blocks.append(f"<h{level}>{html.escape(str(text))}</h{level}>")

    @contextmanager
    def section(self, title: str, hint: str = "", open: bool = False) -> Iterator[str]:
        """A collapsible top-level section (``<details>``), listed in the contents bar.

        Parameters
        ----------
        title : str
            Heading of the section (escaped).
        hint : str, default=""
            A short line shown beside the heading while the section is closed (escaped).
        open : bool, default=False
            Start expanded.

        Yields
        ------
        str
            The section's anchor (``#anchor`` links to it).
        """
        anchor = self._anchor(title)
        self._toc.append((anchor, str(title)))
        hint_html = f'<span class="hint">{html.escape(hint)}</span>' if hint else ""
        self._blocks.append(
            f'<details class="section" id="{anchor}"{" open" if open else ""}><summary>'
            f"<h2>{html.escape(str(title))}</h2>{hint_html}</summary>")
        outer = self._section
        self._section = (str(title), anchor)
        try:
            yield anchor
        finally:
            self._section = outer
            self._blocks.append("</details>")

    @contextmanager
    def collapsed(self, title: str) -> Iterator[None]:
        """A small collapsible block inside a section (e.g. a long parameter table)."""
        self._blocks.append(f'<details class="sub"><summary>{html.escape(str(title))}'
                            "</summary>")
        try:
            yield
        finally:
            self._blocks.append("</details>")

    def note(self, s: str) -> None:
        """Append a highlighted remark (a warning a reader must not miss; escaped)."""
        self._blocks.append(f'<p class="note">{html.escape(str(s))}</p>')

    def gallery(self, items: list[tuple[str, str | None, FigureRecord]],
                caption: str | None = None) -> None:
        """Thumbnails of figures already in a report, each linking to its section.

        Parameters
        ----------
        items : list of (label, anchor or None, FigureRecord)
            What to show: the label (linked to ``#anchor`` when given) above the record's image.
        caption : str, optional
            A line under the gallery (escaped).
        """
        parts = ['<div class="gallery">']
        for label, anchor, rec in items:
            name = html.escape(str(label))
            link = f'<a href="#{html.escape(anchor)}">{name}</a>' if anchor else name
            alt = html.escape(f"{label}: {rec.heading or rec.caption}")
            parts.append(f'<figure><img src="data:image/png;base64,{rec.png}" alt="{alt}">'
                         f"<figcaption>{link}<br>{html.escape(rec.heading or '')}"
                         "</figcaption></figure>")
        parts.append("</div>")
        if caption:
            parts.append(f"<p><small>{html.escape(caption)}</small></p>")
        self._blocks.append("".join(parts))

    def extend(self, other: Report) -> None:
        """Append another report's blocks (its title is dropped; anchors are kept unique by
        building both with distinct section titles)."""
        clash = self._ids & other._ids
        if clash:
            raise ValueError(f"reports share section anchors {sorted(clash)}")
        self._blocks.extend(other._blocks)
        self._toc.extend(other._toc)
        self._ids |= other._ids
        self.figures.extend(other.figures)

    def text(self, s: str) -> None:
        """Append a paragraph of plain text (HTML is escaped; blank lines split paragraphs).

        Parameters
        ----------
        s : str
            The text.
        """
        for para in str(s).split("\n\n"):
            if para.strip():
                body = html.escape(para).replace("\n", "<br>\n")
                self._blocks.append(f"<p>{body}</p>")

    def table(self, rows: list[dict[str, Any]], caption: str | None = None) -> None:
        """Append a table; the header is the union of the rows' keys in first-seen order.

        Parameters
        ----------
        rows : list of dict
            One dict per row. Missing keys give empty cells. Floats are formatted to 4
            significant digits.
        caption : str, optional
            Table caption (escaped).
        """
        rows = list(rows)
        columns: list[str] = []
        for row in rows:
            for k in row:
                if k not in columns:
                    columns.append(k)
        parts = ["<table>"]
        if caption:
            parts.append(f"<caption>{html.escape(str(caption))}</caption>")
        parts.append(
            "<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
            + "</tr></thead>"
        )
        parts.append("<tbody>")
        for row in rows:
            cells = []
            for c in columns:
                v = row.get(c)
                cls = ' class="num"' if _is_number(v) else ""
                cells.append(f"<td{cls}>{html.escape(format_value(v))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
        self._blocks.append("\n".join(parts))

    def figure(self, fig: Figure, caption: str | None = None, dpi: int = 100) -> None:
        """Embed a matplotlib figure as a base64 PNG, then close it.

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            The figure. Figures made with ``matplotlib.figure.Figure()`` directly (as
            :mod:`unsup.report.plots` does) need no backend; pyplot figures are also closed
            in pyplot so they do not accumulate.
        caption : str, optional
            Caption under the figure (escaped).
        dpi : int, default=100
            Resolution of the PNG.
        """
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        finally:
            _close_figure(fig)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        section, anchor = self._section or (None, None)
        self.figures.append(FigureRecord(data, str(caption or ""), section, anchor,
                                         self._heading))
        alt = html.escape(str(caption)) if caption else "figure"
        parts = [f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">']
        if caption:
            parts.append(f"<figcaption>{html.escape(str(caption))}</figcaption>")
        parts.append("</figure>")
        self._blocks.append("".join(parts))

    def raw_html(self, fragment: str) -> None:
        """Append an HTML fragment verbatim (not escaped: only pass trusted markup)."""
        self._blocks.append(str(fragment))

    def to_html(self) -> str:
        """The whole report as one HTML document.

        Returns
        -------
        str
            A complete, self-contained HTML5 document.
        """
        title = html.escape(self.title)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join(self._blocks)
        toc = ""
        if len(self._toc) > 1:
            links = "\n".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in self._toc)
            toc = f'<nav class="toc"><b>Contents:</b> {links}</nav>\n'
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n{toc}{body}\n"
            f"<footer>Generated by unsup on {stamp}.</footer>\n</body>\n</html>\n"
        )

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the report to ``path`` as UTF-8 HTML.

        Parameters
        ----------
        path : str or path-like
            Destination file; parent directories are created.

        Returns
        -------
        str
            The path written.
        """
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html())
        return path

    def _repr_html_(self) -> str:  # Jupyter display
        return self.to_html()


def _close_figure(fig: Figure) -> None:
    """Release a figure: drop it from pyplot's registry if it is there, free its artists."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")  # only if the user already imported pyplot
    if plt is not None:
        try:
            plt.close(fig)
        except Exception:  # closing must never break a report
            pass
    try:
        fig.clear()
    except Exception:
        pass
