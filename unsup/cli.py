"""The ``unsup`` command: fit, evaluate, report, encode, sample, models, datasets, demo.

``unsup fit MODEL`` takes its options from the estimator's own ``__init__`` parameters (one
source of truth): ``unsup fit kmeans --n-clusters 10 --data mnist5k --out runs/km``.
Bad input ends with a one-line ``error: ...`` and exit status 2, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from unsup.registry import get_model, model_specs

__all__ = ["main", "cli"]

_COMMON_SKIP = {"verbose"}


class UserError(click.ClickException):
    """A problem the user can fix; printed as one line."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


# -- helpers -------------------------------------------------------------------------------
def _param_docs(cls: type) -> dict[str, str]:
    """First line of each parameter's description in the numpydoc ``Parameters`` section."""
    doc = inspect.getdoc(cls) or ""
    m = re.search(r"Parameters\n-+\n(.*?)(\n\w[\w ]*\n-+\n|\Z)", doc, re.S)
    out: dict[str, str] = {}
    if not m:
        return out
    current = None
    for line in m.group(1).splitlines():
        if line and not line.startswith(" "):
            names = line.split(":")[0]
            kind = line.split(":", 1)[1].strip() if ":" in line else ""
            current = [n.strip() for n in names.split(",")]
            for n in current:
                out[n] = kind
        elif current and line.strip():
            for n in current:
                if not out[n] or out[n].count(" ") < 12:
                    out[n] = (out[n] + ". " if out[n] else "") + line.strip()
            current = None
    return out


def _parse_value(text: str) -> Any:
    """Parse an option value: numbers, booleans, None, lists; otherwise the string itself."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class _NumberOrWord(click.ParamType):
    """An int (or float) option that also passes a word through, for parameters such as
    ``bound_samples=10`` that also accept ``"exact"``: the estimator validates the word."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = "integer" if kind is int else "float"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.kind(value)
        except ValueError:
            pass
        try:
            return float(value) if self.kind is int and "." in value else _parse_value(value)
        except ValueError:
            return value


def _option_for(name: str, default: Any, help_text: str) -> click.Option:
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        return click.Option([f"{flag}/--no-{name.replace('_', '-')}"], default=default,
                            help=help_text, show_default=True)
    if isinstance(default, int):
        return click.Option([flag], type=_NumberOrWord(int), default=default, help=help_text,
                            show_default=True)
    if isinstance(default, float):
        return click.Option([flag], type=_NumberOrWord(float), default=default,
                            help=help_text, show_default=True)
    if isinstance(default, str):
        return click.Option([flag], type=str, default=default, help=help_text,
                            show_default=True)
    return click.Option([flag], type=str, default=None, help=help_text,
                        show_default=repr(default))


def _load_data(spec: str, binarize: Any = None) -> Any:
    from unsup.data import load

    try:
        return load(spec, binarize=binarize)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise UserError(str(e).splitlines()[0] if str(e) else repr(e)) from None


def _binarize_arg(value: str | None) -> Any:
    if value is None:
        return None
    if value == "stochastic":
        return value
    try:
        return float(value)
    except ValueError:
        raise UserError(f"--binarize takes a threshold (e.g. 0.5) or 'stochastic', not {value!r}"
                        ) from None


def _progress_fit(estimator: Any, X: Any, quiet: bool) -> float:
    """Fit with a rich progress bar fed by the engines' progress reports."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from unsup.base import progress_callback

    t0 = time.perf_counter()
    if quiet:
        estimator.fit(X)
        return time.perf_counter() - t0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), transient=True,
                  console=Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def cb(stage: str, step: int, total: int | None, **m: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, info="")
            info = "  ".join(f"{k}={v:.5g}" for k, v in m.items())
            bar.update(tasks[stage], completed=step, total=total, info=info)

        with progress_callback(cb):
            estimator.fit(X)
    return time.perf_counter() - t0


def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
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


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    os.replace(tmp, path)


def _read_run(run_dir: str) -> tuple[Any, dict[str, Any]]:
    import unsup

    d = Path(run_dir)
    if not d.exists():
        raise UserError(f"no run directory at {d}")
    model_path = d / "model.safetensors" if d.is_dir() else d
    try:
        model = unsup.load(model_path)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e)) from None
    run = {}
    run_json = (d if d.is_dir() else d.parent) / "run.json"
    if run_json.exists():
        try:
            run = json.loads(run_json.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{run_json} is not valid JSON") from None
    return model, run


# -- the command group ---------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unsup")
@click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """unsup: unsupervised representation learning (clusters, codes, samples, likelihoods)."""
    ctx.obj = {"debug": debug}


class _FitGroup(click.Group):
    """``unsup fit MODEL``: one sub-command per model, options from its parameters."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [s.name for s in model_specs()]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        try:
            spec = get_model(name)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        return _make_fit_command(spec)


def _make_fit_command(spec: Any) -> click.Command:
    from unsup.params import group_docs

    cls = spec.cls
    docs = {**group_docs(cls), **_param_docs(cls)}
    sig = inspect.signature(cls.__init__)
    est_params = [p for p in sig.parameters.values()
                  if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    params: list[click.Parameter] = [
        click.Option(["--data"], required=True,
                     help="Dataset name (see `unsup datasets`) or path."),
        click.Option(["--out"], required=True, type=click.Path(file_okay=False),
                     help="Run directory to write model.safetensors, run.json, metrics.json."),
        click.Option(["--test-data"], default=None,
                     help="Held-out data to evaluate on after fitting (name or path)."),
        click.Option(["--binarize"], default=None,
                     help="Binarise the data: a threshold (e.g. 0.5) or 'stochastic'."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress bar."),
    ]
    for p in est_params:
        if p.name in _COMMON_SKIP:
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        params.append(_option_for(p.name, default, docs.get(p.name, "")))

    def callback(**kw: Any) -> None:
        ctx = click.get_current_context()
        est_kw = {}
        for p in est_params:
            if p.name in kw:
                v = kw[p.name]
                default = p.default
                if v is None and default is not None:
                    continue  # not given (non-scalar defaults have no click default)
                if isinstance(v, str) and (not isinstance(default, str)
                                           or v.lstrip().startswith("[")):
                    v = _parse_value(v)
                est_kw[p.name] = v
        try:
            estimator = cls(**est_kw)
        except TypeError as e:
            raise UserError(str(e)) from None
        binarize = _binarize_arg(kw["binarize"])
        ds = _load_data(kw["data"], binarize)
        test = _load_data(kw["test_data"], binarize) if kw["test_data"] else None
        out = Path(kw["out"])
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {out}: {e.strerror}") from None
        seconds = _progress_fit(estimator, ds.X, kw["quiet"])
        estimator.save(out / "model.safetensors")
        from unsup.metrics import evaluate_model

        metrics: dict[str, Any] = {"fit_seconds": seconds,
                                   "train": evaluate_model(estimator, ds.X, ds.y)}
        if test is not None:
            metrics["test"] = evaluate_model(estimator, test.X, test.y,
                                             given=_given_ratings(estimator, ds.X, test.X))
        run = {"model": spec.name, "class": cls.__name__, "data": kw["data"],
               "test_data": kw["test_data"], "binarize": binarize,
               "params": {k: v for k, v in est_kw.items() if not isinstance(v, np.ndarray)},
               "image_shape": ds.image_shape, "n_samples": len(ds.X),
               "n_features": int(ds.X.shape[1])}
        _write_json(out / "run.json", run)
        _write_json(out / "metrics.json", metrics)
        if not kw["quiet"]:
            _print_metrics(f"{cls.__name__} on {kw['data']} ({seconds:.2f} s)", metrics)
            click.echo(f"wrote {out / 'model.safetensors'}, {out / 'metrics.json'}")
        del ctx

    return click.Command(spec.name, params=params, callback=callback,
                         help=f"Fit {cls.__name__}: {spec.summary}.")


@cli.group(cls=_FitGroup)
def fit() -> None:
    """Fit a model on a dataset and write it to a run directory.

    Every option after MODEL is a parameter of the model's estimator; see
    `unsup fit MODEL --help`.
    """


def _probe_rows(model: Any, run: dict[str, Any], test: Any, test_spec: str, binarize: Any,
                n_seeds: int, run_dir: str) -> list[dict[str, Any]]:
    """Linear probe + k-NN on the run's training codes, scored on ``test``; saved to probe.json."""
    from unsup.metrics import probe_summary

    if not callable(getattr(model, "transform", None)):
        raise UserError(f"{type(model).__name__} has no transform: --probe judges codes")
    train_spec = run.get("data")
    if not train_spec:
        raise UserError("--probe trains on the run's training data, but run.json records none")
    if test_spec == train_spec:
        raise UserError("--probe needs held-out data: pass --data TEST (e.g. mnist-test) or fit "
                        "with --test-data")
    if n_seeds < 1:
        raise UserError(f"--probe-seeds must be >= 1, got {n_seeds}")
    train = _load_data(train_spec, binarize)
    for name, ds in ((train_spec, train), (test_spec, test)):
        if ds.y is None:
            raise UserError(f"--probe needs labels, and {name} has none")
    try:
        rows = probe_summary(model, train.X, train.y, test.X, test.y,
                             seeds=list(range(n_seeds)), name=f"{type(model).__name__} codes")
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    d = Path(run_dir)
    _write_json((d if d.is_dir() else d.parent) / "probe.json",
                {"train_data": train_spec, "test_data": test_spec, "rows": rows})
    return rows


def _print_probe(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("representation", "probe", "labels", "test accuracy", "seeds"):
        table.add_column(col, justify="right" if col in ("labels", "seeds") else "left")
    for r in rows:
        acc = f"{r['accuracy_mean']:.4f}"
        if r["n_seeds"] > 1:
            acc += f" ± {r['accuracy_std']:.4f}"
        table.add_row(r["representation"], {"linear": "linear probe"}.get(r["probe"], "k-NN"),
                      str(r["n_labels"]), acc, str(r["n_seeds"]))
    Console(stderr=False).print(table)


@cli.command()
@click.argument("run_dir")
@click.option("--data", default=None, help="Data to evaluate on (default: the run's data).")
@click.option("--binarize", default=None, help="As for fit (default: the run's setting).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--probe", is_flag=True,
              help="Also judge the codes: linear probe and k-NN trained on the run's training "
                   "data (100, 1,000, all labels) and scored on the test data; raw inputs "
                   "as baseline. Writes RUN_DIR/probe.json.")
@click.option("--probe-seeds", default=3, show_default=True,
              help="Labelled subsets (seeds) per label count for --probe.")
@click.option("--reverse-ais", is_flag=True,
              help="Models with reverse AIS (binary RBMs, DBNs, DBMs): also estimate log Z by "
                   "reverse AIS from Gibbs chains started at training states; forward and "
                   "reverse bracket log Z when both have converged. The result is written to "
                   "RUN_DIR/metrics.json (under evaluate.reverse_ais); the model file is "
                   "never changed.")
def evaluate(run_dir: str, data: str | None, binarize: str | None, as_json: bool,
             probe: bool, probe_seeds: int, reverse_ais: bool) -> None:
    """Evaluate a fitted model (clustering scores, log-likelihood, probes) on data.

    Measuring never changes the model: the model file is left byte-identical.
    """
    from unsup.metrics import evaluate_model

    model, run = _read_run(run_dir)
    spec = data or run.get("test_data") or run.get("data")
    if spec is None:
        raise UserError("no --data given and the run records none")
    b = _binarize_arg(binarize) if binarize is not None else run.get("binarize")
    rev = _reverse_ais(model, run) if reverse_ais else None
    ds = _load_data(spec, b)
    given = None
    if callable(getattr(model, "rating_metrics", None)) and spec != run.get("data"):
        train = _load_data(run["data"], run.get("binarize")) if run.get("data") else None
        given = _given_ratings(model, train.X if train is not None else None, ds.X)
    try:
        metrics = evaluate_model(model, ds.X, ds.y, given=given)
        if rev is not None:
            metrics.update(_reverse_ais_metrics(model, rev, ds.X))
    except ValueError as e:
        raise UserError(str(e)) from None
    if rev is not None:
        _record_metrics(run_dir, "reverse_ais", {"data": spec, **{
            k: v for k, v in metrics.items() if "reverse" in k}})
    rows = _probe_rows(model, run, ds, spec, b, probe_seeds, run_dir) if probe else None
    if as_json:
        out = {"data": spec, **metrics}
        if rows is not None:
            out["probe"] = rows
        click.echo(json.dumps(out, indent=2, default=float))
    else:
        _print_metrics(f"{type(model).__name__} on {spec}", {spec: metrics})
        if rows is not None:
            _print_probe(f"Probes: trained on {run.get('data')}, scored on {spec}", rows)


def _run_dir(run_dir: str) -> Path:
    d = Path(run_dir)
    return d if d.is_dir() else d.parent


def _record_metrics(run_dir: str, key: str, value: Any) -> None:
    """Add ``value`` under ``evaluate.<key>`` in RUN_DIR/metrics.json (never the model)."""
    path = _run_dir(run_dir) / "metrics.json"
    try:
        metrics = json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON") from None
    metrics.setdefault("evaluate", {})[key] = value
    _write_json(path, metrics)


def _jsonable_result(res: Any) -> Any:
    """A measurement result as JSON: ``to_dict()``, a dict, a number or a tuple of numbers."""
    if callable(getattr(res, "to_dict", None)):
        return res.to_dict()
    if isinstance(res, dict):
        return res
    if isinstance(res, (tuple, list)):
        return [_jsonable_result(r) for r in res]
    if isinstance(res, (int, float, np.generic)):
        return float(res)
    return None if res is None else repr(res)


def _reverse_ais(model: Any, run: dict[str, Any]) -> Any:
    """Run the model's reverse AIS (the ``estimate_log_partition_reverse`` capability).

    The loaded model may keep the result in memory for this process; nothing is saved.
    Returns the method's result, or ``True`` when it returns nothing.
    """
    fn = getattr(model, "estimate_log_partition_reverse", None)
    if not callable(fn):
        raise UserError(f"{type(model).__name__} has no reverse AIS (it is for binary "
                        "RBMs, DBNs and DBMs)")
    try:
        try:
            res = fn()  # chains start at the training states the model stored at fit
        except ValueError:
            takes_x = "X" in inspect.signature(fn).parameters
            if not (takes_x and run.get("data")):
                raise
            # a model saved without stored states: start the chains at its training data
            res = fn(X=_load_data(run["data"], run.get("binarize")).X)
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    return True if res is None else res


def _reverse_ais_metrics(model: Any, rev: Any, X: Any) -> dict[str, Any]:
    """What the reverse-AIS log Z implies on ``X``, as a typed likelihood.

    Either the model measures ``X`` with a given log Z (``log_likelihood(X,
    log_partition=RESULT)``), or the likelihood the model reports with the log Z it uses
    (``log_partition_result()``) is moved by the difference of the two log Z: log p(v) is
    -F(v) - log Z, so another log Z shifts every row by the same amount (and its interval maps
    to the likelihood's, reversed).
    """
    from dataclasses import replace

    from unsup.likelihood import likelihood_of

    out: dict[str, Any] = {}
    if rev is True:
        return out
    out["reverse_ais"] = _jsonable_result(rev)
    fn = getattr(model, "log_likelihood", None)
    lk = None
    if callable(fn) and "log_partition" in inspect.signature(fn).parameters:
        lk = fn(X, log_partition=rev)
    elif callable(getattr(model, "log_partition_result", None)) and hasattr(rev, "log_z"):
        used = model.log_partition_result()
        base = likelihood_of(model, X)
        if base is not None:
            lk = base.shifted(float(used.log_z) - float(rev.log_z))
            lo, hi = (float(t) for t in getattr(rev, "interval", (rev.log_z, rev.log_z)))
            at_used = base.nats + float(used.log_z)
            bound = base.kind in ("lower bound", "stochastic lower bound")
            lk = replace(lk, kind="stochastic lower bound" if bound else "stochastic estimate",
                         estimator=f"{base.estimator}; log Z by reverse AIS",
                         interval=(at_used - hi, at_used - lo))
    if lk is not None:
        out["likelihood_reverse_ais"] = lk.to_dict()
        out["log_likelihood_reverse_ais"] = lk.nats
    return out


def _given_ratings(model: Any, train: Any, target: Any) -> Any:
    """For recommenders: held-out ratings are predicted from the same users' training
    ratings, so the training matrix is the conditioning input when the shapes agree."""
    if not callable(getattr(model, "rating_metrics", None)) or train is None:
        return None
    if np.shape(train) != np.shape(target):
        raise UserError(f"held-out ratings have shape {np.shape(target)} but the training "
                        f"ratings {np.shape(train)}: a ratings test set must be users x items "
                        "of the same users (0 or NaN where not held out)")
    return train


@cli.command()
@click.argument("run_dir")
@click.option("--out", default=None, help="HTML file (default: RUN_DIR/report.html).")
def report(run_dir: str, out: str | None) -> None:
    """Write a self-contained HTML report for a fitted run."""
    from unsup.report import model_report

    model, run = _read_run(run_dir)
    spec = run.get("test_data") or run.get("data")
    ds = _load_data(spec, run.get("binarize")) if spec else None
    metrics = None
    mpath = Path(run_dir) / "metrics.json"
    if mpath.exists():
        metrics = json.loads(mpath.read_text())
    X, y = (ds.X, ds.y) if ds is not None else (None, None)
    shape = tuple(ds.image_shape) if ds is not None and ds.image_shape else None
    rep = model_report(model, X, y, image_shape=shape, metrics=metrics,
                       title=f"{type(model).__name__} — {spec or 'no data'}")
    ppath = Path(run_dir) / "probe.json"
    if ppath.exists():  # written by `unsup evaluate RUN_DIR --probe`
        from unsup.report import probe_table

        probe = json.loads(ppath.read_text())
        probe_table(probe.get("rows", []), report=rep, title="Probe table",
                    caption=f"Linear probe (logistic regression on standardised frozen codes) "
                            f"and k-NN (cosine, k=5): trained on {probe.get('train_data')}, "
                            f"scored on {probe.get('test_data')}; mean ± std over seeds.")
    path = Path(out) if out else Path(run_dir) / "report.html"
    rep.save(path)
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("run_dir")
@click.option("--data", required=True, help="Data to encode (dataset name or path).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output .npy file for the codes (n_samples x n_components).")
@click.option("--binarize", default=None, help="As for fit (default: the run's setting).")
def encode(run_dir: str, data: str, out_path: str, binarize: str | None) -> None:
    """Write the codes (``model.transform``) of a fitted model for DATA to a .npy file."""
    model, run = _read_run(run_dir)
    if not callable(getattr(model, "transform", None)):
        raise UserError(f"{type(model).__name__} has no transform: it does not produce codes")
    b = _binarize_arg(binarize) if binarize is not None else run.get("binarize")
    ds = _load_data(data, b)
    try:
        codes = np.asarray(model.transform(ds.X))
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    out = Path(out_path)
    if out.suffix != ".npy":
        raise UserError(f"--out must end in .npy, got {out_path}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, codes)
    os.replace(tmp, out)
    click.echo(f"wrote {out} ({codes.shape[0]} x {codes.shape[1] if codes.ndim > 1 else 1})")


@cli.command()
@click.argument("run_dir")
@click.option("--n", "n", default=64, show_default=True, help="Number of samples.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output file: .npy (the samples, n x n_features), .png (a grid of images; "
                   "the run's image_shape) or .txt (text models: one sample per line).")
@click.option("--seed", default=0, show_default=True, help="Random seed of the sampler.")
def sample(run_dir: str, n: int, out_path: str, seed: int) -> None:
    """Draw N samples from a fitted model that can generate (``model.sample(n)``)."""
    from unsup.report.sections import draw_samples

    if n < 1:
        raise UserError(f"--n must be >= 1, got {n}")
    out = Path(out_path)
    if out.suffix not in (".npy", ".png", ".txt"):
        raise UserError(f"--out must end in .npy, .png or .txt, got {out_path}")
    model, run = _read_run(run_dir)
    if not callable(getattr(model, "sample", None)):
        raise UserError(f"{type(model).__name__} cannot sample: it is not a generative model "
                        "(it has no sample method)")
    samples = draw_samples(model, n, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    is_text = samples.dtype.kind in "USO"
    if is_text != (out.suffix == ".txt"):
        raise UserError(f"{type(model).__name__} samples text: --out must end in .txt"
                        if is_text else f"{type(model).__name__} samples arrays: --out must "
                        "end in .npy or .png")
    if is_text:
        lines = ["".join(map(str, r)) if np.ndim(r) else str(r) for r in samples]
        _write_text(out, "\n".join(lines) + "\n")
    elif out.suffix == ".npy":
        tmp = out.with_name(out.name + ".tmp.npy")
        np.save(tmp, samples)
        os.replace(tmp, out)
    else:
        shape = run.get("image_shape")
        if not shape or int(np.prod(shape)) != samples.reshape(len(samples), -1).shape[1]:
            raise UserError(f"a .png grid needs image samples: the run records image_shape "
                            f"{shape} and the samples have {samples.shape[1:]} features; "
                            "write .npy instead")
        from unsup.report.plots import image_grid

        fig = image_grid(samples.reshape(len(samples), -1), tuple(shape),
                         ncols=int(np.ceil(np.sqrt(len(samples)))))
        tmp = out.with_name(out.name + ".tmp.png")
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, out)
    click.echo(f"wrote {out} ({len(samples)} samples, seed {seed})")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@cli.command()
def datasets() -> None:
    """List the embedded and known datasets."""
    from rich.console import Console
    from rich.table import Table

    from unsup.data import SUPPORTED_FORMATS, list_datasets

    table = Table(title="datasets (load by name, or give a path)")
    table.add_column("name")
    table.add_column("description")
    for name, desc in list_datasets():
        table.add_row(name, desc)
    Console().print(table)
    click.echo(f"files: {SUPPORTED_FORMATS}")


@cli.command()
@click.option("--markdown", is_flag=True,
              help="Print the docs' model table (markdown), as README.md embeds it.")
def models(markdown: bool) -> None:
    """List the models `unsup fit` knows (name, family, summary, aliases)."""
    if markdown:
        from unsup.registry import model_table

        click.echo(model_table())
        return
    for spec in model_specs():
        aliases = f" (also: {', '.join(spec.aliases)})" if spec.aliases else ""
        click.echo(f"{spec.name:24s} {spec.family:14s} {spec.summary}{aliases}")


@cli.command()
@click.option("--out", default="unsup-demo", show_default=True, help="Output directory.")
@click.option("--quick", is_flag=True, help="Smaller settings (for smoke tests).")
def demo(out: str, quick: bool) -> None:
    """Fit every family on mnist5k, score on the MNIST test set, write one comparison report."""
    from unsup.demo import run_demo

    path = run_demo(Path(out), quick=quick, echo=click.echo)
    click.echo(f"report: {path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning expected errors into one-line messages."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="unsup", standalone_mode=False)
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
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        click.echo(f"error: {msg}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
