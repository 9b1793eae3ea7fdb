"""Self-contained HTML reports: tables, figures and per-model sections in one file.

Per-model sections are chosen by capability (:mod:`unsup.report.sections`); families add their
own with :func:`unsup.report.hooks.report_section`.
"""

from unsup.report.html import Report, format_value
from unsup.report.plots import (
    confusion_matrix_plot,
    curves_plot,
    em_trace_plot,
    embedding_plot,
    image_grid,
)
from unsup.report.sections import (
    comparison_table,
    draw_samples,
    flatten_dict,
    likelihood_record,
    model_report,
    pretraining_table,
    probe_table,
)

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
