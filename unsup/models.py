"""The models the command line knows, by name. Families add themselves here as they land."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["ModelSpec", "MODELS", "get_model", "model_names"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    module: str
    cls: str
    summary: str
    family: str

    def load_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.cls)


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("kmeans", "unsup.cluster", "KMeans",
                  "k-means clustering (Lloyd's algorithm, k-means++ seeding)", "cluster"),
        ModelSpec("minibatch-kmeans", "unsup.cluster", "MiniBatchKMeans",
                  "mini-batch k-means for large or memory-mapped data", "cluster"),
        ModelSpec("gmm", "unsup.cluster", "GaussianMixture",
                  "Gaussian mixture fitted by EM (full/tied/diag/spherical covariances)",
                  "cluster"),
    ]
}
_ALIASES = {"k-means": "kmeans", "gaussian-mixture": "gmm", "mbkmeans": "minibatch-kmeans"}


def model_names() -> list[str]:
    return list(MODELS)


def get_model(name: str) -> ModelSpec:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[key]
