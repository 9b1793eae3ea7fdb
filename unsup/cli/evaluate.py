"""``unsup evaluate RUN``: scores, probes, reverse AIS and sample quality of a fitted model on
data of its width.

Measuring never changes the model file; results may be added to the run's ``metrics.json``
(reverse AIS, sample quality) or ``probe.json`` (probes).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import click

from unsup.cli._app import (
    UserError,
    binarize_arg,
    check_width,
    cli,
    first_line,
    load_data,
    print_metrics,
    read_run,
    run_dir,
)
from unsup.cli.fitting import load_input, text_metrics
from unsup.runs import write_json

__all__ = ["evaluate", "given_ratings"]


def _probe_rows(model: Any, run: dict[str, Any], test: Any, test_spec: str, binarize: Any,
                n_seeds: int, run_dir_: str) -> list[dict[str, Any]]:
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
    train = load_data(train_spec, binarize)
    for name, ds in ((train_spec, train), (test_spec, test)):
        if ds.y is None:
            raise UserError(f"--probe needs labels, and {name} has none")
    try:
        rows = probe_summary(model, train.X, train.y, test.X, test.y,
                             seeds=list(range(n_seeds)), name=f"{type(model).__name__} codes")
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    write_json(run_dir(run_dir_) / "probe.json",
                {"train_data": train_spec, "test_data": test_spec, "rows": rows})
    return rows


def _retrieval(model: Any, run: dict[str, Any], test: Any, test_spec: str, binarize: Any,
               k: int, metric: str) -> dict[str, Any]:
    """``--retrieval``: the test items query the run's training data by code distance."""
    from unsup.metrics.retrieval import retrieval_report

    if not callable(getattr(model, "transform", None)):
        raise UserError(f"{type(model).__name__} has no transform: --retrieval ranks codes")
    train_spec = run.get("data")
    if not train_spec:
        raise UserError("--retrieval searches the run's training data, but run.json records "
                        "none")
    if test_spec == train_spec:
        raise UserError("--retrieval needs held-out queries: pass --data TEST (e.g. mnist-test) "
                        "or fit with --test-data")
    train = load_data(train_spec, binarize)
    for name, ds in ((train_spec, train), (test_spec, test)):
        if ds.y is None:
            raise UserError(f"--retrieval needs labels (same label = relevant), and {name} has "
                            "none")
    try:
        rep = retrieval_report(model, train.X, train.y, test.X, test.y, k=k, metric=metric)
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    return {"database": train_spec, "queries": test_spec, **rep}


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
@click.option("--fid", is_flag=True,
              help="Models that sample: also draw --n-samples samples and compare them with the "
                   "data (FID, KID, precision/recall; Inception-style score and modes covered "
                   "for MNIST-shaped data) in the feature space of the shipped MNIST "
                   "classifier. Written to RUN_DIR/metrics.json (under "
                   "evaluate.sample_quality). See docs/sample-quality.md.")
@click.option("--n-samples", default=10000, show_default=True,
              help="Samples drawn for --fid.")
@click.option("--fid-seed", default=0, show_default=True,
              help="Seed of the sampler and of the KID subsets for --fid.")
@click.option("--fid-features", type=click.Choice(["digitnet", "pixels"]), default="digitnet",
              show_default=True,
              help="Feature space for --fid: the shipped MNIST classifier (784-pixel data) or "
                   "the raw inputs.")
@click.option("--retrieval", "do_retrieval", is_flag=True,
              help="Models with transform: the test items query the run's training data by "
                   "code distance (Hamming for 0/1 codes, else cosine); same label = relevant. "
                   "mAP, precision@k, precision-recall curve; written to RUN_DIR/metrics.json "
                   "(under evaluate.retrieval). See docs/retrieval.md.")
@click.option("--retrieval-k", default=100, show_default=True,
              help="k of precision@k for --retrieval.")
@click.option("--retrieval-metric", type=click.Choice(["auto", "hamming", "cosine", "euclidean"]),
              default="auto", show_default=True, help="Code distance for --retrieval.")
def evaluate(run_dir: str, data: str | None, binarize: str | None, as_json: bool,
             probe: bool, probe_seeds: int, reverse_ais: bool, fid: bool, n_samples: int,
             fid_seed: int, fid_features: str, do_retrieval: bool, retrieval_k: int,
             retrieval_metric: str) -> None:
    """Evaluate a fitted model (clustering scores, log-likelihood, probes) on data.

    Measuring never changes the model: the model file is left byte-identical.
    """
    from unsup.metrics import evaluate_model

    model, run = read_run(run_dir)
    spec = data or run.get("test_data") or run.get("data")
    if spec is None:
        raise UserError("no --data given and the run records none")
    b = binarize_arg(binarize) if binarize is not None else run.get("binarize")
    rev = _reverse_ais(model, run) if reverse_ais else None
    ds = load_input(type(model), spec, b)
    if hasattr(ds, "texts"):  # a model of text on text: the exact nats (bits) per character
        flags = [f for f, on in (("--probe", probe), ("--fid", fid),
                                 ("--retrieval", do_retrieval)) if on]
        if flags:
            raise UserError(f"{flags[0]} is for numeric data; {spec} is text")
        _evaluate_text(model, ds, spec, as_json)
        return
    check_width(model, ds.X, f"--data {spec}")
    given = None
    if callable(getattr(model, "rating_metrics", None)) and spec != run.get("data"):
        train = load_data(run["data"], run.get("binarize")) if run.get("data") else None
        given = given_ratings(model, train.X if train is not None else None, ds.X)
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
    quality = None
    if fid:
        quality = _sample_quality(model, ds.X, n_samples, fid_seed, fid_features)
        _record_metrics(run_dir, "sample_quality", {"data": spec, "seed": fid_seed, **quality})
        metrics["sample_quality"] = quality
    if do_retrieval:
        r = _retrieval(model, run, ds, spec, b, retrieval_k, retrieval_metric)
        _record_metrics(run_dir, "retrieval", r)
        metrics["retrieval"] = {k: v for k, v in r.items() if k != "pr_curve"}
    if as_json:
        out = {"data": spec, **metrics}
        if rows is not None:
            out["probe"] = rows
        click.echo(json.dumps(out, indent=2, default=float))
    else:
        print_metrics(f"{type(model).__name__} on {spec}", {spec: metrics})
        if rows is not None:
            _print_probe(f"Probes: trained on {run.get('data')}, scored on {spec}", rows)
        if quality is not None:
            print_metrics(f"Sample quality: {quality['n_samples']} samples against {spec} "
                          f"({quality['feature_space']} features)", {spec: quality})


def _evaluate_text(model: Any, ds: Any, spec: str, as_json: bool) -> None:
    """The exact likelihood of a text model on the sequences of ``ds``: nats per sequence,
    and nats and bits per character."""
    from unsup.metrics import evaluate_model

    try:
        metrics = text_metrics(evaluate_model(model, ds.texts))
    except ValueError as e:  # e.g. a character outside the run's vocabulary
        raise UserError(first_line(e)) from None
    if as_json:
        click.echo(json.dumps({"data": spec, **metrics}, indent=2, default=float))
    else:
        print_metrics(f"{type(model).__name__} on {spec}", {spec: metrics})


def _sample_quality(model: Any, X: Any, n: int, seed: int, features: str) -> dict[str, Any]:
    """``--fid``: draw ``n`` samples (seeded) and measure them against ``X``."""
    import numpy as np

    from unsup.metrics.sample_quality import sample_quality
    from unsup.report.sections import draw_samples

    if not callable(getattr(model, "sample", None)):
        raise UserError(f"{type(model).__name__} cannot sample: --fid is for generative models")
    if n < 2:
        raise UserError(f"--n-samples must be >= 2, got {n}")
    X = np.asarray(X)
    if features == "digitnet" and (X.ndim != 2 or X.shape[1] != 784):
        raise UserError(f"--fid with the digit classifier needs 784-pixel MNIST-like data, got "
                        f"{X.shape[1:]} features; use --fid-features pixels")
    S = np.asarray(draw_samples(model, n, seed))
    if S.dtype.kind not in "biuf" or S.ndim != 2 or S.shape[1] != X.shape[1]:
        raise UserError(f"{type(model).__name__} samples of shape {S.shape} ({S.dtype}) cannot "
                        f"be compared with data of {X.shape[1]} features")
    try:
        return sample_quality(S.astype(np.float32), X, random_state=seed,
                              feature_space=features)
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None


def _record_metrics(run_dir_: str, key: str, value: Any) -> None:
    """Add ``value`` under ``evaluate.<key>`` in RUN_DIR/metrics.json (never the model)."""
    from unsup.runs import RunError, read_json

    path = run_dir(run_dir_) / "metrics.json"
    try:
        metrics = read_json(path) if path.exists() else {}
    except RunError as e:
        raise UserError(str(e)) from None
    metrics.setdefault("evaluate", {})[key] = value
    write_json(path, metrics)


def _jsonable_result(res: Any) -> Any:
    """A measurement result as JSON: ``to_dict()``, a dict, a number or a tuple of numbers."""
    if callable(getattr(res, "to_dict", None)):
        return res.to_dict()
    if isinstance(res, dict):
        return res
    if isinstance(res, (tuple, list)):
        return [_jsonable_result(r) for r in res]
    import numpy as np

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
            res = fn(X=load_data(run["data"], run.get("binarize")).X)
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


def given_ratings(model: Any, train: Any, target: Any) -> Any:
    """For recommenders: held-out ratings are predicted from the same users' training
    ratings, so the training matrix is the conditioning input when the shapes agree."""
    import numpy as np

    if not callable(getattr(model, "rating_metrics", None)) or train is None:
        return None
    if np.shape(train) != np.shape(target):
        raise UserError(f"held-out ratings have shape {np.shape(target)} but the training "
                        f"ratings {np.shape(train)}: a ratings test set must be users x items "
                        "of the same users (0 or NaN where not held out)")
    return train


