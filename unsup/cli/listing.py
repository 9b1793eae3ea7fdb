"""Listing commands: ``models``, ``datasets``, ``runs`` (each with ``--json``) and ``demo``."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from unsup.cli._app import UserError, cli, echo_json

__all__ = ["models", "datasets", "runs", "demo", "model_rows", "fit_descriptions",
           "cached_fit_description"]


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(as_json: bool) -> None:
    """List the embedded and known datasets."""
    from unsup.data import SUPPORTED_FORMATS, list_datasets
    from unsup.data.sequences import text_corpora

    rows = list_datasets() + text_corpora()  # text corpora: for text models (char-rnn)
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
    if markdown:
        from unsup.registry import model_table

        click.echo(model_table())
        return
    rows = model_rows()
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        aliases = f" (also: {', '.join(r['aliases'])})" if r["aliases"] else ""
        click.echo(f"{r['name']:24s} {r['family']:14s} {r['summary']}{aliases}")


# -- the model list without importing the families ------------------------------------------------
# Listing the registry imports every family (torch, scikit-learn, numba: seconds). The list
# only changes when unsup's source does, so it is cached, keyed by the path, size and mtime of
# every module of the package, the interpreter and unsup's version; a process that registered
# models itself (tests, notebooks) and third-party families (``unsup.models`` entry points) are
# always read from the registry.
def _cache_file(name: str = "models.json") -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "unsup" / name


_MEMO: dict[str, Any] = {}  # per process: the source key and the caches read


def _source_key() -> str | None:
    if "key" not in _MEMO:
        _MEMO["key"] = _compute_source_key()
    return _MEMO["key"]


def _compute_source_key() -> str | None:
    from importlib.metadata import entry_points

    import unsup

    if os.environ.get("UNSUP_NO_CACHE") or list(entry_points(group="unsup.models")):
        return None
    root = Path(unsup.__file__).parent
    h = hashlib.sha256(f"{sys.executable}|{getattr(unsup, '__version__', '')}".encode())
    for f in sorted(root.rglob("*.py")):
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _fresh_key() -> str | None:
    """The cache key, or None where the cache must not be used (models registered in this
    process, a third-party family, ``UNSUP_NO_CACHE``)."""
    from unsup import registry

    fresh = not getattr(registry, "_BY_NAME", True)  # nothing registered in this process yet
    return _source_key() if fresh else None


def _read_cache(name: str, key: str | None) -> Any:
    if key is None:
        return None
    memo = _MEMO.get(name)
    if memo is not None and memo[0] == key:
        return memo[1]
    try:
        cached = json.loads(_cache_file(name).read_text(encoding="utf-8"))
        if isinstance(cached, dict) and cached.get("key") == key:
            _MEMO[name] = (key, cached["data"])
            return cached["data"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache, or a damaged one: rebuilt by the caller
    return None


def _write_cache(name: str, key: str | None, data: Any) -> None:
    if key is None:
        return
    path = _cache_file(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "data": data}), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass  # a read-only home (or a default JSON cannot hold): no cache, same answer


_UNSET: Any = object()


def model_rows(key: Any = _UNSET) -> list[dict[str, Any]]:
    """Every registered model as ``{name, family, class, summary, aliases}``, in registry order
    (from the cache when unsup's source has not changed since it was written)."""
    from unsup import registry

    key = _fresh_key() if key is _UNSET else key  # taken before anything is registered
    cached = _read_cache("models.json", key)
    if isinstance(cached, list):
        return list(cached)
    rows = [{"name": s.name, "family": s.family, "class": s.cls.__name__,
             "summary": s.summary, "aliases": list(s.aliases)} for s in registry.model_specs()]
    _write_cache("models.json", key, rows)
    return rows


def fit_descriptions(key: Any = _UNSET) -> dict[str, dict[str, Any]]:
    """``unsup fit NAME``'s description (:func:`unsup.cli.fitting.fit_description`) of every
    registered model, by name, from the cache when unsup's source has not changed (building it
    imports every family once)."""
    from unsup import registry
    from unsup.cli.fitting import fit_description

    key = _fresh_key() if key is _UNSET else key
    cached = _read_cache("fit_help.json", key)
    if isinstance(cached, dict):
        return cached
    data = {s.name: fit_description(s) for s in registry.model_specs()}
    # through JSON: the cached copy is what a later process reads
    _write_cache("fit_help.json", key, data)
    return json.loads(json.dumps(data))


def cached_fit_description(name: str) -> dict[str, Any] | None:
    """The cached description of model ``name`` (or an alias; case-insensitive), or None when
    there is no valid cache for it (the caller then builds the command from the class)."""
    key = _fresh_key()
    data = _read_cache("fit_help.json", key)
    if key is None:
        return None
    if not isinstance(data, dict):
        try:
            data = fit_descriptions(key)  # imports the families once; later calls are fast
        except Exception:  # noqa: BLE001 - the live path reports any real problem
            return None
    k = name.strip().lower().replace("_", "-")
    for r in model_rows(key):
        if k == r["name"] or k in r["aliases"]:
            return data.get(r["name"])
    return None


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
