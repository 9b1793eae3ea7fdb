"""Listing commands: ``models``, ``datasets``, ``runs`` (each with ``--json``) and ``demo``."""

from __future__ import annotations

from pathlib import Path

import click

from unsup.cli._app import UserError, cli, echo_json

__all__ = ["models", "datasets", "runs", "demo"]


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(as_json: bool) -> None:
    """List the embedded and known datasets."""
    from unsup.data import SUPPORTED_FORMATS, list_datasets

    rows = list_datasets()
    if as_json:
        echo_json({"datasets": [{"name": n, "description": d} for n, d in rows],
                   "file_formats": SUPPORTED_FORMATS})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="datasets (load by name, or give a path)")
    table.add_column("name")
    table.add_column("description")
    for name, desc in rows:
        table.add_row(name, desc)
    Console().print(table)
    click.echo(f"files: {SUPPORTED_FORMATS}")


@cli.command()
@click.option("--markdown", is_flag=True,
              help="Print the docs' model table (markdown), as README.md embeds it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(markdown: bool, as_json: bool) -> None:
    """List the models `unsup fit` knows (name, family, summary, aliases)."""
    from unsup.registry import model_specs

    if markdown:
        from unsup.registry import model_table

        click.echo(model_table())
        return
    specs = model_specs()
    if as_json:
        echo_json([{"name": s.name, "family": s.family, "class": s.cls.__name__,
                    "summary": s.summary, "aliases": list(s.aliases)} for s in specs])
        return
    for spec in specs:
        aliases = f" (also: {', '.join(spec.aliases)})" if spec.aliases else ""
        click.echo(f"{spec.name:24s} {spec.family:14s} {spec.summary}{aliases}")


@cli.command()
@click.argument("directory", default=".", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def runs(directory: str, as_json: bool) -> None:
    """List the runs at or under DIRECTORY: model, data, status, seed, key metrics.

    Status: complete (run.json written), running, failed, interrupted (Ctrl-C; resumable),
    killed (its process is gone) or unreadable.
    """
    from unsup.runs import RunError, list_runs

    try:
        rows = list_runs(directory)
    except RunError as e:
        raise UserError(str(e)) from None
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no runs under {directory}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"runs under {directory}")
    for col in ("run", "model", "data", "status", "seed", "fit s", "metrics"):
        table.add_column(col, justify="right" if col in ("seed", "fit s") else "left")
    for r in rows:
        m = "  ".join(f"{k}={v:.4g}" for k, v in (r.get("metrics") or {}).items())
        secs = r.get("fit_seconds")
        table.add_row(r["path"], str(r.get("model") or ""), str(r.get("data") or ""),
                      r["status"], str(r.get("seed") if r.get("seed") is not None else ""),
                      f"{secs:.1f}" if isinstance(secs, (int, float)) else "",
                      m or r.get("error", ""))
    Console(width=160).print(table)


@cli.command()
@click.option("--out", default="unsup-demo", show_default=True, help="Output directory.")
@click.option("--quick", is_flag=True, help="Smaller settings (for smoke tests).")
def demo(out: str, quick: bool) -> None:
    """Fit every family on mnist5k, score on the MNIST test set, write one comparison report."""
    from unsup.demo import run_demo

    path = run_demo(Path(out), quick=quick, echo=click.echo)
    click.echo(f"report: {path}")
