"""Self-contained HTML reports: tables, figures and per-model sections in one file."""

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
    flatten_dict,
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
    "flatten_dict",
    "probe_table",
    "pretraining_table",
]
