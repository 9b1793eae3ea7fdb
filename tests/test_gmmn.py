"""GMMN (Li, Swersky & Zemel 2015): the MMD² estimators against a direct numpy computation,
the two-sample behaviour of the MMD, moment matching on a 2-D mixture, and GMMN+AE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import unsup
from unsup.adversarial import GMMN
from unsup.adversarial._mmd import median_distance, mmd2

pytestmark = pytest.mark.usefixtures("one_thread")

BW = (0.5, 1.0, 3.0)


def _numpy_mmd2(X: np.ndarray, Y: np.ndarray, bw, unbiased: bool) -> float:
    """MMD² from its definition, one kernel evaluation at a time."""
    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2 * s * s)) for s in bw)

    n, m = len(X), len(Y)
    kxx = sum(k(X[i], X[j]) for i in range(n) for j in range(n) if not (unbiased and i == j))
    kyy = sum(k(Y[i], Y[j]) for i in range(m) for j in range(m) if not (unbiased and i == j))
    kxy = sum(k(X[i], Y[j]) for i in range(n) for j in range(m))
    dx, dy = (n * (n - 1), m * (m - 1)) if unbiased else (n * n, m * m)
    return kxx / dx + kyy / dy - 2 * kxy / (n * m)


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd2_matches_direct_numpy_computation(unbiased):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 3)), rng.normal(0.5, 1.2, size=(5, 3))
    got = float(mmd2(torch.tensor(X), torch.tensor(Y), BW, unbiased=unbiased))
    assert got == pytest.approx(_numpy_mmd2(X, Y, BW, unbiased), rel=1e-10, abs=1e-12)


def test_mmd_is_zero_for_identical_samples_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.normal(size=(400, 2)))
    assert float(mmd2(X, X, BW)) == pytest.approx(0.0, abs=1e-12)  # the V-statistic, same rows
    Y = torch.tensor(rng.normal(size=(400, 2)))  # same distribution, other draws
    same = float(mmd2(X, Y, BW, unbiased=True))
    assert abs(same) < 0.01
    vals = [float(mmd2(X, Y + torch.tensor([s, 0.0]), BW, unbiased=True))
            for s in (0.25, 0.5, 1.0, 2.0)]
    assert vals[0] > 5 * abs(same)
    assert all(b > a for a, b in zip(vals[:-1], vals[1:], strict=True))  # monotone in the shift


def test_mmd_refuses_bad_arguments():
    X = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="width"):
        mmd2(X, torch.zeros(3, 3), BW)
    with pytest.raises(ValueError, match="positive"):
        mmd2(X, X, [1.0, 0.0])
    with pytest.raises(ValueError, match="two rows"):
        mmd2(X[:1], X, BW, unbiased=True)


def test_median_distance_of_a_known_set():
    X = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])  # distances 5, 5, 10
    assert median_distance(X) == pytest.approx(5.0)


def _mixture(n=600, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 2, n)
    centres = np.array([[-2.0, 0.0], [2.0, 1.0]])
    return (centres[c] + rng.normal(0, 0.3, (n, 2))).astype(np.float32)


def test_gmmn_matches_the_moments_of_a_2d_mixture():
    X = _mixture()
    m = GMMN(4, hidden_layer_sizes=(32, 32), epochs=100, batch_size=200, learning_rate=3e-3,
             random_state=0).fit(X)
    assert all(np.isfinite(r["loss"]) for r in m.history_)
    assert m.history_[-1]["loss"] < 0.5 * m.history_[0]["loss"]
    S = m.sample(3000, random_state=1)
    assert S.shape == (3000, 2)
    np.testing.assert_allclose(S.mean(0), X.mean(0), atol=0.2)
    np.testing.assert_allclose(S.std(0), X.std(0), atol=0.25)
    # both modes are populated, in about the right proportions
    left = (S[:, 0] < 0).mean()
    assert abs(left - (X[:, 0] < 0).mean()) < 0.15
    # the sample's MMD to the data is far below that of an untrained generator
    untrained = GMMN(4, hidden_layer_sizes=(32, 32), epochs=1, max_steps=1,
                     batch_size=200, random_state=0).fit(X)
    assert m.mmd(X) < 0.2 * untrained.mmd(X)


def test_sampling_is_seeded():
    X = _mixture(200)
    m = GMMN(2, hidden_layer_sizes=(8,), epochs=2, batch_size=50, random_state=0).fit(X)
    np.testing.assert_array_equal(m.sample(5, random_state=3), m.sample(5, random_state=3))
    assert not np.array_equal(m.sample(5, random_state=3), m.sample(5, random_state=4))


def test_default_bandwidths_follow_the_median_distance_and_given_ones_are_kept():
    X = _mixture(200)
    m = GMMN(2, hidden_layer_sizes=(8,), epochs=1, batch_size=50, random_state=0).fit(X)
    med = median_distance(torch.tensor(X))
    np.testing.assert_allclose(m.bandwidths_, [f * med for f in (0.2, 0.5, 1, 2, 4, 8)],
                               rtol=1e-5)
    m2 = GMMN(2, hidden_layer_sizes=(8,), bandwidths=[1.0, 2.0], epochs=1, batch_size=50,
              random_state=0).fit(X)
    assert m2.bandwidths_ == [1.0, 2.0]
    with pytest.raises(ValueError, match="bandwidths"):
        GMMN(bandwidths=[1.0, -2.0], epochs=1).fit(X)


def test_gmmn_ae_matches_codes_and_decodes_samples(tmp_path):
    from unsup.autoencoders import Autoencoder

    rng = np.random.default_rng(0)
    X = (rng.random((300, 16)) < np.where(rng.random(300)[:, None] < 0.5, 0.85, 0.15)
         ).astype(np.float32)  # two kinds of rows: mostly on, mostly off
    m = GMMN(3, hidden_layer_sizes=(16,), autoencoder="auto", ae_n_components=4,
             ae_hidden_layer_sizes=(16,), ae_epochs=5, epochs=5, batch_size=100,
             random_state=0).fit(X)
    assert m.ae_sizes_ == [16, 16, 4] and m.output_ == "sigmoid"
    S = m.sample(10, random_state=0)
    assert S.shape == (10, 16) and ((S >= 0) & (S <= 1)).all()
    # the frozen encoder is the autoencoder's, untouched by training
    ae = Autoencoder(4, hidden_layer_sizes=(16,), code_activation="sigmoid", epochs=5,
                     batch_size=100, random_state=0).fit(X)
    m2 = GMMN(3, hidden_layer_sizes=(16,), autoencoder=ae, epochs=3, batch_size=100,
              random_state=0).fit(X)
    pairs = zip(ae.module_.encoder.parameters(), m2.module_.encoder.parameters(), strict=True)
    for a, b in pairs:
        torch.testing.assert_close(a, b)
    assert not any(p.requires_grad for p in m2.module_.decoder.parameters())
    # "auto" saves and loads; the samples are the same
    m.save(tmp_path / "g.safetensors")
    loaded = unsup.load(tmp_path / "g.safetensors")
    np.testing.assert_array_equal(loaded.sample(10, random_state=0), S)
    with pytest.raises(ValueError, match="autoencoder"):
        GMMN(autoencoder=3, epochs=1).fit(X)


def test_gmmn_is_stable_on_mnist_digits():
    from unsup.data import load

    X = load("mnist5k").X[:1000]
    m = GMMN(epochs=1, max_steps=4, batch_size=250, random_state=0).fit(X)
    assert all(np.isfinite(r["loss"]) for r in m.history_)
    S = m.sample(8, random_state=0)
    assert S.shape == (8, 784) and np.isfinite(S).all()
