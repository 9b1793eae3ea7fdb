"""The domain feature network of the sample-quality metrics: a small MNIST digit classifier.

``DigitNet`` is three 3x3 convolutions (16, 32, 64 channels, each followed by ReLU and 2x2 max
pooling), a 128-unit fully connected layer (ReLU) and a 10-way softmax. The feature space of FID,
KID and precision/recall (the role Inception's pool3 layer plays for natural images) is the 128
pre-activations of the penultimate layer, times a fixed ``feature_scale`` chosen at training so
that their mean square on the training digits is 1 (why pre-activation: after the ReLU a third
of the units are zero on every digit, which makes the covariances singular; why the scale: the
cubic kernel of KID assumes features of order one). The softmax is the classifier of the
Inception-style score and of the mode histogram.

The weights are trained by ``scripts/train_feature_net.py`` (deterministic: one thread, fixed
seeds) on the 5,000 MNIST *training* digits embedded in the package (``mnist5k``; the MNIST test
set is never used for training) and shipped in ``unsup/metrics/weights`` as safetensors (no
pickle). :func:`load_feature_net` checks their sha256 before loading them, on the CPU, so every
machine computes features with the same weights and nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["DigitNet", "load_feature_net", "weights_sha256", "to_images", "extract_features",
           "WEIGHTS_PATH", "WEIGHTS_SHA256", "FEATURE_DIM"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_PATH = WEIGHTS_DIR / "mnist_digitnet.safetensors"
# the sha256 of the shipped file (also in weights/mnist_digitnet.sha256); a file that does not
# match is refused, so a corrupted or swapped file can never change the metrics silently
WEIGHTS_SHA256 = "86fa1bf047820f7011338ce8e0b7223e48dfdd581d850b6daf2d8de6c1d1783a"
FEATURE_DIM = 128
# MNIST pixel mean and standard deviation: inputs are standardised with fixed constants
_MEAN, _STD = 0.1307, 0.3081


class DigitNet(nn.Module):
    """conv(1->16) -> conv(16->32) -> conv(32->64) (3x3, ReLU, 2x2 max-pool each) -> fc 128 ->
    fc 10. Input: (n, 1, 28, 28) pixels in [0, 1]."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 3 * 3, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, 10)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("feature_scale", torch.ones(()))

    def pre_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128 pre-activations of the penultimate layer (unscaled)."""
        f = nn.functional
        h = (x - _MEAN) / _STD
        h = f.max_pool2d(f.relu(self.conv1(h)), 2)
        h = f.max_pool2d(f.relu(self.conv2(h)), 2)
        h = f.max_pool2d(f.relu(self.conv3(h)), 2)
        return self.fc1(self.drop(h.flatten(1)))

    def head(self, pre: torch.Tensor) -> torch.Tensor:
        """Class logits from the (unscaled) pre-activations."""
        return self.fc2(self.drop(nn.functional.relu(pre)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature space of FID/KID/precision/recall: scaled pre-activations."""
        return self.pre_features(x) * self.feature_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.head(self.pre_features(x))


def weights_sha256(path: Path | str = WEIGHTS_PATH) -> str:
    """sha256 (hex) of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def load_feature_net() -> DigitNet:
    """The shipped classifier, in eval mode on the CPU, after checking the file's sha256."""
    from safetensors.torch import load_file

    if not WEIGHTS_PATH.is_file():
        raise FileNotFoundError(f"the domain feature network's weights are missing: "
                                f"{WEIGHTS_PATH} (was the installation trimmed?); "
                                "scripts/train_feature_net.py rebuilds them")
    got = weights_sha256(WEIGHTS_PATH)
    if got != WEIGHTS_SHA256:
        raise ValueError(f"{WEIGHTS_PATH} has sha256 {got}, expected {WEIGHTS_SHA256}: the "
                         "file is corrupt or not the shipped one; refusing to compute metrics "
                         "with other weights")
    net = DigitNet()
    net.load_state_dict(load_file(str(WEIGHTS_PATH), device="cpu"))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def to_images(X: Any) -> torch.Tensor:
    """Rows of 784 pixels (or 28x28 / 1x28x28 images; numpy or torch, any device) as a float32
    CPU tensor of shape (n, 1, 28, 28), clipped to [0, 1], the range the network was trained
    on. Non-finite values are an error."""
    t = X.detach().to("cpu") if isinstance(X, torch.Tensor) else torch.from_numpy(
        np.ascontiguousarray(np.asarray(X, dtype=np.float32)))
    t = t.to(torch.float32)
    n = t.shape[0] if t.ndim else 0
    if t.ndim < 2 or t[0].numel() != 784 or n == 0:
        raise ValueError(f"the digit feature network needs MNIST-shaped images (n, 784), "
                         f"(n, 28, 28) or (n, 1, 28, 28); got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("samples contain NaN or infinite values")
    return t.reshape(n, 1, 28, 28).clamp(0.0, 1.0)


_BATCH = 1000


# -- feature spaces ---------------------------------------------------------------------------
@torch.no_grad()
def _digit_outputs(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, 128) and class probabilities (n, 10) of the digit network."""
    net = load_feature_net()
    imgs = to_images(X)
    feats, probs = [], []
    for i in range(0, len(imgs), _BATCH):
        pre = net.pre_features(imgs[i:i + _BATCH])
        feats.append(pre * net.feature_scale)
        probs.append(torch.softmax(net.head(pre), 1))
    return torch.cat(feats).numpy(), torch.cat(probs).double().numpy()


def _is_digitnet(space: Any) -> bool:
    return space is None or (isinstance(space, str) and space.lower() in ("digitnet", "mnist"))


def extract_features(X: Any, feature_space: Any = None) -> np.ndarray:
    """Rows of ``X`` in a feature space, as a 2-D float array.

    ``feature_space``: None or ``"digitnet"`` (the shipped MNIST network; ``X`` are 784-pixel
    images in [0, 1], clipped there), ``"pixels"`` (the rows themselves), a ``torch.nn.Module``
    (called in eval mode, without gradients, on float32 batches on its device), an estimator
    with ``transform``, or a callable ``X -> features``.
    """
    if _is_digitnet(feature_space):
        return _digit_outputs(X)[0]
    if isinstance(feature_space, str) and feature_space.lower() == "pixels":
        F = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    elif isinstance(feature_space, torch.nn.Module):
        F = _module_features(feature_space, X)
    elif callable(getattr(feature_space, "transform", None)):
        F = feature_space.transform(X)
    elif callable(feature_space):
        F = feature_space(X)
    else:
        raise ValueError(f"feature_space must be None, 'digitnet', 'pixels', a torch Module, "
                         f"an estimator with transform or a callable; got {feature_space!r}")
    F = F.detach().cpu().numpy() if isinstance(F, torch.Tensor) else np.asarray(F)
    F = F.reshape(len(F), -1).astype(np.float64, copy=False)
    if not np.isfinite(F).all():
        raise ValueError("the features contain NaN or infinite values")
    return F


@torch.no_grad()
def _module_features(module: torch.nn.Module, X: Any) -> torch.Tensor:
    p = next(iter(module.parameters()), None)
    dev = p.device if p is not None else torch.device("cpu")
    t = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X, dtype=np.float32))
    was_training = module.training
    module.eval()
    try:
        return torch.cat([module(t[i:i + _BATCH].to(dev, torch.float32)).reshape(
            len(t[i:i + _BATCH]), -1).cpu() for i in range(0, len(t), _BATCH)])
    finally:
        module.train(was_training)


def _space_key(space: Any) -> str | None:
    """A stable identity of a feature space, or None when it has none (no caching)."""
    if _is_digitnet(space):
        return "digitnet-" + WEIGHTS_SHA256
    if isinstance(space, str) and space.lower() == "pixels":
        return "pixels"
    if isinstance(space, torch.nn.Module):
        h = hashlib.sha256(type(space).__qualname__.encode())
        for k, v in space.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return "module-" + h.hexdigest()
    return None  # an estimator or callable may change (refit) under the same identity


def _data_hash(X: Any) -> str:
    a = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    a = np.ascontiguousarray(a, dtype=np.float32)
    h = hashlib.sha256(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()
