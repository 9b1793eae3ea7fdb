"""unsup's VAE and IWAE beside pythae's, each trained by its own library (issue 11 §4).

Same data (``bench.common.binarised_mnist``: binarised mnist5k to train, the binarised MNIST
test set to test), the same 784-200-200-50 tanh networks with a Bernoulli decoder, batch 100,
Adam 1e-3, at most ``--epochs`` epochs. pythae runs its ``TrainingPipeline`` at its defaults
otherwise (no early stopping: the last epoch's weights). Ours runs twice: with the library's
defaults (early stopping on 10 % of the rows, input dropout; ``epochs`` capped at the same
budget) and with pythae's protocol (no validation split, no early stopping, no regularisation)
for a like-for-like time per epoch.

Test NLL for every model: OUR importance-sampled estimator (``unsup.latent._common
.is_likelihood`` with per-row seeded draws, ``--k`` samples) applied to each encoder/decoder
pair, on the first ``--test-rows`` test digits. Time per epoch: wall and process-CPU seconds of
the whole fit divided by the epochs run (pythae's includes its pipeline's set-up and logging).

Usage::

    python -m bench.bench_latent_pythae --threads 1 --epochs 100 --k 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.common import apply_threads, binarised_mnist, machine_info, machine_markdown

_LOG_2PI = float(np.log(2 * np.pi))


def _pythae_nets(latent: int = 50) -> tuple[nn.Module, nn.Module]:
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(784, 200), nn.Tanh(), nn.Linear(200, 200),
                                     nn.Tanh())
            self.mu, self.logvar = nn.Linear(200, latent), nn.Linear(200, latent)

        def forward(self, x: torch.Tensor) -> Any:
            h = self.net(x.reshape(x.shape[0], -1))
            return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(latent, 200), nn.Tanh(), nn.Linear(200, 200),
                                     nn.Tanh(), nn.Linear(200, 784))

        def logits(self, z: torch.Tensor) -> torch.Tensor:
            return self.net(z)

        def forward(self, z: torch.Tensor) -> Any:
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    return Encoder(), Decoder()


def fit_pythae(kind: str, X: np.ndarray, epochs: int, k: int) -> tuple[Any, float, float]:
    from pythae.models import IWAE, VAE, IWAEConfig, VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    logging.getLogger("pythae").setLevel(logging.WARNING)
    torch.manual_seed(0)
    enc, dec = _pythae_nets()
    if kind == "vae":
        model = VAE(VAEConfig(input_dim=(784,), latent_dim=50, reconstruction_loss="bce"),
                    encoder=enc, decoder=dec)
    else:
        model = IWAE(IWAEConfig(input_dim=(784,), latent_dim=50, reconstruction_loss="bce",
                                number_samples=k), encoder=enc, decoder=dec)
    with tempfile.TemporaryDirectory() as out:
        cfg = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=1e-3,
                                per_device_train_batch_size=100, optimizer_cls="Adam",
                                no_cuda=True, seed=0)
        w0, c0 = time.perf_counter(), time.process_time()
        TrainingPipeline(model=model, training_config=cfg)(train_data=X)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    model.eval()
    return model, wall, cpu


def pythae_nll(model: Any, Xt: np.ndarray, k: int) -> Any:
    """Our IS-k estimator on pythae's encoder and decoder (the same per-row draws as ours)."""
    from unsup.latent._common import is_likelihood, row_draws

    def lw(b: torch.Tensor) -> torch.Tensor:
        eps = row_draws(b, k, [50], 0, uniform=False)[0]  # (k, n, 50)
        out = model.encoder(b)
        mu, logvar = out.embedding, out.log_covariance
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = model.decoder.logits(z)
        lpx = -F.binary_cross_entropy_with_logits(logits, b.expand_as(logits),
                                                  reduction="none").sum(-1)
        lpz = -0.5 * (z * z + _LOG_2PI).sum(-1)
        lqz = -0.5 * (eps * eps + _LOG_2PI).sum(-1) - 0.5 * logvar.sum(-1)
        return lpx + lpz - lqz

    with torch.no_grad():
        return is_likelihood(lw, torch.as_tensor(Xt), k, support="discrete", transform=None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--k", type=int, default=1000, help="importance samples of the test NLL")
    p.add_argument("--test-rows", type=int, default=1000)
    p.add_argument("--iwae-k", type=int, default=5)
    p.add_argument("--parts", default="ours,ours-like-pythae,pythae-vae,pythae-iwae,ours-iwae")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--ours-params", type=json.loads, default={},
                   help="extra keyword arguments (JSON) for our models, e.g. "
                        "'{\"learning_rate\": 5e-4}'")
    args = p.parse_args(argv)
    apply_threads(args.threads)
    from unsup.latent import IWAE, VAE

    X, Xt, test_name = binarised_mnist()
    X, Xt = np.asarray(X, dtype=np.float32), np.asarray(Xt[:args.test_rows], dtype=np.float32)
    info = machine_info()
    print(machine_markdown(info))
    print(f"train: binarised mnist5k ({len(X)}); test: binarised {test_name}, first {len(Xt)}; "
          f"IS-{args.k}; at most {args.epochs} epochs", flush=True)
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    rows = []
    like = {"validation_fraction": 0.0, "early_stopping": False, "input_dropout": 0.0,
            "dropout": 0.0, "weight_decay": 0.0}  # pythae's protocol: no regularisation
    ours = {"ours": (VAE, {}), "ours-like-pythae": (VAE, like),
            "ours-iwae": (IWAE, {"n_importance_samples": args.iwae_k}),
            "ours-iwae-like-pythae": (IWAE, {"n_importance_samples": args.iwae_k, **like})}
    for part in parts:
        if part in ours:
            cls, kw = ours[part]
            m = cls(epochs=args.epochs, random_state=0, device="cpu", **{**kw, **args.ours_params})
            w0, c0 = time.perf_counter(), time.process_time()
            m.fit(X)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            epochs = len(m.history_)
            test = m.log_likelihood(Xt, n_samples=args.k, random_state=0)
            name = f"unsup {cls.__name__} " + ("defaults" if not kw or part == "ours-iwae"
                                                else "pythae's protocol")
            if args.ours_params:
                name += f" {args.ours_params}"
        else:
            kind = part.split("-")[1]
            m, wall, cpu = fit_pythae(kind, X, args.epochs, args.iwae_k)
            epochs = args.epochs
            test = pythae_nll(m, Xt, args.k)
            name = f"pythae {kind.upper()}"
        row = {"part": part, "model": name, "epochs": epochs, "fit_s": round(wall, 1),
               "fit_cpu_s": round(cpu, 1), "s_per_epoch": round(wall / epochs, 3),
               "cpu_per_epoch": round(cpu / epochs, 3), "test_nll": round(-test.nats, 2),
               "test_se": round(test.stderr, 2), "estimator": test.estimator}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| model | epochs | fit s (CPU s) | s/epoch (CPU) | test NLL | ± se |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['epochs']} | {r['fit_s']} ({r['fit_cpu_s']}) | "
              f"{r['s_per_epoch']} ({r['cpu_per_epoch']}) | {r['test_nll']:.2f} | "
              f"{r['test_se']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "args": vars(args), "rows": rows},
                                        indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
