"""Exact partition functions by enumeration, and AIS against them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from unsup.data import load
from unsup.energy import BernoulliRBM
from unsup.metrics.likelihood import ais, beta_schedule, binary_states, rbm_log_partition_exact


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Shared 2-core machines: oversubscribed BLAS threads are many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _brute_log_z(W: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """log Z by summing e^{-E(v,h)} over every joint state (tiny models only)."""
    D, H = W.shape
    vals = []
    for v in itertools.product([0, 1], repeat=D):
        for h in itertools.product([0, 1], repeat=H):
            v_, h_ = np.array(v, float), np.array(h, float)
            vals.append(b @ v_ + c @ h_ + v_ @ W @ h_)
    vals = np.array(vals)
    return float(vals.max() + np.log(np.exp(vals - vals.max()).sum()))


@pytest.mark.parametrize("D,H", [(5, 3), (3, 6)])
def test_exact_log_z_matches_brute_force(D: int, H: int) -> None:
    rng = np.random.default_rng(0)
    W, b, c = rng.normal(0, 1.5, (D, H)), rng.normal(0, 1, D), rng.normal(0, 1, H)
    assert rbm_log_partition_exact(W, b, c, chunk=7) == pytest.approx(_brute_log_z(W, b, c),
                                                                      abs=1e-9)


def test_exact_refuses_too_many_states() -> None:
    with pytest.raises(ValueError, match="AIS"):
        rbm_log_partition_exact(np.zeros((30, 30)), np.zeros(30), np.zeros(30))


def test_binary_states_table() -> None:
    s = binary_states(3)
    assert s.shape == (8, 3)
    assert s.tolist()[5] == [1.0, 0.0, 1.0]
    assert torch.equal(binary_states(3, 2, 6), s[2:6])


def test_beta_schedule() -> None:
    b = beta_schedule(1000)
    assert b[0] == 0 and b[-1] == 1 and len(b) == 1000 and np.all(np.diff(b) > 0)
    assert (b > 0.9).sum() > (b < 0.5).sum()  # most of the work near beta = 1
    with pytest.raises(ValueError):
        beta_schedule([0.0, 0.7, 0.5, 1.0])


def test_ais_is_exact_for_identical_models() -> None:
    """When p_A = p_B every weight is 1: log Z_B = log Z_A with zero spread."""

    def init(n: int) -> tuple[torch.Tensor, float]:
        return torch.zeros(n), 2.5

    def step(x: torch.Tensor, b0: float, b1: float, last: bool):
        return torch.zeros(x.shape[0], dtype=torch.float64), x

    r = ais(init, step, n_runs=10, betas=50)
    assert r.log_z == pytest.approx(2.5) and r.log_z_std == pytest.approx(0.0)
    assert r.log_z_low == pytest.approx(2.5) and r.log_z_high == pytest.approx(2.5)


@pytest.fixture(scope="module")
def mnist_rbm15() -> BernoulliRBM:
    torch.manual_seed(0)
    X = load("mnist5k", binarize=0.5).X
    rbm = BernoulliRBM(15, learning_rate=0.05, n_updates=300, batch_size=100,
                       random_state=0, device="cpu")
    return rbm.fit(X)


def test_ais_within_0p1_nats_of_exact_784x15(mnist_rbm15: BernoulliRBM) -> None:
    """The issue's check: 784 visible x 15 hidden, exact log Z over 2^15 hidden states."""
    exact = mnist_rbm15.log_partition_exact()
    res = mnist_rbm15.estimate_log_partition(n_runs=200, n_betas=3000, random_state=1)
    assert abs(res.log_z - exact) < 0.1, (res, exact)
    assert res.log_z_low - 0.05 <= exact <= res.log_z_high + 0.05
    # the model is far from the base-rate model: log Z moved by many nats
    assert abs(exact - res.log_z_base) > 5


def test_score_samples_uses_exact_for_small_models(mnist_rbm15: BernoulliRBM) -> None:
    X = load("mnist5k", binarize=0.5).X[:50]
    rbm = mnist_rbm15
    for k in ("log_partition_", "log_partition_interval_", "log_partition_std_"):
        rbm.__dict__.pop(k, None)
    ll = rbm.score_samples(X)
    assert rbm.likelihood_kind_ == "exact"
    assert np.allclose(ll, -rbm.free_energy(X) - rbm.log_partition_exact())
    assert np.all(ll < 0)
    assert math.isfinite(rbm.score(X))
