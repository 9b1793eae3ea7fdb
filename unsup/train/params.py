"""The training-loop parameter group, declared once and composed into every gradient model.

``TRAIN_PARAMS`` lists each parameter of the gradient engine with its default, its constraint
(scikit-learn's declarative vocabulary, checked once at the start of ``fit``) and one line of
documentation. :class:`unsup.train.GradientEstimator` declares ``_param_groups =
(TRAIN_PARAMS,)``, so every subclass's ``__init__`` gets these as real keyword-only parameters
(see :mod:`unsup.params`); a model that wants another default (e.g. ``epochs=50``) lists the
parameter in its own ``__init__``.

Iteration budgets, one scheme across families (``docs/train.md``): ``epochs`` = passes over the
training data; ``max_steps`` = engine steps, one minibatch each (one optimiser update for a
single-loss model; one round of every phase for a multi-phase model); ``max_iter`` = EM/solver
iterations; ``n_updates`` = parameter updates of the MCMC (energy) family.
"""

from __future__ import annotations

import os
from dataclasses import fields

import torch

from unsup.params import Integral, Interval, Param, ParamGroup, Real, StrOptions
from unsup.train.engine import TrainConfig
from unsup.train.schedules import SCHEDULES
from unsup.train.steps import OPTIMIZERS

__all__ = ["TRAIN_PARAMS", "TRAIN_PARAMS_DOC", "config_kwargs"]

_pos_int = Interval(Integral, 1, None, closed="left")
_nonneg_int = Interval(Integral, 0, None, closed="left")
_path = [str, os.PathLike, None]

TRAIN_PARAMS = ParamGroup("training", [
    Param("epochs", 20, [_pos_int], "Passes over the training data.", "int"),
    Param("max_steps", None, [_pos_int, None],
          "Stop after this many engine steps (minibatches; None: only epochs counts).",
          "int or None"),
    Param("batch_size", 128, [_pos_int], "Rows per minibatch (per rank under DDP).", "int"),
    Param("learning_rate", 1e-3, [Interval(Real, 0, None, closed="neither")],
          "Base learning rate of the optimiser(s).", "float"),
    Param("optimizer", "adam", [StrOptions(set(OPTIMIZERS))],
          "Optimiser: adam, adamw, sgd, rmsprop or adagrad.", '{"adam", "adamw", "sgd", '
          '"rmsprop", "adagrad"}'),
    Param("momentum", 0.9, [Interval(Real, 0, 1, closed="left")],
          "Momentum of sgd / rmsprop.", "float"),
    Param("weight_decay", 0.0, [Interval(Real, 0, None, closed="left")],
          "L2 penalty (decoupled for adamw).", "float"),
    Param("lr_schedule", "constant", [StrOptions(set(SCHEDULES))],
          "Learning-rate decay over the run: constant, cosine, linear or step.",
          '{"constant", "cosine", "linear", "step"}'),
    Param("warmup_steps", 0, [_nonneg_int],
          "Linear learning-rate warm-up over the first steps (0: none).", "int"),
    Param("clip_grad_norm", None, [Interval(Real, 0, None, closed="neither"), None],
          "Clip each optimiser's gradient to this global L2 norm (None: no clipping).",
          "float or None"),
    Param("validation_fraction", 0.0, [Interval(Real, 0, 1, closed="left")],
          "Fraction of rows held out for a validation loss after each epoch.", "float"),
    Param("early_stopping", False, ["boolean"],
          "Stop after patience epochs without validation improvement; restore the best "
          "weights.", "bool"),
    Param("patience", 5, [_pos_int], "Epochs without improvement before early stopping.",
          "int"),
    Param("checkpoint_dir", None, _path,
          "Directory for atomic checkpoints (and metrics.jsonl when log_dir is None).",
          "str or None"),
    Param("checkpoint_every", None, [_pos_int, None],
          "Checkpoint every this many steps (None: at the end of every epoch).", "int or None"),
    Param("resume", False, ["boolean"],
          "Continue exactly from the checkpoint in checkpoint_dir when there is one.", "bool"),
    Param("log_dir", None, _path,
          "Directory of the metrics log metrics.jsonl (None: checkpoint_dir).", "str or None"),
    Param("log_every", 50, [_nonneg_int],
          "Write a step record to the metrics log every this many steps (0: epochs only).",
          "int"),
    Param("tensorboard", False, ["boolean"],
          "Also write TensorBoard scalars to <log_dir>/tensorboard (needs tensorboard).",
          "bool"),
    Param("amp", "auto", ["boolean", StrOptions({"auto", "bf16", "fp16", "off"})],
          "Mixed precision on CUDA (auto: bf16 where the GPU has it, else fp16; off for "
          "models whose objective needs full precision, e.g. the flows); ignored on CPU.",
          'bool or {"auto", "bf16", "fp16", "off"}'),
    Param("device", "auto", [str, torch.device],
          "Where to train: auto (CUDA when available), cpu or cuda.",
          '{"auto", "cpu", "cuda"}'),
    Param("random_state", None, ["random_state"],
          "Seed of the initial weights, the data order and any noise.",
          "int, RandomState or None"),
    Param("verbose", 0, ["verbose"], "Print one line per epoch when > 0.", "int"),
])

#: numpydoc ``Parameters`` entries of the group, for ``{train_params}`` in class docstrings.
TRAIN_PARAMS_DOC = TRAIN_PARAMS.doc_block(indent="    ").lstrip()

_CONFIG_FIELDS = {f.name for f in fields(TrainConfig)}


def config_kwargs(est: object) -> dict[str, object]:
    """The estimator's training-group values that :class:`TrainConfig` takes."""
    return {n: getattr(est, n) for n in TRAIN_PARAMS.names if n in _CONFIG_FIELDS}
