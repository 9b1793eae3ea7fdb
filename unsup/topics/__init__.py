"""Text and topic models: unigram and bigram language models, mixture of unigrams, pLSA, LDA.

Every model takes a documents x words matrix of counts (scipy sparse, never densified, or a
dense array; :mod:`unsup.data.text` makes one from text) and reports one held-out measure,
document completion (:mod:`unsup.topics._docs`), through ``log_likelihood(X)``. See
``docs/topics.md``.
"""

from unsup.registry import import_family_modules  # noqa: I001
from unsup.topics import _report  # noqa: F401  (registers the report sections)
from unsup.topics._docs import completion_log_likelihood
from unsup.topics.bigram import BigramLM
from unsup.topics.lda import LDA
from unsup.topics.mixture import MixtureOfUnigrams
from unsup.topics.plsa import PLSA
from unsup.topics.unigram import UnigramLM

__all__ = ["UnigramLM", "BigramLM", "MixtureOfUnigrams", "PLSA", "LDA",
           "completion_log_likelihood"]
# the models above keep their listing order; any other model file is found here
__all__ = import_family_modules(__name__, globals())
