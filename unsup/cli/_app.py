"""The command group, the one-line error convention and helpers shared by the commands.

Imports here are the start-up cost of every command (``unsup --help`` included), so only
click and the standard library are imported at module level; each command imports what it uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["UserError", "WholeHelpGroup", "cli", "main", "load_data", "binarize_arg",
           "read_run", "run_dir", "check_width", "print_metrics", "echo_json", "first_line"]


class UserError(click.ClickException):
    """A problem the user can fix; printed as one line."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def load_data(spec: str, binarize: Any = None) -> Any:
    from unsup.data import load

    try:
        return load(spec, binarize=binarize)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise UserError(first_line(e)) from None


def binarize_arg(value: str | None) -> Any:
    if value is None:
        return None
    if value == "stochastic":
        return value
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--binarize takes a threshold (e.g. 0.5) or 'stochastic', not {value!r}"
                        ) from None


def run_dir(path: str) -> Path:
    d = Path(path)
    return d if d.is_dir() else d.parent


def read_run(path: str) -> tuple[Any, dict[str, Any]]:
    """The model of a run directory (or a model file) and its run record."""
    import unsup
    from unsup.runs import RunError, read_record

    d = Path(path)
    if not d.exists():
        raise UserError(f"no run directory at {d}")
    try:
        run = read_record(run_dir(path)) or {}
    except RunError as e:
        raise UserError(str(e)) from None
    model_path = d / "model.safetensors" if d.is_dir() else d
    try:
        model = unsup.load(model_path)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(first_line(e)) from None
    return model, run


def check_width(model: Any, X: Any, what: str) -> None:
    """Data for a fitted model must have the width it was fitted on."""
    d = getattr(model, "n_features_in_", None)
    if d is not None and X.ndim == 2 and X.shape[1] != d:
        raise UserError(f"{what} has {X.shape[1]} features, but {type(model).__name__} was "
                        f"fitted on {d}")


def print_metrics(title: str, metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for split, vals in metrics.items():
        if not isinstance(vals, dict):
            table.add_row("", split, f"{vals:.4g}" if isinstance(vals, float) else str(vals))
            continue
        for k, v in vals.items():
            if isinstance(v, dict):  # typed records (likelihood): their flat keys are shown
                continue
            table.add_row(split, k, f"{v:.6g}" if isinstance(v, float) else str(v))
    Console(stderr=False).print(table)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=float))


class WholeHelpGroup(click.Group):
    """A group whose command list shows each command's first sentence whole, never cut."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                text = (cmd.short_help or cmd.help or "").strip().split("\n\n")[0]
                rows.append((name, " ".join(text.split()).split(". ")[0].rstrip(".")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=WholeHelpGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unsup")
@click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """unsup: unsupervised representation learning (clusters, codes, samples, likelihoods)."""
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning expected errors into one-line messages."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="unsup", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):  # click returns Exit's code
            return rv
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        click.echo(f"error: {e.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except (ValueError, TypeError, FileNotFoundError, OSError, RuntimeError) as e:
        if debug:
            raise
        click.echo(f"error: {first_line(e)}", err=True)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug of ours: one line, not a traceback
        if debug:
            raise
        click.echo(f"internal error ({type(e).__name__}): {first_line(e)}; this is a bug in "
                   "unsup: rerun with --debug for the traceback and report it", err=True)
        return 1
    return 0
