"""``GradientEstimator``: the base class of every model trained by the gradient engine.

A model subclasses it and supplies two methods:

- ``_build_module() -> nn.Module`` — the network, built from the estimator's parameters and
  ``n_features_in_`` (and any fitted attribute set in ``_prepare``);
- ``_loss(batch) -> Tensor`` — the mean loss of a minibatch, using ``self.module_``;

or, for several players or phases (a GAN, wake-sleep), ``_optimizers()`` (named parameter sets,
each with its own learning rate if wanted) and ``_phases()`` (the order of a step; see
:mod:`unsup.train.steps`) instead of ``_loss``.

The training parameters (``epochs``, ``batch_size``, ``learning_rate``, ...) are one parameter
group, :data:`unsup.train.params.TRAIN_PARAMS`, composed into every subclass's ``__init__``:
a subclass's ``__init__`` lists only its own parameters (and any training parameter whose
default it changes) and calls ``super().__init__()`` with nothing else. Constraints of the group
and of the model (``_parameter_constraints``) are checked once, at the start of ``fit``.

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
from torch import nn

from unsup.base import BaseEstimator
from unsup.data.validation import check_array, check_n_features
from unsup.train.engine import TrainConfig, TrainResult, checkpoint_seed, train
from unsup.train.params import TRAIN_PARAMS, TRAIN_PARAMS_DOC, config_kwargs
from unsup.train.seeding import derive_seed, seed_from, seeded
from unsup.train.steps import OptimizerSpec, Phase

__all__ = ["GradientEstimator", "TRAIN_PARAMS_DOC", "TRAIN_PARAMS"]


class GradientEstimator(BaseEstimator):
    """Base class for models trained by minibatch gradient descent (:func:`unsup.train.train`).

    Subclasses define ``__init__`` (their own parameters; the training parameters below are
    composed in), ``_build_module`` and ``_loss`` (or ``_optimizers`` and ``_phases``).

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

    _param_groups = (TRAIN_PARAMS,)
    #: what ``amp="auto"`` means for the model: mixed precision (bf16, else fp16) on CUDA, or
    #: off where low-precision arithmetic breaks the objective (a flow's log-determinants, an
    #: MMD's difference of kernel sums, an inference loop's stopping test)
    _amp_auto: bool = True

    def __init__(self) -> None:  # the training group is composed in (unsup.params)
        pass

    # -- to be supplied by subclasses ---------------------------------------------------
    def _build_module(self) -> nn.Module:
        raise NotImplementedError

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _prepare(self, X: Any) -> None:
        """Check the data / set data-dependent attributes before the module is built."""

    def _optimizers(self) -> dict[str, OptimizerSpec] | None:
        """Named optimisers (disjoint parameter sets of ``self.module_``); None: one optimiser,
        ``"main"``, over every trainable parameter."""
        return None

    def _phases(self) -> list[Phase] | None:
        """The phases of a step, in order; None: one phase minimising ``_loss``."""
        return None

    # -- the shared machinery -------------------------------------------------------------
    def _train_config(self, stage: str | None = None, **overrides: Any) -> TrainConfig:
        cfg = TrainConfig(**{**config_kwargs(self), "verbose": int(self.verbose or 0)},
                          seed=self._seed,
                          stage=stage or getattr(self, "_stage_name", type(self).__name__))
        if cfg.amp == "auto" and not self._amp_auto:
            cfg.amp = "off"
        for k, v in overrides.items():
            setattr(cfg, k, v)
        return cfg

    def _run_seed(self) -> int:
        """The run's seed: from ``random_state``, or, when resuming a run started with
        ``random_state=None``, the seed stored in its checkpoint."""
        if self.resume and self.random_state is None:
            seed = checkpoint_seed(self.checkpoint_dir)
            if seed is not None:
                return seed
        return seed_from(self.random_state)

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
        with seeded(self._seed):
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
        step: Any = loss or self._phases() or self._loss
        # layers that draw from torch's global generator (nn.Dropout) draw from a stream of
        # the fit's seed, so a seeded fit does not depend on what the process drew before
        # (checkpoints save and restore that generator's state with the rest)
        with seeded(derive_seed(self._seed, 2), cuda=self._device().type == "cuda"):
            return train(module if module is not None else self.module_, step, X, cfg,
                         device=self._device(), generators={"noise": self._gen},
                         callbacks=callbacks, val_loss_fn=val_loss,
                         optimizers=None if loss is not None else self._optimizers())

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
        self._validate_params()
        self._seed = self._run_seed()
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
