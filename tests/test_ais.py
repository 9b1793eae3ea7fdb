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

pytestmark = pytest.mark.usefixtures("one_thread")


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


def _tiny_rbm_exact_samples(seed: int, n: int):
    """A small strongly coupled RBM, its exact log Z and n exact samples of p(v)."""
    from unsup.energy.rbm import _BernoulliMath

    rng = np.random.default_rng(seed)
    D, H = 8, 6
    W = rng.normal(0, 1.5, (D, H))
    b, c = rng.normal(0, 1, D), rng.normal(0, 1, H)
    V = binary_states(D).numpy()
    log_pv = V @ b + np.logaddexp(0, V @ W + c).sum(1)
    log_z = float(np.logaddexp.reduce(log_pv))
    idx = rng.choice(len(V), size=n, p=np.exp(log_pv - log_z))
    m = _BernoulliMath(torch.tensor(W.T, dtype=torch.float32), torch.tensor(b, dtype=torch.float32),
                       torch.tensor(c, dtype=torch.float32))
    return m, log_z, torch.tensor(V[idx], dtype=torch.float32)


def test_reverse_ais_sandwiches_exact_log_z() -> None:
    """Bidirectional Monte Carlo with exact samples: with few temperatures the forward
    estimate is low and the reverse one high (on average over seeds), and both converge to
    the exact log Z with many."""
    from unsup.base import make_generator
    from unsup.metrics.likelihood import reverse_ais

    fwd, rev = [], []
    for seed in range(8):
        m, log_z, S = _tiny_rbm_exact_samples(seed, 200)
        gen = make_generator(seed, torch.device("cpu"))
        a = torch.zeros(8)
        init, step = m.ais_callbacks(a, gen)
        fwd.append(ais(init, step, n_runs=200, betas=np.linspace(0, 1, 6)).log_z - log_z)
        rev.append(reverse_ais(step, S, init(2)[1], betas=np.linspace(0, 1, 6)).log_z - log_z)
    assert np.mean(fwd) < -0.05 and np.mean(rev) > 0.05, (fwd, rev)
    m, log_z, S = _tiny_rbm_exact_samples(0, 200)
    gen = make_generator(1, torch.device("cpu"))
    init, step = m.ais_callbacks(torch.zeros(8), gen)
    r = reverse_ais(step, S, init(2)[1], betas=2000)
    assert abs(r.log_z - log_z) < 0.05
    assert r.log_z_low - 0.05 <= log_z <= r.log_z_high + 0.05
    assert r.log_weights.shape == (200,)
    with pytest.raises(ValueError, match="2 runs"):
        reverse_ais(step, S[:1], init(2)[1], betas=10)


def test_rbm_reverse_ais_from_training_states(mnist_rbm15: BernoulliRBM) -> None:
    """The model-level reverse AIS (chains from the stored training states) agrees with the
    exact log Z on the 784 x 15 model and leaves the forward estimate alone."""
    rbm = mnist_rbm15
    exact = rbm.log_partition_exact()
    before = rbm.__dict__.get("log_partition_")
    keys = set(vars(rbm))
    res = rbm.estimate_log_partition_reverse(n_runs=200, n_betas=3000, burn_in=3000,
                                             random_state=2)
    assert set(vars(rbm)) == keys  # measuring never stores: caching is explicit
    assert res.method == "reverse AIS"
    assert abs(res.log_z - exact) < 0.1, (res, exact)
    rbm.set_log_partition(res)
    assert rbm.log_partition_reverse_ == res.log_z
    assert rbm.log_partition_reverse_interval_ == [res.log_z_low, res.log_z_high]
    assert rbm.__dict__.get("log_partition_") == before
    bare = BernoulliRBM(15)
    bare.__dict__.update({k: v for k, v in rbm.__dict__.items() if k != "check_states_"})
    with pytest.raises(ValueError, match="stored"):
        bare.estimate_log_partition_reverse(n_runs=10, n_betas=10)
