"""Moved to :mod:`unsup.train.ais` (AIS is estimator math, not a metric); this module
re-exports it so that benchmarks, examples and old imports keep working."""

from unsup.train.ais import (  # noqa: F401
    AISResult,
    LogPartition,
    _summarise,
    ais,
    beta_schedule,
    binary_states,
    logmeanexp,
    rbm_log_partition_exact,
    reverse_ais,
)

__all__ = ["AISResult", "LogPartition", "ais", "reverse_ais", "beta_schedule", "binary_states",
           "rbm_log_partition_exact", "logmeanexp"]
