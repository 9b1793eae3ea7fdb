"""Does unsupervised pre-training help a supervised task? The controlled experiment.

A classifier is built from an encoder (for example the encoder of a
:class:`unsup.autoencoders.StackedAutoencoder`, trained greedily layer by layer and then end
to end on unlabelled data) with a linear softmax layer on top. Two copies are trained on the
same few labels with the same optimiser, step budget, minibatch order and the same output
layer initialisation:

* **pretrained** — the hidden layers start from the encoder's weights;
* **random** — the very same architecture, every layer re-initialised at random
  (PyTorch's default initialisation for each layer type, seeded).

Both are then fine-tuned end to end (all layers trained) and scored on a held-out test set.
The difference is the effect of pre-training alone, which is the comparison of Erhan et al.
(2010); Hinton & Salakhutdinov (2006) showed the pre-trained deep network could be
fine-tuned at all.

References
----------
.. [1] Erhan, D., Bengio, Y., Courville, A., Manzagol, P.-A., Vincent, P. and Bengio, S.
   (2010). Why does unsupervised pre-training help deep learning? JMLR 11, 625–660.
.. [2] Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality of data
   with neural networks. Science 313(5786), 504–507.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from unsup.metrics.probes import balanced_subset
from unsup.train.finetune import build_classifier, finetune, resolve_encoder

# build_classifier, finetune and resolve_encoder live in unsup.train.finetune (the training
# layer); they are re-exported here, where they used to be.
__all__ = ["build_classifier", "finetune", "pretraining_experiment", "resolve_encoder"]


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 4096) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(X), batch):
            correct += int((model(X[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(X))


def _max_abs_diff(a: nn.Module, b: nn.Module) -> float:
    pairs = zip(a.parameters(), b.parameters(), strict=True)
    diffs = [float((p.detach() - q.detach()).abs().max()) for p, q in pairs if p.numel()]
    return max(diffs) if diffs else 0.0


def _std(v: Sequence[float]) -> float:
    return statistics.pstdev(v) if len(v) > 1 else 0.0


def _as_tensor(a: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def pretraining_experiment(
    encoder: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    n_labels: Iterable[int | None] = (100, 1000),
    *,
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    device: str | torch.device = "cpu",
) -> list[dict[str, Any]]:
    """Test accuracy of a classifier with pre-trained versus random hidden layers.

    For each ``n`` in ``n_labels`` and each seed: draw a class-balanced subset of ``n``
    labelled training examples (:func:`unsup.metrics.balanced_subset`), build the classifier
    twice (:func:`build_classifier`, pretrained and random), fine-tune both identically
    (:func:`finetune`) and measure accuracy on the whole test set.

    Parameters
    ----------
    encoder : nn.Module or estimator with ``encoder_module()``
        The pre-trained hidden layers (never modified; copies are trained).
    X_train, X_test : array-like of shape (n, n_features)
        Inputs (numpy arrays or tensors).
    y_train, y_test : array-like of shape (n,)
        Integer class labels in ``0 .. n_classes - 1``.
    n_labels : iterable of int or None, default=(100, 1000)
        Labelled-subset sizes; ``None`` uses every training label.
    seeds : sequence of int, default=(0, 1, 2)
        One repetition per seed (subset, random init, output layer, minibatch order).
    steps, batch_size, lr, weight_decay :
        Fine-tuning settings, as in :func:`finetune`; the same for both arms.
    device : str or torch.device, default="cpu"
        Where to train ("auto" picks CUDA when present).

    Returns
    -------
    list of dict
        One row per ``n_labels``: ``n_labels``, ``pretrained_mean``, ``pretrained_std``,
        ``random_mean``, ``random_std`` (test accuracy, population std over seeds),
        ``pretrained`` and ``random`` (per-seed accuracies), ``gain`` (pretrained minus
        random, mean), ``winner`` ("pretrained", "random" or "tie"),
        ``pretrained_train_loss`` / ``random_train_loss`` (mean final training loss),
        ``init_check`` (per seed, the largest absolute difference between the classifier's
        initial hidden weights and the encoder's: 0 for pretrained, > 0 for random),
        ``seconds``.

    References
    ----------
    Erhan et al. (2010), Why does unsupervised pre-training help deep learning? JMLR 11.
    Hinton & Salakhutdinov (2006), Science 313, 504–507.
    """
    from unsup.base import resolve_device

    dev = resolve_device(device)
    enc = resolve_encoder(encoder)
    p0 = next(iter(enc.parameters()), None)
    dtype = p0.dtype if p0 is not None else torch.float32
    enc_dev = copy.deepcopy(enc).to(dev)
    Xtr = _as_tensor(X_train, dtype, dev)
    Xte = _as_tensor(X_test, dtype, dev)
    ytr_np = np.asarray(y_train.cpu() if isinstance(y_train, torch.Tensor) else y_train)
    ytr_np = ytr_np.reshape(-1).astype(np.int64)
    ytr = torch.as_tensor(ytr_np, device=dev)
    yte = _as_tensor(y_test, torch.int64, dev).reshape(-1)
    if len(ytr) != len(Xtr) or len(yte) != len(Xte):
        raise ValueError("X and y must have the same number of rows")
    n_classes = int(max(ytr.max(), yte.max())) + 1
    n_features = int(Xtr.shape[1])
    seeds = list(seeds)
    rows = []
    for n in n_labels:
        t0 = time.perf_counter()
        full = n is None or int(n) >= len(ytr_np)
        acc: dict[str, list[float]] = {"pretrained": [], "random": []}
        loss: dict[str, list[float]] = {"pretrained": [], "random": []}
        init_check: dict[str, list[float]] = {"pretrained": [], "random": []}
        for s in seeds:
            idx = np.arange(len(ytr_np)) if full else balanced_subset(ytr_np, int(n), s)
            it = torch.as_tensor(idx, device=dev)
            for arm in ("pretrained", "random"):
                model = build_classifier(enc_dev, n_features, n_classes,
                                         pretrained=arm == "pretrained", random_state=s)
                init_check[arm].append(_max_abs_diff(model[0], enc_dev))
                losses = finetune(model, Xtr[it], ytr[it], steps=steps, batch_size=batch_size,
                                  lr=lr, weight_decay=weight_decay, random_state=s)
                loss[arm].append(float(np.mean(losses[-10:])))
                acc[arm].append(_accuracy(model, Xte, yte))
        pm, rm = statistics.fmean(acc["pretrained"]), statistics.fmean(acc["random"])
        rows.append({
            "n_labels": len(ytr_np) if full else int(n),
            "pretrained_mean": pm, "pretrained_std": _std(acc["pretrained"]),
            "random_mean": rm, "random_std": _std(acc["random"]),
            "pretrained": acc["pretrained"], "random": acc["random"],
            "gain": pm - rm,
            "winner": "pretrained" if pm > rm else ("random" if rm > pm else "tie"),
            "pretrained_train_loss": statistics.fmean(loss["pretrained"]),
            "random_train_loss": statistics.fmean(loss["random"]),
            "init_check": init_check, "n_seeds": len(seeds),
            "seconds": time.perf_counter() - t0,
        })
    return rows
