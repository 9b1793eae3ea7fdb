"""The adversarial autoencoder (Makhzani et al. 2016): codes matched to the prior, reconstruction
better than a trivial baseline, the three phases on their optimisers, the mixture prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import unsup
from unsup.adversarial import AdversarialAutoencoder
from unsup.adversarial._mmd import mmd2
from unsup.adversarial.aae import prior_means

pytestmark = pytest.mark.usefixtures("one_thread")


def _manifold(n: int = 1000, seed: int = 0) -> np.ndarray:
    """16 grey levels that are a smooth function of a 2-D latent uniform on a square: a code
    of two units can be made to follow any 2-D prior."""
    rng = np.random.default_rng(seed)
    Z = rng.uniform(-2, 2, (n, 2))
    W = rng.normal(size=(2, 16))
    return (1 / (1 + np.exp(-(Z @ W)))).astype(np.float32)


SMALL = {"hidden_layer_sizes": (32,), "discriminator_hidden_sizes": (32, 32),
         "batch_size": 100}


@pytest.fixture(scope="module")
def fitted():
    X = _manifold()
    return X, AdversarialAutoencoder(2, epochs=60, random_state=0, **SMALL).fit(X)


def test_codes_approach_the_gaussian_prior(fitted):
    X, m = fitted
    Z = m.transform(X)
    assert Z.shape == (len(X), 2) and Z.dtype == np.float32
    np.testing.assert_allclose(Z.mean(0), 0.0, atol=0.2)
    np.testing.assert_allclose(Z.var(0), 1.0, atol=0.5)
    assert abs(np.corrcoef(Z.T)[0, 1]) < 0.3
    # without the adversarial phases, the same autoencoder's codes are much further from
    # N(0, I) (MMD² to prior draws, unbiased, kernel bandwidths 0.5, 1, 2)
    from unsup.autoencoders import Autoencoder

    ae = Autoencoder(2, hidden_layer_sizes=(32,), epochs=60, batch_size=100,
                     random_state=0).fit(X)
    P = torch.as_tensor(m.sample_prior(len(X), random_state=5))

    def to_prior(C):
        return float(mmd2(torch.as_tensor(C), P, (0.5, 1.0, 2.0), unbiased=True))

    assert to_prior(Z) < 0.5 * to_prior(ae.transform(X))


def test_reconstruction_beats_the_mean_and_losses_are_finite(fitted):
    X, m = fitted
    err = ((m.reconstruct(X) - X) ** 2).sum(1).mean()
    baseline = ((X - X.mean(0)) ** 2).sum(1).mean()
    assert err < 0.1 * baseline
    np.testing.assert_allclose(m.inverse_transform(m.transform(X)), m.reconstruct(X), atol=1e-6)
    keys = {"loss_reconstruction", "loss_discriminator", "loss_generator"}
    assert keys <= set(m.history_[-1])
    assert all(np.isfinite(r[k]) for r in m.history_ for k in keys)
    # the discriminator is near its equilibrium (2 log 2 = 1.386), not winning outright
    assert m.history_[-1]["loss_discriminator"] > 1.0


def test_sample_decodes_prior_draws_and_is_seeded(fitted):
    X, m = fitted
    S = m.sample(500, random_state=0)
    assert S.shape == (500, 16) and ((S >= 0) & (S <= 1)).all()
    np.testing.assert_array_equal(S, m.sample(500, random_state=0))
    np.testing.assert_allclose(S, m.inverse_transform(m.sample_prior(500, random_state=0)),
                               atol=1e-6)
    # samples look like the data: their mean image is close to the data's
    assert np.abs(S.mean(0) - X.mean(0)).max() < 0.1


def test_phases_step_their_own_optimisers(fitted):
    _, m = fitted
    opts = m._optimizers()
    enc_dec = {id(p) for p in [*m.module_.encoder.parameters(), *m.module_.decoder.parameters()]}
    assert {id(p) for p in opts["autoencoder"].params} == enc_dec
    assert {id(p) for p in opts["discriminator"].params} == \
        {id(p) for p in m.module_.discriminator.parameters()}
    assert [(ph.name, ph.optimizer) for ph in m._phases()] == [
        ("reconstruction", "autoencoder"), ("discriminator", "discriminator"),
        ("generator", "autoencoder")]
    # the generator phase's loss reaches the encoder, never the decoder
    x = torch.as_tensor(_manifold(50, seed=1))
    m.module_.zero_grad(set_to_none=True)
    m._gen_loss(x).backward()
    assert all(p.grad is None for p in m.module_.decoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in m.module_.encoder.parameters())
    m.module_.zero_grad(set_to_none=True)


def test_mixture_prior_spreads_codes_on_its_circle():
    X = _manifold(600)
    m = AdversarialAutoencoder(2, prior="mixture", prior_components=4, epochs=40,
                               random_state=0, **SMALL).fit(X)
    P = m.sample_prior(4000, random_state=0)
    mu = prior_means(2, 4).numpy()
    nearest = ((P[:, None, :] - mu[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_allclose(np.bincount(nearest, minlength=4) / len(P), 0.25, atol=0.03)
    np.testing.assert_allclose(np.linalg.norm(mu, axis=1), 2.0, rtol=1e-6)
    Z = m.transform(X)
    assert abs(np.linalg.norm(Z, axis=1).mean() - np.linalg.norm(P, axis=1).mean()) < 0.5


def test_save_load_and_bad_loss(tmp_path, fitted):
    X, m = fitted
    m.save(tmp_path / "a.safetensors")
    loaded = unsup.load(tmp_path / "a.safetensors")
    np.testing.assert_array_equal(loaded.transform(X), m.transform(X))
    np.testing.assert_array_equal(loaded.sample(5, random_state=1), m.sample(5, random_state=1))
    with pytest.raises(ValueError, match="bce"):
        AdversarialAutoencoder(loss="bce", epochs=1).fit(X * 3)
    with pytest.raises(ValueError, match="codes must have shape"):
        m.inverse_transform(np.zeros((2, 3)))


def test_stable_on_mnist_digits():
    from unsup.data import load

    X = load("mnist5k").X[:1000]
    m = AdversarialAutoencoder(epochs=1, max_steps=5, random_state=0).fit(X)
    assert all(np.isfinite(v) for r in m.history_ for k, v in r.items() if k.startswith("loss"))
    assert np.isfinite(m.sample(4, random_state=0)).all()
