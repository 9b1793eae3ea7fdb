"""Run directories: a directory is either a complete run or clearly marked as not one.

``unsup fit ... --out DIR`` writes

- ``status.json`` first: ``{"status": "running", "pid", "host", ...}`` and the full run
  record, so an interrupted run can be resumed; updated to ``"failed"`` (with the error) or
  ``"interrupted"`` (Ctrl-C, with the command that resumes it) when the run stops early;
- ``model.safetensors``, ``metrics.json`` (and the engines' ``checkpoints/``), each written
  atomically (a temporary file in the same directory, ``fsync``, :func:`os.replace`);
- ``run.json`` last, then ``status.json`` is removed. A ``run.json`` therefore means a complete
  run; a directory with only ``status.json`` is running, failed, interrupted or (its process is
  gone) killed.

:func:`check_out` refuses a non-empty directory unless the run is resumed or overwritten; an
overwrite removes only the files a run writes (:data:`RUN_FILES`), and only from a directory
that holds a run. :func:`list_runs` is ``unsup runs``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

__all__ = ["RunError", "RUN_FILES", "check_out", "clear", "write_json", "read_json",
           "read_record", "mark", "finish", "status_of", "list_runs", "key_metrics"]

RUN_JSON, STATUS_JSON = "run.json", "status.json"
#: what a run writes into its directory (files and directories); an overwrite removes these
RUN_FILES = frozenset({"model.safetensors", RUN_JSON, STATUS_JSON, "metrics.json", "probe.json",
                       "report.html", "metrics.jsonl", "checkpoints", "tensorboard"})


class RunError(ValueError):
    """A run directory that cannot be used as asked (one line, names the file)."""


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON atomically: a temporary file beside it, flushed, then renamed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(obj, indent=2, default=_default))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True) if tmp.parent.exists() else None
        raise RunError(f"cannot write {path}: {e.strerror or e}") from None


def _default(v: Any) -> Any:
    try:
        return float(v)
    except (TypeError, ValueError):
        return repr(v)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON object from ``path``; a one-line :class:`RunError` naming the file otherwise."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise RunError(f"{path} is not valid JSON (not UTF-8 text)") from None
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror or e}") from None
    if not isinstance(obj, dict):
        raise RunError(f"{path} is not a JSON object")
    return obj


def read_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's record: ``run.json`` (complete) else ``status.json``; ``None`` when neither."""
    d = Path(run_dir)
    for name in (RUN_JSON, STATUS_JSON):
        if (d / name).is_file():
            rec = read_json(d / name)
            rec.setdefault("status", "complete" if name == RUN_JSON else "running")
            return rec
    return None


def _is_run(d: Path) -> bool:
    return any((d / n).exists() for n in (RUN_JSON, STATUS_JSON, "model.safetensors"))


def check_out(out: str, *, overwrite: bool = False, resume: bool = False
              ) -> tuple[Path, dict[str, Any] | None]:
    """Check that ``out`` can take this run; nothing is removed here.

    Returns the directory (created if needed) and, with ``resume``, the previous record.
    """
    if not str(out).strip():
        raise RunError("--out is empty: give a run directory")
    if overwrite and resume:
        raise RunError("--overwrite and --resume exclude each other")
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise RunError(f"--out {d} is a file, not a directory")
    contents = sorted(p.name for p in d.iterdir()) if d.is_dir() else []
    previous = None
    if resume:
        previous = read_record(d) if contents else None
        if previous is None:
            raise RunError(f"nothing to resume in {d}: it holds no run (no run.json or "
                           "status.json)")
    elif contents and not overwrite:
        raise RunError(f"{d} is not empty ({', '.join(contents[:4])}"
                       f"{', ...' if len(contents) > 4 else ''}): pass --overwrite to replace "
                       "the run there, or --resume to continue it")
    elif contents and not _is_run(d):
        raise RunError(f"{d} is not a run directory (no run.json, status.json or "
                       "model.safetensors): --overwrite only replaces runs")
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise RunError(f"cannot write to {d}: {e.strerror or e}") from None
    return d, previous


def clear(d: Path) -> list[str]:
    """Remove the files a run writes (:data:`RUN_FILES`) from ``d``; others are left alone."""
    removed = []
    for p in sorted(d.iterdir()):
        if p.name in RUN_FILES or p.name.startswith((".run.json.tmp", ".status.json.tmp")):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            removed.append(p.name)
    return removed


def mark(d: Path, record: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    """Write ``status.json``: the record with ``status`` (running / failed / interrupted)."""
    record = {**record, **extra, "status": status, "pid": os.getpid(),
              "host": socket.gethostname()}
    write_json(d / STATUS_JSON, record)
    return record


def finish(d: Path, record: dict[str, Any]) -> None:
    """Write ``run.json`` (the run is complete), then drop ``status.json``."""
    record = {k: v for k, v in record.items() if k not in ("pid", "host", "error", "resume")}
    write_json(d / RUN_JSON, {**record, "status": "complete"})
    (d / STATUS_JSON).unlink(missing_ok=True)


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def status_of(record: dict[str, Any]) -> str:
    """complete, failed, interrupted, running, or killed (running, but its process is gone)."""
    status = str(record.get("status", "complete"))
    if status == "running" and record.get("host") == socket.gethostname() \
            and not _alive(record.get("pid")):
        return "killed"
    return status


def key_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """A few headline numbers: of the test split if there is one, else of the training split."""
    split = metrics.get("test") if isinstance(metrics.get("test"), dict) else metrics.get("train")
    out: dict[str, float] = {}
    if isinstance(split, dict):
        for k, v in split.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and len(out) < 3 \
                    and not k.startswith("n_"):  # counts are not results
                out[k] = float(v)
    return out


def list_runs(root: str | os.PathLike = ".", max_depth: int = 3) -> list[dict[str, Any]]:
    """Every run directory at or under ``root``: path, model, data, status, key metrics."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"no directory at {root}")
    rows = []
    for dirpath, dirnames, _ in os.walk(root):
        d = Path(dirpath)
        depth = len(d.relative_to(root).parts)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".")
                             and n not in ("checkpoints", "tensorboard")) \
            if depth < max_depth else []
        if not ((d / RUN_JSON).exists() or (d / STATUS_JSON).exists()):
            continue
        row: dict[str, Any] = {"path": str(d)}
        try:
            rec = read_record(d) or {}
            row.update(model=rec.get("model"), data=rec.get("data"), status=status_of(rec),
                       seed=rec.get("seed"), fit_seconds=rec.get("fit_seconds"))
            if (d / "metrics.json").exists():
                row["metrics"] = key_metrics(read_json(d / "metrics.json"))
        except RunError as e:
            row.update(status="unreadable", error=str(e))
        rows.append(row)
    return rows
