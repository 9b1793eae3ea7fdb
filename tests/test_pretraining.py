"""The pre-training versus random-initialisation experiment, with stand-in encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from unsup.metrics import build_classifier, pretraining_experiment
from unsup.metrics.pretraining import finetune, resolve_encoder


def _encoder(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 8), nn.Sigmoid(), nn.Linear(8, 4))


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class = sign pattern of the first 2 of 12 features; the rest is noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    X = rng.normal(0, 1.0, size=(n, 12))
    X[:, 0] = np.where(y % 2 == 0, 1.0, -1.0) + rng.normal(0, 0.1, size=n)
    X[:, 1] = np.where(y // 2 == 0, 1.0, -1.0) + rng.normal(0, 0.1, size=n)
    return X.astype(np.float32), y


def test_pretrained_classifier_starts_from_encoder_weights() -> None:
    enc = _encoder()
    model = build_classifier(enc, 12, 3, pretrained=True, random_state=0)
    enc_params = list(enc.parameters())
    hid_params = list(model[0].parameters())
    assert len(enc_params) == len(hid_params) == 4
    for p, q in zip(enc_params, hid_params, strict=True):
        assert torch.equal(p, q)
        assert p.data_ptr() != q.data_ptr()  # a copy, not shared storage
    assert model[1].in_features == 4 and model[1].out_features == 3
    # training the classifier leaves the encoder untouched
    before = [p.clone() for p in enc.parameters()]
    X = torch.randn(20, 12)
    y = torch.randint(0, 3, (20,))
    finetune(model, X, y, steps=5, batch_size=8)
    assert all(torch.equal(a, b) for a, b in zip(before, enc.parameters(), strict=True))
    assert not torch.equal(model[0][0].weight, enc[0].weight)


def test_random_classifier_is_reinitialised_same_shape_same_head() -> None:
    enc = _encoder()
    pre = build_classifier(enc, 12, 3, pretrained=True, random_state=7)
    rnd = build_classifier(enc, 12, 3, pretrained=False, random_state=7)
    rnd2 = build_classifier(enc, 12, 3, pretrained=False, random_state=7)
    rnd3 = build_classifier(enc, 12, 3, pretrained=False, random_state=8)
    for p, q in zip(enc.parameters(), rnd[0].parameters(), strict=True):
        assert p.shape == q.shape and not torch.equal(p, q)
    for p, q in zip(rnd.parameters(), rnd2.parameters(), strict=True):
        assert torch.equal(p, q)  # seeded
    assert not torch.equal(rnd[0][0].weight, rnd3[0][0].weight)
    # both arms share the output layer initialisation for a given seed
    assert torch.equal(pre[1].weight, rnd[1].weight) and torch.equal(pre[1].bias, rnd[1].bias)
    assert str(pre[0]) == str(rnd[0])  # same architecture


def test_resolve_encoder_from_estimator() -> None:
    enc = _encoder()

    class _Stacked:
        def encoder_module(self) -> nn.Module:
            return enc

    assert resolve_encoder(_Stacked()) is enc
    with pytest.raises(TypeError, match="encoder_module"):
        resolve_encoder(object())


def test_experiment_runs_and_reports_both_arms() -> None:
    Xtr, ytr = _data(300, 0)
    Xte, yte = _data(200, 1)
    enc = _encoder()
    before = [p.clone() for p in enc.parameters()]
    rows = pretraining_experiment(enc, Xtr, ytr, Xte, yte, n_labels=(20, None), seeds=(0, 1),
                                  steps=20, batch_size=16)
    assert [r["n_labels"] for r in rows] == [20, 300]
    for r in rows:
        assert len(r["pretrained"]) == len(r["random"]) == 2
        for a in r["pretrained"] + r["random"]:
            assert 0.0 <= a <= 1.0
        assert r["winner"] in ("pretrained", "random", "tie")
        assert r["gain"] == pytest.approx(r["pretrained_mean"] - r["random_mean"])
        assert r["init_check"]["pretrained"] == [0.0, 0.0]  # weights copied exactly
        assert all(d > 0 for d in r["init_check"]["random"])
    assert all(torch.equal(a, b) for a, b in zip(before, enc.parameters(), strict=True))


def test_good_pretrained_encoder_wins() -> None:
    """An encoder that already extracts the informative features must beat random init."""
    Xtr, ytr = _data(400, 0)
    Xte, yte = _data(400, 1)
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(12, 2), nn.Tanh())
    with torch.no_grad():  # pick out features 0 and 1: a perfect "pretrained" representation
        enc[0].weight.zero_()
        enc[0].weight[0, 0] = 10.0
        enc[0].weight[1, 1] = 10.0
        enc[0].bias.zero_()
    rows = pretraining_experiment(enc, Xtr, ytr, Xte, yte, n_labels=(20,), seeds=(0, 1, 2),
                                  steps=150, batch_size=20, lr=1e-2)
    r = rows[0]
    assert r["pretrained_mean"] >= 0.95
    assert r["winner"] == "pretrained" and r["gain"] > 0.1


def test_pretraining_table_renders() -> None:
    from unsup.report import pretraining_table

    rows = [{"n_labels": 100, "pretrained_mean": 0.8, "pretrained_std": 0.01,
             "random_mean": 0.7, "random_std": 0.02, "gain": 0.1, "winner": "pretrained"}]
    html = pretraining_table(rows).to_html()
    assert "0.8000 ± 0.0100" in html and "0.7000 ± 0.0200" in html and "pretrained" in html
