"""The MCMC engine moved to :mod:`unsup.train.mcmc` (the training layer); kept so that old
imports keep working. Also the energy family's part of the engine's checkpoints: the state of
the NumPy twin that :func:`unsup.energy._rbm._uniform` draws CPU uniforms from (a PCG64
generator per torch generator, seeded from it, whose state a torch generator's ``get_state``
does not hold), so that a resumed fit draws the same samples as one never stopped."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unsup.train.mcmc import (  # noqa: F401
    SAMPLING,
    MCMCConfig,
    MCMCModel,
    check_float,
    check_int,
    fit_mcmc,
    lr_factor,
)


def twin_state(gen: torch.Generator) -> dict[str, Any] | None:
    """The JSON-able state of ``gen``'s NumPy twin, or None when it has drawn nothing yet."""
    from unsup.energy import _rbm

    entry = _rbm._NP_RNG.get(id(gen))
    if entry is None or entry[0] is not gen:
        return None
    return entry[1].bit_generator.state


def set_twin_state(gen: torch.Generator, state: dict[str, Any] | None) -> None:
    """Give ``gen`` a NumPy twin in ``state`` (None: none yet, as in a fresh fit)."""
    from unsup.energy import _rbm

    if state is None:
        _rbm._NP_RNG.pop(id(gen), None)
        return
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"the NumPy twin generator is {state.get('bit_generator')!r}, not PCG64")
    twin = np.random.Generator(np.random.PCG64())
    twin.bit_generator.state = state
    if len(_rbm._NP_RNG) > 64:
        _rbm._NP_RNG.clear()
    _rbm._NP_RNG[id(gen)] = (gen, twin)
