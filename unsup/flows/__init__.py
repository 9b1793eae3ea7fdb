"""Normalizing flows with exact likelihoods: RealNVP and Glow.

See ``docs/flows.md``.
"""

from unsup.registry import import_family_modules

# each public module is one model file; importing it registers the model
__all__ = import_family_modules(__name__, globals())
