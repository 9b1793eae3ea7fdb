"""Engine overhead: training time through the gradient engine against hand-written loops.

Two cases, each on mnist5k held in memory as one tensor, batch 128, per-epoch shuffling:

- ``ae`` — our ``Autoencoder`` (one loss, one optimiser; 784-256-30-256-784, ReLU, linear
  code, Bernoulli cross-entropy on logits, Adam 1e-3) against the loop a user would write;
- ``gan`` — the engine's step protocol (:func:`unsup.train.train` with two named optimisers
  and phases: ``n_critic=2`` discriminator phases, then one generator phase; generator
  64-256-784, discriminator 784-256-1, logistic GAN losses, Adam 2e-4) against the same
  two-player loop by hand.

Each measurement is a whole run of ``--epochs`` epochs including building the networks and the
optimisers; ours and hand-written are interleaved ``--repeats`` times and the best time of each
is kept. Target (issue 3, issue 9 §5): ratio ours / hand-written <= 1.10.

Usage::

    python -m bench.bench_engine                    # both cases, 5 epochs, 3 repeats
    python -m bench.bench_engine --case gan --threads 1 --json results/engine.json
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


def _gan_nets(seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 784))
    D = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))
    return G, D


def _d_loss(G: nn.Module, D: nn.Module, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    fake = torch.sigmoid(G(torch.randn(x.shape[0], 64, generator=g))).detach()
    return F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()


def _g_loss(G: nn.Module, D: nn.Module, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return F.softplus(-D(torch.sigmoid(G(torch.randn(x.shape[0], 64, generator=g))))).mean()


def gan_hand_written(X: torch.Tensor, epochs: int, batch_size: int, seed: int) -> float:
    """Two players by hand: per minibatch, 2 discriminator updates then 1 generator update."""
    G, D = _gan_nets(seed)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
    g = torch.Generator().manual_seed(seed + 1)
    order = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    total = 0.0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order)
        total = 0.0
        for i in range(0, n, batch_size):
            xb = X[perm[i:i + batch_size]]
            for _ in range(2):
                loss_d = _d_loss(G, D, xb, g)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            loss_g = _g_loss(G, D, xb, g)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            total += (loss_d.item() + loss_g.item()) * xb.shape[0]
    return total / n


def gan_ours(X: torch.Tensor, epochs: int, batch_size: int, seed: int) -> float:
    """The same game through the engine's step protocol."""
    from unsup.train import OptimizerSpec, Phase, TrainConfig, train

    G, D = _gan_nets(seed)
    module = nn.ModuleDict({"G": G, "D": D})
    g = torch.Generator().manual_seed(seed + 1)
    res = train(module, [Phase("critic", lambda x: _d_loss(G, D, x, g), "discriminator", 2),
                         Phase("generator", lambda x: _g_loss(G, D, x, g), "generator")],
                X, TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=2e-4,
                               seed=seed),
                generators={"noise": g},
                optimizers={"discriminator": OptimizerSpec(D.parameters()),
                            "generator": OptimizerSpec(G.parameters())})
    return float(res.history[-1]["loss"])


CASES = {"ae": ("unsup Autoencoder (engine)", ours, "hand-written PyTorch loop", hand_written),
         "gan": ("unsup.train.train, 2 optimisers, phases critic x2 + generator", gan_ours,
                 "hand-written two-player loop", gan_hand_written)}


def _measure(case: str, X: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    _, f_ours, _, f_hand = CASES[case]
    f_hand(X[:256], 1, args.batch_size, 0)  # pay one-off lazy initialisation first
    f_ours(X[:256], 1, args.batch_size, 0)
    t_ours, t_hand, l_ours, l_hand = [], [], 0.0, 0.0
    for r in range(args.repeats):
        t0 = time.perf_counter()
        l_ours = f_ours(X, args.epochs, args.batch_size, r)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        l_hand = f_hand(X, args.epochs, args.batch_size, r)
        t_hand.append(time.perf_counter() - t0)
    best_o, best_h = min(t_ours), min(t_hand)
    return {"ours_s": t_ours, "hand_s": t_hand, "ours_epoch_s": best_o / args.epochs,
            "hand_epoch_s": best_h / args.epochs, "ratio": best_o / best_h,
            "ratios_per_repeat": [o / h for o, h in zip(t_ours, t_hand, strict=True)],
            "final_loss_ours": l_ours, "final_loss_hand": l_hand, "target": 1.10,
            "met": best_o / best_h <= 1.10}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--case", choices=("ae", "gan", "both"), default="both")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    from unsup.data import load

    X = torch.from_numpy(np.ascontiguousarray(load("mnist5k").X, dtype=np.float32))
    torch.optim.Adam([nn.Parameter(torch.zeros(1))])  # pay torch's one-off lazy imports first
    cases = ("ae", "gan") if args.case == "both" else (args.case,)
    res: dict[str, Any] = {"epochs": args.epochs, "batch_size": args.batch_size,
                           "repeats": args.repeats, "threads": args.threads,
                           "machine": machine_info()}
    print(machine_markdown(res["machine"]))
    for case in cases:
        r = res[case] = _measure(case, X, args)
        name_o, _, name_h, _ = CASES[case]
        print(f"\n{case}: | | epoch time (s, best of repeats) | final epoch loss |")
        print("| --- | ---: | ---: |")
        print(f"| {name_o} | {r['ours_epoch_s']:.3f} | {r['final_loss_ours']:.3f} |")
        print(f"| {name_h} | {r['hand_epoch_s']:.3f} | {r['final_loss_hand']:.3f} |")
        print(f"ratio ours / hand-written = {r['ratio']:.3f} (per repeat "
              f"{', '.join(f'{x:.3f}' for x in r['ratios_per_repeat'])}; target <= 1.10: "
              f"{'met' if r['met'] else 'NOT met'})")
    write_json(args.json, res)
    return res


if __name__ == "__main__":
    main()
