"""Adversarial and moment-matching generative models: the GAN loss zoo, GMMN, adversarial
autoencoders and VAE-GAN.

See ``docs/adversarial.md``.
"""

from unsup.registry import import_family_modules

# each public module is one model file; importing it registers the model
__all__ = import_family_modules(__name__, globals())
