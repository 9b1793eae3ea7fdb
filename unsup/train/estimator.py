"""``GradientEstimator``: the base class of every model trained by the gradient engine.

A model subclasses it and supplies two methods:

- ``_build_module() -> nn.Module`` — the network, built from the estimator's parameters and
  ``n_features_in_`` (and any fitted attribute set in ``_prepare``);
- ``_loss(batch) -> Tensor`` — the mean loss of a minibatch, using ``self.module_``.

Optionally ``_prepare(X)`` checks the data and sets data-dependent attributes (e.g. the loss
that follows the data) before the module is built. ``fit`` then validates the input, builds the
module deterministically from ``random_state``, and runs :func:`unsup.train.train`. Saving
(:mod:`unsup.io`) stores the module's parameters as tensors and rebuilds it from the
estimator's parameters on load, so no code or pickle is ever stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import nn

from unsup.base import BaseEstimator
from unsup.data.validation import check_array, check_n_features
from unsup.train.engine import TrainConfig, TrainResult, train

__all__ = ["GradientEstimator", "TRAIN_PARAMS_DOC"]

TRAIN_PARAMS_DOC = """\
epochs : int
        Passes over the training data.
    batch_size : int
        Rows per minibatch.
    learning_rate : float
        Base learning rate of the optimiser.
    optimizer : {"adam", "adamw", "sgd", "rmsprop", "adagrad"}
        Optimiser; ``momentum`` applies to sgd and rmsprop.
    momentum : float
        Momentum of sgd / rmsprop.
    weight_decay : float
        L2 penalty (decoupled for adamw).
    lr_schedule : {"constant", "cosine", "linear", "step"}
        Learning-rate schedule over the run.
    max_steps : int or None
        Stop after this many optimiser steps (None: only ``epochs`` counts).
    validation_fraction : float
        Fraction of rows held out to compute a validation loss after each epoch.
    early_stopping : bool
        Stop when the validation loss has not improved for ``patience`` epochs and restore the
        best weights (needs ``validation_fraction > 0``).
    patience : int
        Epochs without improvement before early stopping.
    checkpoint_dir : str or None
        Directory for atomic checkpoints and the metrics log (metrics.jsonl).
    checkpoint_every : int or None
        Checkpoint every this many steps (None: at the end of every epoch).
    resume : bool
        Continue exactly from the checkpoint in ``checkpoint_dir`` when there is one.
    amp : bool or {"auto", "bf16", "fp16"}
        Mixed precision on CUDA ("auto": bf16 where supported); ignored on CPU.
    device : {"auto", "cpu", "cuda"}
        Where to train ("auto": CUDA when available).
    random_state : int, RandomState or None
        Seed of the initial weights, the data order and any noise.
    verbose : int
        Print one line per epoch when > 0."""


class GradientEstimator(BaseEstimator):
    """Base class for models trained by minibatch gradient descent (:func:`unsup.train.train`).

    Subclasses define ``__init__`` (their own parameters plus the training parameters below,
    passed on to ``super().__init__``), ``_build_module`` and ``_loss``.

    Parameters
    ----------
    {train_params}

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (rebuilt from the parameters on load).
    history_ : list of dict
        One record per epoch: ``epoch``, ``step``, ``loss``, ``lr``, ``time``, and
        ``val_loss`` with a validation split.
    n_steps_ : int
        Optimiser steps taken.
    stopped_early_ : bool
        Whether early stopping ended training.
    n_features_in_ : int
        Number of input features.
    """

    _save_exclude: tuple[str, ...] = ("module_",)
    _noise_generator_name = "noise"

    def __init__(
        self,
        *,
        epochs: int = 20,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        max_steps: int | None = None,
        validation_fraction: float = 0.0,
        early_stopping: bool = False,
        patience: int = 5,
        checkpoint_dir: str | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        amp: bool | str = "auto",
        device: str = "auto",
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.max_steps = max_steps
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.amp = amp
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- to be supplied by subclasses ---------------------------------------------------
    def _build_module(self) -> nn.Module:
        raise NotImplementedError

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _prepare(self, X: Any) -> None:
        """Check the data / set data-dependent attributes before the module is built."""

    # -- the shared machinery -------------------------------------------------------------
    def _train_config(self, stage: str | None = None, **overrides: Any) -> TrainConfig:
        cfg = TrainConfig(
            epochs=self.epochs, max_steps=self.max_steps, batch_size=self.batch_size,
            learning_rate=self.learning_rate, optimizer=self.optimizer, momentum=self.momentum,
            weight_decay=self.weight_decay, lr_schedule=self.lr_schedule,
            validation_fraction=self.validation_fraction, early_stopping=self.early_stopping,
            patience=self.patience, checkpoint_dir=self.checkpoint_dir,
            checkpoint_every=self.checkpoint_every, resume=self.resume, amp=self.amp,
            seed=self._seed, stage=stage or getattr(self, "_stage_name", type(self).__name__),
            verbose=int(self.verbose or 0))
        if isinstance(cfg.amp, str) and cfg.amp.lower() in ("true", "false"):  # from the CLI
            cfg.amp = cfg.amp.lower() == "true"
        for k, v in overrides.items():
            setattr(cfg, k, v)
        return cfg

    def _validate_train_input(self, X: Any) -> Any:
        """A checked float32 tensor on the device, or a memory-mapped array left on disk."""
        if isinstance(X, np.memmap):
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
            check_array(X[: min(len(X), 1000)], dtype=torch.float32, device="cpu")
            self.n_features_in_ = int(X.shape[1])
            return X
        return self._validate(X, reset=True, dtype=torch.float32)

    def _input(self, X: Any) -> torch.Tensor:
        t = check_array(X, dtype=torch.float32, device=self._device())
        check_n_features(t, self.n_features_in_, type(self).__name__)
        return t

    def _init_module(self) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            module = self._build_module()
        return module.to(self._device())

    def _make_generator(self) -> torch.Generator:
        g = torch.Generator(device=self._device())
        g.manual_seed(self._seed + 1)
        return g

    def _run(self, X: Any, cfg: TrainConfig,
             callbacks: Sequence[Callable[[int, dict[str, float]], None]] = (),
             loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
             val_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
             module: nn.Module | None = None) -> TrainResult:
        return train(module if module is not None else self.module_, loss or self._loss, X, cfg,
                     device=self._device(), generators={"noise": self._gen},
                     callbacks=callbacks, val_loss_fn=val_loss)

    def fit(self, X: Any, y: Any = None,
            callbacks: Sequence[Callable[[int, dict[str, float]], None]] | None = None
            ) -> GradientEstimator:
        """Train on ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : array-like, memmap or tensor of shape (n_samples, n_features)
            Training data.
        y : ignored
        callbacks : sequence of callable, optional
            ``cb(step, metrics)`` after every optimiser step.

        Returns
        -------
        self
        """
        self._seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        Xv = self._validate_train_input(X)
        self._prepare(Xv)
        self.module_ = self._init_module()
        self._gen = self._make_generator()
        res = self._run(Xv, self._train_config(), callbacks or ())
        self._record(res)
        return self

    def _record(self, res: TrainResult) -> None:
        self.history_ = res.history
        self.n_steps_ = int(res.step)
        self.stopped_early_ = bool(res.stopped_early)

    # -- evaluation helpers ---------------------------------------------------------------
    @torch.no_grad()
    def _map_batches(self, fn: Callable[[torch.Tensor], torch.Tensor], X: Any,
                     batch: int = 4096) -> np.ndarray:
        self._check_fitted()
        t = self._input(X)
        self.module_.eval()
        outs = [fn(t[i:i + batch]).float().cpu() for i in range(0, t.shape[0], batch)]
        return torch.cat(outs).numpy()

    # -- persistence ------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super()._get_state()
        for k, v in self.module_.state_dict().items():
            arrays[f"state__{k}_"] = v.detach().cpu().numpy()
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        state = {k[len("state__"):-1]: torch.from_numpy(np.array(v))
                 for k, v in arrays.items() if k.startswith("state__")}
        rest = {k: v for k, v in arrays.items() if not k.startswith("state__")}
        super()._set_state(rest, values)
        self._seed = 0
        module = self._build_module()
        module.load_state_dict(state)
        self.module_ = module.to(self._device()).eval()
        self._gen = self._make_generator()


GradientEstimator.__doc__ = (GradientEstimator.__doc__ or "").replace("{train_params}",
                                                                      TRAIN_PARAMS_DOC)
