"""The gradient engine shared by every model trained by backpropagation.

- :func:`train` — the loop (minibatches, one loss or a step of phases with several optimisers,
  schedule with warm-up, gradient clipping, validation and early stopping, progress, metrics
  log and TensorBoard, atomic checkpoints with exact resume, AMP on CUDA, DDP under torchrun);
- :class:`TrainConfig` — its settings; :class:`Phase` and :class:`OptimizerSpec` — the step
  protocol (:mod:`unsup.train.steps`);
- :class:`GradientEstimator` — the estimator base class models subclass with ``_build_module``
  and ``_loss`` (or ``_optimizers`` and ``_phases``);
- :mod:`unsup.train.schedules` (learning-rate schedules), :mod:`unsup.train.seeding` (the one
  RNG-seeding helper), :mod:`unsup.train.finetune` (discriminative fine-tuning of an encoder).

See ``docs/train.md``.
"""

from unsup.train.checkpoint import load_checkpoint, save_checkpoint
from unsup.train.engine import (
    AMP_MODES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    TrainingDivergedError,
    TrainResult,
    lr_factor,
    make_optimizer,
    train,
)
from unsup.train.estimator import TRAIN_PARAMS_DOC, GradientEstimator
from unsup.train.seeding import derive_seed, make_generator, seed_from, seeded
from unsup.train.steps import OptimizerSpec, Phase

__all__ = ["train", "TrainConfig", "TrainResult", "TrainingDivergedError", "GradientEstimator",
           "make_optimizer", "lr_factor", "OPTIMIZERS", "SCHEDULES", "AMP_MODES",
           "save_checkpoint", "load_checkpoint", "TRAIN_PARAMS_DOC", "Phase", "OptimizerSpec",
           "seed_from", "derive_seed", "make_generator", "seeded"]
