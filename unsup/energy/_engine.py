"""Moved to :mod:`unsup.train.mcmc` (the MCMC engine lives in the training layer); kept so
that old imports keep working."""

from unsup.train.mcmc import (  # noqa: F401
    SAMPLING,
    MCMCConfig,
    MCMCModel,
    check_float,
    check_int,
    fit_mcmc,
    lr_factor,
)
