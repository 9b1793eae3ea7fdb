"""The autoencoder family: Autoencoder, DenoisingAutoencoder, SparseAutoencoder,
StackedAutoencoder (and any further model file in this package). All are trained by the
gradient engine (:mod:`unsup.train`)."""

from unsup.autoencoders.autoencoder import Autoencoder
from unsup.autoencoders.denoising import DenoisingAutoencoder
from unsup.autoencoders.sparse import SparseAutoencoder
from unsup.autoencoders.stacked import PRESETS, StackedAutoencoder
from unsup.registry import import_family_modules

__all__ = ["Autoencoder", "DenoisingAutoencoder", "SparseAutoencoder", "StackedAutoencoder",
           "PRESETS"]
from unsup.autoencoders import _report  # noqa: E402,F401,I001  (registers the report sections)

# further model files (one per model) are found, not listed
__all__ = import_family_modules(__name__, globals())
