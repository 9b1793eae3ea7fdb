"""The gradient engine shared by every model trained by backpropagation.

- :func:`train` — the loop (minibatches, optimiser, schedule, validation and early stopping,
  progress, metrics log, atomic checkpoints with exact resume, AMP on CUDA, DDP under torchrun);
- :class:`TrainConfig` — its settings;
- :class:`GradientEstimator` — the estimator base class models subclass with ``_build_module``
  and ``_loss``.

See ``docs/train.md``.
"""

from unsup.train.checkpoint import load_checkpoint, save_checkpoint
from unsup.train.engine import (
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

__all__ = ["train", "TrainConfig", "TrainResult", "TrainingDivergedError", "GradientEstimator",
           "make_optimizer", "lr_factor", "OPTIMIZERS", "SCHEDULES", "save_checkpoint",
           "load_checkpoint", "TRAIN_PARAMS_DOC"]
