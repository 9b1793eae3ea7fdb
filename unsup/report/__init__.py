"""Self-contained HTML reports: tables, figures and per-model sections in one file.

Per-model sections are chosen by capability (:mod:`unsup.report.sections`); families add their
own with :func:`unsup.report.hooks.report_section`.
"""

import importlib
from typing import Any

# Names are imported on first use: families import unsup.report.hooks at import time to
# register their sections, and that must not pull in matplotlib (start-up of the CLI).
_WHERE = {
    "Report": "html", "format_value": "html",
    "confusion_matrix_plot": "plots", "curves_plot": "plots", "em_trace_plot": "plots",
    "embedding_plot": "plots", "image_grid": "plots",
    "comparison_table": "sections", "draw_samples": "sections", "flatten_dict": "sections",
    "likelihood_record": "sections", "model_report": "sections",
    "pretraining_table": "sections", "probe_table": "sections",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"unsup.report.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'unsup.report' has no attribute {name!r}")


__all__ = [
    "Report",
    "format_value",
    "image_grid",
    "confusion_matrix_plot",
    "em_trace_plot",
    "embedding_plot",
    "curves_plot",
    "model_report",
    "comparison_table",
    "likelihood_record",
    "draw_samples",
    "flatten_dict",
    "probe_table",
    "pretraining_table",
]
