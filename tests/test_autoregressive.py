"""NADE, MADE and PixelCNN: exact likelihoods (sum to one), the autoregressive property,
sampling, persistence, input checks, and a win over independent pixels.

The conformance suite (tests/test_common.py) covers the sklearn API of the three models; here
are the properties that make them autoregressive density models.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import bars

import unsup
from unsup.autoregressive import MADE, NADE, PixelCNN
from unsup.autoregressive.nade import NADENet
from unsup.data.validation import DataError
from unsup.registry import get_model, spec_for

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = {"epochs": 2, "batch_size": 64, "early_stopping": False, "validation_fraction": 0.0,
         "random_state": 0, "device": "cpu"}

SMALL = {NADE: {"n_components": 4}, MADE: {"hidden_layer_sizes": (8,)},
         PixelCNN: {"n_channels": 3, "n_layers": 1}}

# tiny models over D = 12 binary pixels (a 3×4 image for PixelCNN)
BINARY = {
    "nade": lambda: NADE(n_components=6, **QUICK),
    "made": lambda: MADE(hidden_layer_sizes=(16, 16), **QUICK),
    "made-ensemble": lambda: MADE(hidden_layer_sizes=(16,), n_masks=4,
                                  direct_connections=True, **QUICK),
    "pixelcnn-gated": lambda: PixelCNN((3, 4), n_channels=4, n_layers=2, **QUICK),
    "pixelcnn-plain": lambda: PixelCNN((3, 4), architecture="plain", n_channels=4,
                                       n_layers=2, **QUICK),
}


def _all_binary(D: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=D)), dtype=np.float32)


@pytest.fixture(scope="module")
def fitted_binary():
    X = bars()[:, :12]
    return {k: make().fit(X) for k, make in BINARY.items()}


# -- exactness ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(BINARY))
def test_probabilities_sum_to_one_over_all_binary_images(fitted_binary, name):
    model = fitted_binary[name]
    p = np.exp(model.score_samples(_all_binary(12)))
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
    assert p.min() > 0


@pytest.mark.parametrize("output", ["categorical", "logistic"])
@pytest.mark.parametrize("cls", [NADE, MADE, PixelCNN])
def test_grey_level_probabilities_sum_to_one(cls, output):
    L = 3
    X = np.random.default_rng(0).integers(0, L, (60, 4)).astype(np.float32)
    kw = {**SMALL[cls], "n_masks": 2} if cls is MADE else SMALL[cls]
    model = cls(output=output, n_levels=L, **kw, **QUICK).fit(X)
    allx = np.array(list(itertools.product(range(L), repeat=4)), dtype=np.float32)
    assert np.exp(model.score_samples(allx)).sum() == pytest.approx(1.0, abs=1e-5)


def test_made_ensemble_is_the_mixture_of_its_masks(fitted_binary):
    model = fitted_binary["made-ensemble"]
    X = bars()[:20, :12]
    singles = [_single(model, X, k) for k in range(4)]
    mix = np.logaddexp.reduce(np.stack(singles), 0) - math.log(4)
    np.testing.assert_allclose(model.score_samples(X), mix, rtol=1e-5)
    model.set_params(n_eval_masks=1)
    try:
        np.testing.assert_allclose(model.score_samples(X), singles[0], rtol=1e-6)
        assert model.log_likelihood(X).estimator == "chain rule"
    finally:
        model.set_params(n_eval_masks=None)
    assert model.log_likelihood(X).estimator == "chain rule, mixture of 4 masks"


def _single(model, X, k):
    """log p_k(x) under mask set k alone."""
    with torch.no_grad():
        model.module_.eval()
        model._use(k)
        x = torch.as_tensor(X)
        return model._pixel_log_prob(model._params(x), x).sum(-1).double().numpy()


def test_nade_cumulative_sum_equals_the_loop_over_pixels():
    torch.manual_seed(0)
    net = NADENet(37, 5, 2)  # D not a multiple of the block: the padding is inert
    x = (torch.rand(4, 37) < 0.4).float()
    loop = torch.stack([torch.sigmoid(net.c + x[:, :d] @ net.W[:, :d].t()) @ net.V[d].t()
                        + net.b[d] for d in range(37)], 1)
    torch.testing.assert_close(net(x), loop, rtol=1e-5, atol=1e-5)


# -- the autoregressive property ----------------------------------------------------------------
def _jacobian(model, x: torch.Tensor) -> torch.Tensor:
    """d out_i / d x_j (summed over output parameters), shape (D, D)."""
    model.module_.eval()
    return torch.autograd.functional.jacobian(lambda v: model._params(v).sum(-1)[0], x)[:, 0]


@pytest.mark.parametrize("name", list(BINARY))
def test_output_of_a_pixel_never_depends_on_itself_or_later_pixels(fitted_binary, name):
    model = fitted_binary[name]
    x = torch.as_tensor(bars()[3:4, :12])
    for k in range(getattr(model, "n_masks", 1)):
        if isinstance(model, MADE):
            model._use(k)
        order = model._order(k)
        pos = torch.empty(12, dtype=torch.long)
        pos[order] = torch.arange(12)
        J = _jacobian(model, x)
        later = pos[None, :] >= pos[:, None]  # j at or after i in the order
        assert J[later].abs().max() == 0
        assert J[~later].abs().sum() > 0  # and it does see the pixels before it


def test_perturbing_a_later_pixel_leaves_earlier_conditionals_unchanged():
    X = bars()[:, :12]
    model = PixelCNN((3, 4), n_channels=4, n_layers=3, output="categorical", n_levels=2,
                     **QUICK).fit(X)
    x = torch.as_tensor(X[:8])
    base = model._params(x).detach()
    for d in range(12):
        y = x.clone()
        y[:, d] = 1 - y[:, d]
        out = model._params(y).detach()
        torch.testing.assert_close(out[:, :d + 1], base[:, :d + 1])


def test_gated_pixelcnn_has_no_blind_spot():
    model = PixelCNN((5, 5), n_channels=4, n_layers=3, first_kernel_size=3, **QUICK)
    model.fit(np.tile(bars()[:, :1], (1, 25)))  # any binary 5×5 data
    J = _jacobian(model, torch.zeros(1, 25))
    i = 2 * 5 + 1  # pixel (2, 1) sees (0, 4): above and to the right, two rows up
    assert J[i, 0 * 5 + 4].abs() > 0


def test_pixelcnn_rows_up_to_the_pixel_give_its_conditional():
    model = PixelCNN((4, 3), n_channels=4, n_layers=2, **QUICK).fit(bars()[:, :12])
    x = torch.as_tensor(bars()[:5, :12])
    full = model._params(x).detach()
    for r in range(4):
        torch.testing.assert_close(model._params(x, rows=r + 1).detach(), full[:, :3 * (r + 1)])


# -- sampling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["nade", "made-ensemble", "pixelcnn-gated"])
def test_sampling_is_seeded_and_binary(fitted_binary, name):
    model = fitted_binary[name]
    a, b = model.sample(30, random_state=1), model.sample(30, random_state=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(30, random_state=2))
    assert a.shape == (30, 12) and set(np.unique(a)) <= {0.0, 1.0}


def test_samples_follow_the_model():
    """Empirical frequencies of many samples match the exact probabilities (D = 3)."""
    rng = np.random.default_rng(0)
    X = (rng.random((300, 3)) < [0.8, 0.3, 0.5]).astype(np.float32)
    X[:, 2] = X[:, 0]  # a dependency to learn
    model = NADE(n_components=4, learning_rate=0.05, **{**QUICK, "epochs": 20}).fit(X)
    S = model.sample(4000, random_state=0)
    allx = _all_binary(3)
    p = np.exp(model.score_samples(allx))
    freq = np.array([(S == r).all(1).mean() for r in allx])
    np.testing.assert_allclose(freq, p, atol=0.03)


@pytest.mark.parametrize("output", ["categorical", "logistic"])
def test_grey_samples_have_the_training_scale_and_levels(output):
    L = 5
    levels = np.random.default_rng(0).integers(0, L, (60, 4)).astype(np.float32)
    unit = MADE(hidden_layer_sizes=(8,), output=output, n_levels=L, **QUICK).fit(levels / 4)
    S = unit.sample(50, random_state=0)
    assert S.min() >= 0 and S.max() <= 1
    np.testing.assert_allclose(S * 4, np.round(S * 4), atol=1e-5)
    ints = MADE(hidden_layer_sizes=(8,), output=output, n_levels=L, **QUICK).fit(levels)
    assert set(np.unique(ints.sample(50, random_state=0))) <= set(range(L))
    # the same levels on either scale give the same likelihood
    np.testing.assert_allclose(unit.score_samples(levels / 4), ints.score_samples(levels),
                               rtol=1e-5)


# -- persistence --------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: MADE(hidden_layer_sizes=(8,), n_masks=3, output="categorical", n_levels=4, **QUICK),
    lambda: PixelCNN((2, 2), n_channels=3, n_layers=1, output="logistic", n_levels=4, **QUICK),
    lambda: NADE(n_components=4, output="categorical", n_levels=4, **QUICK),
], ids=["made", "pixelcnn", "nade"])
def test_save_load_gives_identical_scores_and_samples(make, tmp_path):
    X = np.random.default_rng(0).integers(0, 4, (40, 4)).astype(np.float32)
    model = make().fit(X)
    model.save(tmp_path / "m.safetensors")
    back = unsup.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(back.sample(5, random_state=3), model.sample(5, random_state=3))


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [NADE, MADE, PixelCNN])
def test_non_binary_data_for_a_bernoulli_model_says_so(cls):
    grey = bars()[:, :16] * 0.7
    with pytest.raises(DataError, match="binary.*binarize_input"):
        cls(output="bernoulli", **SMALL[cls], **QUICK).fit(grey)
    model = cls(**SMALL[cls], **QUICK).fit(bars())
    assert model.output_ == "bernoulli"
    with pytest.raises(DataError, match="non-binary values"):
        model.score_samples(grey)
    with pytest.raises(ValueError, match="features"):
        model.score_samples(bars()[:, :12])
    # a threshold makes grey data binary, and the likelihood says so
    lk = cls(binarize_input=0.5, **SMALL[cls], **QUICK).fit(grey).log_likelihood(grey)
    assert lk.transform == "binarised at 0.5"


def test_grey_model_refuses_unquantised_or_out_of_range_data():
    X = np.random.default_rng(0).integers(0, 4, (40, 4)).astype(np.float32)
    model = NADE(n_components=4, output="categorical", n_levels=4, **QUICK).fit(X / 3)
    with pytest.raises(DataError, match="4 grey levels"):
        model.score_samples(X / 3 + 0.01)
    with pytest.raises(DataError, match="4 grey levels"):
        NADE(output="categorical", n_levels=4, **SMALL[NADE], **QUICK).fit(X + 4)
    with pytest.raises(ValueError, match="binarize_input"):
        NADE(output="categorical", binarize_input=0.5, **SMALL[NADE], **QUICK).fit(X)


def test_pixelcnn_checks_its_image_shape():
    with pytest.raises(ValueError, match="does not match"):
        PixelCNN((3, 3), **QUICK).fit(bars())
    with pytest.raises(ValueError, match="one-channel"):
        PixelCNN((2, 2, 4), **QUICK).fit(bars())
    small = {**SMALL[PixelCNN], **QUICK}
    assert PixelCNN(**small).fit(bars()).image_shape_ == [4, 4]
    assert PixelCNN(**small).fit(bars()[:, :6]).image_shape_ == [1, 6]


# -- the typed likelihood, the registry ---------------------------------------------------------
def test_log_likelihood_is_exact_with_bits_per_dim(fitted_binary):
    model = fitted_binary["pixelcnn-gated"]
    X = bars()[:, :12]
    lk = model.log_likelihood(X)
    assert lk.kind == "exact" and lk.support == "discrete" and lk.n_dims == 12
    assert lk.nats == pytest.approx(model.score(X))
    assert lk.bits_per_dim == pytest.approx(-model.score(X) / (12 * math.log(2)))
    assert model.bits_per_dim(X) == pytest.approx(lk.bits_per_dim)


def test_registered_in_the_autoregressive_family_and_nade_in_the_demo():
    for name, cls in (("nade", NADE), ("made", MADE), ("pixelcnn", PixelCNN)):
        assert get_model(name).cls is cls and spec_for(cls).family == "autoregressive"
    demo = spec_for(NADE).demo
    assert demo is not None and demo.params["binarize_input"] == 0.5


# -- a win over independent pixels --------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: NADE(n_components=16, learning_rate=0.02, **{**QUICK, "epochs": 15}),
    lambda: MADE(hidden_layer_sizes=(32,), learning_rate=0.02, **{**QUICK, "epochs": 15}),
    lambda: PixelCNN(n_channels=8, n_layers=2, learning_rate=0.02, **{**QUICK, "epochs": 15}),
], ids=["nade", "made", "pixelcnn"])
def test_beats_independent_bernoulli_on_bars(make):
    """Bars and stripes: every pixel is a fair coin (independent model: ~11 nats), but a row
    or column decides the rest; an autoregressive model learns it."""
    Xtr, Xte = bars(300, seed=0), bars(200, seed=1)
    p = Xtr.mean(0).clip(0.01, 0.99)
    independent = float((Xte * np.log(p) + (1 - Xte) * np.log(1 - p)).sum(1).mean())
    assert make().fit(Xtr).score(Xte) > independent + 3.0
