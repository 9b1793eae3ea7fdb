"""Tests for unsup.data: embedded sets, file formats, synthetic generators, transforms, errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from unsup.data import (
    DataError,
    Dataset,
    binarize,
    binarize_stochastic,
    check_array,
    list_datasets,
    load,
    make_blobs,
    make_gaussian_mixture,
    make_rings,
    read_idx,
    scale_unit,
    standardize,
    write_idx,
)
from unsup.data import datasets as ds_mod

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MNIST_TEST = PROJECT_ROOT.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
MNIST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """Build an IDX file by hand (independently of unsup's writer)."""
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def tiny_idx(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 1, 0, 2], dtype=np.uint8)
    img = tmp_path / "t10k-images-idx3-ubyte.gz"
    img.write_bytes(gzip.compress(_idx_bytes(images)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    return img, images, labels


# ---------------------------------------------------------------- embedded sets


def test_list_datasets() -> None:
    items = list_datasets()
    names = [n for n, _ in items]
    for name in ("mnist5k", "mnist-test", "digits", "gmm2d", "blobs", "rings"):
        assert name in names
    assert all(isinstance(n, str) and isinstance(d, str) and d for n, d in items)


def test_mnist5k() -> None:
    ds = load("mnist5k")
    assert ds.X.shape == (5000, 784) and len(ds) == 5000 and ds.n_features == 784
    assert ds.X.dtype == np.float32 and ds.X.flags.c_contiguous
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.image_shape == (28, 28) and ds.name == "mnist5k"
    assert ds.y.dtype == np.int64
    assert np.bincount(ds.y).tolist() == [500] * 10
    assert ds.as_images().shape == (5000, 28, 28)
    # values are k/255
    np.testing.assert_allclose(ds.X[:50] * 255, np.round(ds.X[:50] * 255), atol=1e-4)


def test_digits() -> None:
    ds = load("digits")
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float32
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.image_shape == (8, 8)
    assert sorted(np.unique(ds.y).tolist()) == list(range(10))


@pytest.mark.parametrize(
    "name, n, k", [("gmm2d", 1500, 3), ("blobs", 1500, 3), ("rings", 1000, 2), ("GMM", 1500, 3)]
)
def test_named_synthetic(name: str, n: int, k: int) -> None:
    a, b = load(name), load(name)
    assert a.X.shape == (n, 2) and a.X.dtype == np.float32 and a.X.flags.c_contiguous
    assert a.y.shape == (n,) and len(np.unique(a.y)) == k
    np.testing.assert_array_equal(a.X, b.X)  # fixed seed
    np.testing.assert_array_equal(a.y, b.y)


def test_gmm2d_ground_truth_in_info() -> None:
    ds = load("gmm2d")
    for i, mu in enumerate(ds.info["means"]):
        np.testing.assert_allclose(ds.X[ds.y == i].mean(0), mu, atol=0.2)


def test_rings_radii() -> None:
    ds = load("rings")
    r = np.linalg.norm(ds.X, axis=1)
    assert abs(r[ds.y == 0].mean() - 0.5) < 0.02 and abs(r[ds.y == 1].mean() - 1.0) < 0.02


def test_unknown_name_lists_available() -> None:
    with pytest.raises(DataError, match=r"Unknown dataset 'mnistt'.*mnist5k.*digits"):
        load("mnistt")


# ---------------------------------------------------------------- real MNIST test set


@pytest.mark.skipif(not MNIST_TEST.is_file(), reason=f"MNIST test set not present at {MNIST_TEST}")
def test_real_mnist_test_by_path_and_name() -> None:
    ds = load(MNIST_TEST)
    assert ds.X.shape == (10000, 784) and ds.X.dtype == np.float32
    assert ds.image_shape == (28, 28)
    assert 0.0 <= ds.X.min() and ds.X.max() == 1.0
    assert np.bincount(ds.y).tolist() == MNIST_COUNTS
    assert ds.info["labels"].endswith("t10k-labels-idx1-ubyte.gz")
    by_name = load("mnist-test")
    assert by_name.name == "mnist-test"
    np.testing.assert_array_equal(by_name.y, ds.y)


# published checksums of the original files (LeCun et al.; md5 of the decompressed images)
_MNIST_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    "t10k-labels-idx1-ubyte.gz": "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
}
_MNIST_IMAGES_MD5 = "2646ac647ad5339dbf082846283269ea"


def test_mnist_test_is_packaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine: no UNSUP_MNIST_DIR, no ../shared anywhere: the packaged copy loads."""
    import hashlib

    monkeypatch.delenv("UNSUP_MNIST_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ds_mod, "_PROJECT_ROOT", tmp_path / "project")
    packaged = ds_mod.PACKAGED_MNIST_DIR
    assert ds_mod.find_mnist_dir() == packaged
    for name, digest in _MNIST_SHA256.items():
        assert hashlib.sha256((packaged / name).read_bytes()).hexdigest() == digest
    raw = gzip.decompress((packaged / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == _MNIST_IMAGES_MD5
    assert (packaged / "README.md").read_text().count("CC BY-SA 3.0") >= 1  # attribution kept
    ds = load("mnist-test")
    assert ds.X.shape == (10000, 784) and ds.image_shape == (28, 28) and ds.name == "mnist-test"
    assert ds.info["source"] == str(packaged / "t10k-images-idx3-ubyte.gz")
    # the pixels and labels, parsed here by hand from the IDX bytes (16- and 8-byte headers)
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(10000, 784)
    np.testing.assert_array_equal(ds.X, pixels.astype(np.float32) / np.float32(255))
    lab = gzip.decompress((packaged / "t10k-labels-idx1-ubyte.gz").read_bytes())
    np.testing.assert_array_equal(ds.y, np.frombuffer(lab, dtype=np.uint8, offset=8))
    assert np.bincount(ds.y).tolist() == MNIST_COUNTS
    assert "shipped with unsup" in dict(list_datasets())["mnist-test"]


def test_mnist_packaged_files_are_package_data() -> None:
    """Every file of the packaged copy matches a package-data pattern, so wheels carry it."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    cfg = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    patterns = cfg["tool"]["setuptools"]["package-data"]["unsup.data"]
    root = ds_mod.PACKAGED_MNIST_DIR.parent
    files = sorted(p.relative_to(root).as_posix() for p in ds_mod.PACKAGED_MNIST_DIR.iterdir())
    assert {"mnist/README.md", "mnist/t10k-images-idx3-ubyte.gz"} <= set(files)
    for f in files:
        assert any(fnmatch.fnmatch(f, pat) for pat in patterns), f


def test_mnist_test_env_var_beats_packaged_copy(tiny_idx,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    img, images, labels = tiny_idx
    monkeypatch.setenv("UNSUP_MNIST_DIR", str(img.parent))
    ds = load("mnist-test")
    assert ds.X.shape == (6, 12) and ds.name == "mnist-test"
    np.testing.assert_array_equal(ds.y, labels)


def test_mnist_test_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("UNSUP_MNIST_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ds_mod, "_PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setattr(ds_mod, "PACKAGED_MNIST_DIR", tmp_path / "trimmed")
    with pytest.raises(FileNotFoundError, match="MNIST test set not found.*UNSUP_MNIST_DIR"):
        load("mnist-test")
    assert "not found" in dict(list_datasets())["mnist-test"]


# ---------------------------------------------------------------- IDX


def test_idx_roundtrip_with_labels(tiny_idx) -> None:
    img, images, labels = tiny_idx
    ds = load(img)
    assert ds.X.shape == (6, 12) and ds.X.dtype == np.float32
    assert ds.image_shape == (4, 3)
    np.testing.assert_allclose(ds.X, images.reshape(6, -1) / 255.0, rtol=1e-6)
    assert ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.y, labels)
    np.testing.assert_array_equal(ds.as_images()[2], images[2] / np.float32(255))


def test_idx_raw_and_labels_pickup_without_gz(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images))
    assert load(tmp_path / "train-images-idx3-ubyte").y is None  # no labels file yet
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([7, 3], np.uint8)))
    ds = load(str(tmp_path / "train-images-idx3-ubyte"))
    assert ds.y.tolist() == [7, 3]
    assert ds.X[1, -1] == pytest.approx(17 / 255)


IDX_CODES = {np.uint8: 0x08, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


@pytest.mark.parametrize("dtype", list(IDX_CODES))
def test_write_read_idx(tmp_path: Path, dtype) -> None:
    a = np.arange(24).reshape(2, 3, 4).astype(dtype)
    if dtype != np.uint8:
        a = a - 5
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, a)
        b = read_idx(tmp_path / name)
        assert b.dtype == np.dtype(dtype) and b.shape == a.shape
        np.testing.assert_array_equal(a, b)
    # the writer produces exactly the hand-built big-endian layout
    assert (tmp_path / "a.idx").read_bytes() == _idx_bytes(a, IDX_CODES[dtype])
    with pytest.raises(DataError, match="IDX cannot store dtype int64"):
        write_idx(tmp_path / "b.idx", np.zeros(3, np.int64))


def test_idx_corrupt(tmp_path: Path, tiny_idx) -> None:
    img, images, _ = tiny_idx
    good = _idx_bytes(images)
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(DataError, match="bad magic number 0x1234"):
        load(bad)
    bad.write_bytes(good[:-5])
    with pytest.raises(DataError, match="truncated IDX"):
        load(bad)
    bad.write_bytes(good[:10])
    with pytest.raises(DataError, match="truncated IDX header"):
        load(bad)
    bad_gz = tmp_path / "bad-images-idx3-ubyte.gz"
    bad_gz.write_bytes(gzip.compress(good)[:40])
    with pytest.raises(DataError, match="gzip"):
        load(bad_gz)
    # labels file with the wrong number of labels
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.zeros(5, np.uint8)))
    )
    with pytest.raises(DataError, match="holds 6 samples"):
        load(img)
    with pytest.raises(DataError, match="1-D IDX"):
        load(tmp_path / "t10k-labels-idx1-ubyte.gz")


# ---------------------------------------------------------------- numpy files


def test_npy_is_memmap(tmp_path: Path) -> None:
    a = np.random.default_rng(0).random((10, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    ds = load(tmp_path / "a.npy")
    assert isinstance(ds.X, np.memmap) and not ds.X.flags.writeable
    assert ds.X.dtype == np.float32 and ds.y is None and ds.image_shape is None
    np.testing.assert_array_equal(ds.X, a)


def test_npy_non_float_and_images_stay_memmap(tmp_path: Path) -> None:
    a = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    np.save(tmp_path / "img.npy", a)
    ds = load(tmp_path / "img.npy")
    assert isinstance(ds.X, np.memmap) and ds.X.dtype == np.uint8
    assert ds.X.shape == (5, 6) and ds.image_shape == (2, 3)
    t = check_array(ds.X)  # estimator validation converts
    assert t.dtype == torch.float32 and t.shape == (5, 6)
    np.save(tmp_path / "vec.npy", np.arange(4.0))
    with pytest.raises(DataError, match="expected a 2-D array"):
        load(tmp_path / "vec.npy")


def test_npz(tmp_path: Path) -> None:
    X = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.savez(tmp_path / "xy.npz", X=X, y=np.array([0, 1, 1, 0]))
    ds = load(tmp_path / "xy.npz")
    assert ds.X.dtype == np.float32 and ds.X.flags.c_contiguous
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 1, 0]
    np.savez(tmp_path / "single.npz", X)
    assert load(tmp_path / "single.npz").y is None
    np.savez(tmp_path / "imgs.npz", X=np.zeros((3, 4, 5), np.uint8))
    assert load(tmp_path / "imgs.npz").image_shape == (4, 5)
    np.savez(tmp_path / "other.npz", a=X, b=X)
    with pytest.raises(DataError, match=r"named 'X'.*\['a', 'b'\]"):
        load(tmp_path / "other.npz")
    np.savez(tmp_path / "fl.npz", X=X, y=np.array([0.5, 1, 1, 0]))
    with pytest.raises(DataError, match="labels must be integers"):
        load(tmp_path / "fl.npz")
    np.savez(tmp_path / "short.npz", X=X, y=np.array([0, 1]))
    with pytest.raises(DataError, match="one entry per sample"):
        load(tmp_path / "short.npz")


# ---------------------------------------------------------------- CSV


def test_csv_header_and_label_column(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a,label,b\n1,0,2.5\n3,1,-4\n\n5,1,6e-1\n")
    ds = load(p)
    assert ds.X.dtype == np.float32 and ds.X.shape == (3, 2)
    np.testing.assert_allclose(ds.X, [[1, 2.5], [3, -4], [5, 0.6]])
    assert ds.y.tolist() == [0, 1, 1] and ds.classes is None
    assert ds.info["columns"] == ["a", "b"]


def test_csv_no_header_and_text_labels(tmp_path: Path) -> None:
    p = tmp_path / "plain.csv"
    p.write_text("1,2,3\n4,5,6\n")
    ds = load(p)
    assert ds.y is None and ds.X.shape == (2, 3) and ds.X[1, 2] == 6
    q = tmp_path / "named.csv"
    q.write_text("x1,x2,Target\n1,2,dog\n3,4,cat\n5,6,dog\n")
    ds = load(q)
    assert ds.classes == ["cat", "dog"] and ds.y.tolist() == [1, 0, 1]


def test_csv_errors_and_missing_values(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(DataError, match=r"'oops' at line 3, column 2 \('b'\)"):
        load(p)
    p.write_text("1,2\n3\n")
    with pytest.raises(DataError, match="line 2 has 1 columns, expected 2"):
        load(p)
    p.write_text("a,b\n1,\n3,4\n")
    ds = load(p)  # loading a missing value is fine ...
    assert np.isnan(ds.X[0, 1])
    with pytest.raises(DataError, match="NaN"):  # ... the estimators reject it
        check_array(ds.X)


# ---------------------------------------------------------------- image folders


def _png(path: Path, arr: np.ndarray, mode: str = "L") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).convert(mode).save(path)


def test_image_folder_with_classes(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for k, cls in enumerate(["cat", "dog"]):
        for i in range(3):
            _png(root / cls / f"{i}.png", np.full((5, 4), 40 * k + i, dtype=np.uint8))
    ds = load(root)
    assert ds.X.shape == (6, 20) and ds.X.dtype == np.float32 and ds.image_shape == (5, 4)
    assert ds.classes == ["cat", "dog"] and ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(ds.X[4], np.full(20, 41 / 255), rtol=1e-6)


def test_image_folder_flat_mixed_modes(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    _png(root / "a.png", np.full((3, 3), 255, dtype=np.uint8), "L")
    _png(root / "b.png", np.zeros((3, 3, 3), dtype=np.uint8), "RGB")
    (root / "notes.txt").write_text("ignored")
    ds = load(root)
    assert ds.y is None and ds.image_shape == (3, 3)  # mixed -> grayscale
    assert ds.X[0].min() == 1.0 and ds.X[1].max() == 0.0
    rgb = tmp_path / "rgb"
    _png(rgb / "a.png", np.zeros((3, 2, 3), dtype=np.uint8), "RGB")
    assert load(rgb).image_shape == (3, 2, 3)


def test_image_folder_errors(tmp_path: Path) -> None:
    root = tmp_path / "sizes"
    _png(root / "a.png", np.zeros((3, 3), np.uint8))
    _png(root / "b.png", np.zeros((4, 3), np.uint8))
    with pytest.raises(DataError, match="same size.*3x3.*3x4"):
        load(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a readable image"):
        load(tmp_path / "junk")


# ---------------------------------------------------------------- bad paths


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No such file"):
        load(tmp_path / "nope.npy")
    with pytest.raises(FileNotFoundError, match="No such file"):
        load("does/not/exist.csv")
    (tmp_path / "a.txt").write_text("1 2 3")
    with pytest.raises(DataError, match="unsupported file type.*npy"):
        load(tmp_path / "a.txt")
    with pytest.raises(TypeError):
        load(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- binarize


def test_load_binarize_modes() -> None:
    plain = load("digits")
    thr = load("digits", binarize=0.5)
    assert set(np.unique(thr.X).tolist()) == {0.0, 1.0} and thr.X.dtype == np.float32
    np.testing.assert_array_equal(thr.X, (plain.X > 0.5).astype(np.float32))
    s1 = load("digits", binarize="stochastic")
    s2 = load("digits", binarize="stochastic", random_state=0)
    s3 = load("digits", binarize="stochastic", random_state=1)
    np.testing.assert_array_equal(s1.X, s2.X)
    assert not np.array_equal(s1.X, s3.X)
    assert set(np.unique(s1.X).tolist()) == {0.0, 1.0}
    assert abs(s1.X.mean() - plain.X.mean()) < 0.01
    with pytest.raises(DataError, match="binarize must be"):
        load("digits", binarize="yes")


def test_binarize_memmap(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([[0.2, 0.9], [0.6, 0.0]], dtype=np.float32))
    ds = load(tmp_path / "p.npy", binarize=0.5)
    assert ds.X.tolist() == [[0.0, 1.0], [1.0, 0.0]]


# ---------------------------------------------------------------- transforms


def test_scale_unit() -> None:
    X = np.array([[0, 50], [100, 200]], dtype=np.uint8)
    out = scale_unit(X)
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    np.testing.assert_allclose(out, X / 200.0)
    assert np.all(scale_unit(np.full((2, 2), 7.0)) == 0)


def test_standardize() -> None:
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(5, 3, 200), np.full(200, 4.0), rng.normal(-1, 0.1, 200)]
    X0 = X.copy()
    Z = standardize(X)
    assert Z.dtype == np.float32 and not np.isnan(Z).any()
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(0), [1, 0, 1], atol=1e-5)
    np.testing.assert_array_equal(X, X0)  # input untouched
    with pytest.raises(DataError, match="2-D"):
        standardize(np.ones(3))


def test_binarize_transforms() -> None:
    X = np.array([[0.0, 0.5, 0.51, np.nan]])
    assert np.array_equal(binarize(X), [[0, 0, 1, np.nan]], equal_nan=True)
    assert binarize(X, threshold=0.0)[0, :3].tolist() == [0, 1, 1]
    P = np.random.default_rng(1).random((400, 50)).astype(np.float32)
    a, b = binarize_stochastic(P, random_state=3), binarize_stochastic(P, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and abs(a.mean() - P.mean()) < 0.01
    assert np.all(binarize_stochastic(np.ones((3, 3)), 0) == 1)
    assert np.all(binarize_stochastic(np.zeros((3, 3)), 0) == 0)
    with pytest.raises(DataError, match=r"\[0, 1\].*scale_unit"):
        binarize_stochastic(np.array([[0.0, 255.0]]))


# ---------------------------------------------------------------- synthetic generators


def test_make_gaussian_mixture_matches_parameters() -> None:
    means = np.array([[0.0, 0.0, 0.0], [10.0, -5.0, 2.0]])
    covs = np.array([np.eye(3), [[2.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 0.5]]])
    X, y = make_gaussian_mixture(20000, means, covs, weights=[0.25, 0.75], random_state=0)
    assert X.shape == (20000, 3) and X.dtype == np.float32 and y.dtype == np.int64
    assert abs((y == 1).mean() - 0.75) < 0.02
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(0), means[k], atol=0.08)
        np.testing.assert_allclose(np.cov(X[y == k].T), covs[k], atol=0.1)
    X2, y2 = make_gaussian_mixture(20000, means, covs, weights=[0.25, 0.75], random_state=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_make_gaussian_mixture_cov_forms_and_errors() -> None:
    means = [[0.0, 0.0], [5.0, 5.0]]
    Xd, yd = make_gaussian_mixture(4000, means, [[1.0, 4.0], [0.25, 0.25]], random_state=1)
    np.testing.assert_allclose(Xd[yd == 0].var(0), [1.0, 4.0], rtol=0.1)
    Xs, ys = make_gaussian_mixture(4000, means, 0.01, random_state=1)
    np.testing.assert_allclose(Xs[ys == 1].mean(0), [5, 5], atol=0.01)
    with pytest.raises(DataError, match="positive semi-definite"):
        make_gaussian_mixture(10, means, [np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(DataError, match="full covariances must have shape"):
        make_gaussian_mixture(10, means, np.ones((2, 3, 3)))
    with pytest.raises(DataError, match="weights"):
        make_gaussian_mixture(10, means, 1.0, weights=[1.0, -1.0])


def test_make_blobs_and_rings() -> None:
    X, y = make_blobs(301, n_features=4, centers=3, random_state=0)
    assert X.shape == (301, 4) and np.bincount(y).tolist() == [101, 100, 100]
    X, y = make_rings(300, n_rings=3, noise=0.0, random_state=0)
    r = np.linalg.norm(X, axis=1)
    for k, radius in enumerate([1 / 3, 2 / 3, 1.0]):
        np.testing.assert_allclose(r[y == k], radius, rtol=1e-5)


# ---------------------------------------------------------------- Dataset helpers


def test_dataset_split_and_validation() -> None:
    ds = Dataset(X=np.arange(20, dtype=np.float32).reshape(10, 2), y=np.arange(10), name="t")
    tr, te = ds.split(test_size=0.3, random_state=0)
    assert (len(tr), len(te)) == (7, 3)
    assert sorted(tr.y.tolist() + te.y.tolist()) == list(range(10))
    np.testing.assert_array_equal(te.X[:, 0], te.y * 2)  # rows and labels stay aligned
    tr2, _ = ds.split(test_size=3, random_state=0)
    np.testing.assert_array_equal(tr.y, tr2.y)
    with pytest.raises(DataError, match="test_size"):
        ds.split(test_size=1.5)
    with pytest.raises(DataError, match="one entry per sample"):
        Dataset(X=np.zeros((3, 2), np.float32), y=np.zeros(2))
    with pytest.raises(DataError, match="image_shape"):
        Dataset(X=np.zeros((3, 4), np.float32), image_shape=(3, 3))
    assert "name='t'" in repr(ds)


def test_file_formats_module_is_the_one_load_uses(tmp_path: Path) -> None:
    """The readers live in unsup.data.formats; unsup.data re-exports the same objects."""
    import unsup.data
    from unsup.data import formats
    from unsup.data.dataset import Dataset as Container

    assert unsup.data.read_idx is formats.read_idx and unsup.data.write_idx is formats.write_idx
    assert unsup.data.SUPPORTED_FORMATS is formats.SUPPORTED_FORMATS
    assert unsup.data.Dataset is Container
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "x.npy", X)
    via_formats = formats.load_path(tmp_path / "x.npy")
    via_load = unsup.data.load(str(tmp_path / "x.npy"))
    assert isinstance(via_formats, Container)
    np.testing.assert_array_equal(np.asarray(via_formats.X), np.asarray(via_load.X))
