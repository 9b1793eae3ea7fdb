"""VAE-GAN (Larsen et al. 2016): the three losses, each player's update through the gradient
engine changing only its own parameters, sampling and codes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import unsup
from unsup.adversarial import VAEGAN
from unsup.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"n_components": 2, "hidden_layer_sizes": (16,), "discriminator_hidden_sizes": (16, 8),
         "batch_size": 50}
PLAYERS = {"encoder": ("encoder",), "decoder": ("decoder",),
           "discriminator": ("features", "head")}


def _data(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 2))
    return (1 / (1 + np.exp(-(Z @ rng.normal(size=(2, 16)))))).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    X = _data()
    return X, VAEGAN(epochs=15, random_state=0, **SMALL).fit(X)


def _params(m: VAEGAN, player: str) -> list[torch.Tensor]:
    return [p for name in PLAYERS[player] for p in getattr(m.module_, name).parameters()]


def test_losses_are_finite_and_recorded(fitted):
    _, m = fitted
    keys = ("loss_encoder", "loss_decoder", "loss_discriminator")
    for r in m.history_:
        assert all(np.isfinite(r[k]) for k in keys)
    assert m.history_[-1]["loss"] == pytest.approx(sum(m.history_[-1][k] for k in keys))


def test_loss_terms_are_the_papers(fitted):
    """L_prior is the Gaussian KL; L_llike^Dis_l = ‖Dis_l(x) - Dis_l(x̃)‖² / 2σ² with x̃ decoded
    from z = μ + σ ε; Dis_l is the discriminator's hidden layer ``feature_layer``."""
    X, m = fitted
    x = torch.as_tensor(X[:20])
    state = m._gen.get_state()
    with torch.no_grad():
        o = m._forward(x)
        m._gen.set_state(state)
        mu, logvar = m.module_.posterior(x)
        eps = torch.randn(mu.shape, generator=m._gen)
        x_rec = torch.sigmoid(m.module_.decoder(mu + torch.exp(0.5 * logvar) * eps))
        f_x = m.module_.features(x)
        f_rec = m.module_.features(x_rec)
    kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(1)
    torch.testing.assert_close(o["kl"], kl)
    llike = 0.5 * ((f_x - f_rec) ** 2).sum(1) / m.feature_std**2
    torch.testing.assert_close(o["llike"], llike)
    m._gen.set_state(state)
    with torch.no_grad():
        enc = m._encoder_loss(x)
    torch.testing.assert_close(enc, (kl + llike).mean())
    assert f_x.shape == (20, SMALL["discriminator_hidden_sizes"][m.feature_layer - 1])
    with torch.no_grad():  # Dis_l is the discriminator's last hidden layer
        torch.testing.assert_close(m.module_.discriminate(x)[1], m.module_.head(f_x))
    np.testing.assert_allclose(m.discriminator_features(X[:20]), f_x.numpy(), rtol=1e-6)


@pytest.mark.parametrize("phase", ["encoder", "decoder", "discriminator"])
def test_each_players_update_touches_only_its_parameters(fitted, phase):
    """One plain-SGD engine step of one phase: its player moves by exactly -lr ∇L, every other
    parameter stays bit for bit."""
    X, m0 = fitted
    m = copy.deepcopy(m0)  # the fixture's model is not trained further
    m.margin = None  # every player is updated (the gate is tested below)
    ph = {p.name: p for p in m._phases()}[phase]
    spec = m._optimizers()[ph.optimizer]
    before = {n: p.detach().clone() for n, p in m.module_.named_parameters()}
    # 50 copies of one row: the engine shuffles the rows, and the noise of each position must
    # meet the same row as in the reference gradient below
    batch = torch.as_tensor(np.repeat(X[:1], 50, axis=0))
    state = m._gen.get_state()
    m.module_.zero_grad(set_to_none=True)
    ph.loss(batch).backward()
    grads = {id(p): p.grad.clone() for p in _params(m, phase)}
    m.module_.zero_grad(set_to_none=True)
    m._gen.set_state(state)
    lr = 0.05
    train(m.module_, [ph], batch, TrainConfig(epochs=1, batch_size=50, optimizer="sgd",
                                              learning_rate=lr, momentum=0.0, seed=0),
          optimizers={ph.optimizer: spec})
    mine = {id(p) for p in _params(m, phase)}
    moved = 0
    for n, p in m.module_.named_parameters():
        if id(p) in mine:
            torch.testing.assert_close(p.detach(), before[n] - lr * grads[id(p)])
            moved += int(not torch.equal(p.detach(), before[n]))
        else:
            assert torch.equal(p.detach(), before[n]), f"{phase} step changed {n}"
    assert moved > 0


def test_equilibrium_gate_skips_a_winning_discriminator(fitted):
    X, m0 = fitted
    m = copy.deepcopy(m0)
    m.margin = 0.35
    lo, hi = torch.full((4, 1), -9.0), torch.full((4, 1), 9.0)
    assert m._gate(hi, lo, lo) == (False, True)  # D right on every row: D not updated
    assert m._gate(lo, hi, hi) == (True, False)  # D wrong on every row: decoder not updated
    assert m._gate(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4, 1)) == (True, True)
    m.margin = None
    assert m._gate(hi, lo, lo) == (True, True)
    skipped = m._skipped(torch.tensor(2.0, requires_grad=True) * 3)
    assert skipped.item() == 6.0 and skipped.is_leaf and skipped.requires_grad


def test_optimisers_partition_the_parameters(fitted):
    _, m = fitted
    opts = m._optimizers()
    owned = [id(p) for s in opts.values() for p in s.params]
    assert len(owned) == len(set(owned)) == len(list(m.module_.parameters()))
    for player, spec in opts.items():
        assert {id(p) for p in spec.params} == {id(p) for p in _params(m, player)}


def test_sample_transform_inverse_and_save(fitted, tmp_path):
    X, m = fitted
    S = m.sample(7, random_state=0)
    assert S.shape == (7, 16) and ((S >= 0) & (S <= 1)).all()
    np.testing.assert_array_equal(S, m.sample(7, random_state=0))
    Z = m.transform(X)
    assert Z.shape == (len(X), 2) and np.isfinite(Z).all()
    assert m.inverse_transform(Z).shape == X.shape
    m.save(tmp_path / "v.safetensors")
    loaded = unsup.load(tmp_path / "v.safetensors")
    np.testing.assert_array_equal(loaded.sample(7, random_state=0), S)
    np.testing.assert_array_equal(loaded.transform(X), Z)
    with pytest.raises(ValueError, match="at least one layer"):
        VAEGAN(discriminator_hidden_sizes=(), epochs=1).fit(X)


def test_stable_on_mnist_digits():
    from unsup.data import load

    X = load("mnist5k").X[:1000]
    m = VAEGAN(epochs=1, max_steps=5, random_state=0).fit(X)
    assert all(np.isfinite(v) for r in m.history_ for k, v in r.items() if k.startswith("loss"))
    assert np.isfinite(m.sample(4, random_state=0)).all()
