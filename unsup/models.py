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
        ModelSpec("pca", "unsup.decomposition", "PCA",
                  "principal component analysis (full or randomized SVD, whitening)",
                  "decomposition"),
        ModelSpec("autoencoder", "unsup.autoencoders", "Autoencoder",
                  "autoencoder, MLP or convolutional (loss follows the data)", "autoencoders"),
        ModelSpec("denoising-autoencoder", "unsup.autoencoders", "DenoisingAutoencoder",
                  "denoising autoencoder (masking, Gaussian, salt-and-pepper noise)",
                  "autoencoders"),
        ModelSpec("sparse-autoencoder", "unsup.autoencoders", "SparseAutoencoder",
                  "sparse autoencoder (KL(rho||rho_hat) or L1 penalty on the code)",
                  "autoencoders"),
        ModelSpec("stacked-autoencoder", "unsup.autoencoders", "StackedAutoencoder",
                  "deep autoencoder: greedy layer-wise pre-training, then fine-tuning",
                  "autoencoders"),
        ModelSpec("rbm", "unsup.energy", "BernoulliRBM",
                  "binary RBM trained by CD-k or PCD; AIS log-likelihood", "energy"),
        ModelSpec("gaussian-rbm", "unsup.energy", "GaussianBernoulliRBM",
                  "RBM with Gaussian visible units for real-valued data", "energy"),
        ModelSpec("replicated-softmax", "unsup.energy", "ReplicatedSoftmaxRBM",
                  "replicated softmax RBM for word counts (documents of any length)", "energy"),
        ModelSpec("cf-rbm", "unsup.energy", "CollaborativeFilteringRBM",
                  "RBM for collaborative filtering (softmax ratings 1..K, missing skipped)",
                  "energy"),
        ModelSpec("dbn", "unsup.energy", "DBN",
                  "deep belief net: greedy stacked RBMs, up-down fine-tuning, AIS lower bound",
                  "energy"),
        ModelSpec("dbm", "unsup.energy", "DBM",
                  "deep Boltzmann machine (2 hidden layers): mean field + PCD, AIS lower bound",
                  "energy"),
        ModelSpec("boltzmann-machine", "unsup.energy", "BoltzmannMachine",
                  "fully connected Boltzmann machine (exact likelihood up to 20 units)",
                  "energy"),
    ]
}
_ALIASES = {"k-means": "kmeans", "gaussian-mixture": "gmm", "mbkmeans": "minibatch-kmeans",
            "ae": "autoencoder", "dae": "denoising-autoencoder", "sae": "sparse-autoencoder",
            "deep-autoencoder": "stacked-autoencoder", "bernoulli-rbm": "rbm",
            "gbrbm": "gaussian-rbm", "rsm": "replicated-softmax", "bm": "boltzmann-machine",
            "collaborative-filtering-rbm": "cf-rbm",
            "deep-belief-net": "dbn", "deep-boltzmann-machine": "dbm"}


def model_names() -> list[str]:
    return list(MODELS)


def get_model(name: str) -> ModelSpec:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[key]
