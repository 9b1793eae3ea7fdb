r"""The gradient engine: one training loop for every model trained by backpropagation.

A model supplies an ``nn.Module`` and a loss ``L(θ; x_B)`` on a minibatch ``x_B``; the engine
does the rest:

.. math::

    θ_{t+1} = \mathrm{opt}\big(θ_t,\ \nabla_θ \tfrac{1}{|B_t|}\textstyle\sum_{i \in B_t}
    \ell(θ_t; x_i),\ η_t\big)

with ``opt`` one of SGD (+momentum), Adam, AdamW, RMSprop, Adagrad and the learning rate
``η_t = η · warmup(t) · schedule(t / T)`` (constant, cosine, linear or step decay). Minibatches
``B_t`` are drawn without replacement from a permutation that depends only on the seed and the
epoch, so a run that is stopped and resumed from a checkpoint sees exactly the same batches
as one that never stopped.

Features: arrays, memory-mapped arrays or tensors as input; epochs and/or a step budget; a
validation split with early stopping (the best weights are restored); progress reports
(:func:`unsup.base.report_progress`); a JSON-lines metrics log (and TensorBoard when it is
installed); atomic checkpoints every ``N`` steps with exact resume (weights, optimiser state,
schedule, step, position in the epoch, every random generator); CUDA autocast (bf16, or fp16
with loss scaling); DistributedDataParallel under ``torchrun`` with a
:class:`~torch.utils.data.DistributedSampler`; a non-finite loss stops training with a message
naming the step and the likely cause, leaving the last good checkpoint in place.

References
----------
.. [1] Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
.. [2] Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
.. [3] Prechelt, "Early Stopping — But When?", Neural Networks: Tricks of the Trade, 1998.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unsup.base import report_progress
from unsup.train.checkpoint import (
    load_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
)

__all__ = ["TrainConfig", "TrainResult", "TrainingDivergedError", "train", "make_optimizer",
           "lr_factor", "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "linear", "step")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the likely cause."""


@dataclass
class TrainConfig:
    """Everything the engine needs besides the module, the loss and the data.

    Attributes mirror the parameters of :class:`unsup.train.GradientEstimator`; see there.
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    validation_fraction: float = 0.0
    early_stopping: bool = False
    patience: int = 5
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    amp: bool | str = "auto"
    clip_grad_norm: float | None = None
    log_dir: str | None = None
    log_every: int = 50
    seed: int = 0
    stage: str = "train"
    verbose: int = 0

    def validate(self) -> None:
        def pos_int(name: str, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        pos_int("epochs")
        pos_int("batch_size")
        pos_int("max_steps", allow_none=True)
        pos_int("checkpoint_every", allow_none=True)
        pos_int("patience")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0
                and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule={self.lr_schedule!r} is not one of {SCHEDULES}")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ValueError("validation_fraction must be in [0, 1), got "
                             f"{self.validation_fraction!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.amp not in (True, False, "auto", "bf16", "fp16"):
            raise ValueError(f"amp must be True, False, 'auto', 'bf16' or 'fp16', got {self.amp!r}")
        if self.early_stopping and not self.validation_fraction:
            raise ValueError("early_stopping needs a validation split: set validation_fraction "
                             "(e.g. 0.1)")
        if self.resume and not self.checkpoint_dir:
            raise ValueError("resume=True needs checkpoint_dir")


@dataclass
class TrainResult:
    """What a call to :func:`train` returns."""

    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    epoch: int = 0
    stopped_early: bool = False
    best_val_loss: float | None = None
    seconds: float = 0.0


def make_optimizer(params: Sequence[nn.Parameter] | Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Build the optimiser named by ``cfg.optimizer``."""
    lr, wd = float(cfg.learning_rate), float(cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg.momentum), weight_decay=wd)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=float(cfg.momentum), weight_decay=wd)
    return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    """Multiplier of the base learning rate at (0-based) ``step`` of ``total``."""
    w = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    frac = min(step, total) / max(total, 1)
    if schedule == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * frac))
    elif schedule == "linear":
        f = 1.0 - frac
    elif schedule == "step":
        f = 0.1 ** (int(frac >= 0.5) + int(frac >= 0.75))
    else:
        f = 1.0
    return w * f


class _Rows:
    """Row access to a tensor (kept on the device) or a numpy / memory-mapped array."""

    def __init__(self, X: Any, device: torch.device) -> None:
        self.device = device
        if isinstance(X, torch.Tensor):
            self.t: torch.Tensor | None = X.to(device=device, dtype=torch.float32)
            self.a = None
            self.n = int(X.shape[0])
        else:
            a = np.asarray(X) if not isinstance(X, np.memmap) else X
            if isinstance(a, np.memmap):
                self.t, self.a = None, a
            else:
                self.t, self.a = torch.as_tensor(np.asarray(a, dtype=np.float32),
                                                 device=device), None
            self.n = int(a.shape[0])

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        if self.t is not None:
            return self.t.index_select(0, idx.to(self.t.device))
        rows = np.sort(idx.cpu().numpy())
        batch = torch.from_numpy(np.asarray(self.a[rows], dtype=np.float32))
        if not torch.isfinite(batch).all():
            bad = rows[(~torch.isfinite(batch)).any(1).numpy()][0]
            raise ValueError(f"X contains NaN or inf (row {int(bad)}); clean the data first")
        return batch.to(self.device, non_blocking=True)

    def value_range(self) -> tuple[float, float]:
        if self.t is not None:
            return float(self.t.min()), float(self.t.max())
        head = np.asarray(self.a[: min(self.n, 10000)], dtype=np.float32)
        return float(head.min()), float(head.max())


class _LossModule(nn.Module):
    """Wraps ``module`` so that the whole loss runs inside ``forward`` (what DDP needs)."""

    def __init__(self, module: nn.Module, loss_fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(batch)


def _dist() -> tuple[bool, int, int]:
    import unsup.distributed as ud

    return ud.is_distributed(), ud.rank(), ud.world_size()


def _rng_tensors(generators: dict[str, torch.Generator]) -> dict[str, torch.Tensor]:
    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    for name, g in generators.items():
        out[f"rng.gen.{name}"] = g.get_state()
    return out


def _restore_rng(tensors: dict[str, torch.Tensor], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    for name, g in generators.items():
        key = f"rng.gen.{name}"
        if key in tensors:
            g.set_state(tensors[key])


class _Logger:
    """JSON-lines metrics log, plus TensorBoard scalars when tensorboard is installed."""

    def __init__(self, log_dir: str | None, enabled: bool) -> None:
        self.f = None
        self.tb = None
        if not log_dir or not enabled:
            return
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.f = open(Path(log_dir) / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # noqa: BLE001 - tensorboard is optional
            SummaryWriter = None  # noqa: N806
        if SummaryWriter is not None:
            self.tb = SummaryWriter(log_dir=str(Path(log_dir) / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        if self.f is not None:
            self.f.write(json.dumps(record) + "\n")
            self.f.flush()
        if self.tb is not None:
            for k, v in record.items():
                if k not in ("step", "epoch", "stage", "kind") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{record.get('stage', 'train')}/{k}", v, record["step"])

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
        if self.tb is not None:
            self.tb.close()


def _amp_context(cfg: TrainConfig, device: torch.device) -> tuple[Any, torch.dtype | None]:
    if device.type != "cuda" or cfg.amp is False:
        return contextlib.nullcontext, None
    if cfg.amp == "fp16" or (cfg.amp in (True, "auto") and not torch.cuda.is_bf16_supported()):
        dtype = torch.float16
    else:
        dtype = torch.bfloat16
    return (lambda: torch.autocast("cuda", dtype=dtype)), dtype


def train(
    module: nn.Module,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    X: Any,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    generators: dict[str, torch.Generator] | None = None,
    callbacks: Sequence[Callable[[int, dict[str, float]], None]] = (),
    val_loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``module`` by minimising ``loss_fn`` over minibatches of ``X``.

    Parameters
    ----------
    module : nn.Module
        The parameters to train (already on ``device``).
    loss_fn : callable
        ``loss_fn(batch) -> scalar tensor``: the mean loss of a minibatch (rows of ``X``). It
        may use ``module`` directly; under DDP the engine runs it inside a wrapper's
        ``forward`` so gradients are synchronised.
    X : array-like, memmap or tensor of shape (n_samples, n_features)
        Training data (validation rows are split off when ``validation_fraction > 0``).
    config : TrainConfig
        Optimiser, schedule, batches, validation, checkpoints.
    device : torch.device or str
        Where batches are sent.
    generators : dict of str to torch.Generator, optional
        Generators the loss uses (e.g. corruption noise); their states are checkpointed.
    callbacks : sequence of callable
        ``cb(step, metrics)`` after every optimiser step; an exception stops training (the
        last checkpoint stays, so the run can be resumed).
    val_loss_fn : callable, optional
        Loss on validation batches (default ``loss_fn``); run with the module in eval mode.

    Returns
    -------
    TrainResult
        Per-epoch history, final step and early-stopping information.

    Raises
    ------
    TrainingDivergedError
        If the loss becomes NaN or infinite.
    """
    cfg = config
    cfg.validate()
    device = torch.device(device)
    generators = dict(generators or {})
    distributed, rank, world = _dist()
    t_start = time.perf_counter()

    rows = _Rows(X, device)
    n = rows.n
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    n_val = int(round(cfg.validation_fraction * n)) if cfg.validation_fraction else 0
    if n_val and n - n_val < 1:
        raise ValueError("validation_fraction leaves no training rows")
    val_idx = perm[:n_val].sort().values
    train_idx = perm[n_val:].sort().values
    n_train = int(train_idx.numel())
    if n_train < 1:
        raise ValueError("no training rows")

    sampler = None
    if distributed:
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(n_train), num_replicas=world, rank=rank,
                                     shuffle=True, seed=cfg.seed, drop_last=False)
        n_local = len(sampler)
    else:
        n_local = n_train
    bs = int(cfg.batch_size)
    spe = math.ceil(n_local / bs)  # steps per epoch
    total = cfg.epochs * spe if cfg.max_steps is None else min(cfg.epochs * spe, cfg.max_steps)

    def epoch_order(epoch: int) -> torch.Tensor:
        if sampler is not None:
            sampler.set_epoch(epoch)
            local = torch.tensor(list(iter(sampler)), dtype=torch.long)
        else:
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 1)
            local = torch.randperm(n_train, generator=g)
        return train_idx[local]

    wrapped: nn.Module = _LossModule(module, loss_fn)
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(wrapped, device_ids=[device.index] if device.type == "cuda" else None)
    opt = make_optimizer([p for p in module.parameters() if p.requires_grad], cfg)
    base_lrs = [g["lr"] for g in opt.param_groups]
    autocast, amp_dtype = _amp_context(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    writer = rank == 0

    # -- state (restored on resume) -------------------------------------------------------
    st: dict[str, Any] = {"step": 0, "epoch": 0, "pos": 0, "loss_sum": 0.0, "loss_n": 0,
                          "best_val": None, "bad_epochs": 0, "history": [], "finished": False,
                          "stopped_early": False}
    best_state: dict[str, torch.Tensor] | None = None
    signature = {"n": n, "n_train": n_train, "batch_size": bs, "seed": cfg.seed,
                 "optimizer": cfg.optimizer, "world": world}
    if cfg.resume and cfg.checkpoint_dir:
        loaded = load_checkpoint(cfg.checkpoint_dir)
        if loaded is not None:
            tensors, meta = loaded
            if meta.get("signature") != signature:
                raise ValueError(
                    f"cannot resume from {cfg.checkpoint_dir}: it was written for a different "
                    f"run ({meta.get('signature')} vs now {signature}); use a new checkpoint_dir")
            module.load_state_dict({k[6:]: v for k, v in tensors.items()
                                    if k.startswith("model.")})
            optimizer_from_flat(opt, tensors, meta["optimizer"])
            if scaler is not None and meta.get("scaler"):
                scaler.load_state_dict(meta["scaler"])
            _restore_rng(tensors, generators)
            st.update(meta["state"])
            if (st["finished"] and not st["stopped_early"] and st["step"] < total
                    and st["epoch"] < cfg.epochs):
                st["finished"] = False  # asked for more epochs/steps than the run had
            best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
            best_state = {k: v.to(device) for k, v in best.items()} or None

    def checkpoint() -> None:
        if not cfg.checkpoint_dir or not writer:
            return
        tensors = {f"model.{k}": v for k, v in module.state_dict().items()}
        if best_state is not None:
            tensors.update({f"best.{k}": v for k, v in best_state.items()})
        o_t, o_meta = optimizer_to_flat(opt)
        tensors.update(o_t)
        tensors.update(_rng_tensors(generators))
        meta = {"state": st, "optimizer": o_meta, "signature": signature,
                "config": asdict(cfg),
                "scheduler": {"schedule": cfg.lr_schedule, "step": st["step"], "total": total,
                              "warmup_steps": cfg.warmup_steps, "base_lrs": base_lrs},
                "scaler": scaler.state_dict() if scaler is not None else None}
        save_checkpoint(cfg.checkpoint_dir, tensors, meta)

    def validation_loss() -> float:
        fn = val_loss_fn or loss_fn
        module.eval()
        total_loss = 0.0
        with torch.no_grad(), autocast():
            for i in range(0, n_val, 1024):
                idx = val_idx[i:i + 1024]
                total_loss += float(fn(rows.get(idx))) * idx.numel()
        module.train()
        return total_loss / n_val

    logger = _Logger(cfg.log_dir or cfg.checkpoint_dir, writer)
    history: list[dict[str, Any]] = st["history"]
    constant_lr = cfg.lr_schedule == "constant" and cfg.warmup_steps == 0
    last_report = 0.0
    module.train()
    try:
        if not st["finished"]:
            while st["step"] < total and st["epoch"] < cfg.epochs:
                order = epoch_order(st["epoch"])
                for b in range(st["pos"], spe):
                    step = st["step"]
                    if not constant_lr:
                        f = lr_factor(cfg.lr_schedule, step, total, cfg.warmup_steps)
                        for g, lr0 in zip(opt.param_groups, base_lrs, strict=True):
                            g["lr"] = lr0 * f
                    idx = order[b * bs:(b + 1) * bs]
                    batch = rows.get(idx)
                    with autocast():
                        loss = wrapped(batch)
                    lv = float(loss.detach())
                    if not math.isfinite(lv):
                        lo, hi = rows.value_range()
                        where = (f"; the last good checkpoint (step "
                                 f"{_ckpt_step(cfg.checkpoint_dir)}) is kept in "
                                 f"{cfg.checkpoint_dir}" if cfg.checkpoint_dir else "")
                        raise TrainingDivergedError(
                            f"{cfg.stage}: the loss became {lv} at step {step + 1} (epoch "
                            f"{st['epoch'] + 1}). Likely causes: the learning rate is too high "
                            f"(learning_rate={cfg.learning_rate}; try 10x smaller) or the data "
                            f"are not scaled (inputs range over [{lo:.3g}, {hi:.3g}]; "
                            f"standardise them or scale to [0, 1]){where}.")
                    opt.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        if cfg.clip_grad_norm:
                            scaler.unscale_(opt)
                            nn.utils.clip_grad_norm_(module.parameters(), cfg.clip_grad_norm)
                        scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        if cfg.clip_grad_norm:
                            nn.utils.clip_grad_norm_(module.parameters(), cfg.clip_grad_norm)
                        opt.step()
                    st["step"] = step = step + 1
                    st["pos"] = b + 1
                    st["loss_sum"] += lv * idx.numel()
                    st["loss_n"] += int(idx.numel())
                    if cfg.log_every and step % cfg.log_every == 0:
                        logger.log({"kind": "step", "stage": cfg.stage, "step": step,
                                    "epoch": st["epoch"], "loss": lv,
                                    "lr": opt.param_groups[0]["lr"]})
                    now = time.perf_counter()
                    if now - last_report > 0.2 or step == total:
                        last_report = now
                        report_progress(cfg.stage, step, total,
                                        loss=st["loss_sum"] / max(st["loss_n"], 1))
                    for cb in callbacks:
                        cb(step, {"loss": lv, "epoch": st["epoch"]})
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        checkpoint()
                    if step >= total:
                        break
                if st["pos"] < spe:  # stopped mid-epoch by max_steps
                    break
                # -- end of epoch ------------------------------------------------------------
                loss_sum = torch.tensor([st["loss_sum"], float(st["loss_n"])], dtype=torch.float64)
                if distributed:
                    import unsup.distributed as ud

                    ud.all_reduce_sum(loss_sum)
                rec: dict[str, Any] = {"epoch": st["epoch"] + 1, "step": st["step"],
                                       "loss": float(loss_sum[0] / loss_sum[1]),
                                       "lr": float(opt.param_groups[0]["lr"]),
                                       "time": round(time.perf_counter() - t_start, 3)}
                if n_val:
                    vl = validation_loss()
                    rec["val_loss"] = vl
                    if not math.isfinite(vl):
                        raise TrainingDivergedError(
                            f"{cfg.stage}: the validation loss became {vl} after epoch "
                            f"{st['epoch'] + 1} (step {st['step']}); the learning rate is likely "
                            "too high or the data not scaled")
                    if st["best_val"] is None or vl < st["best_val"]:
                        st["best_val"], st["bad_epochs"] = vl, 0
                        if cfg.early_stopping:
                            best_state = {k: v.detach().clone()
                                          for k, v in module.state_dict().items()}
                    else:
                        st["bad_epochs"] += 1
                history.append(rec)
                if cfg.verbose and writer:
                    print(f"[{cfg.stage}] " + "  ".join(
                        f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in rec.items()), flush=True)
                logger.log({"kind": "epoch", "stage": cfg.stage, **rec})
                report_progress(cfg.stage, st["step"], total,
                                **{k: rec[k] for k in ("loss", "val_loss") if k in rec})
                st.update(epoch=st["epoch"] + 1, pos=0, loss_sum=0.0, loss_n=0)
                if cfg.early_stopping and st["bad_epochs"] >= cfg.patience:
                    st["stopped_early"] = True
                    break
                if not cfg.checkpoint_every:
                    checkpoint()
            if cfg.early_stopping and best_state is not None:
                module.load_state_dict(best_state)
            st["finished"] = True
            checkpoint()
        elif cfg.early_stopping and best_state is not None:
            module.load_state_dict(best_state)
    finally:
        logger.close()
    module.eval()
    out_hist = list(history)
    if st["loss_n"]:  # a partial epoch (max_steps) still shows up in the returned history
        out_hist.append({"epoch": st["epoch"] + st["pos"] / spe, "step": st["step"],
                         "loss": st["loss_sum"] / st["loss_n"],
                         "lr": float(opt.param_groups[0]["lr"])})
    return TrainResult(history=out_hist, step=st["step"], epoch=st["epoch"],
                       stopped_early=bool(st["stopped_early"]), best_val_loss=st["best_val"],
                       seconds=time.perf_counter() - t_start)


def _ckpt_step(directory: str | None) -> int | str:
    if not directory:
        return "none"
    path = Path(directory) / "checkpoint.safetensors"
    if not path.exists():
        return "none written yet"
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return int(json.loads(f.metadata()["json"])["state"]["step"])
    except Exception:  # noqa: BLE001
        return "unknown"
