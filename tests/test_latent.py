"""The directed latent-variable family: VAE, IWAE, Helmholtz machine (issue 11).

Ground truths: torch's continuous Bernoulli and KL; a linear-Gaussian VAE, whose marginal
p(x) = N(b, W Wᵀ + diag σ²) has a closed form; a tiny Helmholtz machine whose log p(x) is
enumerated over every hidden state. The conformance suite (tests/test_common.py) covers
save/load, the CLI, sklearn checks and bad input for every registered model.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import bars, blobs

from unsup.latent import IWAE, VAE, HelmholtzMachine
from unsup.latent._common import ContinuousBernoulli, binarize
from unsup.latent._vae_net import MIN_UPPER_VAR, gaussian_params
from unsup.registry import get_model
from unsup.train import TrainingDivergedError

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"hidden_layer_sizes": (16,), "batch_size": 32, "early_stopping": False,
         "validation_fraction": 0.0, "random_state": 0, "device": "cpu"}


# -- building blocks ---------------------------------------------------------------------------
def test_continuous_bernoulli_matches_torch():
    a = torch.tensor([-30.0, -3.0, -0.5, -1e-3, 0.0, 2e-3, 0.7, 4.0, 25.0], dtype=torch.float64)
    x = torch.linspace(0, 1, 9, dtype=torch.float64)
    ours = ContinuousBernoulli(a[:, None]).log_prob(x[:, None])  # one feature per row
    ref = torch.distributions.ContinuousBernoulli(logits=a).log_prob(x)
    # torch's own Taylor window is wider (lims=(0.499, 0.501)); compare away from it
    far = a.abs() > 0.01
    np.testing.assert_allclose(ours[far], ref[far], rtol=1e-6)
    m = ContinuousBernoulli(a).mean
    np.testing.assert_allclose(m, torch.distributions.ContinuousBernoulli(logits=a).mean,
                               atol=2e-4)
    # samples: mean within 4 standard errors of the closed form
    a2 = torch.tensor([-4.0, 0.3, 6.0])
    s = ContinuousBernoulli(a2.expand(20000, -1)).sample(torch.Generator().manual_seed(0))
    assert s.min() >= 0 and s.max() <= 1
    np.testing.assert_allclose(s.mean(0), ContinuousBernoulli(a2).mean, atol=4 * 0.3 / 141)


def test_kl_term_is_the_closed_form():
    vae = VAE(2, **SMALL, epochs=1).fit(blobs()[0])
    x = torch.as_tensor(blobs()[0][:5])
    mu, logvar = vae.module_.posterior(x)
    _, _, kl = vae._log_weights(x, torch.zeros(1, 1, 2))
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    np.testing.assert_allclose(kl.detach(), ref.detach(), rtol=1e-5)


# -- likelihoods against exact answers ---------------------------------------------------------
def _linear_gaussian_exact(vae: VAE, X: np.ndarray) -> np.ndarray:
    lin = vae.module_.decoder[0]
    W, b = lin.weight.detach().double(), lin.bias.detach().double()
    s2 = torch.exp(2 * vae.module_.log_scale.detach().double().clamp(min=-7.0))
    C = W @ W.T + torch.diag(s2)
    return torch.distributions.MultivariateNormal(b, C).log_prob(
        torch.as_tensor(X, dtype=torch.float64)).numpy()


def test_vae_importance_sampling_converges_to_the_exact_marginal():
    X = blobs(n=60, d=6)[0] * 4 - 2  # real values: Gaussian decoder
    vae = VAE(2, decoder="gaussian", hidden_layer_sizes=(), batch_size=20, epochs=30,
              early_stopping=False, validation_fraction=0.0, random_state=0).fit(X)
    exact = _linear_gaussian_exact(vae, X).mean()
    elbo = vae.elbo(X, n_samples=2000).nats
    lks = [vae.log_likelihood(X, n_samples=k) for k in (1, 10, 5000)]
    gaps = [exact - lk.nats for lk in lks]
    assert elbo < exact - 0.05  # q is not the exact posterior after a short fit
    assert abs(lks[0].nats - elbo) < 4 * lks[0].stderr  # IS-1 is the ELBO, one draw per row
    assert gaps[0] > gaps[1] > gaps[2] >= -0.02  # IS-k rises towards log p(x) ...
    assert abs(gaps[2]) < 0.02  # ... and reaches it
    lk = vae.log_likelihood(X, n_samples=50)
    assert lk.kind == "stochastic lower bound" and lk.estimator == "IS-50"
    assert lk.support == "continuous" and lk.stderr > 0


def _two_layer_exact(vae: VAE, X: np.ndarray, half_width: float = 9.0, n: int = 241
                     ) -> np.ndarray:
    """log p(x) of a linear two-stochastic-layer VAE: given z2, x is Gaussian (z1 | z2 is
    Gaussian and x | z1 linear-Gaussian), so p(x) = ∫ N(z2; 0, I) N(x; W μ(z2) + b,
    W diag σ²(z2) Wᵀ + diag s²) dz2, integrated over a fine 2-D grid (trapezoid rule); σ²(z2)
    in the model's parametrisation (softplus with a floor, or exp)."""
    net = vae.module_
    lin, down = net.decoder[0], net.down[0][0]
    W, b = lin.weight.detach().double(), lin.bias.detach().double()
    s2 = torch.exp(2 * net.log_scale.detach().double().clamp(min=-7.0))
    g = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    z2 = torch.cartesian_prod(g, g)
    out = z2 @ down.weight.detach().double().T + down.bias.detach().double()
    mu, logvar = gaussian_params(torch.nn.Identity(), out, net.upper_variance)
    C = W @ torch.diag_embed(logvar.exp()) @ W.T + torch.diag(s2)
    px = torch.distributions.MultivariateNormal(mu @ W.T + b, C)
    lp = torch.stack([px.log_prob(x) for x in torch.as_tensor(X, dtype=torch.float64)])
    lp = lp - 0.5 * (z2 * z2).sum(-1) - math.log(2 * math.pi)
    return (torch.logsumexp(lp, 1) + 2 * math.log(float(g[1] - g[0]))).numpy()


def test_two_stochastic_layers_importance_sampling_reaches_the_exact_marginal(tmp_path):
    X = blobs(n=60, d=6)[0] * 4 - 2
    vae = VAE(3, prior_layers=(2,), prior_hidden_layer_sizes=(), decoder="gaussian",
              hidden_layer_sizes=(), batch_size=20, epochs=100, learning_rate=3e-3,
              early_stopping=False, validation_fraction=0.0, random_state=0).fit(X)
    assert [m.in_features for m in (vae.module_.up[0][0], vae.module_.down[0][0])] == [3, 2]
    exact = _two_layer_exact(vae, X).mean()
    np.testing.assert_allclose(exact, _two_layer_exact(vae, X, 12.0, 361).mean(), atol=1e-9)
    elbo = vae.elbo(X, n_samples=2000).nats
    is1, is5000 = (vae.log_likelihood(X, n_samples=k).nats for k in (1, 5000))
    assert elbo < exact - 0.05 and is1 < exact - 0.05  # the ELBO stays below ...
    assert abs(exact - is5000) < 0.01  # ... and IS-k reaches the exact log p(x)
    s = vae.sample(4, random_state=1)  # ancestral: z2 -> z1 -> x
    assert s.shape == (4, 6) and np.isfinite(s).all()
    assert vae.transform(X).shape == (60, 3)
    from unsup import io

    io.save(vae, tmp_path / "m")  # the upper layers travel with the model
    back = io.load(tmp_path / "m")
    np.testing.assert_array_equal(back.score_samples(X[:5]), vae.score_samples(X[:5]))



def test_two_layer_elbo_takes_the_top_kl_in_closed_form():
    """The k = 1 training bound with KL(q(z2|z1) || N(0, I)) in closed form has the mean of the
    fully sampled chain (the IS weight at k = 1) and a smaller variance."""
    X = bars(40)
    m = VAE(3, prior_layers=(2,), **SMALL, epochs=3).fit(X)
    x = torch.as_tensor(X).repeat(500, 1)  # 500 draws per row
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # q(z2 | z1) moved away from N(0, I): μ + 2, σ² ~ 0.08
        last = [t for t in m.module_.up[0].modules() if isinstance(t, torch.nn.Linear)][-1]
        last.bias += torch.tensor([2.0, 2.0, -3.0, -3.0])
        closed = m._bound(x, 1, 1.0, g)[0].double()
        eps = torch.randn((1, x.shape[0], 5), generator=g)
        sampled = m._log_weights(x, eps)[0][0].double()
    se = math.sqrt((closed.var() + sampled.var()) / x.shape[0])
    assert abs(closed.mean() - sampled.mean()) < 4 * se
    within = [v.reshape(500, len(X)).var(0).mean() for v in (closed, sampled)]  # per row
    assert within[0] < 0.9 * within[1]


@pytest.mark.parametrize("variance", ["softplus", "exp"])
def test_upper_layer_variances_and_old_files(tmp_path, monkeypatch, variance):
    """softplus: σ² of q(z2|z1) and p(z1|z2) is 1 + 10⁻³ at a = 0, never below 10⁻³; exp (the old
    parametrisation, log σ² = a clamped at -16) is what a file without the parameter gets."""
    from unsup import io

    net = torch.nn.Identity()
    a = torch.tensor([[0.0, 0.0], [0.0, -50.0]])  # (μ, a) pairs
    lv = gaussian_params(net, a, variance)[1]
    assert lv[0].item() == pytest.approx(math.log(1 + MIN_UPPER_VAR) if variance == "softplus"
                                         else 0.0, abs=1e-6)
    assert lv[1].item() == pytest.approx(math.log(MIN_UPPER_VAR) if variance == "softplus"
                                         else -16.0, abs=1e-4)
    X = bars(40)
    m = VAE(3, prior_layers=(2,), prior_layer_variance=variance, **SMALL, epochs=2).fit(X)
    assert m.module_.upper_variance == variance
    if variance == "exp":  # written as before the parameter existed
        get = VAE.get_params
        monkeypatch.setattr(VAE, "get_params", lambda self, deep=True: {
            k: v for k, v in get(self, deep).items() if k != "prior_layer_variance"})
    io.save(m, tmp_path / "m")
    monkeypatch.undo()
    back = io.load(tmp_path / "m")
    assert back.prior_layer_variance == variance
    np.testing.assert_array_equal(back.score_samples(X[:5]), m.score_samples(X[:5]))


def _helmholtz_exact(hm: HelmholtzMachine, X: np.ndarray) -> np.ndarray:
    net, x = hm.module_, torch.as_tensor(X, dtype=torch.float32)
    sizes = hm._sizes()
    grids = [torch.tensor(list(itertools.product([0.0, 1.0], repeat=s))) for s in sizes]
    terms = []
    for combo in itertools.product(*[range(len(g)) for g in grids]):
        states = [grids[i][c].expand(len(X), -1) for i, c in enumerate(combo)]
        terms.append(net.log_joint(x, states))
    return torch.logsumexp(torch.stack(terms), 0).double().detach().numpy()


@pytest.mark.parametrize("method", ["wake-sleep", "reweighted"])
def test_helmholtz_importance_sampling_converges_to_enumeration(method):
    X = bars(80)
    hm = HelmholtzMachine((3, 2), method=method, epochs=30, batch_size=20, early_stopping=False,
                          validation_fraction=0.0, random_state=0).fit(X)
    exact = _helmholtz_exact(hm, X).mean()
    elbo = hm.elbo(X, n_samples=2000).nats
    is_small, is_big = (hm.log_likelihood(X, n_samples=k).nats for k in (3, 20000))
    assert elbo < is_small < is_big <= exact + 0.02
    assert exact - is_big < 0.02
    assert hm.log_likelihood(X, n_samples=7).support == "discrete"


def test_refined_proposal_tightens_the_bound_towards_the_exact_marginal():
    X = blobs(n=60, d=6)[0] * 4 - 2
    vae = VAE(2, decoder="gaussian", hidden_layer_sizes=(), batch_size=20, epochs=5,
              input_dropout=0.0, early_stopping=False, validation_fraction=0.0,
              random_state=0).fit(X)
    exact = _linear_gaussian_exact(vae, X)
    plain = vae.elbo(X, n_samples=200).per_sample
    refined = vae.log_likelihood(X, n_samples=200, elbo=True, refine_steps=300)
    # a 5-epoch encoder is a poor proposal; refined on the IS-10 bound, q moves towards the
    # posterior (a full-covariance Gaussian here, so no diagonal q makes the ELBO exact)
    assert (exact - plain).mean() > 1.0
    assert (exact - refined.per_sample).mean() < 0.5 * (exact - plain).mean()
    assert refined.estimator == "ELBO (200 draws), proposal refined (300 steps)"
    lk = vae.log_likelihood(X, n_samples=10, refine_steps=300)
    assert lk.estimator == "IS-10, proposal refined (300 steps)"
    assert exact.mean() - vae.log_likelihood(X, 10).nats > 0.04
    assert -0.005 < exact.mean() - lk.nats < 0.01  # still below log p(x), and close to it
    np.testing.assert_allclose(vae.log_likelihood(X[7:19], 10, refine_steps=300).per_sample,
                               lk.per_sample[7:19], rtol=1e-5)  # a row's proposal is its own
    with pytest.raises(ValueError, match="refine_steps"):
        vae.log_likelihood(X, 10, refine_steps=-1)


def test_measuring_is_repeatable_and_row_independent():
    X = bars(60)
    for m in (VAE(2, **SMALL, epochs=2, n_eval_samples=16).fit(X),
              HelmholtzMachine((4,), epochs=2, random_state=0, n_eval_samples=16).fit(X)):
        full = m.score_samples(X)
        np.testing.assert_array_equal(full, m.score_samples(X))
        np.testing.assert_allclose(m.score_samples(X[::-1][:10]), full[::-1][:10], rtol=1e-5)


# -- training ----------------------------------------------------------------------------------
def test_iwae_with_one_sample_is_the_vae():
    X = bars(64)
    a = VAE(2, **SMALL, epochs=3).fit(X)
    b = IWAE(2, **SMALL, epochs=3, n_importance_samples=1).fit(X)
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    for (ka, va), (kb, vb) in zip(sa.items(), sb.items(), strict=True):
        assert ka == kb
        torch.testing.assert_close(va, vb, rtol=0, atol=0)


def test_iwae_bound_is_tighter_than_the_elbo():
    X = bars(64)
    m = IWAE(2, **SMALL, epochs=5).fit(X)
    x = torch.as_tensor(X)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        b1 = np.mean([m._bound(x, 1, 1.0, g)[0].mean().item() for _ in range(200)])
        b20 = np.mean([m._bound(x, 20, 1.0, g)[0].mean().item() for _ in range(20)])
    assert b20 > b1 + 0.05


def test_beta_trades_kl_for_reconstruction_and_warms_up():
    X = bars(120)
    kl = {b: VAE(4, **SMALL, epochs=40, beta=b).fit(X).history_[-1]["kl"] for b in (0.2, 4.0)}
    assert kl[0.2] > 2 * kl[4.0]
    m = VAE(2, **SMALL, epochs=1, beta=2.0, kl_warmup_steps=10).fit(X)
    m._step = 0
    assert m._beta_now() == pytest.approx(0.2)
    m._step = 50
    assert m._beta_now() == 2.0


@pytest.mark.parametrize("method", ["wake-sleep", "reweighted"])
def test_helmholtz_training_raises_the_likelihood(method):
    X = bars(120)
    kw = {"batch_size": 10, "random_state": 0, "early_stopping": False,
          "validation_fraction": 0.0}
    before = HelmholtzMachine((8,), method=method, epochs=1, max_steps=1, **kw).fit(X)
    after = HelmholtzMachine((8,), method=method, epochs=60, learning_rate=3e-2, **kw).fit(X)
    lb, la = before.log_likelihood(X, 200).nats, after.log_likelihood(X, 200).nats
    assert la > lb + 2.0
    assert {"loss_wake"} <= set(after.history_[-1])
    if method == "reweighted":  # Bornschein & Bengio: reweighting learns a better model
        ws = HelmholtzMachine((8,), method="wake-sleep", epochs=60, learning_rate=3e-2,
                              **kw).fit(X)
        assert la > ws.log_likelihood(X, 200).nats + 1.0


def test_vae_learns_and_records_curves():
    X = bars(120)
    m = VAE(2, **SMALL, epochs=60, learning_rate=1e-2).fit(X)
    h = m.history_
    assert {"recon", "kl", "loss"} <= set(h[-1]) and h[-1]["loss"] < h[0]["loss"] - 1
    assert m.decoder_ == "bernoulli"
    assert m.score(X) > VAE(2, **SMALL, epochs=1, max_steps=1).fit(X).score(X) + 1
    s = m.sample(5, random_state=3)
    assert set(np.unique(s)) <= {0.0, 1.0}
    np.testing.assert_array_equal(s, m.sample(5, random_state=3))


def test_dropout_noise_only_while_training_and_repeatable():
    X = bars(64)
    kw = {**SMALL, "epochs": 2, "dropout": 0.2}
    a, b = (VAE(2, **kw, input_dropout=0.3).fit(X) for _ in range(2))
    for va, vb in zip(a.module_.state_dict().values(), b.module_.state_dict().values(),
                      strict=True):  # the noise comes from the fit's seed
        torch.testing.assert_close(va, vb, rtol=0, atol=0)
    c = VAE(2, **kw, input_dropout=0.0).fit(X)
    assert not torch.equal(a.module_.encoder[0].weight, c.module_.encoder[0].weight)
    assert sum(isinstance(mod, torch.nn.Dropout) for mod in a.module_.decoder) == 1
    np.testing.assert_array_equal(a.transform(X), a.transform(X))  # eval mode: no noise
    np.testing.assert_array_equal(a.score_samples(X), a.score_samples(X))


def test_decoder_follows_the_data_and_binarize():
    Xg = blobs()[0]
    assert VAE(2, **SMALL, epochs=1).fit(Xg).decoder_ == "continuous_bernoulli"
    assert VAE(2, **SMALL, epochs=1).fit(Xg * 3 - 1).decoder_ == "gaussian"
    m = VAE(2, **SMALL, epochs=1, binarize_input=0.5, n_eval_samples=4).fit(Xg)
    lk = m.log_likelihood(Xg)
    assert m.decoder_ == "bernoulli" and lk.support == "discrete"
    assert lk.transform == "binarised at 0.5"
    np.testing.assert_allclose(m.score_samples(Xg), m.score_samples((Xg > 0.5) * 1.0))


def test_dynamic_binarization_redraws_every_batch_with_the_grey_levels_as_mean():
    levels = torch.tensor([0.1, 0.3, 0.5, 0.8, 0.95])
    x = levels.repeat(400, 1)
    g = torch.Generator().manual_seed(0)
    a, b = binarize(x, "stochastic", g), binarize(x, "stochastic", g)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)  # fresh draws
    draws = torch.stack([binarize(x, "stochastic", g) for _ in range(25)])  # 10,000 per level
    np.testing.assert_allclose(draws.mean((0, 1)), levels, atol=4 * 0.5 / 100)
    assert torch.equal(binarize(x, "stochastic"), (x > 0.5).float())  # no generator: 0.5
    # a fit trains on the draws: p(x | z) learns the grey levels, where thresholding gives 0/1
    X = x.numpy()
    kw = {**SMALL, "hidden_layer_sizes": (), "input_dropout": 0.0, "epochs": 40,
          "learning_rate": 0.05, "n_eval_samples": 4}
    dyn = VAE(1, binarize_input="stochastic", **kw).fit(X)
    thr = VAE(1, binarize_input=0.5, **kw).fit(X)
    np.testing.assert_allclose(dyn.inverse_transform(np.zeros((1, 1)))[0], levels, atol=0.06)
    assert (np.abs(thr.inverse_transform(np.zeros((1, 1)))[0] - (levels > 0.5).numpy())
            < 0.06).all()
    assert dyn.decoder_ == thr.decoder_ == "bernoulli"
    with pytest.raises(ValueError, match="stochastic"):
        VAE(1, binarize_input="stochastic", **kw).fit(X * 2)


def test_conv_vae_runs_on_images():
    X = bars(40)
    m = VAE(2, architecture="conv", conv_channels=(4,), image_shape=(4, 4), epochs=2,
            batch_size=20, early_stopping=False, validation_fraction=0.0, random_state=0,
            n_eval_samples=4).fit(X)
    assert m.transform(X).shape == (40, 2) and m.inverse_transform(np.zeros((3, 2))).shape == (
        3, 16)
    assert np.isfinite(m.score_samples(X)).all()


# -- bad input ---------------------------------------------------------------------------------
def test_bernoulli_decoder_refuses_data_outside_unit_interval():
    with pytest.raises(ValueError, match=r"decoder='bernoulli' needs data in \[0, 1\]"):
        VAE(2, **SMALL, decoder="bernoulli").fit(blobs()[0] * 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        HelmholtzMachine((3,), binarize_input=None).fit(blobs()[0] - 0.5)


@pytest.mark.parametrize("cls,kw", [(VAE, {"n_components": 0}),
                                    (HelmholtzMachine, {"layer_sizes": (0,)})])
def test_latent_size_zero_is_refused(cls, kw):
    with pytest.raises(ValueError, match=r"n_components|layer_sizes"):
        cls(**kw, epochs=1).fit(bars())


def test_nan_loss_stops_naming_the_step(tmp_path):
    X = blobs()[0] * 1e20  # squared errors overflow float32: an infinite loss
    X[:60] = 0.0
    with pytest.raises(TrainingDivergedError, match=r"at step \d+ \(epoch 1\)"):
        VAE(2, **{**SMALL, "batch_size": 60}, decoder="gaussian", decoder_scale=1.0,
            checkpoint_dir=str(tmp_path), checkpoint_every=1, epochs=1).fit(X)


def test_registered_with_a_demo_beside_the_rbm():
    spec = get_model("vae")
    assert spec.cls is VAE and spec.family == "latent"
    assert spec.demo is not None and spec.demo.params["binarize_input"] == \
        get_model("rbm").demo.params["binarize_input"]
    assert get_model("iwae").cls is IWAE and get_model("wake-sleep").cls is HelmholtzMachine


def test_report_sections_draw(tmp_path):
    from unsup.report import model_report

    X = bars(60)
    m = VAE(2, **SMALL, epochs=2, n_eval_samples=4).fit(X)
    html = model_report(m, X, image_shape=(4, 4)).to_html()
    for title in ("Samples from the prior", "Latent manifold", "Interpolations",
                  "Latent traversals", "ELBO, KL and reconstruction"):
        assert title in html
    hm = HelmholtzMachine((4,), epochs=2, random_state=0, n_eval_samples=4).fit(X)
    assert "Wake-sleep losses" in model_report(hm, X, image_shape=(4, 4)).to_html()
    assert math.isfinite(m.score(X))
