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
evaluation excluded; unsup's from ``history_[-1]["time"]``). ``--interleave`` (two models,
unsup's first): the peer's training steps run one after each of unsup's (through ``fit``'s
step callback), each library timed on its own steps only, so that a machine whose speed drifts
by minutes (a shared VM) slows both alike instead of whichever ran in the slow minutes.

The first optimiser a process builds imports ``torch._dynamo`` (seconds); the script builds
one before any model, so that this one-off import lands in no model's first epoch.

Usage::

    python -m bench.bench_flows --epochs 2 --n-test 2000 --threads 1
    python -m bench.bench_flows --epochs 5 --models glow,normflows --json results/flows.json
    python -m bench.bench_flows --epochs 2 --models glow,normflows --interleave --threads 2
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
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


def _peer_steps(model: torch.nn.Module, loss_fn: Any, X: np.ndarray,
                args: argparse.Namespace, seed: int) -> Iterator[float]:
    """Adam over shuffled minibatches of freshly dequantised rows, one step per ``next``;
    yields the seconds the step took (its share of the epoch's shuffling included)."""
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(seed)
    k = _levels(X)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
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
            dt = time.perf_counter() - t0
            yield dt
            t0 = time.perf_counter()
        print(f"  epoch {epoch + 1}: loss {np.mean(losses):.4f}", flush=True)


def _peer_loop(model: torch.nn.Module, loss_fn: Any, X: np.ndarray, args: argparse.Namespace,
               seed: int) -> float:
    """The peer's whole training; seconds per epoch."""
    return sum(_peer_steps(model, loss_fn, X, args, seed)) / args.epochs


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


def _peer(name: str, args: argparse.Namespace) -> tuple[str, torch.nn.Module, Any, Any]:
    """``(label, model, loss(model, y), log_prob(model, y))`` of a peer library's flow."""
    if name == "normflows":
        def loss(m: Any, y: torch.Tensor) -> torch.Tensor:
            return m.forward_kld(y.view(-1, 1, 28, 28))

        def lp(m: Any, y: torch.Tensor) -> torch.Tensor:
            return m.log_prob(y.view(-1, 1, 28, 28), None)

        return "normflows Glow", normflows_glow(), loss, lp
    if name == "zuko":
        def loss_z(m: Any, y: torch.Tensor) -> torch.Tensor:
            return -m().log_prob(y - 0.5).mean()

        def lp_z(m: Any, y: torch.Tensor) -> torch.Tensor:
            return m().log_prob(y - 0.5)

        return ("zuko RealNVP (flat)", zuko_realnvp(args.zuko_transforms, args.zuko_params),
                loss_z, lp_z)
    raise SystemExit(f"unknown model {name!r}")


def _peer_result(label: str, model: torch.nn.Module, lp: Any, per_epoch: float,
                 Xt: np.ndarray, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    test = _peer_eval(model, lp, Xt, seed)
    return {"model": label, "params": n_params(model), "sec_per_epoch": per_epoch,
            "test_bpd": test, "eval_sec": time.perf_counter() - t0}


def run(name: str, X: np.ndarray, Xt: np.ndarray, args: argparse.Namespace,
        peer: str | None = None) -> list[dict[str, Any]]:
    """Train and score model ``name``; with ``peer`` (unsup models only) the peer's training
    steps are interleaved with unsup's, one after each of unsup's (``--interleave``), and
    each library is charged only its own steps."""
    seed = args.seed
    if name not in ("glow", "realnvp"):
        torch.manual_seed(seed)
        label, model, loss, lp = _peer(name, args)
        model.train()
        return [_peer_result(label, model, lp, _peer_loop(model, loss, X, args, seed), Xt,
                             seed)]
    from unsup.flows import Glow, RealNVP

    torch.manual_seed(seed)
    est = (Glow(n_levels=2, n_steps=8, hidden_channels=64, split_prior=args.split_prior)
           if name == "glow" else RealNVP(n_levels=2, n_steps=3, hidden_channels=64))
    est.set_params(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                   random_state=seed, device="cpu", verbose=1,
                   warmup_steps=args.warmup_steps, clip_grad_norm=args.clip_grad_norm)
    callbacks, spent = [], [0.0, 0.0]  # seconds in the peer's steps, in the callback
    if peer is not None:
        torch.manual_seed(seed)
        p_label, p_model, p_loss, p_lp = _peer(peer, args)
        p_model.train()
        steps = _peer_steps(p_model, p_loss, X, args, seed)

        def one_peer_step(step: int, metrics: dict[str, float]) -> None:
            t0 = time.perf_counter()
            spent[0] += next(steps, 0.0)
            spent[1] += time.perf_counter() - t0

        callbacks.append(one_peer_step)
    est.fit(X, callbacks=callbacks)
    per_epoch = (est.history_[-1]["time"] - spent[1]) / args.epochs
    t0 = time.perf_counter()
    lk = est.log_likelihood(Xt)
    rows = [{"model": f"unsup {type(est).__name__}", "params": n_params(est.module_),
             "sec_per_epoch": per_epoch, "test_bpd": lk.bits_per_dim,
             "eval_sec": time.perf_counter() - t0}]
    if peer is not None:
        spent[0] += sum(steps)  # any steps the peer has left
        rows.append(_peer_result(p_label, p_model, p_lp, spent[0] / args.epochs, Xt, seed))
    return rows


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
    p.add_argument("--interleave", action="store_true",
                   help="with two models (unsup's, then a peer): one peer step after each of "
                        "unsup's, each charged its own steps (the machine's drift hits both)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    apply_threads(args.threads)
    torch.set_num_threads(args.threads)
    X, Xt = load_data(args.n_train, args.n_test)
    # the first optimiser of a process imports torch._dynamo (~10 s on a busy machine): a
    # one-off cost of the process, paid here so that it lands in no model's first epoch
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    names = [m.strip() for m in args.models.split(",")]
    pairs = [(m, None) for m in names]
    if args.interleave:
        if len(names) != 2 or names[0] not in ("glow", "realnvp") or names[1] in names[:1]:
            raise SystemExit("--interleave needs --models <unsup model>,<peer>, e.g. "
                             "glow,normflows")
        pairs = [(names[0], names[1])]
    rows = []
    for name, peer in pairs:
        print(f"== {name}" + (f" interleaved with {peer}" if peer else ""), flush=True)
        for r in run(name, X, Xt, args, peer):
            print(f"   {r}", flush=True)
            rows.append(r)
    print()
    print(machine_markdown(machine_info()))
    print(f"- protocol: mnist5k train ({len(X):,}), MNIST test first {len(Xt)}, "
          f"{args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr}, "
          f"{args.threads} thread(s)"
          + (", training steps interleaved" if args.interleave else "") + "\n")
    print(markdown_table(["model", "parameters", "s / epoch", "test bits/dim", "eval s"],
                         [[r["model"], r["params"], r["sec_per_epoch"], r["test_bpd"],
                           r["eval_sec"]] for r in rows]))
    write_json(args.json, {"args": vars(args) | {"json": str(args.json)}, "results": rows,
                           "machine": machine_info()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
