r"""The gradient engine: one training loop for every model trained by backpropagation.

A model supplies an ``nn.Module`` and either one loss ``L(θ; x_B)`` on a minibatch ``x_B`` or a
step made of phases (:mod:`unsup.train.steps`), each minimising its own loss with its own
optimiser over its own parameters; the engine does the rest. With one loss, step ``t`` is

.. math::

    θ_{t+1} = \mathrm{opt}\big(θ_t,\ \nabla_θ \tfrac{1}{|B_t|}\textstyle\sum_{i \in B_t}
    \ell(θ_t; x_i),\ η_t\big)

with ``opt`` one of SGD (+momentum), Adam, AdamW, RMSprop, Adagrad and the learning rate
``η_t = η · warmup(t) · schedule(t / T)`` (:mod:`unsup.train.schedules`). With phases
``(L_1, opt_1, r_1), …, (L_P, opt_P, r_P)`` step ``t`` runs each phase ``r_p`` times in order on
the same minibatch ``B_t``, updating only ``opt_p``'s parameters from ``∇L_p`` (a GAN's
``n_critic`` critic updates then one generator update; wake then sleep). Minibatches are drawn
without replacement from a permutation that depends only on the seed and the epoch, so a run
stopped and resumed from a checkpoint sees exactly the same batches as one that never stopped.

Features: arrays, memory-mapped arrays or tensors as input; epochs and/or a step budget; a
validation split with early stopping (the best weights are restored); learning-rate warm-up;
gradient clipping by norm; progress reports (:func:`unsup.base.report_progress`); a JSON-lines
metrics log and optional TensorBoard scalars; atomic checkpoints every ``N`` steps with exact
resume (weights, every optimiser's state, schedule, step, position in the epoch, every random
generator, AMP loss scalers); CUDA autocast (bf16, or fp16 with loss scaling);
DistributedDataParallel under ``torchrun`` with a :class:`~torch.utils.data.DistributedSampler`;
a non-finite loss stops training with a message naming the step and the likely cause, leaving
the last good checkpoint in place.

References
----------
.. [1] Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
.. [2] Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
.. [3] Prechelt, "Early Stopping — But When?", Neural Networks: Tricks of the Trade, 1998.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unsup.base import report_progress
from unsup.train.checkpoint import (
    load_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
)
from unsup.train.runtime import (
    MetricsLog,
    Rows,
    amp_context,
    restore_rng,
    rng_tensors,
    tensorboard_available,
)
from unsup.train.schedules import SCHEDULES, apply_lr, lr_factor
from unsup.train.steps import OPTIMIZERS, OptimizerSpec, Phase, make_optimizer, resolve_step

__all__ = ["TrainConfig", "TrainResult", "TrainingDivergedError", "train", "make_optimizer",
           "lr_factor", "OPTIMIZERS", "SCHEDULES", "AMP_MODES"]

AMP_MODES = (True, False, "auto", "bf16", "fp16", "off")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the likely cause."""


@dataclass
class TrainConfig:
    """Everything the engine needs besides the module, the loss(es) and the data.

    Attributes mirror the training parameters of :class:`unsup.train.GradientEstimator`
    (``seed`` is the integer drawn from its ``random_state``; ``stage`` names the run in logs).
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
    clip_grad_norm: float | None = None
    validation_fraction: float = 0.0
    early_stopping: bool = False
    patience: int = 5
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    amp: bool | str = "auto"
    log_dir: str | None = None
    log_every: int = 50
    tensorboard: bool = False
    seed: int = 0
    stage: str = "train"
    verbose: int = 0

    def validate(self) -> None:
        """Check every setting against the constraints declared in
        :data:`unsup.train.params.TRAIN_PARAMS` (scikit-learn's ``InvalidParameterError``, a
        ``ValueError``), then the rules that tie settings together."""
        from sklearn.utils._param_validation import validate_parameter_constraints

        from unsup.train.params import TRAIN_PARAMS

        names = {f.name for f in fields(self)}
        cons = {k: v for k, v in TRAIN_PARAMS.constraints().items() if k in names}
        validate_parameter_constraints(cons, {k: getattr(self, k) for k in cons},
                                       caller_name=type(self).__name__)
        if self.early_stopping and not self.validation_fraction:
            raise ValueError("early_stopping needs a validation split: set validation_fraction "
                             "(e.g. 0.1)")
        if self.resume and not self.checkpoint_dir:
            raise ValueError("resume=True needs checkpoint_dir")
        if self.tensorboard:
            if not (self.log_dir or self.checkpoint_dir):
                raise ValueError("tensorboard=True needs log_dir (or checkpoint_dir)")
            if not tensorboard_available():
                raise ImportError("tensorboard=True needs the tensorboard package "
                                  "(pip install tensorboard); metrics.jsonl is written anyway")


@dataclass
class TrainResult:
    """What a call to :func:`train` returns."""

    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    epoch: int = 0
    stopped_early: bool = False
    best_val_loss: float | None = None
    seconds: float = 0.0


class _LossModule(nn.Module):
    """Wraps ``module`` so that each phase's loss runs inside ``forward`` (what DDP needs)."""

    def __init__(self, module: nn.Module, losses: list[Callable[[torch.Tensor], torch.Tensor]]):
        super().__init__()
        self.module = module
        self.losses = losses

    def forward(self, batch: torch.Tensor, phase: int = 0) -> torch.Tensor:
        return self.losses[phase](batch)


def _dist() -> tuple[bool, int, int]:
    import unsup.distributed as ud

    return ud.is_distributed(), ud.rank(), ud.world_size()


def train(
    module: nn.Module,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | Sequence[Phase],
    X: Any,
    config: TrainConfig,
    device: torch.device | str = "cpu",
    generators: dict[str, torch.Generator] | None = None,
    callbacks: Sequence[Callable[[int, dict[str, float]], None]] = (),
    val_loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    optimizers: dict[str, OptimizerSpec | Iterable[nn.Parameter]] | None = None,
) -> TrainResult:
    """Train ``module`` over minibatches of ``X``: one loss, or a step made of phases.

    Parameters
    ----------
    module : nn.Module
        Holds every trained parameter (already on ``device``); its ``state_dict`` is what
        checkpoints store.
    loss_fn : callable or sequence of Phase
        ``loss_fn(batch) -> scalar tensor``, the mean loss of a minibatch minimised by one
        optimiser over every trainable parameter; or the phases of a step
        (:class:`unsup.train.steps.Phase`), each stepping one of ``optimizers``. Losses may use
        ``module`` directly; under DDP the engine runs them inside a wrapper's ``forward`` so
        gradients are synchronised.
    X : array-like, memmap or tensor of shape (n_samples, n_features)
        Training data (validation rows are split off when ``validation_fraction > 0``).
    config : TrainConfig
        Optimiser defaults, schedule, batches, validation, checkpoints, logging.
    device : torch.device or str
        Where batches are sent.
    generators : dict of str to torch.Generator, optional
        Generators the losses use (e.g. corruption noise); their states are checkpointed.
    callbacks : sequence of callable
        ``cb(step, metrics)`` after every step; an exception stops training (the last
        checkpoint stays, so the run can be resumed).
    val_loss_fn : callable, optional
        Loss on validation batches (default: the loss, or the sum of the phases' losses); run
        with the module in eval mode and without gradients.
    optimizers : dict of str to OptimizerSpec or iterable of Parameter, optional
        Named optimisers (disjoint parameter sets). Default: ``{"main": every trainable
        parameter}``.

    Returns
    -------
    TrainResult
        Per-epoch history (``loss``; ``loss_<phase>`` per phase when there are several),
        final step and early-stopping information.

    Raises
    ------
    TrainingDivergedError
        If a loss becomes NaN or infinite.
    """
    cfg = config
    cfg.validate()
    phases, specs = resolve_step(module, loss_fn, optimizers)
    multi, many_opts = len(phases) > 1, len(specs) > 1
    device = torch.device(device)
    generators = dict(generators or {})
    distributed, rank, world = _dist()
    t_start = time.perf_counter()

    rows = Rows(X, device)
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

    wrapped: nn.Module = _LossModule(module, [ph.loss for ph in phases])
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(wrapped, device_ids=[device.index] if device.type == "cuda" else None,
                      find_unused_parameters=many_opts)
    opts = {k: make_optimizer(s.params, cfg, s) for k, s in specs.items()}
    base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in opts.items()}
    autocast, amp_dtype = amp_context(cfg.amp, device)
    scalers = ({k: torch.amp.GradScaler("cuda") for k in opts}
               if amp_dtype == torch.float16 else {})
    writer = rank == 0
    first = next(iter(opts))

    # -- state (restored on resume) -------------------------------------------------------
    st: dict[str, Any] = {"step": 0, "epoch": 0, "pos": 0, "loss_sum": 0.0, "loss_n": 0,
                          "phase_sums": {}, "best_val": None, "bad_epochs": 0, "history": [],
                          "finished": False, "stopped_early": False}
    best_state: dict[str, torch.Tensor] | None = None
    signature: dict[str, Any] = {"n": n, "n_train": n_train, "batch_size": bs, "seed": cfg.seed,
                                 "optimizer": cfg.optimizer, "world": world}
    if multi or list(specs) != ["main"]:
        signature["phases"] = [[ph.name, ph.optimizer, ph.repeat] for ph in phases]
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
            if "optimizers" in meta:
                for k, o in opts.items():
                    optimizer_from_flat(o, tensors, meta["optimizers"][k], prefix=f"optim.{k}.")
            else:  # written before named optimisers: one optimiser, "optim.<i>.<key>"
                optimizer_from_flat(opts[first], tensors, meta["optimizer"])
            saved_scalers = meta.get("scalers") or {first: meta.get("scaler")}
            for k, sc in scalers.items():
                if saved_scalers.get(k):
                    sc.load_state_dict(saved_scalers[k])
            restore_rng(tensors, generators)
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
        o_meta = {}
        for k, o in opts.items():
            o_t, o_meta[k] = optimizer_to_flat(o, prefix=f"optim.{k}.")
            tensors.update(o_t)
        tensors.update(rng_tensors(generators))
        meta = {"state": st, "optimizers": o_meta, "signature": signature,
                "config": asdict(cfg),
                "scheduler": {"schedule": cfg.lr_schedule, "step": st["step"], "total": total,
                              "warmup_steps": cfg.warmup_steps, "base_lrs": base_lrs},
                "scalers": {k: sc.state_dict() for k, sc in scalers.items()}}
        save_checkpoint(cfg.checkpoint_dir, tensors, meta)

    def validation_loss() -> float:
        fns = [val_loss_fn] if val_loss_fn is not None else [ph.loss for ph in phases]
        module.eval()
        total_loss = 0.0
        with torch.no_grad(), autocast():
            for i in range(0, n_val, 1024):
                idx = val_idx[i:i + 1024]
                batch = rows.get(idx)
                total_loss += sum(float(fn(batch)) for fn in fns) * idx.numel()
        module.train()
        return total_loss / n_val

    def diverged(lv: float, step: int, ph: Phase) -> TrainingDivergedError:
        lo, hi = rows.value_range()
        where = (f"; the last good checkpoint (step {_ckpt_step(cfg.checkpoint_dir)}) is kept "
                 f"in {cfg.checkpoint_dir}" if cfg.checkpoint_dir else "")
        what = f"the {ph.name} loss" if multi else "the loss"
        return TrainingDivergedError(
            f"{cfg.stage}: {what} became {lv} at step {step + 1} (epoch {st['epoch'] + 1}). "
            f"Likely causes: the learning rate is too high (learning_rate="
            f"{base_lrs[ph.optimizer][0]:.3g}; try 10x smaller) or the data are not scaled "
            f"(inputs range over [{lo:.3g}, {hi:.3g}]; standardise them or scale to [0, 1])"
            f"{where}.")

    def lr_record() -> dict[str, float]:
        rec = {"lr": float(opts[first].param_groups[0]["lr"])}
        if many_opts:
            rec.update({f"lr_{k}": float(o.param_groups[0]["lr"]) for k, o in opts.items()})
        return rec

    logger = MetricsLog(cfg.log_dir or cfg.checkpoint_dir, writer, cfg.tensorboard)
    history: list[dict[str, Any]] = st["history"]
    constant_lr = cfg.lr_schedule == "constant" and cfg.warmup_steps == 0
    clip_params = {k: list(s.params) for k, s in specs.items()}
    plan = [(pi, ph, opts[ph.optimizer], scalers.get(ph.optimizer), clip_params[ph.optimizer])
            for pi, ph in enumerate(phases)]
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
                        for k, o in opts.items():
                            apply_lr(o, base_lrs[k], f)
                    idx = order[b * bs:(b + 1) * bs]
                    batch = rows.get(idx)
                    lv_total = 0.0
                    per_phase: dict[str, float] = {}
                    for pi, ph, opt, scaler, cparams in plan:
                        acc = 0.0
                        for _ in range(ph.repeat):
                            with autocast():
                                loss = wrapped(batch, pi)
                            lv = float(loss.detach())
                            if not math.isfinite(lv):
                                raise diverged(lv, step, ph)
                            opt.zero_grad(set_to_none=True)
                            if scaler is not None:
                                scaler.scale(loss).backward()
                                if cfg.clip_grad_norm:
                                    scaler.unscale_(opt)
                                    nn.utils.clip_grad_norm_(cparams, cfg.clip_grad_norm)
                                scaler.step(opt)
                                scaler.update()
                            else:
                                loss.backward()
                                if cfg.clip_grad_norm:
                                    nn.utils.clip_grad_norm_(cparams, cfg.clip_grad_norm)
                                opt.step()
                            acc += lv
                        lv = acc / ph.repeat
                        lv_total += lv
                        if multi:
                            per_phase[ph.name] = lv
                    nb = int(idx.numel())
                    st["step"] = step = step + 1
                    st["pos"] = b + 1
                    st["loss_sum"] += lv_total * nb
                    st["loss_n"] += nb
                    for k, v in per_phase.items():
                        st["phase_sums"][k] = st["phase_sums"].get(k, 0.0) + v * nb
                    metrics = {"loss": lv_total, **{f"loss_{k}": v for k, v in per_phase.items()}}
                    if cfg.log_every and step % cfg.log_every == 0:
                        logger.log({"kind": "step", "stage": cfg.stage, "step": step,
                                    "epoch": st["epoch"], **metrics, **lr_record()})
                    now = time.perf_counter()
                    if now - last_report > 0.2 or step == total:
                        last_report = now
                        report_progress(cfg.stage, step, total,
                                        loss=st["loss_sum"] / max(st["loss_n"], 1))
                    for cb in callbacks:
                        cb(step, {**metrics, "epoch": st["epoch"]})
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        checkpoint()
                    if step >= total:
                        break
                if st["pos"] < spe:  # stopped mid-epoch by max_steps
                    break
                # -- end of epoch ------------------------------------------------------------
                names = [ph.name for ph in phases] if multi else []
                sums = torch.tensor([st["loss_sum"], float(st["loss_n"]),
                                     *[st["phase_sums"].get(k, 0.0) for k in names]],
                                    dtype=torch.float64, device=device)  # (NCCL: on the GPU)
                if distributed:
                    import unsup.distributed as ud

                    ud.all_reduce_sum(sums)
                rec: dict[str, Any] = {"epoch": st["epoch"] + 1, "step": st["step"],
                                       "loss": float(sums[0] / sums[1])}
                rec.update({f"loss_{k}": float(sums[2 + i] / sums[1])
                            for i, k in enumerate(names)})
                rec.update(lr_record())
                rec["time"] = round(time.perf_counter() - t_start, 3)
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
                st.update(epoch=st["epoch"] + 1, pos=0, loss_sum=0.0, loss_n=0, phase_sums={})
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
        part = {"epoch": st["epoch"] + st["pos"] / spe, "step": st["step"],
                "loss": st["loss_sum"] / st["loss_n"]}
        part.update({f"loss_{k}": v / st["loss_n"] for k, v in st["phase_sums"].items()})
        out_hist.append({**part, **lr_record()})
    return TrainResult(history=out_hist, step=st["step"], epoch=st["epoch"],
                       stopped_early=bool(st["stopped_early"]), best_val_loss=st["best_val"],
                       seconds=time.perf_counter() - t_start)


def checkpoint_seed(directory: str | None) -> int | None:
    """The seed of the run that wrote the checkpoint in ``directory`` (None: no checkpoint).

    Lets ``resume=True`` continue a run started with ``random_state=None``.
    """
    if not directory:
        return None
    loaded = load_checkpoint(directory)
    return None if loaded is None else int(loaded[1]["signature"]["seed"])


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
