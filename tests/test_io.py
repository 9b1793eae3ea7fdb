"""Model files: safetensors + JSON, integrity-checked, never unpickled."""

from __future__ import annotations

import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError

import unsup
from unsup import io as uio
from unsup.cluster import GaussianMixture, KMeans, MiniBatchKMeans
from unsup.io import ModelFileError


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    X, _ = make_blobs(300, centers=3, n_features=4, random_state=0)
    return X


def _fitted(name: str, X: np.ndarray):
    if name == "KMeans":
        return KMeans(3, n_init=2, random_state=0, device="cpu").fit(X)
    if name == "KMeans-init-array":
        return KMeans(3, init=X[:3].copy(), device="cpu").fit(X)
    if name == "MiniBatchKMeans":
        return MiniBatchKMeans(3, batch_size=64, random_state=0, device="cpu").fit(X)
    ct = name.split("-")[1]
    return GaussianMixture(3, covariance_type=ct, random_state=0, device="cpu").fit(X)


MODELS = ["KMeans", "KMeans-init-array", "MiniBatchKMeans", "GaussianMixture-full",
          "GaussianMixture-tied", "GaussianMixture-diag", "GaussianMixture-spherical"]


def _fitted_attrs(est) -> dict:
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert type(a) is type(b) and a == b, (a, b)


@pytest.mark.parametrize("name", MODELS)
def test_round_trip(name, X, tmp_path):
    est = _fitted(name, X)
    path = tmp_path / "model.safetensors"
    est.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]  # no temporary file left
    loaded = unsup.load(path)
    assert type(loaded) is type(est)
    p0, p1 = est.get_params(), loaded.get_params()
    assert p0.keys() == p1.keys()
    for k in p0:
        _assert_same(p0[k], p1[k])
    a0, a1 = _fitted_attrs(est), _fitted_attrs(loaded)
    assert a0.keys() == a1.keys()
    for k in a0:
        _assert_same(a0[k], a1[k])
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.score(X) == est.score(X)
    if name.startswith("GaussianMixture"):
        assert loaded.history_ == est.history_ and len(loaded.history_) > 1
        np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    else:
        np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    # a directory holding model.safetensors loads too; unsup.save is the same writer
    unsup.save(loaded, tmp_path / "again.safetensors")
    assert type(unsup.load(tmp_path)) is type(est)


def test_loaded_minibatch_continues_partial_fit(X, tmp_path):
    mb = MiniBatchKMeans(3, random_state=0, device="cpu")
    for s in range(0, 200, 50):
        mb.partial_fit(X[s : s + 50])
    mb.save(tmp_path / "m.safetensors")
    loaded = unsup.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.counts_, mb.counts_)
    mb.partial_fit(X[200:250])
    loaded.partial_fit(X[200:250])
    np.testing.assert_allclose(loaded.cluster_centers_, mb.cluster_centers_, rtol=1e-12)
    assert loaded.n_steps_ == mb.n_steps_ == 5


def test_file_is_plain_safetensors(X, tmp_path):
    path = tmp_path / "km.safetensors"
    est = _fitted("KMeans", X)
    est.save(path)
    tensors = load_file(str(path))  # any safetensors reader can open it
    np.testing.assert_array_equal(tensors["fitted.cluster_centers_"], est.cluster_centers_)
    assert all(k.startswith(("fitted.", "param.")) for k in tensors)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert meta["format"] == "unsup" and meta["format_version"] == str(uio.FORMAT_VERSION)
    assert len(meta["sha256"]) == 64
    doc = json.loads(meta["json"])
    assert doc["class"] == "KMeans" and doc["params"]["n_clusters"] == 3
    assert doc["library_version"] == unsup.__version__
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    json.loads(raw[8 : 8 + n])  # the header is JSON, the rest raw tensor bytes
    assert b"pickle" not in raw and b"\x80\x04" not in raw[: 8 + n]


def test_loading_never_unpickles(X, tmp_path, monkeypatch):
    path = tmp_path / "gm.safetensors"
    _fitted("GaussianMixture-full", X).save(path)

    def forbidden(*a, **k):
        raise AssertionError("pickle used while loading a model")

    for mod, attr in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                      (torch, "load"), (np, "load")]:
        monkeypatch.setattr(mod, attr, forbidden)
    est = unsup.load(path)
    assert est.predict(X).shape == (len(X),)


# -- refused files ------------------------------------------------------------------------


@pytest.fixture()
def saved(X, tmp_path):
    path = tmp_path / "model.safetensors"
    _fitted("GaussianMixture-diag", X).save(path)
    return path


def _header_len(raw: bytes) -> int:
    return struct.unpack("<Q", raw[:8])[0]


@pytest.mark.parametrize("keep", [0, 4, 8, 50, -1, -100])
def test_truncated_file(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep] if keep >= 0 else raw[:keep])
    with pytest.raises(ModelFileError):
        unsup.load(saved)


def test_tampered_tensor_byte(saved):
    raw = bytearray(saved.read_bytes())
    start = 8 + _header_len(raw)
    pos = start + (len(raw) - start) // 2
    raw[pos] ^= 0x01
    saved.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="integrity"):
        unsup.load(saved)


def test_tampered_json_value(saved):
    raw = saved.read_bytes()
    # change a fitted value inside the embedded JSON, keeping the file well-formed
    old = b'n_features_in_\\": 4'
    assert raw.count(old) == 1
    saved.write_bytes(raw.replace(old, b'n_features_in_\\": 5'))
    with pytest.raises(ModelFileError, match="integrity"):
        unsup.load(saved)


def test_tampered_json_syntax(saved):
    raw = bytearray(saved.read_bytes())
    raw[8] = ord("x")  # the header's opening brace
    saved.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError):
        unsup.load(saved)


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.ones((3, 3), dtype=np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="not an unsup model file"):
        unsup.load(path)
    save_file({"weight": np.ones(3, dtype=np.float32)}, str(path),
              metadata={"format": "unsup", "format_version": "1", "json": "{}"})
    with pytest.raises(ModelFileError, match="integrity"):
        unsup.load(path)


def _write(path, meta: dict, tensors: dict, version: str = "1") -> None:
    meta_json = json.dumps(meta, sort_keys=True)
    save_file(tensors, str(path), metadata={
        "format": "unsup", "format_version": version, "json": meta_json,
        "sha256": uio._digest(meta_json, tensors)})


@pytest.mark.parametrize("change,msg", [
    (lambda m: m.update({"class": "os.system"}), "unknown estimator class"),
    (lambda m: m["params"].update({"evil": 1}), "unknown parameters"),
    (lambda m: m["fitted"].update({"__class__": "x"}), "unexpected fitted attributes"),
    (lambda m: m.update({"fitted": 3}), "malformed"),
    # the same constraints as fit, checked at load
    (lambda m: m["params"].update({"n_clusters": "three"}), "n_clusters"),
    (lambda m: m["params"].update({"n_clusters": 3}), r"cluster_centers_ has shape \(2, 2\)"),
    (lambda m: m["fitted"].update({"n_features_in_": 3}), "parameters imply"),
])
def test_crafted_file_with_valid_digest(change, msg, tmp_path):
    """Even with a correct digest (it is a checksum, not a signature), odd content is refused
    with ModelFileError, never an arbitrary exception or an arbitrary attribute."""
    meta = {"class": "KMeans", "library_version": "0", "params": {"n_clusters": 2},
            "fitted": {"n_features_in_": 2, "inertia_": 1.0}}
    tensors = {"fitted.cluster_centers_": np.zeros((2, 2))}
    change(meta)
    path = tmp_path / "crafted.safetensors"
    _write(path, meta, tensors)
    with pytest.raises(ModelFileError, match=msg):
        unsup.load(path)


def test_newer_format_version(tmp_path):
    path = tmp_path / "future.safetensors"
    _write(path, {"class": "KMeans", "params": {}, "fitted": {}}, {}, version="99")
    with pytest.raises(ModelFileError, match="upgrade"):
        unsup.load(path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, os.urandom(4096),
                                     b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......"])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        unsup.load(path)


def test_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        unsup.load(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        unsup.load(tmp_path)  # a directory without a model file



def test_save_into_missing_directory_says_so(tmp_path):
    from unsup.energy import BernoulliRBM

    rbm = BernoulliRBM(3, n_updates=5, device="cpu", random_state=0).fit(
        np.eye(4, dtype=np.float32).repeat(5, 0))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rbm.save(tmp_path / "no" / "such" / "dir" / "m.safetensors")
    assert not (tmp_path / "no").exists()


# -- what cannot be saved -------------------------------------------------------------------


@pytest.mark.parametrize("est", [KMeans(2), MiniBatchKMeans(2), GaussianMixture(2)],
                         ids=lambda e: type(e).__name__)
def test_saving_unfitted_estimator_is_refused(est, tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(NotFittedError):
        est.save(path)
    assert not path.exists()


def test_unsaveable_values_are_refused(X, tmp_path):
    est = KMeans(3, n_init=1, random_state=np.random.RandomState(0), device="cpu").fit(X)
    with pytest.raises(TypeError, match="random_state"):
        est.save(tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="not a registered unsup model"):
        unsup.save(object(), tmp_path / "o.safetensors")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["KMeans", "GaussianMixture-full"])
def test_model_trained_on_gpu_loads_on_cpu(name, X, tmp_path):
    """A file whose params say device="cuda" (as written on a GPU machine) loads here:
    on the CPU when no GPU is present, or where ``device=`` says."""
    est = _fitted(name, X)
    expected = est.predict(X)
    est.device = "cuda"  # what a model fitted on a GPU stores; written through the public save
    path = tmp_path / "model.safetensors"
    est.save(path)
    loaded = unsup.load(path)
    assert loaded.device == ("cuda" if torch.cuda.is_available() else "cpu")
    np.testing.assert_array_equal(loaded.predict(X), expected)
    on_cpu = unsup.load(path, device="cpu")
    assert on_cpu.device == "cpu"
    np.testing.assert_array_equal(on_cpu.predict(X), expected)
    if not torch.cuda.is_available():
        with pytest.raises((ValueError, RuntimeError), match="(?i)cuda"):
            unsup.load(path, device="cuda")


def test_trusted_sha256_list(tmp_path, monkeypatch):
    """Only files whose sha256 (what sha256sum prints) is listed load; the list comes from the
    caller or from the file named by $UNSUP_TRUSTED_MODELS."""
    import hashlib

    from unsup.cluster import KMeans
    from unsup.io import TRUSTED_ENV, file_sha256

    X = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    path = tmp_path / "m.safetensors"
    KMeans(n_clusters=2, random_state=0).fit(X).save(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == digest
    assert unsup.load(path, trusted_sha256={digest.upper()}).n_clusters == 2
    with pytest.raises(ModelFileError, match="not among the trusted"):
        unsup.load(path, trusted_sha256={"0" * 64})
    listing = tmp_path / "trusted.txt"
    listing.write_text(f"# shared models\n{'1' * 64}  other.safetensors\n")
    monkeypatch.setenv(TRUSTED_ENV, str(listing))
    with pytest.raises(ModelFileError, match="not among the trusted"):
        unsup.load(path)
    listing.write_text(f"{digest}  m.safetensors\n")
    assert unsup.load(path).n_clusters == 2
    monkeypatch.setenv(TRUSTED_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(ModelFileError, match="cannot read"):
        unsup.load(path)


def test_every_registered_model_declares_what_its_file_holds():
    """A model file is checked before any state is restored: gradient models by building their
    network on the meta device, every other model by its own ``_state_shapes``."""
    from unsup._io_checks import spec_for_class
    from unsup.registry import model_specs
    from unsup.train.estimator import GradientEstimator

    unchecked = [s.cls.__name__ for s in model_specs()
                 if not issubclass(s.cls, GradientEstimator) and spec_for_class(s.cls) is None]
    assert unchecked == []



def test_a_zero_dimensional_state_tensor_keeps_its_shape(tmp_path):
    """A BatchNorm's batch counter is a 0-d tensor: saved and loaded as 0-d, so the load-time
    check against the network built on the meta device accepts it (a DCGAN has BatchNorms)."""
    import unsup
    from unsup.adversarial import GAN

    X = np.random.default_rng(0).random((32, 64)).astype(np.float32)
    gan = GAN(architecture="dcgan", image_shape=(1, 8, 8), epochs=1, batch_size=16,
              random_state=0, device="cpu")
    gan.fit(X)
    counters = {k: v for k, v in gan.module_.state_dict().items()
                if k.endswith("num_batches_tracked")}
    assert counters and all(v.dim() == 0 for v in counters.values())
    gan.save(tmp_path / "gan.safetensors")
    back = unsup.load(tmp_path / "gan.safetensors")
    np.testing.assert_array_equal(back.sample(4, random_state=1), gan.sample(4, random_state=1))


def test_device_object_is_saved_as_its_name(X, tmp_path):
    """``device=torch.device(...)`` (which the constraints accept) saves as its string and
    loads back as that string."""
    path = tmp_path / "m.safetensors"
    KMeans(3, random_state=0, device=torch.device("cpu")).fit(X).save(path)
    assert unsup.load(path).device == "cpu"


def test_load_device_falls_back_when_the_stored_gpu_is_missing(monkeypatch):
    """A model saved from ``cuda:3`` loads on this machine's first GPU when it has fewer, on
    the CPU when it has none; the caller's choice always wins."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert uio._load_device("cuda:3", None) == "cuda"
    assert uio._load_device("cuda:1", None) == "cuda:1"
    assert uio._load_device("cuda:3", "cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert uio._load_device("cuda:0", None) == "cpu"
    assert uio._load_device("cpu", None) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert uio._load_device("cuda:x", None) == "cuda:x"  # left for resolve_device to refuse
