"""The :class:`Dataset` container: a data matrix, optional labels and image geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unsup.data.validation import DataError

__all__ = ["Dataset"]


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
