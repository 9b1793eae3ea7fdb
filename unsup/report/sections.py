"""Report sections about fitted estimators, chosen by capability.

:func:`model_report` asks what a model can do (the estimator protocol's methods: ``predict``,
``transform`` + ``inverse_transform``, ``score_samples`` / ``log_likelihood``, ``sample``) and
draws what that allows; ``history_`` is the protocol's training record. It never reaches for a
family's fitted attributes: a family adds its own sections with
:func:`unsup.report.hooks.report_section`. Anything that fails is noted in the report (and
warned about) instead of raising, so it works on any scikit-learn-style estimator.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np

from unsup.metrics.clustering import clustering_report
from unsup.report.html import Report
from unsup.report.plots import (
    confusion_matrix_plot,
    curves_plot,
    em_trace_plot,
    embedding_plot,
    image_grid,
)

__all__ = ["model_report", "comparison_table", "flatten_dict", "probe_table", "pretraining_table",
           "likelihood_record", "draw_samples", "history_series"]

_EM_KEYS = ("log_likelihood", "bound", "kl")
_MAX_CONFUSION = 60
_MAX_PROJECTED = 2000
_N_SAMPLES = 32


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        a = a.detach().cpu().numpy()
    elif hasattr(a, "to_numpy") and not isinstance(a, np.ndarray):
        a = a.to_numpy()
    return np.asarray(a)


def flatten_dict(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings: ``{"a": {"b": 1}}`` becomes ``{"a.b": 1}``.

    Parameters
    ----------
    d : mapping
        Possibly nested mapping.
    prefix : str, default=""
        Prefix for every key.
    sep : str, default="."
        Separator between nested keys.

    Returns
    -------
    dict
        A flat dict with string keys.
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten_dict(v, key, sep))
        else:
            out[key] = v
    return out


def _short(v: Any, limit: int = 80) -> Any:
    """A table-friendly value: numbers and short strings as is, other objects as a repr."""
    if v is None or isinstance(v, (bool, numbers.Number, str)):
        if isinstance(v, str) and len(v) > limit:
            return v[: limit - 1] + "…"
        return v
    if hasattr(v, "ndim") and getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
        return v.item()
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return f"array{tuple(v.shape)} {v.dtype}"
    try:
        s = repr(v)
    except Exception:  # a broken __repr__ must not break the report
        s = f"<{type(v).__name__}>"
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _is_scalar(v: Any) -> bool:
    if isinstance(v, (bool, numbers.Number, str)):
        return True
    return hasattr(v, "ndim") and getattr(v, "ndim", None) == 0 and hasattr(v, "item")


def _get_params(model: Any) -> dict[str, Any] | None:
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return None
    try:
        params = get_params(deep=False)
    except TypeError:
        params = get_params()
    return dict(params) if isinstance(params, Mapping) else None


def _fitted_scalars(model: Any) -> dict[str, Any]:
    """Scalar public fitted attributes (``n_iter_``, ``converged_``, ...)."""
    try:
        attrs = vars(model)
    except TypeError:
        return {}
    out = {}
    for k in sorted(attrs):
        if k.endswith("_") and not k.startswith("_") and _is_scalar(attrs[k]):
            out[k] = _short(attrs[k])
    return out


def _history(model: Any) -> list[Mapping[str, Any]] | None:
    hist = getattr(model, "history_", None)
    if not isinstance(hist, (list, tuple)) or not hist:
        return None
    if not all(isinstance(h, Mapping) for h in hist):
        return None
    return list(hist)


def history_series(history: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Numeric keys shared by every history entry (except ``iter``), as series."""
    keys = [k for k in history[0] if k not in ("iter", "step", "epoch", "time", "lr")]
    series: dict[str, list[float]] = {}
    for k in keys:
        vals = []
        for h in history:
            v = h.get(k)
            if not isinstance(v, numbers.Real) or isinstance(v, bool):
                break
            vals.append(float(v))
        else:
            if any(math.isfinite(x) for x in vals):
                series[str(k)] = vals
    return series


def _can(model: Any, method: str) -> bool:
    return callable(getattr(model, method, None))


def _first(out: Any) -> Any:
    """The data of a ``sample`` result: scikit-learn's mixtures return ``(X, labels)``."""
    return out[0] if isinstance(out, tuple) else out


def likelihood_record(lk: Any) -> dict[str, Any]:
    """A :class:`~unsup.likelihood.Likelihood` (or its ``to_dict()``) as one table row.

    The value sits under the likelihood's own column ("log-likelihood (nats/sample)" for
    discrete data, "log-density (continuous, nats/sample)" for continuous data), so a table
    of several rows never puts a density beside a probability mass.
    """
    from unsup.likelihood import Likelihood

    d = lk.to_dict() if isinstance(lk, Likelihood) else dict(lk)
    column = Likelihood(d["nats"], d["kind"], d["estimator"], d["support"],
                        int(d.get("n_samples") or 1)).column
    iv = d.get("interval")
    row: dict[str, Any] = {column: d["nats"], "kind": d["kind"], "estimator": d["estimator"]}
    if d.get("stderr") is not None:
        row["std. error"] = d["stderr"]
    if iv is not None:
        row["interval"] = f"[{float(iv[0]):.4g}, {float(iv[1]):.4g}]"
    if d.get("bits_per_dim") is not None:
        row["bits/dim"] = d["bits_per_dim"]
    if d.get("transform"):
        row["data transform"] = d["transform"]
    row["rows"] = d.get("n_samples")
    return row


_LIKELIHOOD_KEYS = frozenset({"nats", "kind", "support", "estimator"})


def _drop_likelihoods(m: Mapping[str, Any]) -> dict[str, Any]:
    """``m`` without its typed likelihood records (at any depth)."""
    return {k: (_drop_likelihoods(v) if isinstance(v, Mapping) else v) for k, v in m.items()
            if not (isinstance(v, Mapping) and _LIKELIHOOD_KEYS <= set(v))}


def _likelihood_records(metrics: Mapping[str, Any] | None, prefix: str = ""
                        ) -> list[tuple[str, dict[str, Any]]]:
    """Typed likelihood records in ``metrics`` (``evaluate_model``'s ``likelihood*`` entries),
    at any depth, labelled by where they are (``train``, ``test``, ``evaluate reverse_ais``)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(metrics, Mapping):
        return out
    for key, val in metrics.items():
        if not isinstance(val, Mapping):
            continue
        if str(key).startswith("likelihood") and _LIKELIHOOD_KEYS <= set(val):
            label = " ".join(t for t in (prefix, "" if key == "likelihood" else str(key)) if t)
            out.append((label or "report data", dict(val)))
        else:
            out.extend(_likelihood_records(val, " ".join(t for t in (prefix, str(key)) if t)))
    return out


class _Sections:
    """Runs each section, turning failures into a note so one bad section spares the rest."""

    def __init__(self, report: Report, level: int) -> None:
        self.report = report
        self.level = level

    def run(self, heading: str, fn: Callable[[], None]) -> None:
        n_before = len(self.report._blocks)
        self.report.heading(heading, self.level)
        try:
            fn()
        except Exception as e:  # any estimator may misbehave; report it, keep going
            del self.report._blocks[n_before + 1:]
            msg = f"{heading}: skipped ({type(e).__name__}: {e})"
            warnings.warn(f"model_report: {msg}", RuntimeWarning, stacklevel=3)
            self.report.text(f"Section skipped because of an error: {type(e).__name__}: {e}")


def _load_family_sections() -> None:
    """Import the families: they register their sections at import."""
    from unsup.registry import load_families

    load_families()


def model_report(
    model: Any,
    X: Any,
    y: Any | None = None,
    image_shape: tuple[int, ...] | None = None,
    metrics: Mapping[str, Any] | None = None,
    title: str | None = None,
    report: Report | None = None,
    seed: int = 0,
    hint: str | None = None,
) -> Report:
    """Add a section about a fitted estimator to a report (or start a new report).

    The generic sections are chosen by **capability** (the methods of the estimator
    protocol), never by a family's attribute names:

    * **Parameters** — ``get_params()``, plus scalar public fitted attributes
      (``n_iter_``, ...).
    * **Metrics** — the ``metrics`` dict (nested dicts flattened to ``a.b`` keys); when
      ``metrics`` is None, ``y`` is given and the model can ``predict``, accuracy / NMI / ARI
      of ``predict(X)``.
    * **Log-likelihood** — the typed likelihoods (:class:`unsup.likelihood.Likelihood`)
      found in ``metrics``, else :func:`unsup.likelihood.likelihood_of` on ``X`` (models with
      ``score_samples`` or ``log_likelihood``): kind, estimator, uncertainty, bits/dim for
      discrete data; continuous densities and discrete likelihoods sit in different columns.
    * **Reconstructions** — ``inverse_transform(transform(X))`` beside ``X``, as images.
    * **Samples** — a grid of ``sample(n)``, as images.
    * **Confusion matrix** — ``predict`` and ``y``.
    * **Training history** — ``history_`` (the protocol's training record: a list of dicts of
      numbers, one per step or iteration); with keys ``log_likelihood``, ``bound`` and ``kl``
      it is drawn as an EM trace.
    * **2-D projection** — PCA of at most 2,000 rows: of the codes (``transform``) of a
      representation learner, else of the inputs coloured by ``predict`` (or ``y``).

    Then every section a family registered for the model's class
    (:func:`unsup.report.hooks.report_section`: centres, filters, Gibbs chains, topic
    tables, ...), in their registered order.

    Parameters
    ----------
    model : estimator
        A fitted estimator.
    X : array-like of shape (n_samples, n_features)
        Data to describe the model on (numpy array or torch tensor).
    y : array-like of shape (n_samples,), optional
        True labels.
    image_shape : tuple of int, optional
        Shape of one row as an image; images are drawn only when it is given.
    metrics : dict, optional
        Metrics to tabulate; values may be nested dicts.
    title : str, optional
        Section title; defaults to the model's class name.
    report : Report, optional
        Report to append to. A new one titled ``title`` is created when omitted.
    seed : int, default=0
        Seed of the row subsets and of ``sample``.

    Returns
    -------
    Report
        The report the section was added to.
    """
    from unsup.report.hooks import SectionContext, sections_for

    name = type(model).__name__
    title = str(title) if title is not None else name
    stack = ExitStack()
    if report is None:
        report = Report(title)
        level = 2
    else:  # one collapsible section per model, listed in the contents bar
        stack.enter_context(report.section(title, hint=hint or name))
        level = 3
    with stack:
        sections = _Sections(report, level)

        Xn = _to_numpy(X) if X is not None else None
        yn = _to_numpy(y).reshape(-1) if y is not None else None
        has_predict = _can(model, "predict") and Xn is not None
        n_pixels = int(np.prod(image_shape)) if image_shape is not None else None
        cache: dict[str, Any] = {}

        def predictions() -> np.ndarray:
            if "pred" not in cache:
                cache["pred"] = _to_numpy(model.predict(X)).reshape(-1)
            return cache["pred"]

        # Parameters -----------------------------------------------------------------------
        params = None
        try:
            params = _get_params(model)
        except Exception as e:
            warnings.warn(f"model_report: get_params failed ({type(e).__name__}: {e})",
                          RuntimeWarning, stacklevel=2)
        fitted = _fitted_scalars(model)
        if params is not None or fitted:

            def _params() -> None:
                n_rows = len(params or {}) + len(fitted)
                with report.collapsed(f"{n_rows} parameters and fitted attributes (click to "
                                      "show)"):
                    if params:
                        report.table([{"parameter": k, "value": _short(v, 160)}
                                      for k, v in params.items()], caption=f"{name} parameters")
                    if fitted:
                        report.table([{"attribute": k, "value": v} for k, v in fitted.items()],
                                     caption="Fitted attributes")

            sections.run("Parameters", _params)

        # Metrics --------------------------------------------------------------------------
        if metrics is not None or (yn is not None and has_predict):

            def _metrics() -> None:
                m = metrics if metrics is not None else clustering_report(yn, predictions())
                report.table(metric_rows(_drop_likelihoods(m)),  # likelihoods: own section
                             caption="Metrics (one column per data set the model was measured "
                                     "on)")

            sections.run("Metrics", _metrics)

        # Log-likelihood (density capability) ----------------------------------------------
        records = _likelihood_records(metrics)
        if records or (Xn is not None and (_can(model, "score_samples")
                                           or _can(model, "log_likelihood"))):

            def _likelihood() -> None:
                from unsup.likelihood import likelihood_of

                rows = []
                if records:
                    rows = [{"measured on": label, **likelihood_record(r)} for label, r in records]
                else:
                    lk = likelihood_of(model, X)
                    if lk is None:
                        return
                    rows = [{"measured on": "report data", **likelihood_record(lk)}]
                report.table(rows, caption="Mean log-likelihood per sample (nats). Discrete "
                             "likelihoods (log probability mass, <= 0) and continuous densities "
                             "(log density, which depends on the data's scale) are in separate "
                             "columns and are not comparable. Bits/dim = -nats / (D ln 2), for "
                             "discrete data.")

            sections.run("Log-likelihood", _likelihood)

        # Representation quality (codes: reconstruction error, linear probe) ----------------
        if Xn is not None and Xn.ndim == 2 and _can(model, "transform") and not has_predict:

            def _quality() -> None:
                from unsup.report.quality import representation_quality

                probe = _find_number(metrics, "linear_probe_accuracy")
                rows = representation_quality(model, Xn, yn, seed, probe=probe)
                if rows:
                    report.table(rows, caption="Quality of the representation")

            sections.run("Representation quality", _quality)

        # Reconstructions (codes and decoding) ---------------------------------------------
        if (n_pixels is not None and Xn is not None and Xn.ndim == 2 and Xn.shape[1] == n_pixels
                and _can(model, "transform") and _can(model, "inverse_transform")):

            def _reconstructions() -> None:
                n_show = min(10, Xn.shape[0])
                idx = np.random.default_rng(seed).choice(Xn.shape[0], size=n_show, replace=False)
                orig = np.asarray(Xn[np.sort(idx)], dtype=np.float32)
                rec = _to_numpy(model.inverse_transform(model.transform(orig))).reshape(n_show, -1)
                sse = float(((rec - orig) ** 2).sum(1).mean())
                report.figure(image_grid(np.concatenate([orig, rec]), image_shape, ncols=n_show),
                              caption=f"Top: {n_show} originals; bottom: their reconstructions "
                                      f"(squared error {sse:.3g} per image on these).")

            sections.run("Reconstructions", _reconstructions)

        # Samples (generation) -------------------------------------------------------------
        if n_pixels is not None and _can(model, "sample"):

            def _samples() -> None:
                S = draw_samples(model, _N_SAMPLES, seed)
                if S.ndim != 2 or S.shape[1] != n_pixels:
                    report.text(f"Not drawn: samples of shape {S.shape} are not images of "
                                f"shape {tuple(image_shape)}.")  # type: ignore[arg-type]
                    return
                report.figure(image_grid(S, image_shape, ncols=8),
                              caption=f"{S.shape[0]} samples drawn with sample({_N_SAMPLES}), "
                                      f"seed {seed}.")
                from unsup.report.quality import diversity_note

                diversity_note(report, S, Xn, yn, seed)

            sections.run("Samples", _samples)

        # Confusion matrix (clusters) ------------------------------------------------------
        if yn is not None and has_predict:

            def _confusion() -> None:
                pred = predictions()
                n_clu = np.unique(pred).size
                n_cls = np.unique(yn).size
                if max(n_clu, n_cls) > _MAX_CONFUSION:
                    report.text(f"Not drawn: {n_cls} classes × {n_clu} clusters is too large "
                                f"(limit {_MAX_CONFUSION}).")
                    return
                report.figure(confusion_matrix_plot(yn, pred),
                              caption="Rows: true classes; columns: clusters in the order of "
                                      "the Hungarian matching (matched pairs on the diagonal).")

            sections.run("Confusion matrix", _confusion)

        # Training history (history_) ------------------------------------------------------
        history = _history(model)
        if history is not None:
            if all(all(k in h for k in _EM_KEYS) for h in history):

                def _em() -> None:
                    report.figure(em_trace_plot(history),
                                  caption="Per-sample log-likelihood, bound L(q, θ) and KL gap "
                                          "(nats); ln p(X|θ) = L(q, θ) + KL(q ‖ p(Z|X, θ)).")
                    last = history[-1]
                    report.table([{k: _short(v) for k, v in last.items()}],
                                 caption="Last recorded step")

                sections.run("EM trace", _em)
            else:
                series = history_series(history)
                if series:

                    def _curves() -> None:
                        from unsup.report.quality import history_axes, series_label

                        x, xlabel = history_axes(history)
                        named = {series_label(k): v for k, v in series.items()}
                        one_axis = set(series) <= {"loss", "val_loss"}
                        report.figure(curves_plot(named, xlabel=xlabel, x=x,
                                                  ylabel="loss (the model's objective, per "
                                                         "sample)" if one_axis else "value",
                                                  panels=not one_axis),
                                      caption="The training record (history_): "
                                              + ", ".join(named) + f", against {xlabel}.")

                    sections.run("Training history", _curves)

        # 2-D projection (codes, or inputs coloured by clusters) ---------------------------
        if Xn is not None and Xn.ndim == 2 and Xn.shape[0] >= 3 and Xn.shape[1] >= 2:

            def _projection() -> None:
                from sklearn.decomposition import PCA

                n = Xn.shape[0]
                rng = np.random.default_rng(seed)
                idx = (np.sort(rng.choice(n, size=_MAX_PROJECTED, replace=False))
                       if n > _MAX_PROJECTED else np.arange(n))
                sub = np.asarray(Xn[idx], dtype=np.float64)
                space = "inputs"
                if not has_predict and _can(model, "transform"):
                    # a representation learner: show its codes, not the raw inputs
                    codes = _to_numpy(model.transform(Xn[idx])).reshape(idx.size, -1)
                    if codes.shape[1] >= 2:
                        sub, space = codes.astype(np.float64), "codes"
                unit = "code units" if space == "codes" else "input units"
                if sub.shape[1] == 2:
                    Z, axes = sub, [f"{space} 1 ({unit})", f"{space} 2 ({unit})"]
                else:
                    pca = PCA(n_components=2, random_state=0).fit(sub)
                    Z = pca.transform(sub)
                    axes = [f"PC {i + 1} of the {space} ({unit}; "
                            f"{100 * pca.explained_variance_ratio_[i]:.1f}% of variance)"
                            for i in range(2)]
                labels, what = None, ""
                if has_predict:
                    try:
                        labels, what = predictions()[idx], "predicted cluster"
                    except Exception as e:
                        warnings.warn(f"model_report: predict failed ({type(e).__name__}: {e})",
                                      RuntimeWarning, stacklevel=4)
                if labels is None and yn is not None:
                    labels, what = yn[idx], "true label"
                cap = (f"PCA of the {space} of {idx.size} of {n} samples"
                       + (f", coloured by {what}" if what else ""))
                report.figure(embedding_plot(Z, labels, title=f"{name}: PCA projection",
                                             xlabel=axes[0], ylabel=axes[1],
                                             legend_title=what or None),
                              caption=cap)

            sections.run("2-D projection", _projection)

        # Sections the model's family registered -------------------------------------------
        try:
            _load_family_sections()
        except Exception as e:  # a broken family import must not lose the generic report
            warnings.warn(f"model_report: family sections unavailable ({type(e).__name__}: {e})",
                          RuntimeWarning, stacklevel=2)
        ctx = SectionContext(report=report, X=Xn, y=yn,
                             image_shape=tuple(image_shape) if image_shape is not None else None,
                             metrics=dict(metrics or {}), seed=seed)
        for heading, fn in sections_for(model):
            sections.run(heading, lambda fn=fn: fn(model, ctx))

    return report


def metric_rows(m: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Metrics as table rows, one column per nested group: ``{"train": {"nmi": .5}, "test":
    {"nmi": .4}, "fit_seconds": 3}`` gives rows ``nmi | .5 | .4`` and ``fit_seconds | 3`` (under
    "value"), so train and test numbers sit side by side instead of in one long column."""
    groups = [str(k) for k, v in m.items() if isinstance(v, Mapping)]
    rows: dict[str, dict[str, Any]] = {}
    for key, v in flatten_dict(m).items():
        head, _, rest = key.partition(".")
        col, name = (head, rest) if rest and head in groups else ("value", key)
        rows.setdefault(name, {"metric": name})[col] = _short(v)
    cols = ["metric", *groups, "value"]
    return [{c: r.get(c) for c in cols if any(c in q for q in rows.values())}
            for r in rows.values()]


def _find_number(metrics: Any, key: str) -> float | None:
    """``metrics[...][key]`` at any depth (the first found), when it is a number."""
    if not isinstance(metrics, Mapping):
        return None
    v = metrics.get(key)
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    for sub in metrics.values():
        found = _find_number(sub, key)
        if found is not None:
            return found
    return None


def draw_samples(model: Any, n: int, seed: int | None = None) -> np.ndarray:
    """``model.sample(n)`` as an array (the data of a ``(X, labels)`` tuple), seeded.

    The seed goes to ``sample(n, random_state=seed)`` when the method takes one; otherwise
    (scikit-learn style samplers that draw from the estimator's own ``random_state``) the
    estimator's ``random_state`` parameter is set to ``seed`` for the call, and the global torch
    and numpy generators are seeded around it; both are restored afterwards.
    """
    import inspect

    import torch

    fn = model.sample
    try:
        takes_seed = "random_state" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_seed = False
    if takes_seed or seed is None:
        out = fn(n, random_state=seed) if takes_seed else fn(n)
    else:
        np_state, torch_state = np.random.get_state(), torch.get_rng_state()
        params = _get_params(model) or {}
        own = "random_state" in params and callable(getattr(model, "set_params", None))
        try:
            np.random.seed(seed)
            torch.manual_seed(seed)
            if own:
                model.set_params(random_state=seed)
            out = fn(n)
        finally:
            if own:
                model.set_params(random_state=params["random_state"])
            np.random.set_state(np_state)
            torch.set_rng_state(torch_state)
    return _to_numpy(_first(out))


def _is_likelihood(v: Any) -> bool:
    from unsup.likelihood import Likelihood

    return isinstance(v, Likelihood) or (
        isinstance(v, Mapping) and {"nats", "kind", "support", "estimator"} <= set(v))


def _split_likelihoods(row: Mapping[str, Any]) -> dict[str, Any]:
    """Put each likelihood of a row in its own column (discrete vs continuous), with its kind;
    drop the flat ``log_likelihood*`` copies beside a typed record."""
    out: dict[str, Any] = {}
    typed = any(_is_likelihood(v) for v in row.values())
    for k, v in row.items():
        if typed and str(k).startswith(("log_likelihood", "bits_per_dim")):
            continue  # evaluate_model's flat copies of the typed record: one column for all
        if _is_likelihood(v):
            rec = likelihood_record(v)
            col = next(iter(rec))
            prefix = "" if str(k) in ("likelihood", "log_likelihood") else f"{k} "
            out[f"{prefix}{col}"] = rec[col]
            out[f"{prefix}likelihood kind"] = f"{rec['kind']} ({rec['estimator']})"
        elif isinstance(v, Mapping):
            out[k] = _split_likelihoods(v)
        else:
            out[k] = v
    return out


def comparison_table(
    rows: Sequence[Mapping[str, Any]],
    report: Report | None = None,
    caption: str | None = None,
    title: str = "Comparison",
) -> Report:
    """Tabulate several runs side by side (nested dicts flattened to ``a.b`` columns).

    A typed likelihood in a row (:class:`unsup.likelihood.Likelihood` or its ``to_dict()``)
    goes to the column of its support: discrete log-likelihoods and continuous log-densities
    never share one.

    Parameters
    ----------
    rows : sequence of dict
        One dict per model/run, e.g. ``{"model": "KMeans", "metrics": {"nmi": 0.7}}``.
    report : Report, optional
        Report to append to; a new one titled ``title`` is created when omitted.
    caption : str, optional
        Table caption.
    title : str, default="Comparison"
        Title of the new report, or heading of the section when ``report`` is given.

    Returns
    -------
    Report
        The report the table was added to.
    """
    if report is None:
        report = Report(title)
    else:
        report.heading(title, 2)
    flat = [{k: _short(v) for k, v in flatten_dict(_split_likelihoods(r)).items()} for r in rows]
    report.table(flat, caption=caption)
    return report


def _pm(mean: Any, std: Any) -> str:
    if not isinstance(mean, numbers.Real):
        return ""
    if isinstance(std, numbers.Real) and std > 0:
        return f"{mean:.4f} ± {std:.4f}"
    return f"{mean:.4f}"


def probe_table(
    rows: Sequence[Mapping[str, Any]],
    report: Report | None = None,
    caption: str | None = None,
    title: str = "Probe accuracy",
) -> Report:
    """Tabulate linear-probe / k-NN accuracies by number of labels.

    Parameters
    ----------
    rows : sequence of dict
        Rows of :func:`unsup.metrics.label_fraction_curve` (keys ``probe``, ``n_labels``,
        ``accuracy_mean``, ``accuracy_std``, ``n_seeds``), optionally with a
        ``representation`` key naming what was probed (codes, raw inputs, ...).
    report : Report, optional
        Report to append to (a level-2 section titled ``title``); a new one when omitted.
    caption : str, optional
        Table caption; a default explains the protocol.
    title : str, default="Probe accuracy"
        Report title or section heading.

    Returns
    -------
    Report
        The report the table was added to.
    """
    if report is None:
        report = Report(title)
    else:
        report.heading(title, 2)
    names = {"linear": "linear probe", "knn": "k-NN"}
    table = []
    for r in rows:
        row: dict[str, Any] = {}
        if "representation" in r:
            row["representation"] = r["representation"]
        row["probe"] = names.get(str(r.get("probe")), r.get("probe"))
        row["labels"] = r.get("n_labels")
        row["test accuracy"] = _pm(r.get("accuracy_mean"), r.get("accuracy_std"))
        row["seeds"] = r.get("n_seeds")
        table.append(row)
    report.table(table, caption=caption or (
        "Frozen codes; logistic regression on standardised codes, and k-NN; trained on a "
        "class-balanced labelled subset of the training data, scored on the test data "
        "(mean ± std over seeds)."))
    return report


def pretraining_table(
    rows: Sequence[Mapping[str, Any]],
    report: Report | None = None,
    caption: str | None = None,
    title: str = "Pre-training versus random initialisation",
) -> Report:
    """Tabulate :func:`unsup.metrics.pretraining_experiment` results.

    Parameters
    ----------
    rows : sequence of dict
        Rows with ``n_labels``, ``pretrained_mean``/``_std``, ``random_mean``/``_std``,
        ``gain`` and ``winner``.
    report : Report, optional
        Report to append to; a new one when omitted.
    caption : str, optional
        Table caption.
    title : str, default="Pre-training versus random initialisation"
        Report title or section heading.

    Returns
    -------
    Report
        The report the table was added to.
    """
    if report is None:
        report = Report(title)
    else:
        report.heading(title, 2)
    table = [{"labels": r.get("n_labels"),
              "pretrained init": _pm(r.get("pretrained_mean"), r.get("pretrained_std")),
              "random init": _pm(r.get("random_mean"), r.get("random_std")),
              "gain": r.get("gain"), "winner": r.get("winner")} for r in rows]
    report.table(table, caption=caption or (
        "Test accuracy of the same classifier fine-tuned from pre-trained versus random "
        "hidden layers (mean ± std over seeds)."))
    return report
