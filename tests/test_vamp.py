"""The VampPrior of the VAE / IWAE (``prior="vamp"``; Tomczak & Welling 2018).

Ground truths: the mixture density computed directly by torch.distributions; a 1-D grid
integral of the prior (it must be normalised); a linear-Gaussian VAE with the VampPrior, whose
marginal p(x) = (1/K) Σ_k N(x; W μ_k + b, W diag σ_k² Wᵀ + diag s²) is a Gaussian mixture in
closed form; the moments of ancestral draws; a save/load round trip of the pseudo-inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import blobs

from unsup import io
from unsup.latent import IWAE, VAE
from unsup.latent._vae_net import VAENet

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(latent: int, k: int, d: int = 5, seed: int = 0) -> VAENet:
    torch.manual_seed(seed)
    net = VAENet(d, latent, [7], "tanh", "bernoulli", None, n_pseudo_inputs=k)
    with torch.no_grad():
        net.pseudo_inputs.uniform_(0, 1)  # spread the components apart
    return net.eval()


def _direct(net: VAENet, z: torch.Tensor) -> torch.Tensor:
    mu, logvar = (t.double() for t in net.prior_components())
    comp = torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                           1)
    mix = torch.distributions.Categorical(torch.ones(mu.shape[0], dtype=torch.float64))
    return torch.distributions.MixtureSameFamily(mix, comp).log_prob(z.double())


def test_log_prior_is_the_mixture_density():
    net = _net(3, 4)
    z = torch.randn(2, 50, 3) * 2
    with torch.no_grad():
        got = net.log_prior(z)
        assert got.shape == (2, 50)
        np.testing.assert_allclose(got.double().numpy(), _direct(net, z).numpy(), rtol=1e-5,
                                   atol=1e-5)
        # narrow components (log σ² near the floor): the float64 expansion stays exact
        last = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias[3:] -= 12.0
        mu, logvar = net.prior_components()
        assert float(logvar.max()) < -8
        z2 = mu[:, None, :] + 1e-3 * torch.randn(4, 10, 3)
        np.testing.assert_allclose(net.log_prior(z2).double().numpy(),
                                   _direct(net, z2).numpy(), rtol=1e-5)
    z.requires_grad_(True)
    net.log_prior(z).sum().backward()  # differentiable in z and in the pseudo-inputs
    assert torch.isfinite(z.grad).all()


def test_log_prior_integrates_to_one():
    net = _net(1, 6)
    g = torch.linspace(-30, 30, 200001, dtype=torch.float32)[:, None]
    with torch.no_grad():
        p = net.log_prior(g).double().exp()
        mu, logvar = net.prior_components()
    assert float(logvar.min()) > -8  # components wider than the grid step
    total = float(torch.trapezoid(p, g[:, 0].double()))
    assert abs(total - 1.0) < 1e-4
    with torch.no_grad():  # a standard-normal net integrates too (the shared code path)
        net0 = VAENet(5, 1, [7], "tanh", "bernoulli", None)
        assert abs(float(torch.trapezoid(net0.log_prior(g).double().exp(), g[:, 0].double()))
                   - 1) < 1e-6


def _vamp_linear_exact(vae: VAE, X: np.ndarray) -> np.ndarray:
    net = vae.module_
    lin = net.decoder[0]
    W, b = lin.weight.detach().double(), lin.bias.detach().double()
    s2 = torch.exp(2 * net.log_scale.detach().double().clamp(min=-7.0))
    with torch.no_grad():
        mu, logvar = (t.double() for t in net.prior_components())
    C = W @ torch.diag_embed(logvar.exp()) @ W.T + torch.diag(s2)  # (K, D, D)
    comp = torch.distributions.MultivariateNormal(mu @ W.T + b, C)
    x = torch.as_tensor(X, dtype=torch.float64)[:, None, :]
    return (torch.logsumexp(comp.log_prob(x), 1) - math.log(mu.shape[0])).numpy()


def test_importance_sampling_reaches_the_exact_marginal_of_a_linear_vamp_vae():
    X = blobs(n=60, d=6)[0] * 4 - 2
    vae = VAE(2, decoder="gaussian", hidden_layer_sizes=(), prior="vamp", n_pseudo_inputs=3,
              batch_size=20, epochs=30, input_dropout=0.0, early_stopping=False,
              validation_fraction=0.0, random_state=0).fit(X)
    assert vae.module_.pseudo_inputs.shape == (3, 6)
    exact = _vamp_linear_exact(vae, X)
    elbo = vae.elbo(X, n_samples=2000).nats
    is5000 = vae.log_likelihood(X, n_samples=5000)
    assert elbo < exact.mean() - 0.05  # the ELBO stays below ...
    assert abs(exact.mean() - is5000.nats) < 0.02  # ... and IS-k reaches log p(x)
    np.testing.assert_allclose(is5000.per_sample, exact, atol=0.1)
    # refined proposals (the refinement's bound uses the VampPrior too) tighten the ELBO
    plain = vae.elbo(X, n_samples=200).nats
    refined = vae.log_likelihood(X, n_samples=200, elbo=True, refine_steps=200).nats
    assert exact.mean() - refined < 0.75 * (exact.mean() - plain)
    assert vae.log_likelihood(X, n_samples=10, refine_steps=200).nats < exact.mean() + 0.01


def test_sampling_draws_from_the_mixture():
    vae = VAE(2, hidden_layer_sizes=(8,), prior="vamp", n_pseudo_inputs=3, epochs=1,
              batch_size=20, early_stopping=False, validation_fraction=0.0,
              random_state=0).fit((blobs(n=40, d=6)[0] > 0.5).astype(np.float32))
    net = vae.module_
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = net.ancestral(200000, g, "cpu").double()
        mu, logvar = (t.double() for t in net.prior_components())
    mean = mu.mean(0)
    var = (logvar.exp() + mu * mu).mean(0) - mean * mean
    np.testing.assert_allclose(z.mean(0).numpy(), mean.numpy(), atol=0.02)
    np.testing.assert_allclose(z.var(0).numpy(), var.numpy(), rtol=0.03)


def test_vamp_trains_saves_and_loads(tmp_path):
    X = (blobs(n=80, d=12)[0] > 0.5).astype(np.float32)
    m = IWAE(2, hidden_layer_sizes=(8,), prior="vamp", n_pseudo_inputs=4,
             n_importance_samples=3, epochs=20, batch_size=20, learning_rate=1e-2,
             early_stopping=False, validation_fraction=0.0, n_eval_samples=16,
             random_state=0).fit(X)
    h = m.history_
    assert h[-1]["loss"] < h[0]["loss"] and h[-1]["kl"] > 0
    u = m.module_.pseudo_inputs.detach().clone()
    assert not torch.allclose(u, torch.full_like(u, 0.05), atol=0.05)  # the u_k were learned
    io.save(m, tmp_path / "m")
    back = io.load(tmp_path / "m")
    torch.testing.assert_close(back.module_.pseudo_inputs, u, rtol=0, atol=0)
    np.testing.assert_array_equal(back.score_samples(X[:5]), m.score_samples(X[:5]))
    np.testing.assert_array_equal(back.sample(3, random_state=1), m.sample(3, random_state=1))
    bad = VAE(2, hidden_layer_sizes=(8,), prior="vamp", n_pseudo_inputs=5)
    bad.n_features_in_, bad.decoder_ = 12, "bernoulli"
    with pytest.raises(RuntimeError):  # a file's u_k must match n_pseudo_inputs
        bad._build_module().load_state_dict(m.module_.state_dict())


def test_vamp_needs_one_stochastic_layer():
    X = (blobs(n=20, d=6)[0] > 0.5).astype(np.float32)
    with pytest.raises(ValueError, match="one stochastic layer"):
        VAE(2, prior="vamp", prior_layers=(2,), epochs=1).fit(X)
    with pytest.raises(ValueError):
        VAE(2, prior="laplace", epochs=1).fit(X)
