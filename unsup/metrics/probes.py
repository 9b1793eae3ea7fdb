"""Judging a representation by what a simple supervised reader can do with it.

A learned code is only as good as the tasks it makes easy. The standard measurements, used
throughout the representation-learning literature, freeze the representation and train the
simplest possible classifier on top:

* :func:`linear_probe` — multinomial logistic regression on standardised frozen codes;
* :func:`knn_accuracy` — k-nearest-neighbour classification of the test codes among the
  training codes (cosine or Euclidean), which needs no training at all;
* :func:`label_fraction_curve` — both probes with 100, 1,000, ... labelled examples (a
  class-balanced, seeded subset, repeated over seeds), the regime where a good unsupervised
  representation should help most (Erhan et al., 2010).

Every function takes the representation as ``estimator``: any object with ``transform``
(unsup or scikit-learn), a callable such as a ``torch.nn.Module`` encoder, or ``None`` to use
``X`` as it is — the raw-pixel baseline, or codes you computed yourself.

References
----------
.. [1] Erhan, D., Bengio, Y., Courville, A., Manzagol, P.-A., Vincent, P. and Bengio, S.
   (2010). Why does unsupervised pre-training help deep learning? JMLR 11, 625–660.
.. [2] Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality of data
   with neural networks. Science 313(5786), 504–507.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "balanced_subset",
    "encode",
    "knn_accuracy",
    "label_fraction_curve",
    "linear_probe",
    "probe_summary",
]

_ENCODE_BATCH = 4096


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def encode(estimator: Any, X: Any, batch_size: int = _ENCODE_BATCH) -> np.ndarray:
    """Frozen codes of ``X`` as a 2-D float array.

    Parameters
    ----------
    estimator : object with ``transform``, callable, or None
        ``None`` returns ``X`` itself (raw inputs, or codes computed beforehand); an object
        with ``transform`` gives ``estimator.transform(X)``; any other callable (for example
        a ``torch.nn.Module`` encoder) is applied to float32 tensors in batches of
        ``batch_size`` rows under ``torch.no_grad()``.
    X : array-like of shape (n_samples, n_features)
        Inputs (numpy array, memory-mapped array or torch tensor).
    batch_size : int, default=4096
        Rows per call of a callable encoder.

    Returns
    -------
    ndarray of shape (n_samples, n_codes)
        Codes as float64 (float32 inputs are upcast; the probes standardise them anyway).
    """
    if estimator is None:
        Z = _to_numpy(X)
    elif callable(getattr(estimator, "transform", None)):
        Z = _to_numpy(estimator.transform(X))
    elif callable(estimator):
        import torch

        module = estimator
        was_training = getattr(module, "training", None)
        if was_training:
            module.eval()
        try:
            params = list(module.parameters()) if hasattr(module, "parameters") else []
            device = params[0].device if params else torch.device("cpu")
            Xn = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
            outs = []
            with torch.no_grad():
                for i in range(0, len(Xn), batch_size):
                    xb = Xn[i:i + batch_size].to(device=device, dtype=torch.float32)
                    outs.append(module(xb).detach().cpu().numpy())
            Z = np.concatenate(outs) if outs else np.empty((0, 0))
        finally:
            if was_training:
                module.train()
    else:
        raise TypeError(
            f"estimator must have a transform method, be callable, or be None; got "
            f"{type(estimator).__name__}"
        )
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim == 1:
        Z = Z[:, None]
    if Z.ndim != 2:
        Z = Z.reshape(len(Z), -1)
    if not np.all(np.isfinite(Z)):
        raise ValueError("the codes contain NaN or infinite values; the representation is "
                         "broken (check the model's training)")
    return Z


def _check_labels(Z: np.ndarray, y: Any, what: str) -> np.ndarray:
    if y is None:
        raise ValueError(f"{what}: labels are needed for a probe, got None")
    yy = _to_numpy(y).reshape(-1)
    if len(yy) != len(Z):
        raise ValueError(f"{what}: {len(Z)} samples but {len(yy)} labels")
    if len(yy) == 0:
        raise ValueError(f"{what}: no samples")
    return yy


def balanced_subset(y: Any, n: int, random_state: int | None = 0) -> np.ndarray:
    """Indices of a class-balanced random subset of ``n`` labelled examples.

    Every class gets ``n // n_classes`` examples; the remaining ``n % n_classes`` go to
    randomly chosen classes, one each. Sampling is without replacement and seeded.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    n : int
        Size of the subset; at least the number of classes.
    random_state : int or None, default=0
        Seed.

    Returns
    -------
    ndarray of int
        Sorted row indices into ``y``.

    Raises
    ------
    ValueError
        If ``n`` is smaller than the number of classes, or a class has fewer examples than
        its share.
    """
    yy = _to_numpy(y).reshape(-1)
    classes, counts = np.unique(yy, return_counts=True)
    k = len(classes)
    n = int(n)
    if n < k:
        raise ValueError(f"n={n} labels cannot cover {k} classes; use at least {k}")
    if n > len(yy):
        raise ValueError(f"n={n} labels requested but only {len(yy)} examples exist")
    rng = np.random.default_rng(random_state)
    share = np.full(k, n // k)
    share[rng.choice(k, size=n % k, replace=False)] += 1
    short = [(c, s, m) for c, s, m in zip(classes, share, counts, strict=True) if m < s]
    if short:
        c, s, m = short[0]
        c = c.item() if isinstance(c, np.generic) else c
        raise ValueError(f"class {c!r} has {m} examples, fewer than its share of {s} in a "
                         f"balanced subset of {n}")
    idx = [rng.choice(np.flatnonzero(yy == c), size=s, replace=False)
           for c, s in zip(classes, share, strict=True)]
    return np.sort(np.concatenate(idx))


def _logistic_accuracy(Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray,
                       y_test: np.ndarray, C: float, max_iter: int, standardize: bool,
                       random_state: int | None) -> dict[str, Any]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y_train)) < 2:
        raise ValueError("a linear probe needs at least 2 classes in the training labels")
    if standardize:
        scaler = StandardScaler().fit(Z_train)
        Z_train, Z_test = scaler.transform(Z_train), scaler.transform(Z_test)
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=random_state)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(Z_train, y_train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {
        "accuracy": float(np.mean(clf.predict(Z_test) == y_test)),
        "train_accuracy": float(np.mean(clf.predict(Z_train) == y_train)),
        "n_iter": int(np.max(clf.n_iter_)),
        "converged": converged,
    }


def _knn_accuracy(Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray,
                  y_test: np.ndarray, k: int, metric: str) -> dict[str, Any]:
    from sklearn.neighbors import KNeighborsClassifier

    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k_eff = min(int(k), len(Z_train))
    if metric == "cosine":  # cosine k-NN = Euclidean k-NN of unit vectors (same ranking)
        Z_train = Z_train / np.maximum(np.linalg.norm(Z_train, axis=1, keepdims=True), 1e-12)
        Z_test = Z_test / np.maximum(np.linalg.norm(Z_test, axis=1, keepdims=True), 1e-12)
    clf = KNeighborsClassifier(n_neighbors=k_eff, algorithm="brute").fit(Z_train, y_train)
    return {"accuracy": float(np.mean(clf.predict(Z_test) == y_test)), "k": k_eff}


def linear_probe(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    standardize: bool = True,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Test accuracy of logistic regression trained on frozen codes.

    The codes of ``X_train`` are standardised (mean 0, variance 1 per code, statistics from
    the training codes only), a multinomial logistic regression (scikit-learn, L-BFGS, L2
    penalty ``1/C``) is fitted to ``y_train``, and its accuracy on the codes of ``X_test`` is
    reported. The representation is never changed.

    Parameters
    ----------
    estimator : object with ``transform``, callable, or None
        The representation (see :func:`encode`). ``None`` probes ``X`` itself: the raw-input
        baseline, or codes computed beforehand.
    X_train, X_test : array-like of shape (n, n_features)
        Inputs to encode.
    y_train, y_test : array-like of shape (n,)
        Class labels.
    C : float, default=1.0
        Inverse L2 regularisation strength.
    max_iter : int, default=1000
        L-BFGS iterations; ``converged`` in the result says whether it was enough.
    standardize : bool, default=True
        Standardise the codes first (strongly recommended: codes of different models live
        on very different scales).
    random_state : int or None, default=0
        Seed passed to scikit-learn (L-BFGS itself is deterministic).

    Returns
    -------
    dict
        ``accuracy`` (test), ``train_accuracy``, ``n_train``, ``n_test``, ``n_codes``,
        ``n_iter``, ``converged``, ``seconds``.

    References
    ----------
    Erhan et al. (2010), Why does unsupervised pre-training help deep learning? JMLR 11.
    """
    t0 = time.perf_counter()
    Z_train, Z_test = encode(estimator, X_train), encode(estimator, X_test)
    yt = _check_labels(Z_train, y_train, "training set")
    ye = _check_labels(Z_test, y_test, "test set")
    out = _logistic_accuracy(Z_train, yt, Z_test, ye, C, max_iter, standardize, random_state)
    return {"accuracy": out["accuracy"], "train_accuracy": out["train_accuracy"],
            "n_train": len(yt), "n_test": len(ye), "n_codes": int(Z_train.shape[1]),
            "n_iter": out["n_iter"], "converged": out["converged"],
            "seconds": time.perf_counter() - t0}


def knn_accuracy(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    k: int = 5,
    metric: str = "cosine",
) -> dict[str, Any]:
    """Test accuracy of k-nearest-neighbour classification in code space.

    Each test code takes the majority label of its ``k`` nearest training codes (ties go to
    the smallest label, as in scikit-learn). Nothing is trained, so this measures the
    geometry of the representation directly: are same-class points close?

    Parameters
    ----------
    estimator : object with ``transform``, callable, or None
        The representation (see :func:`encode`); ``None`` uses ``X`` as it is.
    X_train, X_test : array-like of shape (n, n_features)
        Inputs to encode.
    y_train, y_test : array-like of shape (n,)
        Class labels.
    k : int, default=5
        Neighbours (capped at the number of training examples).
    metric : {"cosine", "euclidean"}, default="cosine"
        Distance between codes. Cosine ignores the codes' lengths.

    Returns
    -------
    dict
        ``accuracy``, ``k``, ``metric``, ``n_train``, ``n_test``, ``n_codes``, ``seconds``.

    References
    ----------
    Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality of data with
    neural networks. Science 313, 504–507 (codes judged by retrieval/neighbours).
    """
    t0 = time.perf_counter()
    Z_train, Z_test = encode(estimator, X_train), encode(estimator, X_test)
    yt = _check_labels(Z_train, y_train, "training set")
    ye = _check_labels(Z_test, y_test, "test set")
    out = _knn_accuracy(Z_train, yt, Z_test, ye, k, metric)
    return {"accuracy": out["accuracy"], "k": out["k"], "metric": metric,
            "n_train": len(yt), "n_test": len(ye), "n_codes": int(Z_train.shape[1]),
            "seconds": time.perf_counter() - t0}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def label_fraction_curve(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    n_labels: Iterable[int | None] = (100, 1000, None),
    *,
    probes: Sequence[str] = ("linear", "knn"),
    seeds: Sequence[int] = (0, 1, 2),
    C: float = 1.0,
    max_iter: int = 1000,
    k: int = 5,
    metric: str = "cosine",
) -> list[dict[str, Any]]:
    """Probe accuracies as a function of the number of labelled training examples.

    The codes are computed once. For each ``n`` in ``n_labels`` and each seed, a
    class-balanced subset of ``n`` labelled training examples is drawn
    (:func:`balanced_subset`) and each probe is trained on its codes only; accuracy is
    measured on the whole test set. ``None`` (or ``n`` >= the training size) means all
    labels: one deterministic run, standard deviation 0.

    Parameters
    ----------
    estimator : object with ``transform``, callable, or None
        The representation (see :func:`encode`); ``None`` is the raw-input baseline.
    X_train, X_test : array-like of shape (n, n_features)
        Inputs to encode.
    y_train, y_test : array-like of shape (n,)
        Class labels.
    n_labels : iterable of int or None, default=(100, 1000, None)
        Labelled-subset sizes.
    probes : sequence of {"linear", "knn"}, default=("linear", "knn")
        Which probes to run.
    seeds : sequence of int, default=(0, 1, 2)
        Seeds of the labelled subsets (and of the logistic regression).
    C, max_iter : float, int
        As in :func:`linear_probe`.
    k, metric : int, str
        As in :func:`knn_accuracy`.

    Returns
    -------
    list of dict
        One row per (``n_labels``, probe), in order: ``probe``, ``n_labels`` (the actual
        count), ``accuracy_mean``, ``accuracy_std`` (population std over seeds),
        ``accuracies`` (one per seed), ``n_seeds``, ``n_codes``.

    References
    ----------
    Erhan et al. (2010), Why does unsupervised pre-training help deep learning? JMLR 11.
    """
    for p in probes:
        if p not in ("linear", "knn"):
            raise ValueError(f"unknown probe {p!r}; use 'linear' and/or 'knn'")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    Z_train, Z_test = encode(estimator, X_train), encode(estimator, X_test)
    yt = _check_labels(Z_train, y_train, "training set")
    ye = _check_labels(Z_test, y_test, "test set")
    rows: list[dict[str, Any]] = []
    for n in n_labels:
        full = n is None or int(n) >= len(yt)
        run_seeds = seeds[:1] if full else seeds
        subsets = [np.arange(len(yt)) if full else balanced_subset(yt, int(n), s)
                   for s in run_seeds]
        for probe in probes:
            accs = []
            for s, idx in zip(run_seeds, subsets, strict=True):
                if probe == "linear":
                    r = _logistic_accuracy(Z_train[idx], yt[idx], Z_test, ye, C, max_iter,
                                           True, s)
                else:
                    r = _knn_accuracy(Z_train[idx], yt[idx], Z_test, ye, k, metric)
                accs.append(r["accuracy"])
            mean, std = _mean_std(accs)
            rows.append({"probe": probe, "n_labels": len(subsets[0]),
                         "accuracy_mean": mean, "accuracy_std": std, "accuracies": accs,
                         "n_seeds": len(accs), "n_codes": int(Z_train.shape[1])})
    return rows


def probe_summary(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    n_labels: Iterable[int | None] = (100, 1000, None),
    *,
    seeds: Sequence[int] = (0, 1, 2),
    baseline: bool = True,
    name: str | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """The probe table: :func:`label_fraction_curve` of the codes, and of the raw inputs.

    Label counts at or above the training size collapse into one "all labels" row.

    Parameters
    ----------
    estimator : object with ``transform``, callable, or None
        The representation (see :func:`encode`).
    X_train, y_train, X_test, y_test : array-like
        Labelled training and test data.
    n_labels : iterable of int or None, default=(100, 1000, None)
        Labelled-subset sizes (``None``: all).
    seeds : sequence of int, default=(0, 1, 2)
        Seeds of the labelled subsets.
    baseline : bool, default=True
        Add the same rows for the raw inputs (``estimator=None``), for comparison.
    name : str, optional
        The ``representation`` value of the codes' rows (default: ``"<Class> codes"``).
    **kwargs
        Passed on to :func:`label_fraction_curve` (``probes``, ``C``, ``k``, ``metric``, ...).

    Returns
    -------
    list of dict
        Rows of :func:`label_fraction_curve` with a ``representation`` key first.
    """
    n_train = len(X_train)
    sizes: list[int | None] = []
    for n in n_labels:
        v = None if n is None or int(n) >= n_train else int(n)
        if v not in sizes:
            sizes.append(v)
    label = name or (f"{type(estimator).__name__} codes" if estimator is not None
                     else "raw inputs")
    todo = [(label, estimator)]
    if baseline and estimator is not None:
        todo.append(("raw inputs", None))
    rows: list[dict[str, Any]] = []
    for what, est in todo:
        for r in label_fraction_curve(est, X_train, y_train, X_test, y_test, sizes,
                                      seeds=seeds, **kwargs):
            rows.append({"representation": what, **r})
    return rows
