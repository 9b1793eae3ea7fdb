"""Autoregressive models with exact likelihoods: NADE, MADE, PixelCNN and character RNNs.

See ``docs/autoregressive.md`` and ``docs/char-rnn.md``.
"""

from unsup.registry import import_family_modules

# each public module is one model file; importing it registers the model
__all__ = import_family_modules(__name__, globals())
