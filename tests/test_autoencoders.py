"""The autoencoder family: losses, PCA subspace, noise, sparsity, stacking, errors, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.base import clone

import unsup
from unsup.autoencoders import (
    Autoencoder,
    DenoisingAutoencoder,
    SparseAutoencoder,
    StackedAutoencoder,
)
from unsup.autoencoders.denoising import corrupt
from unsup.decomposition import PCA
from unsup.train import TrainingDivergedError

torch.set_num_threads(1)
FAST = dict(device="cpu", random_state=0)


@pytest.fixture(scope="module")
def unit() -> np.ndarray:
    from unsup.data import load

    X = load("digits").X
    return (X / X.max()).astype(np.float32)


def test_linear_autoencoder_spans_the_pca_subspace():
    rng = np.random.RandomState(0)
    Z = rng.standard_normal((600, 3)) * np.array([3.0, 2.5, 2.0])
    X = (Z @ rng.standard_normal((3, 10)) + 0.05 * rng.standard_normal((600, 10)) + 2.0)
    ae = Autoencoder(3, hidden_layer_sizes=(), activation="linear", loss="mse", epochs=80,
                     batch_size=100, learning_rate=3e-2, **FAST).fit(X.astype(np.float32))
    assert ae.loss_ == "mse"
    W = ae.module_.decoder[0].weight.detach().numpy()  # (10, 3): the decoder's column space
    pca = PCA(3, svd_solver="full", device="cpu").fit(X)
    assert subspace_angles(W, pca.components_.T).max() < 0.01
    # and a random 3-D subspace is far from it (the test can fail)
    assert subspace_angles(rng.standard_normal((10, 3)), pca.components_.T).max() > 0.3


def test_loss_follows_the_data(unit):
    assert Autoencoder(4, epochs=1, **FAST).fit(unit[:100]).loss_ == "bce"
    assert Autoencoder(4, epochs=1, **FAST).fit(unit[:100] * 2 - 1).loss_ == "mse"
    with pytest.raises(ValueError, match=r"bce.*\[0, 1\]"):
        Autoencoder(4, loss="bce", epochs=1, **FAST).fit(unit[:100] * 3)


def test_transform_inverse_score_and_learning(unit):
    ae = Autoencoder(8, hidden_layer_sizes=(32,), epochs=15, batch_size=64, **FAST)
    H = ae.fit_transform(unit)
    assert H.shape == (len(unit), 8)
    R = ae.inverse_transform(H)
    assert R.shape == unit.shape and R.min() >= 0 and R.max() <= 1
    np.testing.assert_allclose(R, ae.reconstruct(unit), atol=1e-5)
    assert ae.history_[-1]["loss"] < ae.history_[0]["loss"]
    assert ae.score(unit) == pytest.approx(-ae.score_samples_reconstruction(unit).mean())
    assert ae.score(unit) > Autoencoder(8, epochs=1, max_steps=1, **FAST).fit(unit).score(unit)


def test_conv_autoencoder_shapes(unit):
    ae = Autoencoder(6, architecture="conv", conv_channels=(4, 8), epochs=1, **FAST).fit(unit)
    assert ae.transform(unit[:5]).shape == (5, 6)
    assert ae.reconstruct(unit[:5]).shape == (5, 64)
    with pytest.raises(ValueError, match="image_shape"):
        Autoencoder(6, architecture="conv", epochs=1, **FAST).fit(unit[:, :60])


def test_corruptions():
    g = torch.Generator().manual_seed(0)
    x = torch.full((200, 100), 0.5)
    m = corrupt(x, "masking", 0.3, g)
    assert abs(float((m == 0).float().mean()) - 0.3) < 0.02
    sp = corrupt(x, "salt_and_pepper", 0.2, g)
    assert abs(float((sp == 1).float().mean()) - 0.1) < 0.02
    assert abs(float((sp == 0).float().mean()) - 0.1) < 0.02
    gs = corrupt(x, "gaussian", 0.1, g)
    assert abs(float((gs - x).std()) - 0.1) < 0.01


@pytest.mark.parametrize("noise", ["masking", "gaussian", "salt_and_pepper"])
def test_denoising_autoencoder_denoises(unit, noise):
    dae = DenoisingAutoencoder(16, noise=noise, noise_level=0.3, hidden_layer_sizes=(64,),
                               epochs=15, batch_size=64, **FAST).fit(unit)
    g = torch.Generator().manual_seed(1)
    noisy = corrupt(torch.from_numpy(unit), noise, 0.3, g).clamp(0, 1).numpy()
    # reconstructing from the corrupted input gets closer to the clean image than the input
    err_out = ((dae.reconstruct(noisy) - unit) ** 2).sum(1).mean()
    err_in = ((noisy - unit) ** 2).sum(1).mean()
    assert err_out < err_in


def test_sparse_autoencoder_kl_and_l1(unit):
    dense = SparseAutoencoder(100, sparsity_weight=0.0, epochs=10, **FAST).fit(unit)
    sparse = SparseAutoencoder(100, sparsity_target=0.05, sparsity_weight=3.0, epochs=10,
                               **FAST).fit(unit)
    # the penalty pulls the mean activation from ~0.7 towards ρ = 0.05
    assert sparse.transform(unit).mean() < 0.3 * dense.transform(unit).mean()
    assert sparse.transform(unit).mean() < 0.2
    l1 = SparseAutoencoder(100, sparsity="l1", code_activation="relu", sparsity_weight=0.1,
                           epochs=5, **FAST).fit(unit)
    assert (l1.transform(unit) == 0).mean() > 0.3
    with pytest.raises(ValueError, match="sigmoid"):
        SparseAutoencoder(10, code_activation="relu", epochs=1, **FAST).fit(unit)


def test_stacked_autoencoder_pretrains_and_finetunes(unit, tmp_path):
    sae = StackedAutoencoder([32, 16, 4], pretrain_epochs=2, epochs=2, **FAST).fit(unit)
    assert len(sae.pretrain_history_) == 3 and len(sae.history_) == 2
    assert sae.transform(unit).shape == (len(unit), 4)
    enc = sae.encoder_module()
    assert [type(m).__name__ for m in enc] == ["Linear", "Sigmoid", "Linear", "Sigmoid",
                                               "Linear"]
    with torch.no_grad():
        np.testing.assert_allclose(enc(torch.from_numpy(unit)).numpy(), sae.transform(unit),
                                   atol=1e-5)
    pre = sae.encoder_module(pretrained_only=True)
    assert not torch.equal(pre[0].weight, enc[0].weight)
    sae.save(tmp_path / "sae.safetensors")
    back = unsup.load(tmp_path / "sae.safetensors")
    np.testing.assert_array_equal(back.transform(unit), sae.transform(unit))
    np.testing.assert_array_equal(back.encoder_module(pretrained_only=True)[0].weight.detach(),
                                  pre[0].weight.detach())
    dae = StackedAutoencoder([8, 4], pretrain="dae", pretrain_epochs=1, epochs=1,
                             **FAST).fit(unit)
    assert dae.transform(unit).shape[1] == 4
    assert StackedAutoencoder("hinton2006")._sizes() == [1000, 500, 250, 30]


def test_pretraining_helps_the_stacked_autoencoder(unit):
    kw = dict(epochs=3, batch_size=64, **FAST)
    pre = StackedAutoencoder([32, 16, 4], pretrain_epochs=5, **kw).fit(unit)
    rnd = StackedAutoencoder([32, 16, 4], pretrain="none", **kw).fit(unit)
    assert pre.score(unit) > rnd.score(unit)


@pytest.mark.parametrize("make,msg", [
    (lambda: Autoencoder(100, epochs=1, **FAST), "larger than the input"),
    (lambda: StackedAutoencoder([32, 100], epochs=1, **FAST), "larger than the input"),
    (lambda: StackedAutoencoder([32, 0], epochs=1, **FAST), "positive integers"),
    (lambda: StackedAutoencoder([], epochs=1, **FAST), "positive integers"),
    (lambda: StackedAutoencoder("hinton2007", epochs=1, **FAST), "preset"),
    (lambda: Autoencoder(4, activation="swishy", epochs=1, **FAST), "activation"),
    (lambda: DenoisingAutoencoder(4, noise="pink", epochs=1, **FAST), "noise"),
    (lambda: DenoisingAutoencoder(4, noise_level=1.5, epochs=1, **FAST), "noise_level"),
])
def test_clear_errors(unit, make, msg):
    with pytest.raises(ValueError, match=msg):
        make().fit(unit)


def test_nan_during_training_is_reported():
    X = (np.random.RandomState(0).standard_normal((100, 8)) * 1e4).astype(np.float32)
    with pytest.raises(TrainingDivergedError, match="step"):
        Autoencoder(2, optimizer="sgd", learning_rate=100.0, epochs=5, batch_size=10,
                    **FAST).fit(X)


@pytest.mark.parametrize("cls", [Autoencoder, DenoisingAutoencoder, SparseAutoencoder])
def test_save_load_clone(cls, unit, tmp_path):
    est = cls(8, epochs=1, **FAST).fit(unit)
    est.save(tmp_path / "m.safetensors")
    back = unsup.load(tmp_path / "m.safetensors")
    assert type(back) is cls
    np.testing.assert_array_equal(back.transform(unit[:10]), est.transform(unit[:10]))
    assert back.score(unit) == pytest.approx(est.score(unit))
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(ValueError, match="features"):
        est.transform(unit[:, :10])


def test_same_seed_same_model(unit):
    a = DenoisingAutoencoder(4, epochs=2, **FAST).fit(unit)
    b = DenoisingAutoencoder(4, epochs=2, **FAST).fit(unit)
    np.testing.assert_array_equal(a.transform(unit), b.transform(unit))


@pytest.mark.parametrize("model,opts", [
    ("autoencoder", ["--n-components", "4", "--hidden-layer-sizes", "[16]"]),
    ("pca", ["--n-components", "4"]),
    ("stacked-autoencoder", ["--layer-sizes", "[16, 4]", "--pretrain-epochs", "1"]),
])
def test_cli_fit_encode_report(tmp_path, model, opts):
    from unsup.cli import main

    run = tmp_path / model
    extra = [] if model == "pca" else ["--epochs", "1", "--device", "cpu"]
    assert main(["fit", model, "--data", "digits", "--out", str(run), "-q", *opts, *extra]) == 0
    assert main(["encode", str(run), "--data", "digits", "--out", str(tmp_path / "c.npy")]) == 0
    codes = np.load(tmp_path / "c.npy")
    assert codes.shape == (1797, 4)
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "Reconstructions" in html and "First-layer filters" in html


def test_cli_clear_error_for_bce_on_real_data(tmp_path, capsys):
    from unsup.cli import main

    rc = main(["fit", "autoencoder", "--data", "blobs", "--out", str(tmp_path / "r"), "-q",
               "--n-components", "1", "--loss", "bce", "--epochs", "1"])
    assert rc == 2
    assert "[0, 1]" in capsys.readouterr().err
