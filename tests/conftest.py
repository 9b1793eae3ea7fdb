"""Shared fixtures and toy data for the test suite.

- ``one_thread``: torch on one thread for a module (the CI box has two cores shared by the
  test processes; more threads only add contention). Use it with
  ``pytestmark = pytest.mark.usefixtures("one_thread")``.
- Toy data (``bars``, ``blobs``, ``counts``, ``ratings``) and :func:`toy_data_for`, which gives
  every registered model data of the kind it accepts: the class's ``_test_data`` ("binary",
  "real", "counts", "ratings"; default "real").
- :func:`test_params_for`: small constructor parameters of a registered model for fast tests:
  the class's ``_test_params``, with ``device="cpu"`` and ``random_state=0`` added.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- toy data --------------------------------------------------------------------------------
def bars(n: int = 120, seed: int = 0) -> np.ndarray:
    """4x4 bars-and-stripes-like binary images with a little noise (16 binary features)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 2, (n, 4))
    X = np.where(rng.random(n)[:, None] < 0.5, np.repeat(rows, 4, axis=1),
                 np.tile(rows, 4)).astype(np.float32)
    flip = rng.random(X.shape) < 0.02
    return np.abs(X - flip)


def blobs(n: int = 120, d: int = 16, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` well-separated Gaussian blobs in ``d`` dimensions, values in [0, 1]; (X, labels)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.uniform(0.2, 0.8, (k, d))
    X = np.clip(centres[y] + rng.normal(0, 0.05, (n, d)), 0, 1).astype(np.float32)
    return X, y


def counts(n: int = 120, V: int = 16, seed: int = 0) -> np.ndarray:
    """Word counts of documents of varying length over two topics (disjoint halves)."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 2, n)
    X = np.zeros((n, V), dtype=np.float32)
    for i in range(n):
        p = np.full(V, 0.1 / V)
        p[topic[i] * V // 2:(topic[i] + 1) * V // 2] += 0.9 / (V // 2)
        X[i] = rng.multinomial(rng.integers(5, 40), p / p.sum())
    return X


def ratings(n_users: int = 120, n_items: int = 16, seed: int = 0) -> np.ndarray:
    """Users x items ratings 1..5 from a rank-2 score matrix, 0 where unobserved."""
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(n_users, 2)) @ rng.normal(size=(2, n_items))
    full = np.digitize(S, np.quantile(S, [0.2, 0.4, 0.6, 0.8])) + 1
    return np.where(rng.random(S.shape) < 0.5, full, 0).astype(np.float32)


DATA_KINDS = {"binary": bars, "real": lambda: blobs()[0], "counts": counts, "ratings": ratings}

def test_params_for(cls: type) -> dict[str, Any]:
    """Small constructor parameters for ``cls``, with a CPU device and a fixed seed."""
    params = dict(getattr(cls, "_test_params", None) or {})
    sig = cls._get_param_names() if hasattr(cls, "_get_param_names") else []
    for k, v in (("device", "cpu"), ("random_state", 0)):
        if k in sig:
            params.setdefault(k, v)
    return params


def data_kind_for(cls: type) -> str:
    return getattr(cls, "_test_data", None) or "real"


def toy_data_for(cls: type) -> np.ndarray:
    """Toy training data (120 rows, 16 features) of the kind ``cls`` accepts."""
    return DATA_KINDS[data_kind_for(cls)]()


test_params_for.__test__ = False  # type: ignore[attr-defined]  (not a test)
