"""Adversarial and moment-matching generative models: the GAN loss zoo, GMMN, adversarial
autoencoders and VAE-GAN.

See ``docs/adversarial.md``.
"""

import importlib
import pkgutil

__all__: list[str] = []
# Each public submodule is one model file; importing it registers the model. Listed by discovery
# so that a new model is one new file (see docs/adding-a-model.md).
for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        _mod = importlib.import_module(f"{__name__}.{_info.name}")
        for _name in getattr(_mod, "__all__", ()):
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
