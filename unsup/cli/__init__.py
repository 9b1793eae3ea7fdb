"""The ``unsup`` command: fit, evaluate, report, encode, sample, models, datasets, runs, demo.

``unsup fit MODEL`` takes its options from the estimator's own ``__init__`` parameters (one
source of truth): ``unsup fit kmeans --n-clusters 10 --data mnist5k --out runs/km``.
Bad input ends with a one-line ``error: ...`` and exit status 2, never a traceback
(``--debug`` shows it).

Modules: :mod:`~unsup.cli._app` (the group, errors, shared helpers), :mod:`~unsup.cli.fitting`
(generated fit commands, run directories, resume), :mod:`~unsup.cli.evaluate`,
:mod:`~unsup.cli.commands` (report, encode, sample), :mod:`~unsup.cli.listing` (models,
datasets, runs, demo). Start-up imports only click and the standard library; each command
imports what it needs.
"""

from unsup.cli._app import UserError, cli, main
from unsup.cli.fitting import fit

cli.add_command(fit)

from unsup.cli import commands, evaluate, listing  # noqa: E402, F401  (register commands)

__all__ = ["main", "cli", "UserError"]
