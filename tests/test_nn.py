"""unsup.nn: stacks' shapes, masked layers' autoregressive property, distributions' log_prob."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as td
from torch import nn

from unsup.nn import (
    MLP,
    Bernoulli,
    BernoulliHead,
    Categorical,
    CategoricalHead,
    ConvDecoder,
    ConvEncoder,
    DiscretizedLogistic,
    DiscretizedLogisticHead,
    Gaussian,
    GaussianHead,
    MaskedConv2d,
    MaskedLinear,
    made_degrees,
    made_masks,
)

torch.set_num_threads(1)


# -- stacks -----------------------------------------------------------------------------------
def test_mlp_shapes_and_layers():
    m = MLP([10, 7, 5, 3], act="tanh", last_act="sigmoid", dropout=0.1)
    assert m(torch.randn(4, 10)).shape == (4, 3)
    assert [lin.out_features for lin in m.linears] == [7, 5, 3]
    kinds = [type(x).__name__ for x in m]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear",
                     "Sigmoid"]
    plain = MLP([10, 3])
    assert [type(x).__name__ for x in plain] == ["Linear"]
    with pytest.raises(ValueError):
        MLP([10])


@pytest.mark.parametrize("shape,channels", [((1, 28, 28), (16, 32)), ((3, 15, 9), (4,)),
                                            ((2, 7, 7), (3, 5, 6))])
def test_conv_encoder_decoder_shapes(shape, channels):
    d = math.prod(shape)
    enc, dec = ConvEncoder(shape, channels, 6, act="relu"), ConvDecoder(shape, channels, 6)
    x = torch.randn(3, d)
    h = enc(x)
    assert h.shape == (3, 6)
    assert dec(h).shape == (3, d)


# -- masked layers -------------------------------------------------------------------------------
def _jacobian(f, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(f, x)


@pytest.mark.parametrize("random_degrees", [False, True])
def test_made_masks_are_autoregressive(random_degrees):
    D, hidden = 6, [13, 9]
    torch.manual_seed(0)
    order = [3, 1, 6, 2, 5, 4]
    g = torch.Generator().manual_seed(1) if random_degrees else None
    deg = made_degrees(D, hidden, order=order, generator=g)
    masks = made_masks(deg, n_outputs_per_input=2)
    sizes = [D, *hidden, 2 * D]
    layers: list[nn.Module] = []
    for i, mk in enumerate(masks):
        layers.append(MaskedLinear(sizes[i], sizes[i + 1], mask=mk))
        if i < len(masks) - 1:
            layers.append(nn.Tanh())
    net = nn.Sequential(*layers)
    J = _jacobian(lambda x: net(x), torch.randn(D))  # (2D, D)
    o = torch.tensor(order)
    for out in range(2 * D):
        d = out % D
        allowed = o < o[d]  # inputs strictly earlier in the order
        assert torch.all(J[out, ~allowed] == 0), (out, J[out])
    # and the mask is not trivially empty: the last output sees something
    last = int(torch.argmax(o))
    assert torch.any(J[last] != 0)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_sees_only_the_past(mask_type):
    torch.manual_seed(0)
    conv = nn.Sequential(MaskedConv2d(mask_type, 2, 4, 5), nn.ReLU(),
                         MaskedConv2d("B", 4, 1, 3))
    H = W = 7
    x = torch.randn(1, 2, H, W)
    J = _jacobian(lambda v: conv(v), x).reshape(H * W, 2, H * W)  # out pixel, in ch, in pixel
    for p in range(H * W):
        later = torch.arange(H * W) > p
        assert torch.all(J[p][:, later] == 0), p
        own = J[p][:, p]
        if mask_type == "A":
            assert torch.all(own == 0), p
    # type B keeps the centre: some output depends on its own pixel
    single = MaskedConv2d(mask_type, 1, 1, 3)
    Js = _jacobian(lambda v: single(v), torch.randn(1, 1, 4, 4)).reshape(16, 16)
    assert bool(torch.all(Js.diagonal() == 0)) == (mask_type == "A")
    assert single.mask[0, 0].tolist() == [[1, 1, 1], [1, 1.0 if mask_type == "B" else 0, 0],
                                          [0, 0, 0]]


# -- distributions ---------------------------------------------------------------------------
def test_bernoulli_matches_torch():
    logits = torch.randn(5, 4) * 3
    x = (torch.rand(5, 4) < 0.5).float()
    ours = Bernoulli(logits).log_prob(x)
    ref = td.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(ours, ref)
    g = torch.Generator().manual_seed(0)
    s = Bernoulli(torch.full((20000, 1), 1.0)).sample(g)
    assert abs(float(s.mean()) - torch.sigmoid(torch.tensor(1.0)).item()) < 0.02
    assert BernoulliHead()(logits).mean.shape == (5, 4)


@pytest.mark.parametrize("variance", ["fixed", "learned", "predicted"])
def test_gaussian_matches_torch(variance):
    torch.manual_seed(0)
    head = GaussianHead(3, variance=variance, scale=0.7)
    out = torch.randn(6, 3 * head.n_params)
    dist = head(out)
    x = torch.randn(6, 3)
    loc = out[:, :3]
    scale = (torch.exp(out[:, 3:]) if variance == "predicted" else torch.full((6, 3), 0.7))
    torch.testing.assert_close(dist.log_prob(x), td.Normal(loc, scale).log_prob(x).sum(-1))
    if variance == "learned":
        dist.log_prob(x).sum().backward()
        assert head.log_scale.grad is not None
    s = Gaussian(torch.full((40000, 1), 2.0), scale=0.5).sample(torch.Generator().manual_seed(0))
    assert abs(float(s.mean()) - 2.0) < 0.02 and abs(float(s.std()) - 0.5) < 0.02


def test_categorical_matches_torch():
    torch.manual_seed(0)
    out = torch.randn(4, 3 * 5)
    dist = CategoricalHead(5)(out)
    x = torch.randint(0, 5, (4, 3))
    ref = td.Categorical(logits=out.reshape(4, 3, 5)).log_prob(x).sum(-1)
    torch.testing.assert_close(dist.log_prob(x), ref)
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    s = Categorical(logits.expand(30000, 3)[:, None, :]).sample(torch.Generator().manual_seed(0))
    freq = torch.bincount(s.flatten(), minlength=3).float() / s.numel()
    torch.testing.assert_close(freq, torch.tensor([0.2, 0.5, 0.3]), atol=0.01, rtol=0)
    torch.testing.assert_close(Categorical(logits).mean, torch.tensor([1.1]))


@pytest.mark.parametrize("loc,log_scale", [(0.3, -3.0), (0.0, -1.0), (1.2, -5.0), (0.5, 2.0),
                                           (0.77, -9.0)])
def test_discretized_logistic_sums_to_one_and_matches_cdf(loc, log_scale):
    B = 256
    x = torch.arange(B, dtype=torch.float64) / (B - 1)
    d = DiscretizedLogistic(torch.full((B, 1), loc, dtype=torch.float64),
                            torch.full((B, 1), log_scale, dtype=torch.float64), n_bins=B)
    p = torch.exp(d.log_prob(x[:, None]))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)
    # against the logistic CDF directly (the naive difference, fine in float64 here)
    edges = torch.cat([x - 0.5 / (B - 1), x[-1:] + 0.5 / (B - 1)])
    F = torch.sigmoid((edges - loc) / math.exp(log_scale))
    naive = torch.cat([F[1:2], F[2:-1] - F[1:-2], 1 - F[-2:-1]])
    torch.testing.assert_close(p, naive, atol=1e-12, rtol=1e-6)
    mean = float((p * x).sum())
    assert float(d.mean[0, 0]) == pytest.approx(mean, abs=1e-9)


def test_discretized_logistic_is_stable_and_samples_on_the_grid():
    d = DiscretizedLogisticHead(n_bins=16)(torch.tensor([[0.5, -30.0], [0.0, 3.0]]))
    x = torch.tensor([[0.0], [1.0]])
    lp = d.log_prob(x)
    assert torch.isfinite(lp).all()
    s = d.sample(torch.Generator().manual_seed(0))
    k = s * 15
    torch.testing.assert_close(k, torch.round(k))
    assert bool(((s >= 0) & (s <= 1)).all())
