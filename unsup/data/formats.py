"""File formats: ``.npy`` (memory-mapped), ``.npz``, ``.csv`` / ``.csv.gz``, MNIST IDX files
(read and write) and folders of images, each read into a :class:`~unsup.data.Dataset`.

:func:`load_path` picks the reader from the path; :func:`unsup.data.load` calls it for
anything that is not an embedded data set's name.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from unsup.data.dataset import Dataset
from unsup.data.validation import DataError

__all__ = ["SUPPORTED_FORMATS", "read_idx", "write_idx", "load_path"]

SUPPORTED_FORMATS = (
    ".npy (memory-mapped), .npz (arrays X and optional y), .csv / .csv.gz, "
    "MNIST IDX files (*-idx3-ubyte[.gz], *.idx[.gz]), a folder of images (png/jpg/...)"
)

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_LABEL_COLUMNS = ("label", "target", "y")
_NPZ_LABEL_KEYS = ("y", "labels", "label", "target")


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


# path dispatch

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


load_path = _load_path
