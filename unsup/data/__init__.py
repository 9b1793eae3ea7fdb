"""Data layer: embedded data sets, file loaders, synthetic generators, transforms, validation.

Modules: :mod:`~unsup.data.datasets` (embedded sets by name, :func:`load`),
:mod:`~unsup.data.formats` (file-format readers), :mod:`~unsup.data.dataset` (the container),
:mod:`~unsup.data.synthetic`, :mod:`~unsup.data.transforms`, :mod:`~unsup.data.validation`.

>>> from unsup.data import load
>>> ds = load("digits")
>>> ds.X.shape, ds.image_shape
((1797, 64), (8, 8))
"""

from unsup.data.datasets import (
    SUPPORTED_FORMATS,
    Dataset,
    find_mnist_dir,
    list_datasets,
    load,
    read_idx,
    write_idx,
)
from unsup.data.synthetic import gmm2d_params, make_blobs, make_gaussian_mixture, make_rings
from unsup.data.transforms import binarize, binarize_stochastic, scale_unit, standardize
from unsup.data.validation import DataError, check_array, check_min_samples, check_n_features

__all__ = [
    "Dataset",
    "DataError",
    "SUPPORTED_FORMATS",
    "binarize",
    "binarize_stochastic",
    "check_array",
    "check_min_samples",
    "check_n_features",
    "find_mnist_dir",
    "gmm2d_params",
    "list_datasets",
    "load",
    "make_blobs",
    "make_gaussian_mixture",
    "make_rings",
    "read_idx",
    "scale_unit",
    "standardize",
    "write_idx",
]
