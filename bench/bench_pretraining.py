"""Does unsupervised pre-training help? A classifier from the deep autoencoder vs random init.

Protocol (issue 3, sections 4 and 6): the deep autoencoder
``StackedAutoencoder(layer_sizes=[1000, 500, 250, 30])`` is trained on ``mnist5k`` without
labels (default training, ``random_state=0``). Its encoder (784-1000-500-250-30, sigmoid
hidden units, linear code) plus a softmax layer (30 -> 10) is the classifier. Two arms, for
each of 100 and 1,000 labels and each seed (0, 1, 2):

* pretrained — hidden layers start from the autoencoder's encoder;
* random — the same network, every layer re-initialised (PyTorch defaults, seeded).

Both arms are fine-tuned end to end on the same class-balanced labelled subset of
``mnist5k`` with the same settings (Adam, lr 1e-3, batch 64, 500 steps, no weight decay,
same output-layer initialisation, same minibatch order) and scored on the full MNIST test
set (10,000 images). The issue asks to report both accuracies, whichever wins.
See :func:`unsup.metrics.pretraining_experiment`.

Usage::

    python -m bench.bench_pretraining --sae runs/sae/model.safetensors --json results/pre.json
    python -m bench.bench_pretraining --quick          # smoke run, numbers not meaningful
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.bench_probes import fit_or_load_sae
from bench.common import machine_info, machine_markdown, markdown_table, parse_seeds, write_json


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sae", type=Path, default=None,
                   help="a fitted StackedAutoencoder model file to reuse")
    p.add_argument("--save-sae", type=Path, default=None,
                   help="where to save the deep AE fitted here")
    p.add_argument("--encoder", choices=["finetuned", "pretrained-only"], default="finetuned",
                   help="the encoder after the autoencoder's end-to-end fine-tuning (default) "
                        "or right after greedy layer-wise pre-training")
    p.add_argument("--n-labels", type=parse_seeds, default=[100, 1000],
                   help="labelled-subset sizes (default 100,1000)")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-2"))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quick", action="store_true", help="smoke run; numbers not meaningful")
    p.add_argument("--json", type=Path, default=None, metavar="PATH")
    a = p.parse_args(argv)

    import torch

    from unsup.data import load
    from unsup.metrics import pretraining_experiment

    torch.set_num_threads(a.threads)
    info = machine_info()
    train, test = load("mnist5k"), load("mnist-test")
    Xte, yte = test.X, test.y
    steps = a.steps
    if a.quick:
        Xte, yte, steps = Xte[:2000], yte[:2000], 20
    sae, sae_how, sae_sec = fit_or_load_sae(a.sae, a.save_sae, train.X, a.quick)
    encoder = sae.encoder_module(pretrained_only=a.encoder == "pretrained-only")
    if a.encoder == "pretrained-only" and all(
            torch.equal(u, v) for u, v in zip(encoder.parameters(),
                                              sae.encoder_module().parameters(), strict=True)):
        raise SystemExit("error: the model's greedy-pre-training snapshot equals its fine-tuned "
                         "encoder (snapshot not kept); --encoder pretrained-only is meaningless")
    t0 = time.perf_counter()
    rows = pretraining_experiment(encoder, train.X, train.y, Xte, yte, a.n_labels,
                                  seeds=a.seeds, steps=steps, batch_size=a.batch_size, lr=a.lr,
                                  device="cpu")
    sec = time.perf_counter() - t0

    print(f"\n## Pre-training vs random init ({a.encoder} encoder), tested on MNIST test "
          f"({len(yte)} images)\n")
    print(machine_markdown(info))
    print(f"- deep AE: {sae_how}" + (f" in {sae_sec:.0f} s" if sae_sec else ""))
    print(f"- fine-tuning: Adam lr {a.lr}, batch {a.batch_size}, {steps} steps; seeds "
          f"{a.seeds}; {sec:.0f} s in all\n")
    table = []
    for r in rows:
        table.append([
            str(r["n_labels"]),
            f"{r['pretrained_mean']:.4f} ± {r['pretrained_std']:.4f}",
            f"{r['random_mean']:.4f} ± {r['random_std']:.4f}",
            f"{r['gain']:+.4f}", r["winner"],
            " / ".join(f"{x:.4f}" for x in r["pretrained"]),
            " / ".join(f"{x:.4f}" for x in r["random"]),
            f"{r['pretrained_train_loss']:.3g} / {r['random_train_loss']:.3g}",
        ])
    print(markdown_table(["labels", "pretrained init", "random init", "gain", "winner",
                          "pretrained per seed", "random per seed",
                          "final train loss (pre / rand)"], table))
    payload = {"machine": info, "sae": sae_how, "encoder": a.encoder, "steps": steps,
               "batch_size": a.batch_size, "lr": a.lr, "seeds": a.seeds, "n_test": len(yte),
               "quick": a.quick, "seconds": sec, "rows": rows}
    write_json(a.json, payload)
    return payload


if __name__ == "__main__":
    main()
