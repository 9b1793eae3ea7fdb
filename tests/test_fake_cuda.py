"""Every registered model on an emulated CUDA device (``tests/_fake_cuda.py``): no GPU runs
these tests, so device mix-ups (a CPU tensor beside a cuda one, ``.numpy()`` of a cuda tensor,
a CPU generator drawing on the GPU) are caught here rather than on the first lent GPU. Each
model fits with ``device="cuda"``, answers every capability, samples, writes its report with no
section skipped, saves and loads (on the CPU and on the emulated GPU). The real CUDA run is
``tests/test_cuda.py``."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _fake_cuda import DeviceError, fake_cuda, on_cuda
from conftest import test_params_for, toy_data_for

import unsup
from unsup.registry import model_specs
from unsup.report.sections import model_report

_CAPS = ("transform", "predict", "predict_proba", "score_samples", "score", "log_likelihood")


def test_the_stand_in_enforces_cudas_rules():
    """The emulation can fail: each rule it claims raises."""
    available, generator = torch.cuda.is_available, torch.Generator
    with fake_cuda():
        a = torch.ones(3).to("cuda")
        assert a.is_cuda and a.device.type == "cuda" and on_cuda(a * 2)
        with pytest.raises(DeviceError, match="same device"):
            a + torch.ones(3)
        assert on_cuda(a + torch.tensor(1.0))  # a 0-dim CPU tensor is allowed
        with pytest.raises(TypeError, match="convert cuda:0 device type tensor to numpy"):
            a.numpy()
        with pytest.raises(DeviceError, match="generator"):
            torch.rand(3, generator=torch.Generator(), device="cuda")
        g = torch.Generator("cuda")
        assert on_cuda(torch.rand(3, generator=g, device="cuda"))
        assert not on_cuda(a.cpu())
        np.testing.assert_array_equal(a.cpu().numpy(), np.ones(3))
        idx = torch.tensor([0, 2]).to("cuda")
        with pytest.raises(DeviceError, match="indices"):
            torch.ones(3)[idx]
        assert on_cuda(a[torch.tensor([0, 2])])  # CPU indices into a cuda tensor: allowed
    assert (torch.cuda.is_available, torch.Generator) == (available, generator)  # undone


def _square(X: object) -> tuple[int, int] | None:
    """``(s, s)`` when the rows have s² columns: the report's image sections then run too."""
    d = np.shape(X)[1] if len(np.shape(X)) == 2 else 0
    s = math.isqrt(d)
    return (s, s) if d and s * s == d else None


@pytest.mark.parametrize("spec", model_specs(), ids=lambda s: s.name)
def test_fits_and_answers_on_an_emulated_gpu(spec, tmp_path):
    X = toy_data_for(spec.cls)
    with fake_cuda(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = spec.cls(**{**test_params_for(spec.cls), "device": "cuda"}).fit(X)
        for cap in _CAPS:
            fn = getattr(model, cap, None)
            if callable(fn):
                fn(X[:16])
        if callable(getattr(model, "inverse_transform", None)) and callable(
                getattr(model, "transform", None)):
            model.inverse_transform(model.transform(X[:5]))
        if callable(getattr(model, "sample", None)):
            model.sample(3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model_report(model, X[:32], image_shape=_square(X))
        skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
        assert not skipped, skipped  # a section's error becomes a note: none may happen here
        path = tmp_path / "m.safetensors"
        model.save(path)
        assert unsup.load(path, device="cpu").get_params()["device"] == "cpu"
        assert unsup.load(path).get_params()["device"] == "cuda"
