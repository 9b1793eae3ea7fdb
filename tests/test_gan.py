"""The GAN loss zoo (issue 13): each loss against its formula on fixed numbers, the gradient
penalties and BEGAN's control exactly, every loss trains without NaN, WGAN's clipping holds,
EMA, exact resume after a kill (both players, every optimiser, EMA, k_t, strips), divergence
names the player and keeps the last good checkpoint, DCGAN stacks, report sections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import blobs

from unsup.adversarial import _losses as L
from unsup.adversarial.gan import GAN
from unsup.nn.conv import DCGANDiscriminator, DCGANGenerator
from unsup.train.engine import TrainingDivergedError

pytestmark = pytest.mark.usefixtures("one_thread")

A_REAL = np.array([2.0, -1.0, 0.5, 3.0])  # fixed discriminator outputs on real rows
A_FAKE = np.array([-2.5, 0.3, 1.5, -0.2])  # ... and on generated rows
SMALL = {"n_components": 4, "hidden_layer_sizes": (16,), "batch_size": 32, "device": "cpu"}


def _sig(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


# the table, written with numpy from the formulas (D = σ(a) for mm / ns / dragan)
EXPECTED = {
    "mm": (-np.mean(np.log(_sig(A_REAL))) - np.mean(np.log(1 - _sig(A_FAKE))),
           np.mean(np.log(1 - _sig(A_FAKE)))),
    "ns": (-np.mean(np.log(_sig(A_REAL))) - np.mean(np.log(1 - _sig(A_FAKE))),
           -np.mean(np.log(_sig(A_FAKE)))),
    "wgan": (-A_REAL.mean() + A_FAKE.mean(), -A_FAKE.mean()),
    "wgan-gp": (-A_REAL.mean() + A_FAKE.mean(), -A_FAKE.mean()),
    "lsgan": (np.mean((A_REAL - 1) ** 2) + np.mean(A_FAKE ** 2), np.mean((A_FAKE - 1) ** 2)),
    "dragan": (-np.mean(np.log(_sig(A_REAL))) - np.mean(np.log(1 - _sig(A_FAKE))),
               -np.mean(np.log(_sig(A_FAKE)))),
    "began": (A_REAL.mean() - 0.3 * A_FAKE.mean(), A_FAKE.mean()),
}


def test_the_table_has_exactly_seven_losses():
    assert set(L.LOSSES) == set(EXPECTED) and len(L.LOSSES) == 7


@pytest.mark.parametrize("loss", L.LOSSES)
def test_each_loss_matches_its_formula_on_fixed_outputs(loss):
    r, f = torch.tensor(A_REAL), torch.tensor(A_FAKE)
    d = float(L.discriminator_loss(loss, r, f, k=0.3))
    g = float(L.generator_loss(loss, f))
    assert d == pytest.approx(EXPECTED[loss][0], abs=1e-12)
    assert g == pytest.approx(EXPECTED[loss][1], abs=1e-12)
    doc = GAN.__doc__ or ""
    assert f'``"{loss}"``' in doc  # the model's docstring carries each loss's objectives


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        L.discriminator_loss("hinge", torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="loss"):
        GAN(loss="hinge").fit(blobs()[0])


def test_saturating_logs_stay_finite():
    big = torch.tensor([80.0, -80.0])
    for loss in ("mm", "ns", "dragan"):
        assert torch.isfinite(L.discriminator_loss(loss, big, -big))
        assert torch.isfinite(L.generator_loss(loss, big))


def test_gradient_penalty_exact_on_linear_and_quadratic_critics():
    w = torch.tensor([3.0, 4.0])  # ∇(w·x) = w everywhere: penalty (|w| - 1)^2 = 16
    pts = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    assert float(L.gradient_penalty(lambda x: x @ w, pts).detach()) == pytest.approx(16.0)
    # ∇(½|x|²) = x: penalty mean (|x_i| - 1)^2
    expected = ((pts.norm(dim=1) - 1) ** 2).mean()
    gp = L.gradient_penalty(lambda x: 0.5 * (x * x).sum(1), pts).detach()
    assert float(gp) == pytest.approx(float(expected))
    # differentiable in the critic's parameters (double backward)
    wp = w.clone().requires_grad_(True)
    L.gradient_penalty(lambda x: x @ wp, pts).backward()
    torch.testing.assert_close(wp.grad, 2 * (w.norm() - 1) * w / w.norm())


def test_interpolates_and_perturbations():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.zeros(400, 3), torch.ones(400, 3)
    x = L.interpolates(real, fake, g)  # (1 - α) on every coordinate of a row
    assert torch.all(x[:, :1] == x) and 0 <= float(x.min()) and float(x.max()) <= 1
    base = torch.randn(2000, 4, generator=g) * 2.0
    d = L.perturbed(base, 0.5, g) - base
    assert float(d.std()) == pytest.approx(0.5 * float(base.std()), rel=0.05)


def test_began_control_and_convergence_by_hand():
    assert L.began_k_update(0.2, 0.4, 0.1, 0.5, 0.01) == pytest.approx(0.2 + 0.01 * (0.2 - 0.1))
    assert L.began_k_update(0.0, 0.1, 0.9, 0.5, 1.0) == 0.0  # clipped below
    assert L.began_k_update(0.99, 1.0, 0.0, 1.0, 1.0) == 1.0  # clipped above
    assert L.began_convergence(0.4, 0.1, 0.5) == pytest.approx(0.4 + abs(0.2 - 0.1))
    v = torch.tensor([[1.0, -1.0], [0.0, 3.0]])
    zero = lambda t: torch.zeros_like(t)  # noqa: E731
    # Berthelot et al.'s L(v) = |v - D(v)|^η, summed over features (not the mean): η = 1 and 2
    torch.testing.assert_close(L.reconstruction_error(zero, v, 1), torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(L.reconstruction_error(zero, v, 2), torch.tensor([2.0, 9.0]))
    torch.testing.assert_close(L.reconstruction_error(zero, v), torch.tensor([2.0, 9.0]))


def test_began_autoencoder_output_is_unbounded():
    # the decoder is linear (Berthelot et al.): a tanh would pin the scaled background (-1) on
    # its asymptote, where the autoencoder cannot raise the generated rows' error
    m = GAN(loss="began", epochs=1, random_state=0, **SMALL).fit(blobs(64)[0])
    assert not isinstance(m.module_.D[-1][-1], torch.nn.Tanh)
    with torch.no_grad():
        out = m.module_.D(torch.full((2, 16), 50.0))
    assert float(out.abs().max()) > 1.0  # outside tanh's (-1, 1)


@pytest.mark.parametrize("loss", L.LOSSES)
def test_every_loss_trains_finite_and_samples_in_range(loss):
    X = blobs(160)[0]
    m = GAN(loss=loss, epochs=2, random_state=0, **SMALL).fit(X)
    h = m.history_[-1]
    assert np.isfinite([h["loss_discriminator"], h["loss_generator"]]).all()
    n_critic = 5 if loss.startswith("wgan") else 1
    assert m.n_steps_ == 2 * 5 and m._setting("n_critic") == n_critic
    s = m.sample(50, random_state=1)
    assert s.shape == (50, 16) and np.isfinite(s).all()
    assert X.min() - 1e-5 <= s.min() and s.max() <= X.max() + 1e-5
    np.testing.assert_array_equal(s, m.sample(50, random_state=1))
    assert not np.array_equal(s, m.sample(50, random_state=2))
    if loss == "wgan":  # the critic's weights are clipped after every update
        for p in m.module_.D.parameters():
            assert float(p.detach().abs().max()) <= m.clip_value + 1e-9
    if loss == "began":
        assert 0.0 <= float(m.module_.k) <= 1.0 and "convergence" in h and "k" in h


def test_ns_gan_learns_the_blobs():
    # a 16-D mixture of 3 separated blobs: generated rows should land near the blob centres
    X, y = blobs(600, k=3, seed=1)
    m = GAN(loss="ns", epochs=60, random_state=0, n_components=4, hidden_layer_sizes=(32,),
            batch_size=32, d_learning_rate=2e-3, g_learning_rate=2e-3, device="cpu").fit(X)
    centres = np.stack([X[y == c].mean(0) for c in range(3)])
    s = m.sample(300, random_state=0)
    dist = np.linalg.norm(s[:, None] - centres[None], axis=2)
    noise = np.linalg.norm(X - centres[y], axis=1).mean()
    untrained = GAN(loss="ns", epochs=1, max_steps=1, random_state=0, n_components=4,
                    hidden_layer_sizes=(32,), device="cpu").fit(X).sample(300, random_state=0)
    d0 = np.linalg.norm(untrained[:, None] - centres[None], axis=2).min(1).mean()
    assert dist.min(1).mean() < 0.6 * d0  # measured: 0.35 against 0.68 untrained
    # every blob is generated, in about its share (no collapse to one mode)
    assert np.bincount(dist.argmin(1), minlength=3).min() >= 60
    assert dist.min(1).mean() < 2.5 * noise


def test_ema_of_generator_weights():
    X = blobs(96)[0]
    m0 = GAN(ema_decay=0.0, epochs=2, random_state=0, **SMALL).fit(X)  # decay 0: a copy
    for a, b in zip(m0.module_.G.parameters(), m0.module_.G_ema.parameters(), strict=True):
        assert torch.equal(a, b)
    m = GAN(ema_decay=0.9, epochs=2, random_state=0, **SMALL).fit(X)
    plain = GAN(epochs=2, random_state=0, **SMALL).fit(X)
    for a, b in zip(m.module_.G.parameters(), plain.module_.G.parameters(), strict=True):
        assert torch.equal(a, b)  # averaging never changes training
    assert not np.array_equal(m.sample(8, random_state=0), plain.sample(8, random_state=0))


class _Stop(Exception):
    pass


@pytest.mark.parametrize("params", [{"loss": "wgan-gp", "ema_decay": 0.9, "n_critic": 2},
                                    {"loss": "began"}, {"loss": "wgan"}])
def test_kill_and_resume_is_bit_identical(tmp_path, params):
    X = blobs(100)[0]
    kw = dict(epochs=3, random_state=4, lr_schedule="cosine", **SMALL, **params)
    ref = GAN(**kw).fit(X)

    def killer(step: int, metrics: dict) -> None:
        if step == 7:
            raise _Stop

    ck = str(tmp_path / "ck")
    with pytest.raises(_Stop):
        GAN(checkpoint_dir=ck, checkpoint_every=3, **kw).fit(X, callbacks=[killer])
    resumed = GAN(checkpoint_dir=ck, checkpoint_every=3, resume=True, **kw).fit(X)
    a, b = ref.module_.state_dict(), resumed.module_.state_dict()
    assert set(a) == set(b)
    for k in a:  # G, D, G_ema, BEGAN's k, the sample strips
        assert torch.equal(a[k], b[k]), k
    assert [h["loss"] for h in ref.history_] == [h["loss"] for h in resumed.history_]
    assert ref.module_.strip_steps.tolist() == [2, 3, 4, 5, 6, 8, 9, 10, 11, 12]  # ⌈12 i/10⌉


def test_divergence_names_the_player_and_keeps_the_last_good_checkpoint(tmp_path):
    from unsup.train.checkpoint import load_checkpoint

    X = blobs(128)[0]
    ck = str(tmp_path / "ck")
    m = GAN(epochs=5, random_state=0, checkpoint_dir=ck, checkpoint_every=2, **SMALL)

    def poison(step: int, metrics: dict) -> None:
        if step == 3:  # the generator's weights go bad after step 3
            with torch.no_grad():
                next(m.module_.G.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDivergedError, match=r"discriminator loss became nan at step 4"):
        m.fit(X, callbacks=[poison])
    tensors, meta = load_checkpoint(ck)
    assert meta["state"]["step"] == 2
    assert all(torch.isfinite(v).all() for k, v in tensors.items()
               if k.startswith("model.") and v.is_floating_point())


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 7, 9), (3, 8, 8)])
def test_dcgan_stacks_land_on_the_image_size(shape):
    n = int(np.prod(shape))
    G = DCGANGenerator(10, shape, (8, 16))
    D = DCGANDiscriminator(shape, (8, 16))
    x = G(torch.randn(5, 10))
    assert x.shape == (5, n) and float(x.detach().abs().max()) <= 1
    assert D(x).shape == (5, 1)
    with pytest.raises(ValueError, match="too small"):
        DCGANDiscriminator((1, 3, 3), (4, 4))


@pytest.mark.parametrize("loss", ["wgan-gp", "began"])
def test_dcgan_gan_trains_and_round_trips(loss, tmp_path):
    import unsup

    X = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    m = GAN(loss=loss, architecture="dcgan", conv_channels=(4, 8), n_components=4, epochs=1,
            batch_size=32, random_state=0, device="cpu").fit(X)
    assert m.image_shape_ == [1, 8, 8]
    m.save(tmp_path / "g.safetensors")
    back = unsup.load(tmp_path / "g.safetensors")
    np.testing.assert_array_equal(back.sample(4, random_state=0), m.sample(4, random_state=0))
    with pytest.raises(ValueError, match="square"):
        GAN(architecture="dcgan", epochs=1).fit(np.random.default_rng(0).random((8, 10)))


def test_constant_data_and_bad_codes_are_clear_errors():
    with pytest.raises(ValueError, match="constant"):
        GAN(epochs=1).fit(np.ones((10, 4), dtype=np.float32))
    m = GAN(epochs=1, random_state=0, **SMALL).fit(blobs(40)[0])
    with pytest.raises(ValueError, match="codes must have shape"):
        m.generate(np.zeros((2, 3)))


def test_report_sections_draw(tmp_path):
    from unsup.report.hooks import SectionContext, sections_for

    class _Rep:
        def __init__(self) -> None:
            self.figures: list[str] = []
            self.texts: list[str] = []

        def figure(self, fig, caption: str = "") -> None:
            self.figures.append(caption)

        def text(self, s: str) -> None:
            self.texts.append(s)

    X = blobs(96)[0]
    m = GAN(loss="began", epochs=2, random_state=0, **SMALL).fit(X)
    rep = _Rep()
    ctx = SectionContext(report=rep, X=X, image_shape=(4, 4))
    titles = []
    for title, fn in sections_for(m):
        titles.append(title)
        fn(m, ctx)
    assert titles == ["Samples over training", "Discriminator and generator losses",
                      "BEGAN convergence"]
    assert len(rep.figures) == 3 and not rep.texts


@pytest.mark.parametrize("loss", L.LOSSES)
def test_each_loss_gets_its_papers_optimiser(loss):
    from types import SimpleNamespace

    from unsup.adversarial.gan import LOSS_DEFAULTS
    from unsup.train.steps import make_optimizer

    m = GAN(loss=loss, epochs=1, random_state=0, **SMALL).fit(blobs(64)[0])
    d = LOSS_DEFAULTS[loss]
    cfg = SimpleNamespace(optimizer="adam", learning_rate=1.0, weight_decay=0.0, momentum=0.9)
    for name, lr in m._optimizers().items():
        opt = make_optimizer(lr.params, cfg, lr)
        want = d["d_lr"] if name == "discriminator" else d["g_lr"]
        assert opt.param_groups[0]["lr"] == want
        if loss == "wgan":  # Arjovsky et al.: RMSprop without momentum (Adam destabilised it)
            assert isinstance(opt, torch.optim.RMSprop)
            assert opt.param_groups[0]["momentum"] == 0.0
        else:
            assert isinstance(opt, torch.optim.Adam)
            assert opt.param_groups[0]["betas"] == d["betas"]


@pytest.mark.parametrize("eta", [1, 2])
def test_began_k_update_in_the_model_follows_the_formula_on_fixed_tensors(eta):
    X = blobs(64)[0]
    m = GAN(loss="began", epochs=1, random_state=0, began_gamma=0.4, began_lambda_k=0.01,
            began_eta=eta, **SMALL).fit(X)
    fake = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (8, 16)).astype(np.float32))
    m._fake = lambda n, ref: fake  # fixed generated rows
    batch = torch.from_numpy(X[:8])
    m.module_.train()
    for k0 in (0.3, 0.0, 1.0, 0.999):
        m.module_.k.fill_(k0)
        loss = m._d_loss(batch)
        with torch.no_grad():  # |v - AE(v)|^η summed over features, by hand
            x = m._scale(batch)
            lx = (x - m.module_.D(x)).abs().pow(eta).sum(1).mean().item()
            lf = (fake - m.module_.D(fake)).abs().pow(eta).sum(1).mean().item()
        assert float(loss) == pytest.approx(lx - k0 * lf, rel=1e-5)
        want = min(1.0, max(0.0, k0 + 0.01 * (0.4 * lx - lf)))
        assert float(m.module_.k) == pytest.approx(want, rel=1e-5, abs=1e-7)
        assert m._terms == pytest.approx((lx + abs(0.4 * lx - lf), k0), rel=1e-5)


def test_began_default_gain_drives_k_by_the_papers_rule():
    # λ_k = 0.01 is the default since 2026-12-01 (0.001 let k_t and the digits swing): a model
    # built without began_lambda_k moves k_t by k + 0.01 (γ D(x) - D(x̂)), clipped to [0, 1]
    X = blobs(64)[0]
    m = GAN(loss="began", epochs=1, random_state=0, **SMALL).fit(X)
    assert m.began_lambda_k == 0.01 and m.began_gamma == 0.8
    fake = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (8, 16)).astype(np.float32))
    m._fake = lambda n, ref: fake
    batch = torch.from_numpy(X[:8])
    m.module_.train()
    with torch.no_grad():
        x = m._scale(batch)
        lx = (x - m.module_.D(x)).pow(2).sum(1).mean().item()
        lf = (fake - m.module_.D(fake)).pow(2).sum(1).mean().item()
    for k0 in (0.5, 0.02):
        m.module_.k.fill_(k0)
        m._d_loss(batch)
        want = min(1.0, max(0.0, k0 + 0.01 * (0.8 * lx - lf)))
        assert float(m.module_.k) == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_began_defaults_in_the_docs_table_match_the_code():
    # the docs' loss table once kept a stale γ after the default changed: the BEGAN row must
    # quote the signature's γ, λ_k, η and the learning rate of LOSS_DEFAULTS
    import inspect
    import re
    from pathlib import Path

    from unsup.adversarial.gan import LOSS_DEFAULTS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "adversarial.md").read_text()
    row = next(r for r in doc.splitlines() if r.startswith("| `began` |"))
    sig = inspect.signature(GAN).parameters
    got = dict(re.findall(r"(γ|λ_k|η|lr) = ?([0-9.e-]+)", row.replace("lr ", "lr = ")))
    assert float(got["γ"]) == sig["began_gamma"].default
    assert float(got["λ_k"]) == sig["began_lambda_k"].default
    assert int(got["η"]) == sig["began_eta"].default
    assert float(got["lr"]) == LOSS_DEFAULTS["began"]["d_lr"]
