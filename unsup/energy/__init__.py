"""Energy-based models trained by MCMC-estimated gradients (CD-k, PCD).

Every model supplies its energy's conditionals and sufficient statistics; one engine
(:mod:`unsup.train.mcmc`) runs the minibatch loop. Likelihoods (``log_likelihood`` returns a
typed :class:`unsup.likelihood.Likelihood`): exact by enumeration for small models, annealed
importance sampling otherwise (:mod:`unsup.train.ais`); measuring never changes a model, and
``set_log_partition`` caches a log Z explicitly. The family's report sections live in
:mod:`unsup.energy._report`.
"""

from unsup.energy import _report  # noqa: E402,F401  (registers the family's report sections)
from unsup.energy.boltzmann import BoltzmannMachine
from unsup.energy.cf_rbm import CollaborativeFilteringRBM
from unsup.energy.dbm import DBM
from unsup.energy.dbn import DBN
from unsup.energy.gaussian_rbm import GaussianBernoulliRBM
from unsup.energy.rbm import BernoulliRBM
from unsup.energy.replicated_softmax import ReplicatedSoftmaxRBM

__all__ = ["BernoulliRBM", "BoltzmannMachine", "CollaborativeFilteringRBM", "DBM", "DBN",
           "GaussianBernoulliRBM", "ReplicatedSoftmaxRBM"]
