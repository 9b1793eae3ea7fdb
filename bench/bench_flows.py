"""Normalizing flows on 8-bit MNIST: test bits/dim and time per epoch (issue 12, flows).

Protocol: train on ``mnist5k`` (5,000 digits, 8-bit grey levels k/255), test on the official
MNIST test set (the first ``--n-test`` digits). Every model sees the same uniformly dequantised
data, ``y = (k + u) / 256`` with fresh ``u ~ U[0, 1)^784`` per minibatch, trains for the same
``--epochs`` with Adam (``--lr``), batch ``--batch-size``, on ``--threads`` threads, and is
scored by the dequantisation bound in bits per dimension,
``-(log p(y) - 784 log 256) / (784 ln 2)``, one draw of ``u`` per test digit.

Models (``--models``):

* ``glow``      — ``unsup`` Glow: 2 levels x 8 steps, 64 hidden channels (153,760 parameters
  with the default per-dimension split prior; ``--split-prior conditional``: 153,836).
* ``realnvp``   — ``unsup`` RealNVP: 2 levels, 3 couplings per block, 64 hidden channels.
* ``normflows`` — normflows' Glow, built as in its own MNIST example (``GlowBlock`` x 8 per
  level, 2 levels, 64 hidden channels, ``MultiscaleFlow``; 154k parameters), trained with its
  ``forward_kld`` loop.
* ``zuko``      — zuko's RealNVP on flat 784-vectors (``--zuko-transforms`` couplings, MLP
  conditioners whose width is chosen to give about the parameters of the Glows), trained with
  the usual ``-flow().log_prob(x).mean()`` loop.

Time per epoch: the training loop's wall time divided by the epochs (model construction and
evaluation excluded; unsup's from ``history_[-1]["time"]``). The first optimiser a process
builds imports ``torch._dynamo`` (seconds); the script builds one before any model, so that this
one-off import lands in no model's first epoch.

Usage::

    python -m bench.bench_flows --epochs 2 --n-test 2000 --threads 1
    python -m bench.bench_flows --epochs 5 --models glow,normflows --json results/flows.json
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import apply_threads, machine_info, machine_markdown, markdown_table, write_json

D = 784
LOG256 = math.log(256.0)


def load_data(n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    from unsup.data import load

    train = load("mnist5k").X[:n_train].astype(np.float32)
    test = load("mnist-test").X[:n_test].astype(np.float32)
    return train, test


def bpd(log_p_y: np.ndarray) -> float:
    """Bits per dimension of the discrete bound from log-densities of y = (k + u) / 256."""
    return float(-(np.mean(log_p_y) - D * LOG256) / (D * math.log(2)))


def _levels(X: np.ndarray) -> torch.Tensor:
    return torch.round(torch.as_tensor(X) * 255)


def _peer_loop(model: torch.nn.Module, loss_fn: Any, X: np.ndarray, args: argparse.Namespace,
               seed: int) -> float:
    """Adam over shuffled minibatches of freshly dequantised rows; seconds per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(seed)
    k = _levels(X)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(len(k), generator=g)
        losses = []
        for i in range(0, len(k), args.batch_size):
            b = k[order[i:i + args.batch_size]]
            y = (b + torch.rand(b.shape, generator=g)) / 256.0
            loss = loss_fn(model, y)
            opt.zero_grad()
            if torch.isfinite(loss):  # normflows' own example skips non-finite steps
                loss.backward()
                opt.step()
            losses.append(float(loss.detach()))
        print(f"  epoch {epoch + 1}: loss {np.mean(losses):.4f}", flush=True)
    return (time.perf_counter() - t0) / args.epochs


@torch.no_grad()
def _peer_eval(model: torch.nn.Module, log_prob: Any, X: np.ndarray, seed: int) -> float:
    model.eval()
    g = torch.Generator().manual_seed(seed + 1)
    k = _levels(X)
    out = [log_prob(model, (k[i:i + 500] + torch.rand(k[i:i + 500].shape, generator=g)) / 256.0)
           for i in range(0, len(k), 500)]
    return bpd(torch.cat(out).double().numpy())


def normflows_glow(levels: int = 2, steps: int = 8, hidden: int = 64) -> torch.nn.Module:
    """normflows' Glow exactly as its MNIST example builds it (unconditional prior)."""
    import normflows as nf

    shape = (1, 28, 28)
    q0, flows, merges = [], [], []
    for i in range(levels):
        blocks: list[Any] = [nf.flows.GlowBlock(2 ** (levels + 1 - i), hidden,
                                                split_mode="channel", scale=True)
                             for _ in range(steps)]
        blocks.append(nf.flows.Squeeze())
        flows.append(blocks)
        if i > 0:
            merges.append(nf.flows.Merge())
            latent = (shape[0] * 2 ** (levels - i), shape[1] // 2 ** (levels - i),
                      shape[2] // 2 ** (levels - i))
        else:
            latent = (shape[0] * 2 ** (levels + 1), shape[1] // 2 ** levels,
                      shape[2] // 2 ** levels)
        q0.append(nf.distributions.DiagGaussian(latent))
    return nf.MultiscaleFlow(q0, flows, merges)


def zuko_realnvp(transforms: int, target_params: int) -> torch.nn.Module:
    import zuko

    def build(h: int) -> torch.nn.Module:
        return zuko.flows.RealNVP(D, transforms=transforms, hidden_features=(h, h))

    h = 8
    while sum(p.numel() for p in build(h + 8).parameters()) <= target_params:
        h += 8
    return build(h)


def n_params(m: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in m.parameters()))


def run(name: str, X: np.ndarray, Xt: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    seed = args.seed
    torch.manual_seed(seed)
    if name in ("glow", "realnvp"):
        from unsup.flows import Glow, RealNVP

        est = (Glow(n_levels=2, n_steps=8, hidden_channels=64, split_prior=args.split_prior)
               if name == "glow" else RealNVP(n_levels=2, n_steps=3, hidden_channels=64))
        est.set_params(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                       random_state=seed, device="cpu", verbose=1,
                       warmup_steps=args.warmup_steps, clip_grad_norm=args.clip_grad_norm)
        est.fit(X)
        per_epoch = est.history_[-1]["time"] / args.epochs
        t0 = time.perf_counter()
        lk = est.log_likelihood(Xt)
        return {"model": f"unsup {type(est).__name__}", "params": n_params(est.module_),
                "sec_per_epoch": per_epoch, "test_bpd": lk.bits_per_dim,
                "eval_sec": time.perf_counter() - t0}
    if name == "normflows":
        model = normflows_glow()

        def loss(m: Any, y: torch.Tensor) -> torch.Tensor:
            return m.forward_kld(y.view(-1, 1, 28, 28))

        def lp(m: Any, y: torch.Tensor) -> torch.Tensor:
            return m.log_prob(y.view(-1, 1, 28, 28), None)
    elif name == "zuko":
        model = zuko_realnvp(args.zuko_transforms, args.zuko_params)

        def loss(m: Any, y: torch.Tensor) -> torch.Tensor:
            return -m().log_prob(y - 0.5).mean()

        def lp(m: Any, y: torch.Tensor) -> torch.Tensor:
            return m().log_prob(y - 0.5)
    else:
        raise SystemExit(f"unknown model {name!r}")
    model.train()
    per_epoch = _peer_loop(model, loss, X, args, seed)
    t0 = time.perf_counter()
    test = _peer_eval(model, lp, Xt, seed)
    label = {"normflows": "normflows Glow", "zuko": "zuko RealNVP (flat)"}[name]
    return {"model": label, "params": n_params(model), "sec_per_epoch": per_epoch,
            "test_bpd": test, "eval_sec": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="glow,normflows,realnvp,zuko")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-train", type=int, default=5000, help="(smoke tests only)")
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--zuko-transforms", type=int, default=4)
    p.add_argument("--zuko-params", type=int, default=154_000)
    p.add_argument("--warmup-steps", type=int, default=0,
                   help="unsup models only: linear learning-rate warm-up (default 0: none)")
    p.add_argument("--split-prior", default="position", choices=["position", "conditional"],
                   help="unsup Glow's split prior (default position)")
    p.add_argument("--clip-grad-norm", type=float, default=None,
                   help="unsup models only: gradient clipping (default None: none)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    torch.set_num_threads(args.threads)
    X, Xt = load_data(args.n_train, args.n_test)
    # the first optimiser of a process imports torch._dynamo (~10 s on a busy machine): a
    # one-off cost of the process, paid here so that it lands in no model's first epoch
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    rows = []
    for name in args.models.split(","):
        print(f"== {name}", flush=True)
        r = run(name.strip(), X, Xt, args)
        print(f"   {r}", flush=True)
        rows.append(r)
    print()
    print(machine_markdown(machine_info()))
    print(f"- protocol: mnist5k train ({len(X):,}), MNIST test first {len(Xt)}, "
          f"{args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr}, "
          f"{args.threads} thread(s)\n")
    print(markdown_table(["model", "parameters", "s / epoch", "test bits/dim", "eval s"],
                         [[r["model"], r["params"], r["sec_per_epoch"], r["test_bpd"],
                           r["eval_sec"]] for r in rows]))
    write_json(args.json, {"args": vars(args) | {"json": str(args.json)}, "results": rows,
                           "machine": machine_info()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
