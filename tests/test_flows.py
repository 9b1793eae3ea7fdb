"""Normalizing flows (RealNVP, Glow): exact densities, invertibility, log-determinants, each
layer alone, dequantisation, sampling, guards and persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_moons

import unsup
from unsup.flows import Glow, RealNVP
from unsup.flows._layers import (
    ActNorm,
    AffineCoupling,
    Flow,
    InvConv1x1,
    NonFiniteFlowError,
    Split,
    Squeeze,
    checkerboard,
    conv_net,
    mlp_net,
)
from unsup.flows._report import density_grid
from unsup.likelihood import likelihood_of

pytestmark = pytest.mark.usefixtures("one_thread")
FLOWS = [RealNVP, Glow]


def _moons(n: int = 400) -> np.ndarray:
    return make_moons(n, noise=0.08, random_state=0)[0].astype(np.float32)


def _eight_bit(n: int = 96, side: int = 8, seed: int = 0) -> np.ndarray:
    """Bars on side x side images, grey levels k / 255 (8-bit data as mnist5k ships it)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, side, side))
    for i in range(n):
        X[i, :, rng.integers(0, side)] = 1.0
        X[i, rng.integers(0, side), :] = 0.6
    X = np.round(np.clip(X + rng.normal(0, 0.1, X.shape), 0, 1) * 255) / 255
    return X.reshape(n, -1).astype(np.float32)


def _randomise(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Non-trivial parameters everywhere (zero-initialised layers start as the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    for m in module.modules():
        if isinstance(m, ActNorm):
            m.initialized.fill_(1)


@pytest.fixture(scope="module")
def moons_models():
    X = _moons()
    return X, {cls: cls(n_steps=6, hidden_layer_sizes=(32, 32), epochs=40, batch_size=100,
                        learning_rate=3e-3, random_state=0).fit(X) for cls in FLOWS}


# -- densities ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", FLOWS)
def test_trained_density_integrates_to_one_on_a_grid(moons_models, cls):
    X, models = moons_models
    xs, ys, dens, mass = density_grid(models[cls], X, n=260, margin=0.6)
    assert mass == pytest.approx(1.0, abs=0.02)
    # and it learned the moons: far better than a Gaussian fitted to the same data
    gauss = -0.5 * np.linalg.slogdet(2 * np.pi * np.e * np.cov(X.T))[1]
    assert models[cls].score(X) > gauss + 0.5


@pytest.mark.parametrize("cls", FLOWS)
def test_random_flow_density_integrates_to_one(cls):
    X = _moons(200)
    m = cls(n_steps=4, hidden_layer_sizes=(16,), epochs=1, max_steps=1, random_state=1).fit(X)
    _randomise(m.module_, seed=3, scale=0.2)
    assert density_grid(m, X, n=260, margin=1.5)[3] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", ["rings", "gmm2d"])
def test_shipped_toy_densities(name):
    """The 2-D data sets of unsup/data/synthetic.py: a proper density that beats one Gaussian."""
    from unsup.data import load

    X = load(name).X[:600]
    m = RealNVP(n_steps=6, hidden_layer_sizes=(32, 32), epochs=30, batch_size=100,
                learning_rate=3e-3, random_state=0).fit(X)
    assert density_grid(m, X, n=200, margin=0.5)[3] == pytest.approx(1.0, abs=0.03)
    gauss = -0.5 * np.linalg.slogdet(2 * np.pi * np.e * np.cov(X.T))[1]
    assert m.score(X) > gauss + 0.2


def test_vector_likelihood_is_exact_and_continuous(moons_models):
    X, models = moons_models
    lk = likelihood_of(models[Glow], X)
    assert lk.kind == "exact" and lk.support == "continuous" and lk.bits_per_dim is None
    np.testing.assert_allclose(lk.per_sample, models[Glow].score_samples(X))
    # subset- and order-invariant
    np.testing.assert_allclose(models[Glow].score_samples(X[::-1][:7]),
                               models[Glow].score_samples(X)[::-1][:7], rtol=1e-5)


# -- invertibility and log-determinants ------------------------------------------------------
def _chain(cls: type, X: np.ndarray, scale: float = 0.3, **kw) -> Flow:
    m = cls(epochs=1, max_steps=1, random_state=0, **kw).fit(X)
    _randomise(m.module_, scale=scale)  # moderate: an extreme coupling scale is ill-conditioned
    return m.module_.eval()


def _round_trip(flow: Flow, x: torch.Tensor) -> torch.Tensor:
    """f^{-1}(f(x)) keeping every split's factored-out half."""
    h, parts = flow._image(x), []
    for m in flow.layers:
        if isinstance(m, Split):
            parts.append(h[:, h.shape[1] - m.n_out:])
        h = m(h)[0]
    for m in reversed(flow.layers):
        h = torch.cat([h, parts.pop()], 1) if isinstance(m, Split) else m.inverse(h)
    return h.reshape(len(x), -1)


@pytest.mark.parametrize("cls", FLOWS)
@pytest.mark.parametrize("data", ["vector", "image"])
def test_inverse_of_forward_is_identity(cls, data):
    if data == "vector":
        X = _moons(64)
        flow = _chain(cls, X, n_steps=3, hidden_layer_sizes=(8,))
    else:
        X = _eight_bit(64)
        flow = _chain(cls, X, scale=0.05, n_levels=2, n_steps=2, hidden_channels=8)
        assert any(isinstance(m, Split) for m in flow.layers)
    x = torch.tensor(X[:16], dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(_round_trip(flow.double(), x).numpy(), x.numpy(),
                                   atol=1e-9)


@pytest.mark.parametrize("cls", FLOWS)
@pytest.mark.parametrize("data", ["vector", "image"])
def test_log_det_matches_autograd_jacobian(cls, data):
    if data == "vector":
        X = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
        flow = _chain(cls, X, n_steps=3, hidden_layer_sizes=(8,))
    else:  # 4x4 images, one level (no split): a 16 x 16 Jacobian
        X = _eight_bit(32, side=4)
        flow = _chain(cls, X, n_levels=1, n_steps=2, hidden_channels=4)
    flow = flow.double()
    for x in torch.tensor(X[:3], dtype=torch.float64):
        J = torch.autograd.functional.jacobian(lambda v: flow.to_latent(v[None])[0][0], x)
        _, logabsdet = torch.linalg.slogdet(J)
        assert flow.to_latent(x[None])[1].item() == pytest.approx(logabsdet.item(), abs=1e-6)


# -- each layer alone -------------------------------------------------------------------------
def test_actnorm_data_dependent_init_then_fixed():
    x = torch.randn(256, 3, 4, 4) * torch.tensor([1.0, 5.0, 0.2]).view(1, 3, 1, 1) + 2.0
    a = ActNorm(3).train()
    y, ld = a(x)
    np.testing.assert_allclose(y.mean((0, 2, 3)).detach().numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(y.std((0, 2, 3), unbiased=False).detach().numpy(), 1, atol=1e-4)
    assert ld[0].item() == pytest.approx(16 * a.log_scale.sum().item())
    assert int(a.initialized) == 1
    y2, _ = a(x * 3)  # initialised once: a second batch does not re-initialise
    np.testing.assert_allclose(y2.detach().numpy(), 3 * y.detach().numpy()
                               - 2 * a.loc.detach().numpy().reshape(1, 3, 1, 1)
                               * a.log_scale.exp().detach().numpy().reshape(1, 3, 1, 1),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a.inverse(y).detach().numpy(), x.numpy(), atol=1e-4)
    assert int(ActNorm(3).eval().initialized) == 0  # eval never initialises


def test_glow_steps_together_equal_the_layers_one_by_one(monkeypatch):
    """The fused evaluation of Glow's steps (actnorm folded into the 1x1 convolution, the
    level's LU weights batched) gives the layers' log-density and gradients, in training and
    in evaluation, and is the path log_prob takes once the ActNorms are initialised."""
    import unsup.flows._glow_steps as gs

    X = _eight_bit(64)
    flow = Glow(epochs=1, max_steps=1, random_state=0, n_levels=2, n_steps=3,
                hidden_channels=8).fit(X).module_
    _randomise(flow, scale=0.3)  # every coupling, actnorm and LU factor away from identity
    flow = flow.double()
    assert flow._runs == {1: 10, 12: 21}  # [squeeze, 3 steps, split], [squeeze, 3 steps]
    calls = []
    real = gs.glow_run
    monkeypatch.setattr(gs, "glow_run", lambda h, steps: calls.append(len(steps)) or real(h, steps))
    x = torch.tensor(X[:16], dtype=torch.float64) + torch.rand(16, 64, dtype=torch.float64) / 256
    for training in (True, False):
        flow.train(training)
        out = {}
        for fuse in (True, False):
            flow.fuse_steps = fuse
            flow.zero_grad()
            lp = flow.log_prob(x - 0.5)
            lp.sum().backward()
            out[fuse] = lp.detach(), [p.grad.clone() for p in flow.parameters()]
        np.testing.assert_allclose(out[True][0].numpy(), out[False][0].numpy(), rtol=1e-11)
        for a, b in zip(out[True][1], out[False][1], strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10 * float(b.abs().max()))
    assert calls == [3, 3, 3, 3]  # two runs, once per mode, only when fusing
    fresh = Glow(epochs=1, max_steps=1, random_state=0, n_levels=2, n_steps=3,
                 hidden_channels=8).fit(X).module_
    fresh.load_state_dict(flow.float().state_dict())
    for m in fresh.modules():  # a model before its first batch: its ActNorms must initialise
        if isinstance(m, ActNorm):
            m.initialized.fill_(0)
            m._done = False
    calls.clear()
    fresh.train().log_prob(torch.tensor(X[:16]) - 0.5)
    assert calls == [] and all(int(m.initialized) == 1 for m in fresh.modules()
                               if isinstance(m, ActNorm))
    fresh.log_prob(torch.tensor(X[:16]) - 0.5)
    assert calls == [3, 3]


def test_glow_steps_under_autocast_run_in_float32():
    """Under autocast (CUDA's amp, here the CPU's bf16) the fused steps leave it and run in
    float32: no dtype clash in their written-out backward (convolution_backward refused bf16
    activations beside float32 gradients), the fused log-density and gradients are those
    without autocast, and ``amp="auto"`` means no autocast for a flow."""
    X = _eight_bit(64)
    est = Glow(epochs=1, max_steps=1, random_state=0, n_levels=1, n_steps=2,
               hidden_channels=8).fit(X)
    flow = est.module_
    assert flow._runs
    x = torch.tensor(X[:16]) + torch.rand(16, 64, generator=torch.Generator().manual_seed(0)) / 256
    out = []
    for amp in (False, True):
        flow.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            lp = flow.log_prob(x - 0.5)
        lp.sum().backward()
        out.append((lp.detach(), [p.grad.clone() for p in flow.parameters()]))
    # the layers before the first run (squeeze only) have no bf16 products: equal to rounding
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-5, atol=1e-4)
    for a, b in zip(out[1][1], out[0][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    assert est._train_config().amp == "off"
    assert est.set_params(amp="bf16")._train_config().amp == "bf16"


def test_glow_step_backward_is_the_gradient_of_its_forward():
    """The written-out backward of one Glow step (mixing, the conv net, the sigmoid
    coupling, the running log-determinant) against finite differences, float64."""
    from unsup.flows._glow_steps import _Step

    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return (0.5 * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()

    n, h, w, c, hid = 2, 3, 2, 4, 3
    args = (r(n * h * w, c), r(n), r(c, c), r(c), r(hid, c // 2, 3, 3), r(hid), r(hid, hid, 1, 1),
            r(hid), r(c, hid, 3, 3), r(c))
    assert torch.autograd.gradcheck(lambda *a: _Step.apply(*a, (n, h, w)), args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_im2col_and_col2im_are_unfold_and_fold(dtype):
    """The compiled 3x3 im2col / col2im on channels-last rows equal torch's unfold / fold
    (rearranged), on images down to 1 x 1 and 1 x 3, and are each other's adjoint."""
    from unsup.flows._im2col import available, col2im3x3, im2col3x3

    g = torch.Generator().manual_seed(0)
    for n, H, W, C in [(3, 5, 4, 2), (2, 3, 2, 4), (2, 1, 1, 3), (1, 1, 3, 8), (2, 4, 1, 1)]:
        x = torch.randn(n, H, W, C, generator=g, dtype=dtype)
        assert available(x)
        cols = im2col3x3(x)  # (n H W) x (tap, channel)
        ref = F.unfold(x.permute(0, 3, 1, 2), 3, padding=1).view(n, C, 9, H, W)
        torch.testing.assert_close(cols, ref.permute(0, 3, 4, 2, 1).reshape(-1, 9 * C),
                                   rtol=0, atol=0)
        P = torch.randn(n * H * W, 9 * C, generator=g, dtype=dtype)
        back = col2im3x3(P, (n, H, W))
        ref = F.fold(P.view(n, H * W, 9, C).permute(0, 3, 2, 1).reshape(n, 9 * C, H * W),
                     (H, W), 3, padding=1)
        torch.testing.assert_close(back, ref.permute(0, 2, 3, 1).reshape(-1, C))
        torch.testing.assert_close((cols * P).sum(), (x.reshape(-1, C) * back).sum())


def test_glow_backward_products_equal_onednn(monkeypatch):
    """The written-out backward with the 3x3 pieces as products over im2col rows (the last
    convolution's two gradients, the first one's input gradient) gives oneDNN's gradients,
    and is the path a CPU fit takes."""
    import unsup.flows._glow_steps as gs

    X = _eight_bit(64)
    flow = Glow(epochs=1, max_steps=1, random_state=0, n_levels=2, n_steps=2,
                hidden_channels=8).fit(X).module_
    _randomise(flow, scale=0.3)
    calls = []
    for name in ("im2col3x3", "col2im3x3"):
        real = getattr(gs, name)
        monkeypatch.setattr(gs, name, lambda *a, _f=real, _n=name: calls.append(_n) or _f(*a))
    x = torch.tensor(X[:16]) + torch.rand(16, 64, generator=torch.Generator().manual_seed(1)) / 256
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        flow = flow.to(dtype)
        out = {}
        for fast in (True, False):
            monkeypatch.setattr(gs, "FAST_3X3", fast)
            calls.clear()
            flow.zero_grad()
            flow.log_prob(x.to(dtype) - 0.5).sum().backward()
            out[fast] = [p.grad.clone() for p in flow.parameters()], len(calls)
        assert out[True][1] == 8 and out[False][1] == 0  # 4 steps, one of each per step
        for a, b in zip(out[True][0], out[False][0], strict=True):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * float(b.abs().max()))
    # 3 colour channels: 12 per step, past gs.SMALL_CHANNELS on the last convolution's side
    # (oneDNN's), 6 on the first one's input side (the product)
    X3 = np.concatenate([_eight_bit(32), _eight_bit(32, seed=1), _eight_bit(32, seed=2)], 1)
    flow = Glow(epochs=1, max_steps=1, random_state=0, n_levels=1, n_steps=2, hidden_channels=8,
                image_shape=(3, 8, 8)).fit(X3).module_
    monkeypatch.setattr(gs, "FAST_3X3", True)
    calls.clear()
    flow.log_prob(torch.tensor(X3[:8]) - 0.5).sum().backward()
    assert calls == ["col2im3x3", "col2im3x3"]


def test_glow_steps_with_another_coupling_network_run_layer_by_layer():
    """A step whose coupling network is not Glow's conv net is no part of a fused run, and a
    run whose network changed after the flow was built falls back to its layers: still equal
    to the layers one by one."""
    from unsup.flows._glow_steps import _glow_net, glow_runs

    X = _eight_bit(64)
    flow = Glow(epochs=1, max_steps=1, random_state=0, n_levels=1, n_steps=2,
                hidden_channels=4).fit(X).module_.double()
    assert _glow_net(flow.layers[3].net) is not None
    flow.layers[3].net[1] = torch.nn.Tanh()  # no longer conv_net's pattern
    assert _glow_net(flow.layers[3].net) is None
    assert flow._runs == {1: 7} and glow_runs(list(flow.layers)) == [(4, 7)]
    _randomise(flow, scale=0.3)
    x = torch.tensor(X[:8], dtype=torch.float64) + torch.rand(8, 64, dtype=torch.float64) / 256
    out = []
    for fuse in (True, False):
        flow.fuse_steps = fuse
        flow.zero_grad()
        lp = flow.log_prob(x - 0.5)
        lp.sum().backward()
        out.append((lp.detach(), [p.grad.clone() for p in flow.parameters()]))
    np.testing.assert_allclose(out[0][0].numpy(), out[1][0].numpy(), rtol=1e-11)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10 * float(b.abs().max()))


def test_invconv_lu_weight_logdet_inverse_and_cache():
    torch.manual_seed(0)
    c = InvConv1x1(6)
    w = c._weight()
    L = torch.tril(c.lower, -1) + torch.eye(6)
    U = torch.triu(c.upper, 1) + torch.diag(c.sign_s * c.log_s.exp())
    torch.testing.assert_close(w, c.perm @ L @ U)
    x = torch.randn(5, 6, 3, 2)
    y, ld = c(x)
    assert ld[0].item() == pytest.approx(6 * torch.linalg.slogdet(w)[1].item(), abs=1e-4)
    torch.testing.assert_close(y, torch.einsum("oc,nchw->nohw", w, x), rtol=1e-5, atol=1e-5)
    c.eval()
    with torch.no_grad():
        torch.testing.assert_close(c.inverse(c(x)[0]), x, rtol=1e-4, atol=1e-4)
        w1, w2 = c.weights()[0], c.weights()[0]
        assert w1 is w2  # cached in eval without gradients
        c.log_s.add_(0.1)  # a changed parameter invalidates the cache
        assert not torch.equal(c.weights()[0], w1)
    with torch.enable_grad():
        assert c.weights()[1] is None and c.weights()[0].requires_grad  # training: no cache


@pytest.mark.parametrize("kind", ["checkerboard", "channel", "vector"])
def test_coupling_alone(kind):
    torch.manual_seed(0)
    if kind == "checkerboard":
        cp = AffineCoupling(conv_net(3, 4, 8), checkerboard(2, 4, 4, 1), n_out=2,
                            mask_input=True)
        x = torch.randn(3, 2, 4, 4)
    elif kind == "channel":
        cp = AffineCoupling(conv_net(2, 4, 8), scale="sigmoid")
        x = torch.randn(3, 4, 4, 4)
    else:
        cp = AffineCoupling(mlp_net(5, 10, (8,)), (torch.arange(5) % 2 == 0).float()[None],
                            n_out=5)
        x = torch.randn(3, 5)
    if kind != "channel":  # zero-initialised conditioner: the identity at the start
        y0, ld0 = cp(x)
        torch.testing.assert_close(y0, x)
        assert torch.all(ld0 == 0)
    _randomise(cp)
    y, ld = cp(x)
    if kind == "checkerboard":  # the pixels of the mask pass through unchanged
        m = checkerboard(2, 4, 4, 1).bool().expand_as(x)
        torch.testing.assert_close(y[m], x[m])
    elif kind == "channel":
        torch.testing.assert_close(y[:, :2], x[:, :2])
    torch.testing.assert_close(cp.inverse(y), x, rtol=1e-4, atol=1e-5)
    J = torch.autograd.functional.jacobian(lambda v: cp(v[None])[0][0].flatten(), x[0])
    assert ld[0].item() == pytest.approx(torch.linalg.slogdet(J.reshape(x[0].numel(), -1))[1]
                                         .item(), abs=1e-4)


@pytest.mark.parametrize("conditional", [False, True])
def test_split_learned_priors(conditional):
    torch.manual_seed(0)
    sp = Split(4, learned_prior=True, size=(3, 3), conditional=conditional)
    assert (sp.prior is not None) == conditional
    _randomise(sp)
    x = torch.randn(6, 4, 3, 3)
    keep, lp = sp(x)
    torch.testing.assert_close(keep, x[:, :2])
    h = sp.offset[None] if not conditional else sp.prior(keep) + sp.offset
    mean, log_scale = h[:, :2], h[:, 2:]
    ref = torch.distributions.Normal(mean, log_scale.exp()).log_prob(x[:, 2:]).flatten(1).sum(1)
    torch.testing.assert_close(lp, ref, rtol=1e-5, atol=1e-4)
    x2 = x.clone()
    x2[:, :2] += 1.0  # the position prior does not read the kept half; the conditional one does
    changed = not torch.allclose(sp(x2)[1], lp)
    assert changed == conditional
    with torch.no_grad():  # temperature 0: the prior's mean
        torch.testing.assert_close(sp.inverse(keep, temperature=0.0)[:, 2:],
                                   mean.expand(6, -1, -1, -1))
    assert not hasattr(Split(4, learned_prior=False), "offset")


def test_squeeze_is_a_permutation():
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)
    y, ld = Squeeze()(x)
    assert y.shape == (1, 8, 2, 3) and ld.item() == 0
    assert sorted(y.flatten().tolist()) == x.flatten().tolist()
    torch.testing.assert_close(Squeeze().inverse(y), x)


# -- 8-bit images, dequantisation, the image / vector rule ------------------------------------
def test_image_vector_rule():
    m = RealNVP(epochs=1, max_steps=1, n_levels=3, n_steps=1, hidden_channels=4,
                random_state=0)
    assert m.fit(_eight_bit(32)).image_shape_ == [1, 8, 8] and m.dequantize_ == "unit"
    assert m.n_levels_ == 3  # 8 -> 4 -> 2 -> 1
    assert m.fit(_eight_bit(32) * 255).dequantize_ == "bytes"
    assert m.fit(_moons(32)).image_shape_ == [] and m.dequantize_ == "none"
    cont = _eight_bit(32) + 1e-3  # continuous values on an image-sized row: vectors
    assert m.fit(cont).image_shape_ == [] and m.dequantize_ == "none"
    assert m.set_params(image_shape="flat").fit(_eight_bit(32)).image_shape_ == []
    assert m.set_params(image_shape=(2, 4, 8)).fit(_eight_bit(32)).image_shape_ == [2, 4, 8]
    with pytest.raises(ValueError, match="even"):
        m.set_params(image_shape=(1, 7, 7)).fit(np.zeros((4, 49), np.float32))
    with pytest.raises(ValueError, match="8-bit"):
        m.set_params(image_shape=None, dequantize="uniform").fit(_moons(32))
    m.set_params(dequantize="none").fit(_eight_bit(32))
    assert m.dequantize_ == "none" and m.image_shape_ == []


@pytest.mark.parametrize("cls", FLOWS)
def test_eight_bit_likelihood_bound_and_samples(cls):
    X = _eight_bit(96)
    m = cls(n_levels=2, n_steps=2, hidden_channels=8, epochs=12, batch_size=32,
            learning_rate=1e-2, random_state=0).fit(X)
    lk = m.log_likelihood(X)
    assert lk.kind == "stochastic lower bound" and lk.support == "discrete"
    assert "dequantised" in lk.transform and lk.n_dims == 64
    assert lk.bits_per_dim == pytest.approx(-lk.nats / (64 * math.log(2)))
    assert 0 < lk.bits_per_dim < 7.6  # below the uniform code's 8 bits
    assert m.history_[0]["loss"] - m.history_[-1]["loss"] > 0.5 * math.log(2)  # learning
    # the training loss is the same bound per dimension (nats)
    assert m.history_[-1]["loss"] / math.log(2) == pytest.approx(lk.bits_per_dim, abs=0.5)
    np.testing.assert_array_equal(m.score_samples(X), lk.per_sample)  # repeatable
    # more dequantisation draws: log-mean-exp of k draws is at least their mean
    k4 = m.log_likelihood(X, n_samples=4)
    assert k4.nats >= m.log_likelihood(X).nats - 0.5
    S = m.sample(6, random_state=3)
    assert S.shape == (6, 64) and S.min() >= 0 and S.max() <= 1
    np.testing.assert_allclose(S * 255, np.round(S * 255), atol=1e-4)  # 8-bit levels
    np.testing.assert_array_equal(S, m.sample(6, random_state=3))
    assert not np.array_equal(S, m.sample(6, random_state=4))
    with pytest.raises(ValueError, match="8-bit"):
        m.score_samples(X * 2)
    with pytest.raises(ValueError, match="between levels"):
        m.score_samples(X * 0.999)


@pytest.mark.parametrize("cls", FLOWS)
def test_sample_reproducible_with_seed(moons_models, cls):
    m = moons_models[1][cls]
    a = m.sample(50, random_state=7)
    np.testing.assert_array_equal(a, m.sample(50, random_state=7))
    assert not np.array_equal(a, m.sample(50, random_state=8))
    assert np.isfinite(a).all() and a.shape == (50, 2)


# -- guards -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", FLOWS)
def test_non_finite_guard_stops_with_a_clear_error(moons_models, cls):
    import copy

    m = copy.deepcopy(moons_models[1][cls])
    an = next(x for x in m.module_.modules() if isinstance(x, ActNorm))
    with torch.no_grad():
        an.log_scale.fill_(float("inf"))
    with pytest.raises(NonFiniteFlowError, match="non-finite log-density"):
        m.score_samples(_moons(10))
    with torch.no_grad():
        an.log_scale.fill_(-1e4)  # the inverse multiplies by e^{1e4}: an infinite sample
    with pytest.raises(NonFiniteFlowError, match="non-finite sample"):
        m.sample(5, random_state=0)
    assert issubclass(NonFiniteFlowError, ValueError)


def test_diverging_training_stops_with_a_clear_error():
    m = Glow(n_steps=2, hidden_layer_sizes=(8,), epochs=3, batch_size=50, random_state=0)

    def blow_up(step, metrics):  # a diverged parameter after the first step
        with torch.no_grad():
            next(x for x in m.module_.modules() if isinstance(x, ActNorm)).loc.fill_(np.inf)

    with pytest.raises(NonFiniteFlowError, match="non-finite log-density.*diverged"):
        m.fit(_moons(100), callbacks=[blow_up])


# -- persistence ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", FLOWS)
def test_save_load_round_trip(cls, tmp_path):
    X = _eight_bit(64)
    m = cls(n_levels=2, n_steps=2, hidden_channels=8, epochs=1, batch_size=32,
            random_state=0).fit(X)
    m.save(tmp_path / "flow.safetensors")
    m2 = unsup.load(tmp_path / "flow.safetensors")
    assert type(m2) is cls and m2.image_shape_ == m.image_shape_
    np.testing.assert_array_equal(m2.score_samples(X), m.score_samples(X))
    np.testing.assert_array_equal(m2.sample(4, random_state=1), m.sample(4, random_state=1))


def test_glow_split_prior_and_files_written_before_it(monkeypatch, tmp_path):
    X = _eight_bit(64)
    kw = dict(n_levels=2, n_steps=1, hidden_channels=4, epochs=1, batch_size=32, random_state=0)
    assert Glow().split_prior == "position"
    pos = Glow(**kw).fit(X)
    cond = Glow(split_prior="conditional", **kw).fit(X)
    splits = [[m for m in g.module_.layers if isinstance(m, Split)] for g in (pos, cond)]
    assert [s.prior is None for s in splits[0]] == [True]
    assert [s.prior is None for s in splits[1]] == [False]
    with pytest.raises(ValueError, match="split_prior"):
        Glow(split_prior="nope", **kw).fit(X)
    # a file written before the parameter existed: its model had the conditional prior
    get = Glow.get_params
    monkeypatch.setattr(Glow, "get_params", lambda self, deep=True: {
        k: v for k, v in get(self, deep).items() if k != "split_prior"})
    cond.save(tmp_path / "old.safetensors")
    monkeypatch.undo()
    back = unsup.load(tmp_path / "old.safetensors")
    assert back.split_prior == "conditional"
    np.testing.assert_array_equal(back.score_samples(X), cond.score_samples(X))


def test_report_draws_the_learned_density(moons_models):
    from unsup.report import model_report

    X, models = moons_models
    html = model_report(models[RealNVP], X).to_html()
    assert "Learned density" in html and "of the probability mass" in html
