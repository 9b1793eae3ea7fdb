"""The estimator protocol: devices, seeding, parameters, fitted-state checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from unsup.base import BaseEstimator, make_generator, resolve_device
from unsup.cluster import GaussianMixture, KMeans, MiniBatchKMeans

HAS_CUDA = torch.cuda.is_available()
X = np.random.RandomState(0).rand(60, 3)


def test_resolve_device_auto():
    expected = "cuda" if HAS_CUDA else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device is available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="no CUDA device is available"):
        KMeans(2, device="cuda").fit(X)
    with pytest.raises(ValueError, match="no CUDA device is available"):
        GaussianMixture(2, device="cuda").fit(X)


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="device='tpu0' is not understood"):
        resolve_device("tpu0")
    with pytest.raises(ValueError, match="not understood"):
        KMeans(2, device="gpu").fit(X)
    for other in ("mps", "meta", torch.device("xpu")):  # valid torch devices we do not run on
        with pytest.raises(ValueError, match="is not supported; use 'auto', 'cpu' or 'cuda'"):
            resolve_device(other)


def test_make_generator_is_reproducible():
    cpu = torch.device("cpu")
    a = torch.rand(5, generator=make_generator(3, cpu))
    b = torch.rand(5, generator=make_generator(3, cpu))
    c = torch.rand(5, generator=make_generator(4, cpu))
    assert torch.equal(a, b) and not torch.equal(a, c)
    rs = np.random.RandomState(3)
    d = torch.rand(5, generator=make_generator(rs, cpu))
    e = torch.rand(5, generator=make_generator(rs, cpu))  # the RandomState advanced
    assert not torch.equal(d, e)
    assert torch.equal(d, torch.rand(5, generator=make_generator(np.random.RandomState(3), cpu)))
    torch.rand(5, generator=make_generator(None, cpu))  # None: fresh entropy, still works


@pytest.mark.parametrize("make", [
    lambda rs: KMeans(4, n_init=2, random_state=rs, device="cpu"),
    lambda rs: MiniBatchKMeans(4, batch_size=16, random_state=rs, device="cpu"),
    lambda rs: GaussianMixture(3, init="random", random_state=rs, device="cpu"),
], ids=["KMeans", "MiniBatchKMeans", "GaussianMixture"])
def test_random_state_reproducible(make):
    attr = "means_" if isinstance(make(0), GaussianMixture) else "cluster_centers_"
    a = getattr(make(5).fit(X), attr)
    b = getattr(make(5).fit(X), attr)
    np.testing.assert_array_equal(a, b)
    c = getattr(make(np.random.RandomState(5)).fit(X), attr)
    d = getattr(make(np.random.RandomState(5)).fit(X), attr)
    np.testing.assert_array_equal(c, d)


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans, GaussianMixture])
def test_params_protocol(cls):
    est = cls(device="cpu", random_state=1)
    params = est.get_params()
    assert params["device"] == "cpu" and params["random_state"] == 1
    assert "verbose" in params
    c = clone(est)
    assert c is not est and c.get_params() == params
    assert isinstance(est, BaseEstimator)
    # __init__ stores values unchanged, even invalid ones: validation happens in fit
    bad = cls(device="nonsense", random_state="x")
    assert bad.device == "nonsense" and bad.random_state == "x"


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans, GaussianMixture])
def test_fitted_state(cls):
    est = cls(2, device="cpu", random_state=0)
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted"):
        est.predict(X)
    assert est.fit(X) is est
    assert est.n_features_in_ == 3
    arrays, values = est._get_state()
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    assert "n_features_in_" in values and all(k.endswith("_") for k in [*arrays, *values])
    # refitting on other data resets the learned state
    est.fit(np.random.RandomState(1).rand(30, 5))
    assert est.n_features_in_ == 5
    assert est.predict(np.zeros((2, 5))).shape == (2,)


@pytest.mark.parametrize("cls", [KMeans, MiniBatchKMeans, GaussianMixture])
def test_failed_first_fit_leaves_estimator_unfitted(cls):
    est = cls(5, device="cpu")
    with pytest.raises(ValueError, match="should be >= n_"):
        est.fit(X[:3])  # validated X (n_features_in_ is set), then refused
    with pytest.raises(NotFittedError):
        est.predict(X[:3])
