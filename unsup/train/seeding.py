"""One way to turn a scikit-learn ``random_state`` into torch seeds and generators.

Every unsup estimator takes ``random_state`` (None, an int or a ``numpy.random.RandomState``).
The rules, used by every engine:

- :func:`seed_from` draws one integer seed in ``[0, 2³¹ - 1)`` from it
  (``check_random_state(random_state).randint(0, 2**31 - 1)``), so an int gives the same seed
  every time and a ``RandomState`` advances;
- :func:`derive_seed` gives independent-looking child seeds for named purposes (a layer, an
  arm of an experiment) through :class:`numpy.random.SeedSequence`;
- :func:`make_generator` returns a :class:`torch.Generator` on a device, seeded by
  :func:`seed_from` (also exported as ``unsup.base.make_generator``);
- :func:`run_generators` gives each restart of a fit its own generator, so that a run's draws
  do not depend on how the restarts are batched;
- :func:`seeded` runs a block (building a network) under a fixed torch seed without
  disturbing the caller's global RNG;
- :func:`measure_seed` and :func:`row_draws` give stochastic measurements (importance
  sampling, dequantisation) noise that depends only on the seed and each row's values, so a
  score is repeatable, independent of batching, and never consumes the estimator's generator.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["seed_from", "derive_seed", "make_generator", "run_generators", "seeded",
           "measure_seed", "row_draws"]


def seed_from(random_state: Any) -> int:
    """One integer seed in ``[0, 2**31 - 1)`` from a scikit-learn style ``random_state``."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def derive_seed(seed: int, *keys: int) -> int:
    """A child seed of ``seed`` for the purpose named by the integers ``keys``."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


def make_generator(random_state: Any, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded deterministically from ``random_state``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed_from(random_state))
    return g


def run_generators(generator: torch.Generator, n_runs: int) -> list[torch.Generator]:
    """One CPU generator per run, seeded by one draw each from ``generator``: the runs of a
    fit get the same streams whether they are initialised together or one batch at a time."""
    out = []
    for _ in range(n_runs):
        g = torch.Generator()
        g.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        out.append(g)
    return out


@contextlib.contextmanager
def seeded(seed: int, cuda: bool = False) -> Iterator[None]:
    """Run the block with ``torch.manual_seed(seed)``; the global RNG state is restored after."""
    # the current GPU only: forking every visible one would open a context on each (a
    # torchrun rank per GPU would hold memory on all of them)
    devices = [torch.cuda.current_device()] if cuda and torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def measure_seed(random_state: Any) -> int:
    """The seed of a measurement: from an integer ``random_state`` (else 0), never consuming
    the estimator's generator, so measuring is repeatable and never changes the model."""
    base = int(random_state) if isinstance(random_state, Integral) else 0
    return derive_seed(base, 7)


def row_draws(x: torch.Tensor, k: int, sizes: list[int], seed: int, uniform: bool
              ) -> list[torch.Tensor]:
    """Per-row noise of shape ``(k, n, s)`` for each ``s`` in ``sizes``: standard normals (or
    uniforms), from a generator seeded by ``seed`` and a CRC-32 of the row's float32 bytes."""
    rows = x.detach().to("cpu", torch.float32).contiguous().numpy()
    g = torch.Generator()
    out: list[list[torch.Tensor]] = [[] for _ in sizes]
    for r in rows:
        g.manual_seed(derive_seed(seed, zlib.crc32(r.tobytes())))
        for j, s in enumerate(sizes):
            out[j].append(torch.rand(k, s, generator=g) if uniform
                          else torch.randn(k, s, generator=g))
    return [torch.stack(o, 1).to(device=x.device, dtype=x.dtype) for o in out]
