"""The autoencoder family: Autoencoder, DenoisingAutoencoder, SparseAutoencoder,
StackedAutoencoder. All are trained by the gradient engine (:mod:`unsup.train`)."""

from unsup.autoencoders.autoencoder import Autoencoder
from unsup.autoencoders.denoising import DenoisingAutoencoder
from unsup.autoencoders.sparse import SparseAutoencoder
from unsup.autoencoders.stacked import PRESETS, StackedAutoencoder

__all__ = ["Autoencoder", "DenoisingAutoencoder", "SparseAutoencoder", "StackedAutoencoder",
           "PRESETS"]
