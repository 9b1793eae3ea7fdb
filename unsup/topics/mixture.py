r"""Mixture of unigrams: one topic per document (naive Bayes without labels), fitted by EM."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin

from unsup import distributed as ud
from unsup._io_checks import A
from unsup.base import make_generator
from unsup.params import Interval
from unsup.registry import register_model
from unsup.topics._base import TopicModelBase
from unsup.topics._docs import SparseDocs, spmm, spmm_t
from unsup.train.em import EMEngine

__all__ = ["MixtureOfUnigrams"]


@register_model("mixture-of-unigrams", family="topics", aliases=("mixture-unigrams", "mou"),
                summary="mixture of unigrams: one topic per document, EM (naive Bayes "
                        "without labels)")
class MixtureOfUnigrams(TransformerMixin, EMEngine, TopicModelBase):
    r"""Mixture of unigrams (Nigam et al. 2000): a document picks one topic, then all its words.

    .. math:: p(\mathbf w_d) = \sum_k \pi_k \prod_{i} \phi_{k, w_{di}}

    (the probability of the token sequence; the multinomial coefficient of the bag is left
    out). EM on the engine :mod:`unsup.train.em`: the E-step gives the responsibilities
    :math:`r_{dk} \propto \pi_k \prod_w \phi_{kw}^{n_{dw}}` (one sparse product
    :math:`X \log\phi^\top` per chunk), whose sums :math:`N_k = \sum_d r_{dk}` and
    :math:`S_{kw} = \sum_d r_{dk} n_{dw}` are the statistics; the M-step is the MAP update

    .. math:: \pi_k = \frac{N_k + a}{N + K a}, \qquad
              \phi_{kw} = \frac{S_{kw} + b}{\sum_{w'} S_{kw'} + V b}

    with a = ``topic_prior`` and b = ``word_prior``. The objective, which never decreases, is
    :math:`\log p(X \mid \pi, \phi) + a \sum_k \log\pi_k + b \sum_{kw} \log\phi_{kw}`;
    ``history_`` lists it and the log-likelihood per iteration (per document).
    Held-out measure: document completion, exact (the posterior over the document's topic
    given the observed half, then the held-out half under that mixture).

    Parameters
    ----------
    n_components : int, default=10
    topic_prior : float, default=1.0
        a, pseudo-count on the mixing weights.
    word_prior : float, default=0.01
        b, pseudo-count on every topic's word probabilities.
    n_init : int, default=1
    max_iter : int, default=100
    tol : float, default=1e-4
        Stop when the objective per document changes by less.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    weights_ : ndarray (K,)
    components_ : ndarray (K, V)
        Topic-word distributions φ.
    history_ : list of dict
    n_iter_ : int
    converged_ : bool

    References
    ----------
    Nigam, McCallum, Thrun & Mitchell (2000), Text classification from labeled and unlabeled
    documents using EM. Machine Learning 39.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "topic_prior": [Interval(Real, 0, None, closed="left")],
        "word_prior": [Interval(Real, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["boolean"],
    }
    _test_params: dict[str, Any] = {"n_components": 2, "max_iter": 20}
    _em_objective_name = "objective"

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"components_": A("f64", "n_components", "n_features_in_"),
                     "weights_": A("f64", "n_components")}

    def __init__(self, n_components: int = 10, *, topic_prior: float = 1.0,
                 word_prior: float = 0.01, n_init: int = 1, max_iter: int = 100,
                 tol: float = 1e-4, device: str = "auto", random_state: Any = None,
                 verbose: bool = False) -> None:
        self.n_components = n_components
        self.topic_prior = topic_prior
        self.word_prior = word_prior
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- EM hooks -------------------------------------------------------------------------------
    def _m_step(self, Nk: torch.Tensor, S: torch.Tensor) -> dict[str, torch.Tensor]:
        a, b = float(self.topic_prior), float(self.word_prior)
        pi = (Nk + a) / (Nk.sum() + Nk.numel() * a)
        phi = (S + b) / (S.sum(1, keepdim=True) + S.shape[1] * b).clamp_min(1e-300)
        return {"log_pi": torch.log(pi.clamp_min(1e-300)),
                "log_phi": torch.log(phi.clamp_min(1e-300))}

    def _em_initialize(self, X: SparseDocs, gen: torch.Generator, n_runs: int) -> Any:
        r = torch.rand(X.shape[0], int(self.n_components), generator=gen, device=gen.device)
        r = (r / r.sum(1, keepdim=True)).to(X.device, X.dtype)
        Nk, S = r.sum(0), spmm_t(X, r).T
        ud.all_reduce_sum(Nk, S)
        return self._m_step(Nk, S)

    def _em_row_width(self, params: Any) -> int:
        return 4 * int(self.n_components)

    def _log_joint(self, ch: SparseDocs, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return p["log_pi"] + spmm(ch, p["log_phi"].T.contiguous())

    def _em_e_step(self, ch: SparseDocs, p: Any, rows: slice) -> dict[str, torch.Tensor]:
        lj = self._log_joint(ch, p)
        ll = torch.logsumexp(lj, 1)
        r = torch.exp(lj - ll.unsqueeze(1))
        obj = ll.sum()
        out = {"Nk": r.sum(0), "S": spmm_t(ch, r).T.contiguous(), "ll": obj.reshape(1)}
        if rows.start == 0 and ud.rank() == 0:  # the prior terms, once
            obj = obj + float(self.topic_prior) * p["log_pi"].sum() \
                + float(self.word_prior) * p["log_phi"].sum()
        out["objective"] = obj.reshape(1)
        return out

    def _em_m_step(self, stats: dict[str, torch.Tensor], p: Any, X: Any) -> Any:
        return self._m_step(stats["Nk"], stats["S"])

    def _em_history(self, stats: dict[str, torch.Tensor], n_total: int, j: int
                    ) -> dict[str, float]:
        return {"log_likelihood": float(stats["ll"][j]) / n_total}

    # -- public API -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> MixtureOfUnigrams:
        """Fit by EM on the documents x words counts ``X`` (sparse or dense). Returns ``self``."""
        self._validate_params()
        M = self._counts(X, reset=True)
        dev = self._device()
        docs = SparseDocs(M, dev)
        res = self._em_fit(docs, n_init=int(self.n_init), max_iter=int(self.max_iter),
                           tol=float(self.tol), generator=make_generator(self.random_state, dev),
                           stage="MixtureOfUnigrams", verbose=bool(self.verbose))
        self.weights_ = torch.exp(res.params["log_pi"]).cpu().numpy()
        self.components_ = torch.exp(res.params["log_phi"]).cpu().numpy()
        self.history_ = res.history
        self.n_iter_, self.converged_ = int(res.n_iter), bool(res.converged)
        self.mean_length_ = float(M.sum() / M.shape[0])
        return self

    def _params(self) -> dict[str, torch.Tensor]:
        dev = self._device()
        return {"log_pi": torch.log(torch.from_numpy(self.weights_).clamp_min(1e-300)).to(dev),
                "log_phi": torch.log(torch.from_numpy(self.components_).clamp_min(1e-300)
                                     ).to(dev)}

    def _topics(self) -> np.ndarray:
        return self.components_

    def transform(self, X: Any) -> np.ndarray:
        """Posterior over each document's topic (documents x K).

        (Not called ``predict_proba``: scikit-learn's checks take that for a classifier.)"""
        lj = self._log_joint(SparseDocs(self._counts(X, reset=False), self._device()),
                             self._params())
        return torch.softmax(lj, 1).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable topic of each document."""
        return self.transform(X).argmax(1)

    def _completion(self, obs: SparseDocs, held: SparseDocs) -> torch.Tensor:
        p = self._params()
        dev = p["log_pi"].device
        obs, held = _to(obs, dev), _to(held, dev)
        post = torch.log_softmax(self._log_joint(obs, p), 1)
        return torch.logsumexp(post + spmm(held, p["log_phi"].T.contiguous()), 1).cpu()

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Word counts of documents of length ``round(mean_length_)``: a topic, then words."""
        self._check_fitted()
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        k = rng.choice(self.weights_.size, size=n_samples, p=self.weights_ / self.weights_.sum())
        n = max(1, int(round(self.mean_length_)))
        phi = self.components_ / self.components_.sum(1, keepdims=True)
        return np.stack([rng.multinomial(n, phi[j]) for j in k]).astype(np.float64)


def _to(ch: SparseDocs, dev: torch.device) -> SparseDocs:
    if ch.device == dev:
        return ch
    out = ch[0:ch.shape[0]]
    out.col, out.val, out.row, out.device = ch.col.to(dev), ch.val.to(dev), ch.row.to(dev), dev
    return out
