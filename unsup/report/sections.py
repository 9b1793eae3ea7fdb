"""Report sections about fitted estimators, built by duck typing.

:func:`model_report` looks for the usual fitted attributes (``get_params``, ``predict``,
``cluster_centers_`` / ``means_``, ``history_``) and draws what it finds. Anything missing
is skipped; anything that fails is noted in the report (and warned about) instead of
raising, so it works on any scikit-learn-style estimator, unsup's or not.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
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

__all__ = ["model_report", "comparison_table", "flatten_dict", "probe_table", "pretraining_table"]

_EM_KEYS = ("log_likelihood", "bound", "kl")
_MAX_CENTRES = 100
_MAX_CONFUSION = 60
_MAX_PROJECTED = 2000
_MAX_FILTERS = 50


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
    """Scalar public fitted attributes (``n_iter_``, ``inertia_``, ``converged_``, ...)."""
    try:
        attrs = vars(model)
    except TypeError:
        return {}
    out = {}
    for k in sorted(attrs):
        if k.endswith("_") and not k.startswith("_") and _is_scalar(attrs[k]):
            out[k] = _short(attrs[k])
    return out


def _em_history(model: Any) -> list[Mapping[str, Any]] | None:
    hist = getattr(model, "history_", None)
    if not isinstance(hist, (list, tuple)) or not hist:
        return None
    if not all(isinstance(h, Mapping) for h in hist):
        return None
    return list(hist)


def _history_series(history: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
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


def _can_reconstruct(model: Any) -> bool:
    return callable(getattr(model, "reconstruct", None)) or (
        callable(getattr(model, "transform", None))
        and callable(getattr(model, "inverse_transform", None)))


def _reconstruct(model: Any, X: np.ndarray) -> Any:
    if callable(getattr(model, "reconstruct", None)):
        return model.reconstruct(X)
    return model.inverse_transform(model.transform(X))


def _first_layer_filters(model: Any) -> np.ndarray | None:
    """Rows of ``components_`` (PCA) or of the first ``nn.Linear`` of ``module_.encoder``."""
    comp = getattr(model, "components_", None)
    if comp is None:
        comp = getattr(model, "W1_", None)  # deep Boltzmann machine: first weight matrix
    if comp is None:  # deep belief net: a list of per-layer weight matrices
        layers = getattr(model, "weights_", None)
        if isinstance(layers, (list, tuple)) and layers and getattr(layers[0], "ndim", 0) == 2:
            comp = layers[0]
    if comp is not None:
        a = _to_numpy(comp)
        return a if a.ndim == 2 else None
    enc = getattr(getattr(model, "module_", None), "encoder", None)
    modules = getattr(enc, "modules", None)
    if not callable(modules):
        return None
    for m in modules():
        if type(m).__name__ == "Linear":
            return _to_numpy(m.weight)
        if type(m).__name__.startswith("Conv"):
            return None
    return None


def _centres(model: Any) -> np.ndarray | None:
    for name in ("cluster_centers_", "means_"):
        c = getattr(model, name, None)
        if c is not None:
            try:
                arr = _to_numpy(c)
            except Exception:
                continue
            if arr.ndim == 2 and arr.shape[0] > 0 and np.issubdtype(arr.dtype, np.number):
                return arr
    return None


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


def model_report(
    model: Any,
    X: Any,
    y: Any | None = None,
    image_shape: tuple[int, ...] | None = None,
    metrics: Mapping[str, Any] | None = None,
    title: str | None = None,
    report: Report | None = None,
) -> Report:
    """Add a section about a fitted estimator to a report (or start a new report).

    Sections, each included only when the model has what it needs:

    * **Parameters** — ``model.get_params()``, plus scalar fitted attributes
      (``n_iter_``, ``inertia_``, ...).
    * **Metrics** — the ``metrics`` dict (nested dicts flattened to ``a.b`` keys); when
      ``metrics`` is None and both ``y`` and ``model.predict`` exist, accuracy/NMI/ARI of
      ``model.predict(X)`` are computed.
    * **Cluster centres** — ``cluster_centers_`` or ``means_`` (K × D) drawn as images when
      ``image_shape`` is given.
    * **Reconstructions** — originals above their reconstructions (``reconstruct`` or
      ``inverse_transform(transform(X))``), when ``image_shape`` is given.
    * **First-layer filters** — rows of ``components_`` (PCA) or the weights of the first
      ``Linear`` layer of ``module_.encoder`` (autoencoders), as images.
    * **Confusion matrix** — when ``y`` is given and the model has ``predict``.
    * **EM trace** — when ``history_`` is a non-empty list of dicts with keys
      ``log_likelihood``, ``bound`` and ``kl``; any other list of dicts of numbers is drawn
      as training curves.
    * **2-D projection** — PCA of at most 2,000 rows sampled with a fixed seed, coloured by
      ``model.predict(X)`` if available, else by ``y``.

    Parameters
    ----------
    model : estimator
        A fitted estimator; only duck-typed attributes are used.
    X : array-like of shape (n_samples, n_features)
        Data to describe the model on (numpy array or torch tensor).
    y : array-like of shape (n_samples,), optional
        True labels.
    image_shape : tuple of int, optional
        ``(height, width)`` to draw centres as images.
    metrics : dict, optional
        Metrics to tabulate; values may be nested dicts.
    title : str, optional
        Section title; defaults to the model's class name.
    report : Report, optional
        Report to append to. A new one titled ``title`` is created when omitted.

    Returns
    -------
    Report
        The report the section was added to.
    """
    name = type(model).__name__
    title = str(title) if title is not None else name
    if report is None:
        report = Report(title)
        level = 2
    else:
        report.heading(title, 2)
        level = 3
    sections = _Sections(report, level)

    Xn = _to_numpy(X) if X is not None else None
    yn = _to_numpy(y).reshape(-1) if y is not None else None
    has_predict = callable(getattr(model, "predict", None)) and Xn is not None
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
            if params:
                report.table([{"parameter": k, "value": _short(v)} for k, v in params.items()],
                             caption=f"{name} parameters")
            if fitted:
                report.table([{"attribute": k, "value": v} for k, v in fitted.items()],
                             caption="Fitted attributes")

        sections.run("Parameters", _params)

    # Metrics --------------------------------------------------------------------------
    if metrics is not None or (yn is not None and has_predict):

        def _metrics() -> None:
            m = metrics if metrics is not None else clustering_report(yn, predictions())
            flat = flatten_dict(m)
            report.table([{"metric": k, "value": _short(v)} for k, v in flat.items()],
                         caption="Metrics")

        sections.run("Metrics", _metrics)

    # Cluster centres ------------------------------------------------------------------
    centres = _centres(model) if image_shape is not None else None
    if centres is not None:

        def _centres_section() -> None:
            k = centres.shape[0]
            shown = centres[:_MAX_CENTRES]
            weights = getattr(model, "weights_", None)
            w = None
            if weights is not None:
                w = _to_numpy(weights).reshape(-1)
                if w.shape[0] != k:
                    w = None
            titles = [f"{i}" if w is None else f"{i} (π={w[i]:.2g})"
                      for i in range(shown.shape[0])]
            report.figure(image_grid(shown, image_shape, titles=titles),
                          caption=f"{k} centres" + (f" (first {_MAX_CENTRES} shown)"
                                                    if k > _MAX_CENTRES else ""))

        sections.run("Cluster centres", _centres_section)

    # Reconstructions and first-layer filters (autoencoders, PCA) -----------------------
    if image_shape is not None and Xn is not None and _can_reconstruct(model):

        def _reconstructions() -> None:
            n_show = min(10, Xn.shape[0])
            idx = np.random.default_rng(0).choice(Xn.shape[0], size=n_show, replace=False)
            orig = np.asarray(Xn[np.sort(idx)], dtype=np.float32)
            rec = _to_numpy(_reconstruct(model, orig)).reshape(n_show, -1)
            sse = float(((rec - orig) ** 2).sum(1).mean())
            report.figure(image_grid(np.concatenate([orig, rec]), image_shape, ncols=n_show),
                          caption=f"Top: {n_show} originals; bottom: their reconstructions "
                                  f"(squared error {sse:.3g} per image on these).")

        sections.run("Reconstructions", _reconstructions)
    filters = _first_layer_filters(model) if image_shape is not None else None
    if filters is not None and filters.shape[1] == int(np.prod(image_shape)):

        def _filters() -> None:
            shown = filters[:_MAX_FILTERS]
            report.figure(image_grid(shown, image_shape),
                          caption=f"First-layer weights of {shown.shape[0]} of "
                                  f"{filters.shape[0]} units, each scaled to its own range.")

        sections.run("First-layer filters", _filters)

    # Gibbs chains and AIS log-likelihood (energy-based models) -------------------------
    if image_shape is not None and callable(getattr(model, "gibbs_chain", None)):

        def _gibbs() -> None:
            steps = (1, 10, 100, 1000)
            chain = _to_numpy(model.gibbs_chain(10, steps=steps, random_state=0))
            if chain.shape[-1] != int(np.prod(image_shape)):
                report.text("Not drawn: samples are not images of the data's shape.")
                return
            report.figure(image_grid(chain.reshape(-1, chain.shape[-1]), image_shape,
                                     ncols=chain.shape[1]),
                          caption="Gibbs chains from random starts: rows after "
                                  + ", ".join(str(s) for s in steps)
                                  + " full Gibbs steps (visible means E[v | h]).")

        sections.run("Gibbs samples", _gibbs)
    if getattr(model, "log_partition_interval_", None) is not None and getattr(
            model, "log_partition_", None) is not None:

        def _ais() -> None:
            lo, hi = (float(t) for t in model.log_partition_interval_)
            kind = getattr(model, "likelihood_kind_", "")
            rows = [{"quantity": "log Z", "estimate": float(model.log_partition_),
                     "interval low": lo, "interval high": hi, "kind": kind}]
            rev = getattr(model, "log_partition_reverse_", None)
            if rev is not None:  # the other side of the forward/reverse bracket
                rlo, rhi = (float(t) for t in getattr(
                    model, "log_partition_reverse_interval_", (rev, rev)))
                rows.append({"quantity": "log Z, reverse AIS", "estimate": float(rev),
                             "interval low": rlo, "interval high": rhi,
                             "kind": "reverse AIS (from Gibbs chains at training states)"})
            if Xn is not None and callable(getattr(model, "free_energy", None)):
                neg_f = -float(np.mean(_to_numpy(model.free_energy(Xn))))
                rows.append({"quantity": "mean log p(v) on the report data (nats)",
                             "estimate": neg_f - float(model.log_partition_),
                             "interval low": neg_f - hi, "interval high": neg_f - lo,
                             "kind": kind})
            elif Xn is not None and callable(getattr(model, "score_samples", None)):
                # deep models: the variational lower bound, shifted like log Z's interval
                bound = float(np.mean(_to_numpy(model.score_samples(Xn))))
                z = float(model.log_partition_)
                rows.append({"quantity": "mean lower bound on log p(v), report data (nats)",
                             "estimate": bound, "interval low": bound + z - hi,
                             "interval high": bound + z - lo, "kind": kind})
            report.table(rows, caption="Log partition function and log-likelihood. An AIS "
                         "estimate's interval is ±3 standard errors of the mean importance "
                         "weight (Salakhutdinov & Murray 2008); AIS tends to underestimate "
                         "log Z, i.e. to overstate the log-likelihood. Reverse AIS, when run "
                         "(unsup evaluate --reverse-ais), tends to overestimate it: the two "
                         "agreeing is the evidence of convergence.")

        sections.run("Log-likelihood (AIS)", _ais)

    # Confusion matrix -----------------------------------------------------------------
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

    # EM trace / training curves -------------------------------------------------------
    history = _em_history(model)
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
            series = _history_series(history)
            if series:

                def _curves() -> None:
                    report.figure(curves_plot(series, xlabel="step", ylabel="value"),
                                  caption="history_")

                sections.run("Training history", _curves)

    layer_hist = getattr(model, "pretrain_history_", None)
    if isinstance(layer_hist, (list, tuple)) and layer_hist:
        series = {}
        for i, h in enumerate(layer_hist):
            if isinstance(h, (list, tuple)) and h and all(isinstance(e, Mapping) for e in h):
                for k, v in _history_series(h).items():
                    series[f"layer {i + 1}: {k}"] = v
        if series:

            def _layer_curves() -> None:
                report.figure(curves_plot(series, xlabel="monitoring point", ylabel="value"),
                              caption="Greedy layer-wise pre-training: each layer's RBM "
                                      "(pretrain_history_).")

            sections.run("Pre-training curves", _layer_curves)

    # 2-D projection -------------------------------------------------------------------
    if Xn is not None and Xn.ndim == 2 and Xn.shape[0] >= 3 and Xn.shape[1] >= 2:

        def _projection() -> None:
            from sklearn.decomposition import PCA

            n = Xn.shape[0]
            rng = np.random.default_rng(0)
            idx = (np.sort(rng.choice(n, size=_MAX_PROJECTED, replace=False))
                   if n > _MAX_PROJECTED else np.arange(n))
            sub = np.asarray(Xn[idx], dtype=np.float64)
            space = "inputs"
            if not has_predict and callable(getattr(model, "transform", None)):
                # a representation learner: show its codes, not the raw inputs
                codes = _to_numpy(model.transform(Xn[idx])).reshape(idx.size, -1)
                if codes.shape[1] >= 2:
                    sub, space = codes.astype(np.float64), "codes"
            Z = (sub if sub.shape[1] == 2
                 else PCA(n_components=2, random_state=0).fit_transform(sub))
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
            report.figure(embedding_plot(Z, labels, title=f"{name}: PCA projection"),
                          caption=cap)

        sections.run("2-D projection", _projection)

    return report


def comparison_table(
    rows: Sequence[Mapping[str, Any]],
    report: Report | None = None,
    caption: str | None = None,
    title: str = "Comparison",
) -> Report:
    """Tabulate several runs side by side (nested dicts flattened to ``a.b`` columns).

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
    flat = [{k: _short(v) for k, v in flatten_dict(r).items()} for r in rows]
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
