r"""Sample quality of generative models: FID, KID, Inception-style score, precision/recall and
mode coverage, in the feature space of a shipped MNIST digit classifier (or any other).

Feature space
    By default the 128 (scaled) penultimate pre-activations of ``DigitNet``, a small CNN
    trained deterministically on the embedded MNIST training digits
    (``scripts/train_feature_net.py``), shipped in the package with its sha256 (checked at
    load; see :mod:`unsup.metrics._feature_net`). Any ``torch.nn.Module``, any estimator
    with ``transform`` or any callable ``X -> features`` can be passed as ``feature_space``
    instead.

FID (Heusel et al. 2017)
    :math:`\lVert\mu_x-\mu_y\rVert^2 + \operatorname{tr}(\Sigma_x+\Sigma_y
    -2(\Sigma_x\Sigma_y)^{1/2})` of Gaussians fitted to the two feature sets, in float64.
    :math:`\operatorname{tr}(\Sigma_x\Sigma_y)^{1/2}` is the sum of the square roots of the
    eigenvalues of the symmetric PSD :math:`\Sigma_x^{1/2}\Sigma_y\Sigma_x^{1/2}` (same
    spectrum), which stays real for singular covariances.

KID (Bińkowski et al. 2018)
    The unbiased estimator of the squared MMD with the cubic kernel
    :math:`k(a,b)=(a^\top b/d+1)^3`,
    :math:`\frac{1}{m(m-1)}\sum_{i\ne j}k(x_i,x_j)+\frac{1}{n(n-1)}\sum_{i\ne j}k(y_i,y_j)
    -\frac{2}{mn}\sum_{i,j}k(x_i,y_j)`, averaged over ``n_subsets`` random subsets of
    ``subset_size`` rows (drawn without replacement); ``kid_std`` is the standard deviation
    over the subsets. Unbiased, so valid (and comparable) for small sample sets.

Precision and recall (Kynkäänniemi et al. 2019)
    Each set's manifold is the union of balls around its points with radius the distance to the
    k-th nearest neighbour in the same set. Precision: the fraction of samples inside the
    reference manifold; recall: the fraction of reference points inside the samples' manifold.

Inception-style score (Salimans et al. 2016) and mode coverage
    :math:`\exp\mathbb{E}_x\,\mathrm{KL}(p(y|x)\,\Vert\,p(y))` under the digit classifier (at
    most 10); the class histogram of the samples, the number of classes covered and the KL
    divergence of the histogram from uniform (0 for balanced samples, log 10 = 2.303 nats when
    every sample is one digit).

Reference statistics (features, mean, covariance) are cached by a sha256 of the data and of the
feature network: in memory (a few sets per process) and, when ``cache_dir`` or the environment
variable ``UNSUP_SAMPLE_QUALITY_CACHE`` names a folder, as safetensors files there.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unsup.metrics._feature_net import (
    _data_hash,
    _digit_outputs,
    _is_digitnet,
    _space_key,
    extract_features,
)
from unsup.report.hooks import SectionContext, report_section

__all__ = ["sample_quality", "extract_features", "reference_statistics", "frechet_distance",
           "fid", "kid", "kernel_inception_distance", "precision_recall", "inception_score",
           "mode_coverage", "ModeTracker"]

_BATCH = 1000  # rows per block of the distance matrices
_MEMORY: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
_MEMORY_MAX = 8


def _stats(F: np.ndarray) -> dict[str, np.ndarray]:
    F = np.asarray(F, dtype=np.float64)
    if len(F) < 2:
        raise ValueError(f"need at least 2 rows to estimate a covariance, got {len(F)}")
    return {"features": F.astype(np.float32), "mu": F.mean(0), "sigma": np.cov(F, rowvar=False)}


def reference_statistics(reference: Any, feature_space: Any = None, *,
                         cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Features, mean and covariance (float64) of the reference set, cached by data hash.

    The key is the sha256 of the data (as float32) and of the feature space (the shipped
    weights' sha256, or a module's parameters); estimators and callables are never cached. The
    memory cache holds the last 8 sets; ``cache_dir`` (or ``$UNSUP_SAMPLE_QUALITY_CACHE``)
    also keeps them as ``<key>.safetensors`` files.
    """
    space = _space_key(feature_space)
    if space is None:
        return _stats(extract_features(reference, feature_space))
    key = hashlib.sha256(f"{space}/{_data_hash(reference)}".encode()).hexdigest()[:32]
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    folder = cache_dir or os.environ.get("UNSUP_SAMPLE_QUALITY_CACHE")
    path = Path(folder).expanduser() / f"sq-{key}.safetensors" if folder else None
    stats = None
    if path is not None and path.is_file():
        from safetensors.numpy import load_file

        try:
            stats = load_file(str(path))
        except Exception:  # a damaged cache file is recomputed, never trusted
            stats = None
    if stats is None:
        stats = _stats(extract_features(reference, feature_space))
        if path is not None:
            from safetensors.numpy import save_file

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            save_file(stats, str(tmp))
            os.replace(tmp, path)
    _MEMORY[key] = stats
    while len(_MEMORY) > _MEMORY_MAX:
        _MEMORY.popitem(last=False)
    return stats


# -- distances ---------------------------------------------------------------------------------
def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64).ravel(), np.asarray(mu2, np.float64).ravel()
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(
        np.asarray(sigma2, np.float64))
    d = mu1.size
    if mu2.size != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: means {mu1.shape}, {mu2.shape}, covariances "
                         f"{s1.shape}, {s2.shape}")
    w, V = np.linalg.eigh((s1 + s1.T) / 2)
    root = (V * np.sqrt(np.clip(w, 0, None))) @ V.T  # sigma1^(1/2)
    m = root @ s2 @ root
    ev = np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)
    diff = mu1 - mu2
    out = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(ev).sum())
    return max(out, 0.0)


def fid(samples: Any, reference: Any, feature_space: Any = None, *,
        cache_dir: str | Path | None = None) -> float:
    """Fréchet distance between the feature Gaussians of ``samples`` and ``reference``."""
    a = _stats(extract_features(samples, feature_space))
    b = reference_statistics(reference, feature_space, cache_dir=cache_dir)
    return frechet_distance(a["mu"], a["sigma"], b["mu"], b["sigma"])


_KID_FULL_MAX = 1 << 25  # entries of a kernel matrix worth keeping (256 MiB in float64)


def _subset_sums(A: np.ndarray, B: np.ndarray, ia: list[np.ndarray], ib: list[np.ndarray],
                 d: int, diagonal: bool) -> np.ndarray:
    """Σ_{i∈ia_s, j∈ib_s} k(a_i, b_j) for each subset s (without i = j when ``diagonal``).

    When it is cheaper, and the matrix fits, the kernel over all rows is formed once and each
    subset's sum read off it with its 0/1 selection vectors, ``s_a^T K s_b`` (one GEMM for all
    subsets); otherwise each subset's block is formed on its own."""
    S, ma, mb = len(ia), len(ia[0]), len(ib[0])
    if len(A) * len(B) <= _KID_FULL_MAX and len(A) * len(B) * (d + S) <= S * ma * mb * d:
        K = _cubic(A, B, d)
        Sa, Sb = np.zeros((S, len(A))), np.zeros((S, len(B)))
        for s in range(S):
            Sa[s, ia[s]] = 1.0
            Sb[s, ib[s]] = 1.0
        out = ((Sa @ K) * Sb).sum(1)
        return out - Sa @ np.diagonal(K) if diagonal else out
    out = np.empty(S)
    for s in range(S):
        k = _cubic(A[ia[s]], B[ib[s]], d)
        out[s] = k.sum() - np.trace(k) if diagonal else k.sum()
    return out


def _cubic(a: np.ndarray, b: np.ndarray, d: int) -> np.ndarray:
    """(a b^T / d + 1)^3, in place (x*x*x: numpy's ** 3 goes through pow)."""
    k = a @ b.T
    k /= d
    k += 1.0
    sq = k * k
    sq *= k
    return sq


def kernel_inception_distance(f_samples: Any, f_reference: Any, *, n_subsets: int = 100,
                              subset_size: int = 1000, random_state: Any = 0
                              ) -> tuple[float, float]:
    """KID of two feature sets: (mean, std) of the unbiased MMD² over subsets.

    Bińkowski et al. (2018): with k(a, b) = (a·b / d + 1)³ and subsets x (m rows), y (n),
    MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (n(n−1))
    − 2 Σ_{i,j} k(x_i, y_j) / (mn).
    """
    X, Y = np.asarray(f_samples, np.float64), np.asarray(f_reference, np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"feature sets of shapes {X.shape} and {Y.shape} do not match")
    if min(len(X), len(Y)) < 2:
        raise ValueError("KID needs at least 2 rows in each set")
    if n_subsets < 1 or subset_size < 2:
        raise ValueError(f"need n_subsets >= 1 and subset_size >= 2, got {n_subsets}, "
                         f"{subset_size}")
    rng = np.random.default_rng(random_state)
    mx, my = min(subset_size, len(X)), min(subset_size, len(Y))
    d = X.shape[1]
    draws = [(rng.choice(len(X), mx, replace=False), rng.choice(len(Y), my, replace=False))
             for _ in range(n_subsets)]
    ix, iy = [a for a, _ in draws], [b for _, b in draws]
    sxx = _subset_sums(X, X, ix, ix, d, diagonal=True)
    syy = _subset_sums(Y, Y, iy, iy, d, diagonal=True)
    sxy = _subset_sums(X, Y, ix, iy, d, diagonal=False)
    vals = sxx / (mx * (mx - 1)) + syy / (my * (my - 1)) - 2 * sxy / (mx * my)
    return float(vals.mean()), float(vals.std())


def kid(samples: Any, reference: Any, feature_space: Any = None, *, n_subsets: int = 100,
        subset_size: int = 1000, random_state: Any = 0,
        cache_dir: str | Path | None = None) -> tuple[float, float]:
    """KID (mean, std over subsets) of ``samples`` against ``reference``."""
    ref = reference_statistics(reference, feature_space, cache_dir=cache_dir)["features"]
    return kernel_inception_distance(extract_features(samples, feature_space), ref,
                                     n_subsets=n_subsets, subset_size=subset_size,
                                     random_state=random_state)


def _knn_radii(F: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from each row to its k-th nearest other row (the row itself, at
    distance 0, is the first of the k + 1 nearest). |a - b|^2 = |a|^2 + (|b|^2 - 2 a.b), and
    the bracket is one matrix product of [-2a, 1] with [b, |b|^2]."""
    sq = (F * F).sum(1)
    A = torch.cat([-2.0 * F, torch.ones(len(F), 1)], 1)
    B = torch.cat([F, sq[:, None]], 1).T.contiguous()
    out = [(A[i:i + _BATCH] @ B).topk(k + 1, 1, largest=False).values[:, k] + sq[i:i + _BATCH]
           for i in range(0, len(F), _BATCH)]
    return torch.cat(out).clamp_(min=0.0)


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of ``points`` p inside at least one ball (centre c, squared radius r):
    |p - c|^2 <= r  <=>  2 p.c + (r - |c|^2) >= |p|^2, a maximum over one matrix product."""
    sq_p = (points * points).sum(1)
    P = torch.cat([2.0 * points, torch.ones(len(points), 1)], 1)
    C = torch.cat([centres, (radii - (centres * centres).sum(1))[:, None]], 1).T.contiguous()
    inside = [(P[i:i + _BATCH] @ C).amax(1) >= sq_p[i:i + _BATCH]
              for i in range(0, len(points), _BATCH)]
    return float(torch.cat(inside).double().mean())


@torch.no_grad()
def precision_recall(f_samples: Any, f_reference: Any, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of two feature sets."""
    X = torch.as_tensor(np.asarray(f_samples, np.float32))
    Y = torch.as_tensor(np.asarray(f_reference, np.float32))
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"feature sets of shapes {tuple(X.shape)} and {tuple(Y.shape)} "
                         "do not match")
    if k < 1 or min(len(X), len(Y)) <= k:
        raise ValueError(f"precision/recall with k={k} needs k >= 1 and more than k rows in "
                         f"each set, got {len(X)} and {len(Y)}")
    return _coverage(X, Y, _knn_radii(Y, k)), _coverage(Y, X, _knn_radii(X, k))


# -- classifier-based scores -------------------------------------------------------------------
def _probs(samples: Any) -> np.ndarray:
    return _digit_outputs(samples)[1]


def inception_score(samples: Any, *, n_splits: int = 10, probs: Any = None
                    ) -> tuple[float, float]:
    """exp E KL(p(y|x) || p(y)) under the digit classifier: (mean, std over ``n_splits``)."""
    P = np.asarray(probs, np.float64) if probs is not None else _probs(samples)
    if n_splits < 1 or len(P) < n_splits:
        raise ValueError(f"need 1 <= n_splits <= n_samples, got {n_splits} and {len(P)}")
    scores = []
    for part in np.array_split(P, n_splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(np.clip(part, 1e-12, None)) - np.log(np.clip(py, 1e-12, None))))
        scores.append(math.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def mode_coverage(samples: Any, *, min_fraction: float = 0.1, probs: Any = None
                  ) -> dict[str, Any]:
    """Class histogram of ``samples`` under the digit classifier.

    Returns ``histogram`` (counts of the 10 digits), ``modes`` (classes holding at least
    ``min_fraction`` of their uniform share n/10: with 1,000 samples, 10 of them), and
    ``kl_uniform`` (KL(histogram || uniform) in nats). Accepts numpy arrays or torch tensors on
    any device (e.g. a generator's output during training).
    """
    P = np.asarray(probs, np.float64) if probs is not None else _probs(samples)
    counts = np.bincount(P.argmax(1), minlength=P.shape[1])
    n, K = int(counts.sum()), P.shape[1]
    p = counts / n
    nz = p > 0
    return {"histogram": counts.tolist(), "modes": int((counts >= min_fraction * n / K).sum()),
            "n_classes": K, "kl_uniform": float((p[nz] * np.log(p[nz] * K)).sum())}


class ModeTracker:
    """A training callback ``cb(step, metrics)``: every ``every`` steps, draws samples with
    ``sample_fn()`` and records the mode coverage in ``history`` (a list of dicts with
    ``step``, ``modes``, ``kl_uniform``, ``histogram``)."""

    def __init__(self, sample_fn: Callable[[], Any], every: int = 100,
                 min_fraction: float = 0.1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.sample_fn, self.every, self.min_fraction = sample_fn, every, min_fraction
        self.history: list[dict[str, Any]] = []

    def __call__(self, step: int, metrics: dict[str, float] | None = None) -> None:
        if step % self.every == 0:
            mc = mode_coverage(self.sample_fn(), min_fraction=self.min_fraction)
            self.history.append({"step": int(step), **mc})


# -- everything at once ------------------------------------------------------------------------
def sample_quality(samples: Any, reference: Any, *, feature_space: Any = None,
                   n_subsets: int = 100, subset_size: int = 1000, k: int = 3,
                   random_state: Any = 0, cache_dir: str | Path | None = None
                   ) -> dict[str, Any]:
    """FID, KID (mean and std), precision, recall and, for 784-pixel digits, the Inception-style
    score and mode coverage of ``samples`` against ``reference``.

    Returns a dict with ``fid``, ``kid``, ``kid_std``, ``precision``, ``recall``,
    ``n_samples``, ``n_reference``, ``feature_space`` and, when the samples are MNIST-shaped,
    ``inception_score``, ``inception_score_std``, ``modes``, ``kl_uniform`` and
    ``class_histogram``.
    """
    probs = None
    if _is_digitnet(feature_space):
        F, probs = _digit_outputs(samples)
    else:
        F = extract_features(samples, feature_space)
        try:
            probs = _probs(samples)
        except ValueError:  # not MNIST-shaped: no classifier scores
            probs = None
    ref = reference_statistics(reference, feature_space, cache_dir=cache_dir)
    a = _stats(F)
    out: dict[str, Any] = {"n_samples": len(F), "n_reference": len(ref["features"]),
                           "feature_space": "digitnet" if _is_digitnet(feature_space)
                           else str(feature_space if isinstance(feature_space, str)
                                    else type(feature_space).__name__)}
    out["fid"] = frechet_distance(a["mu"], a["sigma"], ref["mu"], ref["sigma"])
    out["kid"], out["kid_std"] = kernel_inception_distance(
        F, ref["features"], n_subsets=n_subsets, subset_size=subset_size,
        random_state=random_state)
    out["precision"], out["recall"] = precision_recall(F, ref["features"], k=k)
    if probs is not None:
        out["inception_score"], out["inception_score_std"] = inception_score(
            None, probs=probs, n_splits=min(10, len(probs)))
        mc = mode_coverage(None, probs=probs)
        out.update(modes=mc["modes"], kl_uniform=mc["kl_uniform"],
                   class_histogram=mc["histogram"])
    return out


# -- report section ----------------------------------------------------------------------------
class _SamplerMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return (callable(getattr(obj, "sample", None))
                and getattr(obj, "n_features_in_", None) == 784)


class DigitSampler(metaclass=_SamplerMeta):
    """Matches (isinstance) any fitted model with ``sample`` on 784-feature data."""


_REPORT_SAMPLES = 1000


@report_section(DigitSampler, title="Sample quality", order=90)
def sample_quality_section(model: Any, ctx: SectionContext) -> None:
    """FID / KID / precision / recall / modes of 1,000 samples against the report's data."""
    from unsup.report.sections import draw_samples

    if ctx.X is None or len(ctx.X) < 10:
        ctx.report.text("Not measured: the report has no data to compare the samples with.")
        return
    X = np.asarray(ctx.X)
    idx = np.random.default_rng(ctx.seed).permutation(len(X))
    floor = X[idx[:_REPORT_SAMPLES]] if len(X) >= 2 * _REPORT_SAMPLES else None
    ref = X[idx[_REPORT_SAMPLES:_REPORT_SAMPLES + 5000]] if floor is not None else X
    S = np.asarray(draw_samples(model, _REPORT_SAMPLES, ctx.seed), dtype=np.float32)
    rows = []
    for name, data in (("model samples", S), ("data rows (floor)", floor)):
        if data is None:
            continue
        q = sample_quality(data, ref, n_subsets=20, random_state=ctx.seed)
        rows.append({"set": name, "n": q["n_samples"], "FID": q["fid"],
                     "KID": f"{q['kid']:.4f} ± {q['kid_std']:.4f}",
                     "precision": q["precision"], "recall": q["recall"],
                     "modes": f"{q['modes']} / 10", "KL from uniform": q["kl_uniform"],
                     "class histogram": " ".join(map(str, q["class_histogram"]))})
    ctx.report.table(rows, caption=f"Sample quality in the feature space of the shipped MNIST "
                     f"classifier (docs/sample-quality.md): {len(S)} samples against "
                     f"{len(ref)} report rows; the floor row is {_REPORT_SAMPLES} other data "
                     "rows against the same reference (what a perfect sampler would score at "
                     "this sample size). KID over 20 subsets.")
