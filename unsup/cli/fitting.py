"""``unsup fit MODEL``: options generated from the estimator's ``__init__``, run directories.

Order of work: parameters (the estimator's own constraints), the run directory (empty, or
``--overwrite`` / ``--resume``; writable), the data and test data (same width), and only then
training. An unseeded run draws its seed once and records it, so it can be resumed and
reproduced. ``--resume`` takes the recorded parameters; a changed parameter that affects
training is refused by name, budgets (:data:`MAY_CHANGE`) are applied and recorded. See
:mod:`unsup.runs` for what the directory holds.

Input kinds: a model class declares what ``fit`` takes in ``_input_kinds`` (default
``("array",)``: numeric arrays, :func:`unsup.data.load`). A class with ``"text"`` in it (the
char-RNN) also takes text: ``--data`` / ``--test-data`` naming a ``.txt`` / ``.txt.gz`` file,
a folder of them, or an embedded corpus (:func:`unsup.data.sequences.text_corpora`) are read
as strings (:func:`load_input`); a corpus that is meant to be read another way (the Mario
levels: ``layout="columns"``) sets the ``layout`` parameter when it is not given. A numeric
model given text stops with a one-line error.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shlex
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from unsup.cli._app import (
    UserError,
    WholeHelpGroup,
    echo_json,
    first_line,
    load_data,
    print_metrics,
)

__all__ = ["fit", "MAY_CHANGE", "input_kinds", "load_input", "text_metrics",
           "fit_description", "fit_command"]

# run-level options replace these estimator parameters (resume) or hide them (verbose)
_SKIP = {"verbose", "resume"}
#: parameters a resumed run may change: budgets and logging; anything else is refused
MAY_CHANGE = frozenset({"epochs", "max_steps", "max_iter", "n_updates", "n_iter", "verbose",
                        "log_every", "checkpoint_every", "tensorboard", "device",
                        "checkpoint_dir", "log_dir"})
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`])")


def _param_docs(cls: type, limit: int = 200) -> dict[str, str]:
    """Each parameter's description in the numpydoc ``Parameters`` section: whole sentences,
    as many as fit in ``limit`` characters (always the first); choices ``{...}`` kept."""
    doc = inspect.getdoc(cls) or ""
    m = re.search(r"Parameters\n-+\n(.*?)(\n\w[\w ]*\n-+\n|\Z)", doc, re.S)
    if not m:
        return {}
    entries: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    names: list[str] = []
    for line in m.group(1).splitlines():
        if line and not line.startswith(" "):
            names = [n.strip() for n in line.split(":")[0].split(",")]
            kind = line.split(":", 1)[1].strip() if ":" in line else ""
            for n in names:
                entries[n], kinds[n] = [], kind
        elif names:
            if not line.strip():
                names = names if not entries[names[0]] else []  # one paragraph only
                continue
            for n in names:
                entries[n].append(line.strip())
    out = {}
    for n, lines in entries.items():
        text = re.sub(r"``?([^`]+)``?", r"\1", " ".join(lines))
        text = re.sub(r":math:|:class:|:func:|:meth:", "", text)
        sentences = _SENTENCE.split(text)
        keep = sentences[:1]
        for s in sentences[1:]:
            if len(" ".join([*keep, s])) > limit:
                break
            keep.append(s)
        desc = " ".join(keep)
        choice = re.match(r"\{[^}]*\}", kinds[n])
        # a type line alone ("int, default=0") says nothing the option does not show
        out[n] = f"{choice.group(0)}: {desc}" if choice and desc else desc or (
            choice.group(0) if choice else "")
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


class _WordOrNumber(click.ParamType):
    """A word option (``n_init="auto"``) that also takes a number (``--n-init 3``): digits
    become an int or a float, anything else stays the word; the estimator validates it."""

    name = "text"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        v = _parse_value(value) if isinstance(value, str) else value
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else value


def _shown(default: Any) -> str:
    """A default as the user would type it: ``[256, 64]``, not ``((256, 64))``."""
    if isinstance(default, (tuple, list)):
        return "[" + ", ".join(_shown(v) for v in default) + "]"
    return "None" if default is None else str(default)


class _Option(click.Option):
    """Shows a non-scalar default as typed (``[default: [256]]``), without click's brackets."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        rec = super().get_help_record(ctx)
        if rec is None or not isinstance(self.show_default, str):
            return rec
        return rec[0], rec[1].replace(f"[default: ({self.show_default})]",
                                      f"[default: {self.show_default}]")


def _option_for(o: dict[str, Any]) -> click.Option:
    """The click option of one described parameter (see :func:`fit_description`)."""
    name, kind, default, help_text = o["name"], o["kind"], o["default"], o["help"]
    flag = "--" + name.replace("_", "-")
    if kind == "bool":
        return click.Option([f"{flag}/--no-{name.replace('_', '-')}"], default=default,
                            help=help_text, show_default=True)
    if kind in ("int", "float"):
        return click.Option([flag], type=_NumberOrWord(int if kind == "int" else float),
                            default=default, help=help_text, show_default=True)
    if kind == "str":
        return click.Option([flag], type=_WordOrNumber(), default=default, help=help_text,
                            show_default=True)
    return _Option([flag], type=str, default=None, help=help_text, show_default=o["shown"])


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "str" if isinstance(default, str) else "other"


class _FitGroup(WholeHelpGroup):
    """``unsup fit MODEL``: one sub-command per model, options from its parameters.

    ``unsup fit MODEL --help`` (and ``unsup fit --help``) answer from the cached descriptions
    of :func:`unsup.cli.listing.fit_descriptions` when unsup's source has not changed: no
    model family (torch, scikit-learn) is imported to print the options. A fit itself always
    builds its command from the live class."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from unsup.cli.listing import model_rows  # the cached listing: no model imported

        return [r["name"] for r in model_rows()]

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and any(a in ctx.help_option_names for a in args[1:]):
            ctx.meta["unsup.fit.help"] = True  # only printing help: the cached description
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta["unsup.fit.help"] = True
        super().format_commands(ctx, formatter)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if ctx.meta.get("unsup.fit.help"):
            from unsup.cli.listing import cached_fit_description

            desc = cached_fit_description(name)
            if desc is not None:
                return fit_command(desc, _delegate(desc["name"]))
        from unsup.registry import get_model

        try:
            spec = get_model(name)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        return _make_fit_command(spec)


def _delegate(name: str) -> Any:
    """A callback that runs the live command's (for a help-path command that is invoked after
    all, e.g. ``--data --help``: the same options, so the same keyword arguments)."""
    def callback(**kw: Any) -> None:
        from unsup.registry import get_model

        cmd = _make_fit_command(get_model(name))
        assert cmd.callback is not None
        cmd.callback(**kw)

    return callback


_RUN_OPTIONS = [
    click.Option(["--data"], required=True, help="Dataset name (see `unsup datasets`) or path."),
    click.Option(["--out"], required=True, type=click.Path(file_okay=False),
                 help="Run directory (model.safetensors, metrics.json, run.json last). "
                      "Must be empty unless --overwrite or --resume."),
    click.Option(["--test-data"], default=None,
                 help="Held-out data to evaluate on after fitting (name or path)."),
    click.Option(["--binarize"], default=None,
                 help="Binarise the data: a threshold (e.g. 0.5) or 'stochastic'."),
    click.Option(["--overwrite"], is_flag=True,
                 help="Replace the run in --out (its run files are removed first)."),
    click.Option(["--resume"], is_flag=True,
                 help="Continue the run in --out with its recorded parameters and seed "
                      "(from its checkpoint where the model keeps one)."),
    click.Option(["--quiet", "-q"], is_flag=True, help="No progress bar."),
    click.Option(["--json", "as_json"], is_flag=True,
                 help="Print the run's record and metrics as JSON."),
]


def _est_params(cls: type) -> list[inspect.Parameter]:
    sig = inspect.signature(cls.__init__)
    return [p for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in _SKIP]


def fit_description(spec: Any) -> dict[str, Any]:
    """What ``unsup fit NAME`` offers, as plain data (JSON-able for the scalar defaults): the
    command's help, the text corpora it names (text models) and each estimator parameter's
    option (name, kind, default, help). The command is built from it by :func:`fit_command`,
    live or from the cache."""
    from unsup.params import group_docs

    cls = spec.cls
    docs = {**group_docs(cls), **{k: v for k, v in _param_docs(cls).items() if v}}
    docs["random_state"] = ("Seed of the run. Not given: one is drawn, used and recorded in "
                            "run.json, so the run can be resumed and reproduced.")
    corpora = None
    if "text" in input_kinds(cls):  # say what text this model takes
        from unsup.data.sequences import text_corpora

        corpora = ", ".join(n for n, _ in text_corpora())
    options = []
    for p in _est_params(cls):
        default = None if p.default is inspect.Parameter.empty else p.default
        kind = _kind(default)
        options.append({"name": p.name, "kind": kind,
                        "default": default if kind != "other" else None,
                        "shown": _shown(default) if kind == "other" else None,
                        "help": docs.get(p.name, "")})
    return {"name": spec.name, "help": f"Fit {cls.__name__}: {spec.summary}.",
            "corpora": corpora, "options": options}


def fit_command(desc: dict[str, Any], callback: Any) -> click.Command:
    """The ``unsup fit NAME`` command of a description (:func:`fit_description`)."""
    params: list[click.Parameter] = list(_RUN_OPTIONS)
    if desc["corpora"] is not None:
        for i, opt in enumerate(params):
            if opt.name in ("data", "test_data"):
                params[i] = click.Option(
                    opt.opts, required=opt.required, default=opt.default,
                    help=f"{opt.help} Text: a .txt/.txt.gz file, a folder of them, or a "
                         f"corpus ({desc['corpora']}).")
    params += [_option_for(o) for o in desc["options"]]
    return click.Command(desc["name"], params=params, callback=callback, help=desc["help"])


def _make_fit_command(spec: Any) -> click.Command:
    est_params = _est_params(spec.cls)

    def callback(**kw: Any) -> None:
        ctx = click.get_current_context()
        given = {p.name for p in est_params
                 if ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE}
        _run_fit(spec, _estimator_kwargs(est_params, kw), given, kw)

    return fit_command(fit_description(spec), callback)


def _estimator_kwargs(est_params: list[inspect.Parameter], kw: dict[str, Any]) -> dict[str, Any]:
    est_kw = {}
    for p in est_params:
        v, default = kw[p.name], p.default
        if v is None and default is not None:
            continue  # not given (non-scalar defaults have no click default)
        if isinstance(v, str) and (not isinstance(default, str) or v.lstrip().startswith("[")):
            v = _parse_value(v)
        est_kw[p.name] = v
    return est_kw


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=lambda o: repr(o)))


def _resumed_params(previous: dict[str, Any], est_kw: dict[str, Any], given: set[str],
                    kw: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The recorded parameters, with the given ones applied where they may change."""
    for opt in ("data", "test_data", "binarize"):
        if kw[opt] is not None and opt in previous and kw[opt] != previous[opt] \
                and not (opt == "binarize" and str(kw[opt]) == str(previous[opt])):
            raise UserError(f"cannot resume: --{opt.replace('_', '-')} was "
                            f"{previous[opt]!r} in that run, now {kw[opt]!r}")
    old = previous.get("params") or {}
    changed = [k for k in sorted(given) if k in old and k not in MAY_CHANGE
               and _jsonable(est_kw[k]) != old[k]]
    if changed:
        k = changed[0]
        raise UserError(
            f"cannot resume with a different {k} ({old[k]!r} in that run, now {est_kw[k]!r}"
            f"{f'; also {changed[1:]}' if len(changed) > 1 else ''}): it changes training. "
            f"Start a new run (--overwrite or another --out); on resume only "
            f"{', '.join(sorted(MAY_CHANGE))} may change")
    merged = dict(est_kw)
    merged.update({k: v for k, v in old.items() if k in names and k not in given
                   and k not in _SKIP})
    return merged


def input_kinds(cls: type) -> frozenset[str]:
    """What the model class's ``fit`` takes: ``"array"`` (numeric), ``"text"`` (strings)."""
    return frozenset(getattr(cls, "_input_kinds", ("array",)))


def _text_models() -> str:
    from unsup.registry import model_specs

    return ", ".join(s.name for s in model_specs() if "text" in input_kinds(s.cls)) or "none"


def load_input(cls: type, spec: str, binarize: Any = None, what: str = "--data") -> Any:
    """The data ``spec`` for a model of class ``cls``: a :class:`unsup.data.sequences.TextData`
    when ``spec`` is text (refused in one line unless ``cls`` takes text), else the numeric
    :class:`unsup.data.Dataset` of :func:`unsup.data.load`."""
    from unsup.data.sequences import is_text_source, load_text

    if not is_text_source(spec):
        if "array" not in input_kinds(cls):
            raise UserError(f"{cls.__name__} takes text: {what} {spec} is not a .txt file, a "
                            "folder of them or a text corpus")
        return load_data(spec, binarize)
    if "text" not in input_kinds(cls):
        raise UserError(f"{what} {spec} is text, but {cls.__name__} takes numeric arrays "
                        f"(models of text: {_text_models()})")
    if binarize is not None:
        raise UserError(f"--binarize is for numeric data; {what} {spec} is text")
    try:
        return load_text(spec)
    except (ValueError, OSError) as e:
        raise UserError(first_line(e)) from None


def _is_text(ds: Any) -> bool:
    return hasattr(ds, "texts")


def _fit_input(ds: Any) -> Any:
    return ds.texts if _is_text(ds) else ds.X


def text_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Lift a likelihood's per-character counts (nats and bits per character, characters)
    to flat keys, so tables show them."""
    counts = (metrics.get("likelihood") or {}).get("counts") or {}
    for k in ("n_chars", "nats_per_char", "bits_per_char"):
        if k in counts:
            metrics[k] = counts[k]
    return metrics


def _layout_hint(cls: type, spec: str, given: set[str], names: set[str],
                 est_kw: dict[str, Any]) -> None:
    """A corpus meant to be read as grids sets ``layout`` when the user did not."""
    from unsup.data.sequences import corpus_layout

    lay = corpus_layout(spec) if "text" in input_kinds(cls) else None
    if lay is not None and lay != "text" and "layout" in names and "layout" not in given:
        est_kw["layout"] = lay
        given.add("layout")  # recorded in the command that reproduces the run


def _draw_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") >> 1


def _run_fit(spec: Any, est_kw: dict[str, Any], given: set[str], kw: dict[str, Any]) -> None:
    from unsup.runs import RunError, check_out

    cls = spec.cls
    names = set(inspect.signature(cls.__init__).parameters)
    created = not Path(str(kw["out"])).exists() if str(kw["out"]).strip() else False
    try:
        out, previous = check_out(kw["out"], overwrite=kw["overwrite"], resume=kw["resume"])
    except RunError as e:
        raise UserError(str(e)) from None
    try:
        _fit_checked(spec, cls, names, out, previous, est_kw, given, kw)
    except UserError:
        # refused before any work: leave no empty directory behind for a run that never began
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _fit_checked(spec: Any, cls: type, names: set[str], out: Path, previous: Any,
                 est_kw: dict[str, Any], given: set[str], kw: dict[str, Any]) -> None:
    """The run after its directory is accepted: every check, then the fit."""
    from unsup.runs import RunError, clear, finish, mark
    if previous is not None:
        est_kw = _resumed_params(previous, est_kw, given, kw, names)
    else:
        _layout_hint(cls, kw["data"], given, names, est_kw)
    seed = est_kw.get("random_state")
    drawn = "random_state" in names and seed is None
    if drawn:  # drawn once and recorded: the run can be resumed and reproduced
        seed = est_kw["random_state"] = _draw_seed()
    # a class whose loop ignores the inherited checkpoint parameters says so
    checkpoints = ({"checkpoint_dir", "resume"} <= names
                   and getattr(cls, "_keeps_checkpoints", True))
    if checkpoints:
        if not est_kw.get("checkpoint_dir"):
            est_kw["checkpoint_dir"] = str(out / "checkpoints")
        est_kw["resume"] = previous is not None
    try:
        estimator = cls(**est_kw)
        if callable(getattr(estimator, "_validate_params", None)):
            estimator._validate_params()
    except (TypeError, ValueError) as e:
        raise UserError(first_line(e)) from None
    binarize = _binarize(kw["binarize"], previous)
    ds = load_input(cls, kw["data"], binarize)
    test = load_input(cls, kw["test_data"], binarize, "--test-data") if kw["test_data"] else None
    if test is not None and _is_text(test) != _is_text(ds):
        raise UserError(f"--test-data {kw['test_data']} and --data {kw['data']} must both be "
                        "text or both be arrays")
    if test is not None and not _is_text(ds) and test.X.shape[1:] != ds.X.shape[1:]:
        raise UserError(f"--test-data {kw['test_data']} has {test.X.shape[1]} features, the "
                        f"training data {kw['data']} {ds.X.shape[1]}")
    if kw["overwrite"]:
        clear(out)
    segments = list((previous or {}).get("segments") or [])
    record = {"model": spec.name, "class": cls.__name__, "data": kw["data"],
              "test_data": kw["test_data"], "binarize": binarize,
              "params": _jsonable(estimator.get_params(deep=False)),
              "seed": seed, "seed_drawn": bool(drawn or (previous or {}).get("seed_drawn")),
              "image_shape": None if _is_text(ds) else ds.image_shape, "n_samples": len(ds),
              "n_features": None if _is_text(ds) else int(ds.X.shape[1]),
              "command": _command(spec, kw, est_kw, given), "segments": segments}
    if _is_text(ds):
        record.update(input="text", n_chars=ds.n_chars)
    segment = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "resumed": previous is not None,
               "budget": {k: est_kw[k] for k in sorted(MAY_CHANGE & set(est_kw))}}
    record = mark(out, record, "running")
    t0 = time.perf_counter()
    try:
        if previous is not None and not checkpoints and not kw["quiet"]:
            click.echo(f"{cls.__name__} keeps no checkpoints: fitting again from the start "
                       f"with the recorded seed {seed}", err=True)
        _progress_fit(estimator, _fit_input(ds), kw["quiet"])
        segment["seconds"] = time.perf_counter() - t0
        record["segments"] = [*segments, segment]
        record["fit_seconds"] = sum(s.get("seconds", 0.0) for s in record["segments"])
        metrics = _evaluate(estimator, ds, test, record)
        estimator.save(out / "model.safetensors")
        from unsup.runs import write_json

        write_json(out / "metrics.json", metrics)
    except KeyboardInterrupt:
        segment.update(seconds=time.perf_counter() - t0, status="interrupted")
        mark(out, {**record, "segments": [*segments, segment]}, "interrupted",
             resume=_resume_command(spec, kw))
        click.echo(f"\ninterrupted; continue with: {_resume_command(spec, kw)}", err=True)
        raise click.exceptions.Exit(130) from None
    except BaseException as e:
        segment.update(seconds=time.perf_counter() - t0, status="failed")
        mark(out, {**record, "segments": [*segments, segment]}, "failed", error=first_line(e))
        if isinstance(e, (RunError, OSError)):
            raise UserError(first_line(e)) from None
        raise
    finish(out, record)
    if kw["as_json"]:
        echo_json({"run": str(out), **record, "status": "complete", "metrics": metrics})
    elif not kw["quiet"]:
        print_metrics(f"{cls.__name__} on {kw['data']} ({record['fit_seconds']:.2f} s)", metrics)
        click.echo(f"wrote {out / 'model.safetensors'}, {out / 'metrics.json'}, "
                   f"{out / 'run.json'}")


def _binarize(value: str | None, previous: dict[str, Any] | None) -> Any:
    from unsup.cli._app import binarize_arg

    if value is None and previous is not None:
        return previous.get("binarize")
    return binarize_arg(value)


def _single_log_partition(estimator: Any) -> bool:
    """Whether the model has one log Z to estimate and cache (not one per document length,
    as the replicated softmax has: its ``estimate_log_partition`` needs the lengths)."""
    import inspect

    est = getattr(estimator, "estimate_log_partition", None)
    if not (callable(est) and callable(getattr(estimator, "log_partition_result", None))
            and callable(getattr(estimator, "set_log_partition", None))):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in inspect.signature(est).parameters.values())


def _evaluate(estimator: Any, ds: Any, test: Any, record: dict[str, Any]) -> dict[str, Any]:
    from unsup.cli.evaluate import given_ratings
    from unsup.metrics import evaluate_model

    # A model with an intractable normaliser (log Z by AIS) has it estimated once per run and
    # kept with the run's model, so train and test (and later evaluate/report) use the same
    # estimate instead of one fresh AIS each (the protocol: log_partition_result() gives the
    # cached, exact or freshly estimated log Z; set_log_partition() caches it).
    if _single_log_partition(estimator):
        estimator.set_log_partition(estimator.log_partition_result())
    metrics: dict[str, Any] = {"fit_seconds": record["fit_seconds"],
                               "fit_seconds_segments": [s["seconds"] for s in record["segments"]]}
    if _is_text(ds):  # text: the exact likelihood per character, no labels
        metrics["train"] = text_metrics(evaluate_model(estimator, ds.texts))
        if test is not None:
            metrics["test"] = text_metrics(evaluate_model(estimator, test.texts))
        return metrics
    metrics["train"] = evaluate_model(estimator, ds.X, ds.y)
    if test is not None:
        metrics["test"] = evaluate_model(estimator, test.X, test.y,
                                         given=given_ratings(estimator, ds.X, test.X))
    return metrics


def _command(spec: Any, kw: dict[str, Any], est_kw: dict[str, Any], given: set[str]) -> str:
    """The command line that reproduces this run (given options, and the seed used)."""
    parts = ["unsup", "fit", spec.name, "--data", kw["data"], "--out", kw["out"]]
    for opt in ("test_data", "binarize"):
        if kw[opt] is not None:
            parts += [f"--{opt.replace('_', '-')}", str(kw[opt])]
    for k in sorted(given | ({"random_state"} if "random_state" in est_kw else set())):
        v = est_kw.get(k)
        if isinstance(v, bool):
            parts.append(f"--{'' if v else 'no-'}{k.replace('_', '-')}")
        elif k in est_kw:
            parts += [f"--{k.replace('_', '-')}", _shown(v)]
    return shlex.join(parts)


def _resume_command(spec: Any, kw: dict[str, Any]) -> str:
    return shlex.join(["unsup", "fit", spec.name, "--data", kw["data"], "--out", kw["out"],
                       "--resume"])


def _progress_fit(estimator: Any, X: Any, quiet: bool) -> None:
    """Fit with a rich progress bar (with ETA) fed by the engines' progress reports."""
    if quiet:
        estimator.fit(X)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from unsup.base import progress_callback

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), transient=True,
                  console=Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def cb(stage: str, step: int, total: int | None, **m: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, info="")
            info = "  ".join(f"{k}={v:.5g}" for k, v in m.items())
            bar.update(tasks[stage], completed=step, total=total, info=info)

        with progress_callback(cb):
            estimator.fit(X)


@click.group(cls=_FitGroup)
def fit() -> None:
    """Fit a model on a dataset and write it to a run directory.

    Every option after MODEL is a parameter of the model's estimator; see
    `unsup fit MODEL --help`.
    """

