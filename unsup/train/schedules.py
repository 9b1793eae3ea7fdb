r"""Learning-rate schedules: one module, one formula.

The learning rate at (0-based) engine step ``t`` of a run of ``T`` steps is

.. math::

    η_t = η \cdot \mathrm{warmup}(t) \cdot s(t / T), \qquad
    \mathrm{warmup}(t) = \min\!\big(1, \tfrac{t + 1}{W}\big)

with ``W`` the warm-up steps (``W = 0``: no warm-up) and ``s`` one of

- ``constant``: ``s(u) = 1``;
- ``cosine``: ``s(u) = ½(1 + cos πu)`` (SGDR without restarts [1]_);
- ``linear``: ``s(u) = 1 - u``;
- ``step``: ``s(u) = 0.1^{[u ≥ ½] + [u ≥ ¾]}``.

The factor is a pure function of ``(t, T, W)``, so the scheduler's state in a checkpoint is the
step counter (plus the base rates of each optimiser), and a resumed run follows exactly the
same learning rates as one that never stopped. Warm-up follows Goyal et al. [2]_.

References
----------
.. [1] Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
.. [2] Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["SCHEDULES", "lr_factor", "apply_lr"]

SCHEDULES = ("constant", "cosine", "linear", "step")


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    """Multiplier of the base learning rate at (0-based) ``step`` of ``total`` steps.

    Parameters
    ----------
    schedule : {"constant", "cosine", "linear", "step"}
        The decay ``s(u)``.
    step : int
        0-based engine step ``t``.
    total : int
        Steps in the run ``T``.
    warmup : int, default=0
        Linear warm-up steps ``W`` (0: none).

    Returns
    -------
    float
        ``warmup(t) · s(t / T)``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule={schedule!r} is not one of {SCHEDULES}")
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


def apply_lr(opt: torch.optim.Optimizer, base_lrs: Sequence[float], factor: float) -> None:
    """Set each parameter group's rate to its base rate times ``factor``."""
    for g, lr0 in zip(opt.param_groups, base_lrs, strict=True):
        g["lr"] = lr0 * factor
