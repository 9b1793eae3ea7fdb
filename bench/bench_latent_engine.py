"""Engine overhead of the VAE: ``unsup.latent.VAE`` against the loop a user would write.

As ``bench/bench_engine.py`` does for the autoencoder: binarised mnist5k held in memory,
784-200-200-50 tanh encoder and decoder, Bernoulli decoder on logits, the ELBO with the KL in
closed form, Adam 1e-3, batch 100, per-epoch shuffling, ``--epochs`` epochs; ours with no
validation split, no early stopping and no input dropout (the hand-written loop has none). Each
measurement is a whole run including building the networks and the optimiser; ours and hand-
written are interleaved ``--repeats`` times; the best wall time and the best process-CPU time
of each are kept (CPU time is the fairer number on a shared machine). Target (issue 11 §4):
ratio <= 1.10.

Usage::

    python -m bench.bench_latent_engine --threads 1 --epochs 5 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.common import apply_threads, binarised_mnist, machine_info, machine_markdown


def hand_written(X: torch.Tensor, epochs: int, batch_size: int, seed: int) -> float:
    """The VAE loop a user would write by hand; returns the last epoch's mean -ELBO."""
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Linear(784, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(),
                        nn.Linear(200, 100))
    dec = nn.Sequential(nn.Linear(50, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(),
                        nn.Linear(200, 784))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    n, total = X.shape[0], 0.0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, batch_size):
            xb = X[perm[i:i + batch_size]]
            mu, logvar = enc(xb).chunk(2, dim=-1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
            rec = F.binary_cross_entropy_with_logits(dec(z), xb, reduction="none").sum(-1)
            kl = 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(-1)
            loss = (rec + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
    return total / n


def ours(X: torch.Tensor, epochs: int, batch_size: int, seed: int) -> float:
    from unsup.latent import VAE

    m = VAE(50, epochs=epochs, batch_size=batch_size, validation_fraction=0.0,
            early_stopping=False, input_dropout=0.0, device="cpu", random_state=seed).fit(X)
    return float(m.history_[-1]["loss"])


def _timed(fn: Any, *a: Any) -> tuple[float, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*a)
    return time.perf_counter() - w0, time.process_time() - c0, out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    X = torch.from_numpy(np.ascontiguousarray(binarised_mnist()[0], dtype=np.float32))
    hand_written(X[:200], 1, args.batch_size, 0)  # pay one-off lazy initialisation first
    ours(X[:200], 1, args.batch_size, 0)
    res: dict[str, Any] = {"ours": [], "hand": []}
    for r in range(args.repeats):
        order = (("ours", ours), ("hand", hand_written))
        for who, fn in order if r % 2 == 0 else order[::-1]:
            res[who].append(_timed(fn, X, args.epochs, args.batch_size, r))
    out: dict[str, Any] = {"epochs": args.epochs, "batch_size": args.batch_size,
                           "repeats": args.repeats, "threads": args.threads,
                           "machine": machine_info()}
    for who in ("ours", "hand"):
        walls, cpus, losses = zip(*res[who], strict=True)
        out[who] = {"wall_s": walls, "cpu_s": cpus, "best_wall_epoch_s": min(walls) / args.epochs,
                    "best_cpu_epoch_s": min(cpus) / args.epochs, "last_loss": losses[-1]}
    out["ratio_wall"] = out["ours"]["best_wall_epoch_s"] / out["hand"]["best_wall_epoch_s"]
    out["ratio_cpu"] = out["ours"]["best_cpu_epoch_s"] / out["hand"]["best_cpu_epoch_s"]
    out["ratio_cpu_median"] = float(np.median(out["ours"]["cpu_s"]) /
                                    np.median(out["hand"]["cpu_s"]))
    print(machine_markdown(out["machine"]))
    print("| | s/epoch wall (best) | s/epoch CPU (best) | last epoch -ELBO |")
    print("|---|---:|---:|---:|")
    for who, name in (("ours", "unsup VAE"), ("hand", "hand-written loop")):
        o = out[who]
        print(f"| {name} | {o['best_wall_epoch_s']:.3f} | {o['best_cpu_epoch_s']:.3f} | "
              f"{o['last_loss']:.2f} |")
    print(f"ratio ours / hand-written: wall {out['ratio_wall']:.3f}, CPU {out['ratio_cpu']:.3f} "
          f"(median CPU {out['ratio_cpu_median']:.3f}); target <= 1.10")
    assert math.isfinite(out["ratio_cpu"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
