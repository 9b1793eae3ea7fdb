"""Pieces shared by GMMN, the adversarial autoencoder and VAE-GAN: the output layer that
follows the data, the reconstruction loss, seeds of sampling, checks of fitted strings."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unsup.train.seeding import derive_seed

__all__ = ["DecoderMixin", "OUTPUTS", "data_range", "output_for", "apply_output", "recon_loss",
           "sample_seed", "check_choice", "hidden_sizes"]

#: how a network's last linear layer becomes data: σ for data in [0, 1], nothing otherwise
OUTPUTS = ("sigmoid", "linear")


def data_range(X: Any) -> tuple[float, float]:
    """(min, max) of a tensor, or of the first 20 000 rows of an array / memmap."""
    if isinstance(X, torch.Tensor):
        return float(X.min()), float(X.max())
    head = np.asarray(X[: min(len(X), 20000)])
    return float(head.min()), float(head.max())


def output_for(X: Any) -> str:
    """"sigmoid" for data in [0, 1] (outputs are Bernoulli means / grey levels), else
    "linear"."""
    lo, hi = data_range(X)
    return "sigmoid" if lo >= 0.0 and hi <= 1.0 else "linear"


def check_choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    """A fitted string must be one of ``options`` (a model file is untrusted input)."""
    if value not in options:
        raise ValueError(f"{name}={value!r} is not one of {options}")
    return str(value)


def apply_output(out: torch.Tensor, kind: str) -> torch.Tensor:
    """The data-space value of a raw network output."""
    return torch.sigmoid(out) if kind == "sigmoid" else out


def recon_loss(out: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean over rows of the summed reconstruction loss of the raw output ``out``: Bernoulli
    cross-entropy from the logit (sigmoid outputs) or squared error (linear outputs)."""
    if kind == "sigmoid":
        return F.binary_cross_entropy_with_logits(out, x, reduction="sum") / x.shape[0]
    return F.mse_loss(out, x, reduction="sum") / x.shape[0]


def sample_seed(random_state: Any, own: Any) -> int:
    """The seed of a draw: ``random_state`` if an int, else the estimator's own integer
    ``random_state``, else 0; sampling never consumes the training generator."""
    base = random_state if isinstance(random_state, Integral) else own
    return derive_seed(int(base) if isinstance(base, Integral) else 0, 11)


def hidden_sizes(value: Any, name: str = "hidden_layer_sizes") -> list[int]:
    """A sequence of positive layer widths (``()``: none)."""
    sizes = [] if value is None else list(np.atleast_1d(np.asarray(value)).ravel())
    if any(isinstance(s, bool) or not isinstance(s, (Integral, np.integer)) or int(s) < 1
           for s in sizes):
        raise ValueError(f"{name} must be positive integers, got {value!r}")
    return [int(s) for s in sizes]


class DecoderMixin:
    """``inverse_transform`` for models with ``module_.decoder``, ``output_`` and
    ``n_components`` (the adversarial autoencoder, VAE-GAN): codes → data, in batches."""

    def _decode(self, z: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            self.module_.eval()  # type: ignore[attr-defined]
            dec, out = self.module_.decoder, self.output_  # type: ignore[attr-defined]
            return torch.cat([apply_output(dec(z[i:i + 4096]), out).cpu()
                              for i in range(0, z.shape[0], 4096)]).numpy()

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Decode codes ``Z`` (n, n_components) to data (means of the output distribution)."""
        self._check_fitted()  # type: ignore[attr-defined]
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32),
                            device=self._device())  # type: ignore[attr-defined]
        k = int(self.n_components)  # type: ignore[attr-defined]
        if z.ndim != 2 or z.shape[1] != k:
            raise ValueError(f"codes must have shape (n, {k}), got {tuple(z.shape)}")
        return self._decode(z)
