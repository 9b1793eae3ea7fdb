"""CUDA paths of every registered model (run by ``bench/gpu_check.sh``; skipped without CUDA).

Each model fits on the GPU with its small test parameters, gives finite outputs, and a model
saved from the GPU loads on the CPU (``unsup.load(path, device="cpu")``) with the same outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import test_params_for, toy_data_for

from unsup.registry import model_specs

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

_CAPS = ("transform", "predict", "predict_proba", "score_samples")


def _outputs(model, X):
    out = {}
    for name in _CAPS:
        fn = getattr(model, name, None)
        if callable(fn):
            out[name] = np.asarray(fn(X), dtype=np.float64)
    return out


@pytest.mark.parametrize("spec", model_specs(), ids=lambda s: s.name)
def test_fits_on_cuda_and_loads_on_cpu(spec, tmp_path):
    import unsup

    params = {**test_params_for(spec.cls), "device": "cuda"}
    X = toy_data_for(spec.cls)
    model = spec.cls(**params).fit(X)
    ref = _outputs(model, X[:32])
    for name, v in ref.items():
        assert np.isfinite(v[~np.isnan(v)]).all(), f"{spec.name}.{name} is not finite on CUDA"
    path = tmp_path / "m.safetensors"
    model.save(path)
    back = unsup.load(path, device="cpu")
    assert back.get_params()["device"] == "cpu"
    got = _outputs(back, X[:32])
    again = _outputs(model, X[:32])
    for name in ref:
        if not np.array_equal(ref[name], again[name], equal_nan=True):
            continue  # a stochastic estimate (sampled bound or AIS): not a fixed output
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-3, atol=1e-4,
                                   err_msg=f"{spec.name}.{name}: GPU model vs loaded on CPU")


def test_gradient_engine_amp_on_cuda():
    from unsup.autoencoders import Autoencoder

    X = toy_data_for(Autoencoder)
    ae = Autoencoder(n_components=2, hidden_layer_sizes=(8,), epochs=3, batch_size=32,
                     amp="auto", device="cuda", random_state=0).fit(X)
    losses = [h["loss"] for h in ae.history_]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize("amp", ["auto", "bf16"])
def test_glow_image_flow_on_cuda(amp, tmp_path):
    """Glow on 8-bit images takes its fused steps (the toy data of the test above make a vector
    flow): trains on the GPU with amp off by default and with bf16 asked for (the steps leave
    autocast), and its bound is the CPU's for the same weights."""
    import unsup
    from unsup.flows import Glow

    rng = np.random.default_rng(0)
    X = (rng.integers(0, 256, (96, 64)) / 255).astype(np.float32)
    est = Glow(n_levels=1, n_steps=2, hidden_channels=8, epochs=2, batch_size=32, amp=amp,
               device="cuda", random_state=0).fit(X)
    assert est.module_._runs and all(np.isfinite(h["loss"]) for h in est.history_)
    path = tmp_path / "g.safetensors"
    est.save(path)
    back = unsup.load(path, device="cpu")
    gpu, cpu = est.log_likelihood(X[:32]), back.log_likelihood(X[:32])
    assert abs(gpu.bits_per_dim - cpu.bits_per_dim) < 1e-3
