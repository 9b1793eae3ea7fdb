"""Engine overhead: our Autoencoder's training time against a hand-written PyTorch loop.

Same network (784-256-30-256-784, ReLU, linear code, Bernoulli cross-entropy on logits), same
optimiser (Adam, lr 1e-3), same batch size (128), same data (mnist5k, held in memory as one
tensor), same per-epoch shuffling. Each measurement is a whole run of ``--epochs`` epochs
including building the network and the optimiser; the two are interleaved ``--repeats`` times
and the best time of each is kept. Target (issue 3): ratio ours / hand-written <= 1.10.

Usage::

    python -m bench.bench_engine                    # 5 epochs, 3 interleaved repeats
    python -m bench.bench_engine --threads 1 --json results/engine.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.common import apply_threads, machine_info, machine_markdown, write_json


def hand_written(X: torch.Tensor, epochs: int, batch_size: int, seed: int) -> float:
    """The loop a user would write by hand: returns the last epoch's mean loss."""
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 30))
    dec = nn.Sequential(nn.Linear(30, 256), nn.ReLU(), nn.Linear(256, 784))
    params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    total = 0.0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, batch_size):
            xb = X[perm[i:i + batch_size]]
            loss = F.binary_cross_entropy_with_logits(dec(enc(xb)), xb,
                                                      reduction="sum") / xb.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
    return total / n


def ours(X: torch.Tensor, epochs: int, batch_size: int, seed: int) -> float:
    from unsup.autoencoders import Autoencoder

    ae = Autoencoder(30, hidden_layer_sizes=(256,), epochs=epochs, batch_size=batch_size,
                     learning_rate=1e-3, device="cpu", random_state=seed).fit(X)
    return float(ae.history_[-1]["loss"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    from unsup.data import load

    X = torch.from_numpy(np.ascontiguousarray(load("mnist5k").X, dtype=np.float32))
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])  # pay torch's one-off lazy imports first
    hand_written(X[:256], 1, args.batch_size, 0)
    ours(X[:256], 1, args.batch_size, 0)
    t_ours, t_hand, l_ours, l_hand = [], [], 0.0, 0.0
    for r in range(args.repeats):
        t0 = time.perf_counter()
        l_ours = ours(X, args.epochs, args.batch_size, r)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        l_hand = hand_written(X, args.epochs, args.batch_size, r)
        t_hand.append(time.perf_counter() - t0)
    best_o, best_h = min(t_ours), min(t_hand)
    res = {"epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats,
           "threads": args.threads, "ours_s": t_ours, "hand_s": t_hand,
           "ours_epoch_s": best_o / args.epochs, "hand_epoch_s": best_h / args.epochs,
           "ratio": best_o / best_h, "final_loss_ours": l_ours, "final_loss_hand": l_hand,
           "target": 1.10, "met": best_o / best_h <= 1.10, "machine": machine_info()}
    print(machine_markdown(res["machine"]))
    print("| | epoch time (s, best of repeats) | final epoch loss |")
    print("| --- | ---: | ---: |")
    print(f"| unsup Autoencoder (engine) | {res['ours_epoch_s']:.3f} | {l_ours:.2f} |")
    print(f"| hand-written PyTorch loop | {res['hand_epoch_s']:.3f} | {l_hand:.2f} |")
    print(f"\nratio ours / hand-written = {res['ratio']:.3f} (target <= 1.10: "
          f"{'met' if res['met'] else 'NOT met'})")
    write_json(args.json, res)
    return res


if __name__ == "__main__":
    main()
