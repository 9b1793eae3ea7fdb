"""Measurements the report makes itself: sample diversity, representation quality, curves.

* :func:`sample_diversity` — do a model's samples cover the data's classes? A logistic
  regression fitted on the report's labelled rows classifies the samples; the class histogram,
  its effective number of classes ``exp(H)`` (H the entropy of the histogram, in nats) against
  the data's, and the mean pairwise distance of the samples against the data's say whether a
  sampler is stuck in a few modes (a Gibbs chain that has not mixed).
* :func:`representation_quality` — reconstruction error per image and linear-probe accuracy
  of the codes, for models that ``transform``.
* :func:`history_axes` — what to plot a training record against (epoch or step) and which of
  its series share units.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["sample_diversity", "diversity_note", "representation_quality", "history_axes",
           "series_label"]

_MAX_FIT = 2000  # rows for the report's own classifiers (seconds, not minutes)
_classifiers: dict[str, Any] = {}  # one classifier per (data, labels): shared by a report's models


def _key(X: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha1(np.ascontiguousarray(X[:: max(1, len(X) // 200)]).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return f"{X.shape}-{h.hexdigest()}"


def _subset(n: int, seed: int) -> np.ndarray:
    if n <= _MAX_FIT:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=_MAX_FIT, replace=False))


def _classifier(X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """Logistic regression on at most 2,000 labelled rows (cached per data set)."""
    from sklearn.linear_model import LogisticRegression

    key = _key(X, y)
    if key not in _classifiers:
        idx = _subset(len(X), seed)
        clf = LogisticRegression(C=0.1, max_iter=300)
        clf.fit(np.asarray(X[idx], dtype=np.float64), y[idx])
        clf.n_fit_ = idx.size
        _classifiers.clear()  # keep one: reports are built one data set at a time
        _classifiers[key] = clf
    return _classifiers[key]


def _effective_classes(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(math.exp(-(p * np.log(p)).sum()))


def _mean_pairwise(A: np.ndarray) -> float:
    A = np.asarray(A, dtype=np.float64)
    sq = (A * A).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * A @ A.T, 0.0)
    n = len(A)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0


def sample_diversity(samples: Any, X: Any, y: Any, seed: int = 0) -> dict[str, Any] | None:
    """How many of the data's classes a set of samples covers.

    Parameters
    ----------
    samples : array of shape (n, D)
        Samples of a model.
    X, y : arrays of shape (m, D) and (m,)
        Labelled data of the same width (the report's data); the classifier is a logistic
        regression fitted on at most 2,000 of its rows.
    seed : int, default=0
        Seed of the row subsets.

    Returns
    -------
    dict or None
        ``classes`` (the class labels), ``histogram`` (samples per class), ``top_class`` and
        ``top_share``, ``effective_classes`` = exp(entropy of the histogram) and
        ``data_effective_classes`` (the same for the labels of ``X``), ``distance_ratio`` (mean
        pairwise distance of the samples over that of as many data rows) and ``mixed``: False
        when the samples cover less than half of the data's effective classes, one class takes
        more than half of them, or they are closer to each other than a fifth of the data's
        spread. None without labels or when the widths differ.
    """
    if y is None or X is None:
        return None
    S = np.asarray(samples, dtype=np.float64)
    Xn, yn = np.asarray(X), np.asarray(y).reshape(-1)
    if S.ndim != 2 or Xn.ndim != 2 or S.shape[1] != Xn.shape[1] or len(S) < 2:
        return None
    if np.unique(yn).size < 2 or len(yn) != len(Xn):
        return None
    clf = _classifier(Xn, yn, seed)
    pred = clf.predict(S)
    classes = clf.classes_
    counts = np.array([(pred == c).sum() for c in classes])
    data_counts = np.unique(yn, return_counts=True)[1]
    rows = np.random.default_rng(seed).choice(len(Xn), size=min(len(Xn), len(S)), replace=False)
    spread = _mean_pairwise(Xn[rows])
    ratio = _mean_pairwise(S) / spread if spread > 0 else float("nan")
    eff, data_eff = _effective_classes(counts), _effective_classes(data_counts)
    top = int(np.argmax(counts))
    share = float(counts[top] / counts.sum())
    mixed = not (eff < 0.5 * data_eff or share > 0.5 or ratio < 0.2)
    return {"classes": classes.tolist(), "histogram": counts.tolist(),
            "top_class": classes[top].item(), "top_share": share, "effective_classes": eff,
            "data_effective_classes": data_eff, "distance_ratio": ratio, "mixed": mixed,
            "n_samples": len(S), "classifier_rows": int(clf.n_fit_)}


def representation_quality(model: Any, X: Any, y: Any = None, seed: int = 0,
                           probe: float | None = None) -> list[dict[str, Any]]:
    """Rows of a quality table for a model that ``transform``s: reconstruction error per image
    (with ``inverse_transform``) and linear-probe accuracy of its codes (with labels).

    The probe is :func:`unsup.metrics.linear_probe` trained on one half of (at most 2,000 of)
    the report's rows and scored on the other half, stratified by class, unless ``probe``
    (an accuracy measured elsewhere, e.g. trained on the training set) is given.
    """
    from unsup.metrics.probes import encode, linear_probe

    Xn = np.asarray(X)
    idx = _subset(len(Xn), seed)
    sub = np.asarray(Xn[idx], dtype=np.float32)
    rows: list[dict[str, Any]] = []
    if callable(getattr(model, "inverse_transform", None)):
        R = np.asarray(model.inverse_transform(encode(model, sub)), dtype=np.float64)
        err = ((R.reshape(len(sub), -1) - sub) ** 2).sum(1)
        rows.append({"measure": "reconstruction error", "value": float(err.mean()),
                     "unit": "squared error per image (sum over pixels)",
                     "on": f"{len(sub)} report rows"})
    if probe is not None:
        rows.append({"measure": "linear probe accuracy", "value": float(probe),
                     "unit": "fraction correct", "on": "test data (probe trained on "
                     "training codes)"})
    elif y is not None:
        yn = np.asarray(y).reshape(-1)[idx]
        classes, counts = np.unique(yn, return_counts=True)
        if classes.size >= 2 and counts.min() >= 2:
            from sklearn.model_selection import train_test_split

            a, b = train_test_split(np.arange(len(sub)), test_size=0.5, random_state=seed,
                                    stratify=yn)
            res = linear_probe(model, sub[a], yn[a], sub[b], yn[b], max_iter=300)
            rows.append({"measure": "linear probe accuracy", "value": res["accuracy"],
                         "unit": "fraction correct", "on": f"half of {len(sub)} report rows "
                         f"(trained on the other half, {res['n_codes']} codes)"})
    return rows


def diversity_note(report: Any, S: Any, X: Any, y: Any, seed: int = 0) -> dict[str, Any] | None:
    """The class histogram of the samples under a classifier fitted on the report's labelled
    data, and a note when they cover few classes (a chain that has not mixed). For families'
    sections too: ``diversity_note(ctx.report, chains[-1], ctx.X, ctx.y, ctx.seed)``.
    Returns the measurement (:func:`sample_diversity`), or None without labels."""
    d = sample_diversity(S, X, y, seed)
    if d is None:
        return None
    hist = ", ".join(f"{c}: {n}" for c, n in zip(d["classes"], d["histogram"], strict=True))
    report.text(f"Sample diversity: a logistic regression fitted on {d['classifier_rows']} "
                f"labelled rows of the report's data classifies the {d['n_samples']} samples "
                f"as {{{hist}}}: {d['effective_classes']:.1f} effective classes (exp of the "
                f"entropy; the data: {d['data_effective_classes']:.1f}); mean pairwise distance "
                f"{d['distance_ratio']:.2f} × that of as many data rows.")
    if not d["mixed"]:
        report.note(f"The samples are not diverse: {100 * d['top_share']:.0f}% of them are "
                    f"classified as {d['top_class']}, and they cover "
                    f"{d['effective_classes']:.1f} effective classes of the data's "
                    f"{d['data_effective_classes']:.1f}. For an MCMC sampler (Gibbs chains) "
                    "this means the chain has not mixed (run it longer, or train with more "
                    "persistent chains); for other samplers, the model covers few modes."
                    + (" Caveat: these samples are far from every data image (pairwise distance "
                       f"{d['distance_ratio']:.2f} × the data's, e.g. noisy Bernoulli draws), "
                       "where a classifier fitted on the data is less reliable."
                       if d["distance_ratio"] > 1.3 else ""))
    return d


_KNOWN = {"loss": "training loss", "val_loss": "validation loss"}


def history_axes(history: Sequence[Mapping[str, Any]]) -> tuple[list[float] | None, str]:
    """The x values and x label of a training record: its epochs when it has them (passes
    over the training data: integer ticks even when records fall inside an epoch), else its
    steps or iterations."""
    for key, label in (("epoch", "epoch (passes over the training data)"),
                       ("step", "update step"), ("iter", "iteration")):
        vals = [h.get(key) for h in history]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            return [float(v) for v in vals], label  # type: ignore[arg-type]
    return None, "record"


def series_label(name: str) -> str:
    """A readable name for a history key (``val_loss`` → "validation loss")."""
    if name in _KNOWN:
        return _KNOWN[name]
    if name.startswith("loss_"):
        return f"training loss: {name[5:]}"
    return name.replace("_", " ")
