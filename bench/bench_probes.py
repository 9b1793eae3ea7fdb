"""Linear-probe and k-NN accuracy of 30-dimensional codes: deep autoencoder vs PCA-30 vs pixels.

Protocol (issue 3, section 6): every representation is learned on ``mnist5k`` (5,000 images,
labels unused), then frozen. Probes are trained on the codes of a class-balanced labelled
subset of ``mnist5k`` (100 and 1,000 labels, seeds 0, 1, 2; and all 5,000 labels) and
scored on the full MNIST test set (10,000 images, ``unsup.data.load("mnist-test")``):

* linear probe: scikit-learn ``LogisticRegression`` (L-BFGS, C=1, max_iter=1000) on
  standardised codes (:func:`unsup.metrics.linear_probe`);
* k-NN: k=5, cosine distance (:func:`unsup.metrics.knn_accuracy`).

Representations:

* deep AE: ``StackedAutoencoder(layer_sizes=[1000, 500, 250, 30])`` with its default
  training (greedy AE pre-training, then end-to-end fine-tuning), ``random_state=0``, CPU;
  also its encoder right after greedy pre-training (before fine-tuning);
* PCA-30: ``unsup.decomposition.PCA(30, random_state=0)`` (scikit-learn's PCA when ours is
  not installed; the output says which);
* raw pixels (784 dimensions).

No pass/fail target is set by the issue for this table; it is recorded as measured.

Usage::

    python -m bench.bench_probes --json results/probes.json
    python -m bench.bench_probes --sae runs/sae/model.safetensors   # reuse a fitted deep AE
    python -m bench.bench_probes --quick                          # smoke run (2,000 test images)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    fmt,
    machine_info,
    machine_markdown,
    markdown_table,
    parse_seeds,
    write_json,
)

N_LABELS = (100, 1000, None)


def fit_or_load_sae(path: Path | None, save: Path | None, X: np.ndarray, quick: bool
                    ) -> tuple[Any, str, float | None]:
    """The deep autoencoder: loaded from ``path`` when given, else fitted with defaults."""
    import unsup
    from unsup.autoencoders import StackedAutoencoder

    if path is not None:
        return unsup.load(path), f"loaded from {path}", None
    kw: dict[str, Any] = {"random_state": 0, "device": "cpu"}
    if quick:
        kw.update(epochs=1, pretrain_epochs=1)
    t0 = time.perf_counter()
    sae = StackedAutoencoder([1000, 500, 250, 30], **kw).fit(X)
    sec = time.perf_counter() - t0
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        sae.save(save)
    how = "fitted here (default training" + (", --quick: 1+1 epochs" if quick else "") + ")"
    return sae, how, sec


def pca30(X: np.ndarray) -> tuple[Any, str]:
    try:
        from unsup.decomposition import PCA

        return PCA(30, random_state=0, device="cpu").fit(X), "unsup.decomposition.PCA"
    except ImportError:
        from sklearn.decomposition import PCA as SkPCA

        return SkPCA(30, random_state=0).fit(X), "sklearn.decomposition.PCA (ours missing)"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sae", type=Path, default=None,
                   help="a fitted StackedAutoencoder model file to reuse")
    p.add_argument("--save-sae", type=Path, default=None,
                   help="where to save the deep AE fitted here")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-2"),
                   help="labelled-subset seeds (default 0-2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quick", action="store_true", help="smoke run; numbers not meaningful")
    p.add_argument("--json", type=Path, default=None, metavar="PATH")
    a = p.parse_args(argv)

    import torch

    from unsup.data import load
    from unsup.metrics import label_fraction_curve

    torch.set_num_threads(a.threads)
    info = machine_info()
    train, test = load("mnist5k"), load("mnist-test")
    Xtr, ytr, Xte, yte = train.X, train.y, test.X, test.y
    if a.quick:
        Xte, yte = Xte[:2000], yte[:2000]

    sae, sae_how, sae_sec = fit_or_load_sae(a.sae, a.save_sae, Xtr, a.quick)
    pca, pca_how = pca30(Xtr)
    reps: list[tuple[str, Any]] = [("deep AE 784-1000-500-250-30", sae)]
    notes: list[str] = []
    pre = sae.encoder_module(pretrained_only=True)
    if all(torch.equal(u, v) for u, v in zip(pre.parameters(), sae.encoder_module().parameters(),
                                             strict=True)):
        notes.append("the greedy-pre-training-only encoder is identical to the fine-tuned one "
                     "(the model's pretrained_encoder_ snapshot was not kept), so its row is "
                     "left out")
    else:
        reps.append(("deep AE, greedy pre-training only", pre))
    reps += [("PCA-30", pca), ("raw pixels", None)]
    results: dict[str, Any] = {}
    for name, est in reps:
        t0 = time.perf_counter()
        rows = label_fraction_curve(est, Xtr, ytr, Xte, yte, N_LABELS, seeds=a.seeds)
        results[name] = {"rows": rows, "seconds": time.perf_counter() - t0}
        print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)

    def cell(rows: list[dict[str, Any]], probe: str, i: int) -> str:
        r = [x for x in rows if x["probe"] == probe][i]
        s = fmt(r["accuracy_mean"])
        return s + (f" ± {r['accuracy_std']:.3f}" if r["n_seeds"] > 1 else "")

    headers = ["representation", "dims", "linear 100", "linear 1,000", "linear 5,000",
               "k-NN 100", "k-NN 1,000", "k-NN 5,000"]
    table = []
    for name, res in results.items():
        rows = res["rows"]
        table.append([name, str(rows[0]["n_codes"])]
                     + [cell(rows, "linear", i) for i in range(3)]
                     + [cell(rows, "knn", i) for i in range(3)])
    print("\n## Linear probe and k-NN, trained on mnist5k codes, tested on MNIST test"
          f" ({len(yte)} images)\n")
    print(machine_markdown(info))
    print(f"- deep AE: {sae_how}" + (f" in {sae_sec:.0f} s" if sae_sec else ""))
    print(f"- PCA-30: {pca_how}; seeds {a.seeds}")
    for n in notes:
        print(f"- note: {n}")
    print()
    print(markdown_table(headers, table))
    payload = {"machine": info, "sae": sae_how, "sae_fit_seconds": sae_sec, "pca": pca_how,
               "seeds": a.seeds, "n_test": len(yte), "quick": a.quick, "notes": notes,
               "results": results}
    write_json(a.json, payload)
    return payload


if __name__ == "__main__":
    main()
