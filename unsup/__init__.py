"""unsup: unsupervised representation learning on PyTorch.

Clusters, codes, samples and likelihoods behind one scikit-learn style API, on CPU or GPU,
scaling out with ``torchrun``.
"""

__version__ = "0.1.0"

from unsup.io import load, save  # noqa: E402

__all__ = ["__version__", "load", "save"]
