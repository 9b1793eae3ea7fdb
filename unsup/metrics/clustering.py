"""Clustering metrics: accuracy under the best cluster-to-class matching, NMI, ARI, silhouette.

Every function takes numpy arrays, lists or torch tensors and returns plain Python floats.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

__all__ = [
    "clustering_accuracy",
    "match_labels",
    "contingency_matrix",
    "nmi",
    "ari",
    "silhouette",
    "clustering_report",
]


def _to_numpy(a: Any) -> np.ndarray:
    """Convert lists, numpy arrays and torch tensors (any device) to a numpy array."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch.Tensor, without importing torch
        a = a.detach().cpu().numpy()
    elif hasattr(a, "to_numpy") and not isinstance(a, np.ndarray):  # pandas
        a = a.to_numpy()
    return np.asarray(a)


def _check_labels(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of 1-D label vectors of equal, non-zero length."""
    yt = _to_numpy(y_true)
    yp = _to_numpy(y_pred)
    for name, a in (("y_true", yt), ("y_pred", yp)):
        if a.ndim == 2 and 1 in a.shape:
            continue
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D label vector; got an array of shape {a.shape}")
    yt = yt.reshape(-1)
    yp = yp.reshape(-1)
    if yt.shape[0] != yp.shape[0]:
        raise ValueError(
            f"y_true and y_pred have different lengths: len(y_true)={yt.shape[0]}, "
            f"len(y_pred)={yp.shape[0]}"
        )
    if yt.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty; need at least one sample")
    return yt, yp


def contingency_matrix(
    y_true: Any, y_pred: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of (class, cluster) pairs.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Class labels and cluster labels.

    Returns
    -------
    counts : ndarray of shape (n_classes, n_clusters)
        ``counts[i, j]`` is the number of samples of class ``classes[i]`` in cluster
        ``clusters[j]``.
    classes : ndarray of shape (n_classes,)
        Sorted distinct values of ``y_true``.
    clusters : ndarray of shape (n_clusters,)
        Sorted distinct values of ``y_pred``.
    """
    yt, yp = _check_labels(y_true, y_pred)
    classes, ti = np.unique(yt, return_inverse=True)
    clusters, pi = np.unique(yp, return_inverse=True)
    counts = np.zeros((classes.size, clusters.size), dtype=np.int64)
    np.add.at(counts, (ti.reshape(-1), pi.reshape(-1)), 1)
    return counts, classes, clusters


def _matching(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Hungarian matching of clusters to classes maximising the matched counts."""
    counts, classes, clusters = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = {clusters[c]: classes[r] for r, c in zip(rows, cols, strict=True)}
    return counts, classes, clusters, mapping


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes.

    The matching is found with the Hungarian algorithm on the contingency matrix. When
    there are more clusters than classes, the unmatched clusters count as wrong; when there
    are fewer, the unmatched classes are simply never predicted.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth class labels.
    y_pred : array-like of shape (n_samples,)
        Cluster assignments (arbitrary label values).

    Returns
    -------
    float
        Fraction of samples in [0, 1] whose cluster is matched to their class.

    Raises
    ------
    ValueError
        If the inputs are empty, not 1-D, or of different lengths.

    Examples
    --------
    >>> clustering_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 0, 0, 0, 2])
    0.8333333333333334
    """
    counts, _, _ = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / counts.sum())


def match_labels(y_true: Any, y_pred: Any, fill: Any = -1) -> np.ndarray:
    """Map cluster labels onto class labels under the Hungarian matching.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth class labels.
    y_pred : array-like of shape (n_samples,)
        Cluster assignments.
    fill : scalar, default=-1
        Label given to samples whose cluster is matched to no class (only happens when
        there are more clusters than classes). Choose a value that is not a class label.

    Returns
    -------
    ndarray of shape (n_samples,)
        ``y_pred`` relabelled so that matched clusters carry their class label; with it,
        ``(match_labels(y, p) == y).mean() == clustering_accuracy(y, p)``.
    """
    yt, yp = _check_labels(y_true, y_pred)
    _, classes, clusters, mapping = _matching(yt, yp)
    dtype = np.result_type(classes.dtype, np.asarray(fill).dtype)
    lut = np.array([mapping.get(c, fill) for c in clusters], dtype=dtype)
    idx = np.searchsorted(clusters, yp)
    return lut[idx]


def nmi(y_true: Any, y_pred: Any) -> float:
    """Normalized mutual information (scikit-learn's ``normalized_mutual_info_score``).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Class labels and cluster labels.

    Returns
    -------
    float
        NMI in [0, 1] with arithmetic-mean normalisation.
    """
    yt, yp = _check_labels(y_true, y_pred)
    return float(normalized_mutual_info_score(yt, yp))


def ari(y_true: Any, y_pred: Any) -> float:
    """Adjusted Rand index (scikit-learn's ``adjusted_rand_score``).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Class labels and cluster labels.

    Returns
    -------
    float
        ARI; 1 for identical partitions, about 0 for random ones.
    """
    yt, yp = _check_labels(y_true, y_pred)
    return float(adjusted_rand_score(yt, yp))


def silhouette(
    X: Any, labels: Any, sample_size: int | None = 10000, random_state: int | None = 0
) -> float:
    """Mean silhouette coefficient (Euclidean), subsampled for large data.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data.
    labels : array-like of shape (n_samples,)
        Cluster assignment of each sample.
    sample_size : int or None, default=10000
        When ``n_samples > sample_size`` the score is computed on a random subset of that
        size (the exact score costs O(n^2)); ``None`` always uses every sample.
    random_state : int or None, default=0
        Seed of the subsampling, so repeated calls agree.

    Returns
    -------
    float
        Silhouette in [-1, 1]; never NaN.

    Raises
    ------
    ValueError
        If there are fewer than 2 distinct labels, as many labels as samples, or the
        lengths disagree.
    """
    Xn = _to_numpy(X)
    if Xn.ndim == 1:
        Xn = Xn.reshape(-1, 1)
    if Xn.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {Xn.shape}")
    lab = _to_numpy(labels).reshape(-1)
    if Xn.shape[0] != lab.shape[0]:
        raise ValueError(
            f"X and labels have different lengths: len(X)={Xn.shape[0]}, "
            f"len(labels)={lab.shape[0]}"
        )
    if lab.shape[0] == 0:
        raise ValueError("X and labels are empty; need at least two samples")
    n_labels = np.unique(lab).size
    if n_labels < 2:
        raise ValueError(
            f"silhouette needs at least 2 distinct cluster labels; got {n_labels}"
        )
    n = lab.shape[0]
    if sample_size is not None and n > sample_size:
        rng = np.random.default_rng(random_state)
        idx = np.sort(rng.choice(n, size=int(sample_size), replace=False))
        Xn, lab = Xn[idx], lab[idx]
        if np.unique(lab).size < 2:
            raise ValueError(
                "the silhouette subsample contains a single cluster; increase sample_size"
            )
    if np.unique(lab).size >= lab.shape[0]:
        raise ValueError(
            f"silhouette needs fewer distinct labels than samples; got {np.unique(lab).size} "
            f"labels for {lab.shape[0]} samples"
        )
    score = float(silhouette_score(Xn, lab, metric="euclidean"))
    if not math.isfinite(score):
        raise ValueError("silhouette is not finite; X probably contains NaN or inf")
    return score


def clustering_report(y_true: Any, y_pred: Any, X: Any = None) -> dict[str, float]:
    """All clustering metrics in one dict.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Class labels and cluster labels.
    X : array-like of shape (n_samples, n_features), optional
        Data; when given, the silhouette of ``y_pred`` is added.

    Returns
    -------
    dict
        Keys ``"accuracy"``, ``"nmi"``, ``"ari"`` and, if ``X`` is given, ``"silhouette"``.
    """
    yt, yp = _check_labels(y_true, y_pred)
    out = {
        "accuracy": clustering_accuracy(yt, yp),
        "nmi": nmi(yt, yp),
        "ari": ari(yt, yp),
    }
    if X is not None:
        out["silhouette"] = silhouette(X, yp)
    return out
