r"""Probabilistic latent semantic analysis: a topic per word, fitted by (tempered) EM."""

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
from unsup.topics._docs import SparseDocs, admixture_completion, fold_in
from unsup.train.em import EMEngine

__all__ = ["PLSA"]


@register_model("plsa", family="topics", aliases=("plsi",),
                summary="probabilistic latent semantic analysis by (tempered) EM")
class PLSA(TransformerMixin, EMEngine, TopicModelBase):
    r"""pLSA (Hofmann 1999): every word of document d picks a topic from the document's own
    proportions θ_d, then a word from that topic.

    .. math:: p(w \mid d) = \sum_k \theta_{dk} \phi_{kw}, \qquad
              \log p(X) = \sum_{d,w} n_{dw} \log \sum_k \theta_{dk}\phi_{kw}

    EM on :mod:`unsup.train.em`, over the non-zeros only: the E-step's responsibilities
    :math:`r_{dwk} \propto (\theta_{dk}\phi_{kw})^{\beta}` (β = ``temper``; β = 1 is plain
    EM) give :math:`S_{kw} = \sum_d n_{dw} r_{dwk}` (summed over chunks and ranks) and, per
    document (per-row state), :math:`\theta_{dk} \propto \sum_w n_{dw} r_{dwk}`; the M-step
    sets :math:`\phi_{kw} = S_{kw} / \sum_{w'} S_{kw'}`. With β = 1 the log-likelihood never
    decreases (``history_``). Tempered EM (Hofmann 1999, §3.6) with β < 1 smooths the
    responsibilities against over-fitting; the objective then is not monotone.

    New documents are *folded in*: θ by EM with φ fixed (:meth:`transform`). The held-out
    measure is document completion (θ̂ folded in on the observed half).

    Parameters
    ----------
    n_components : int, default=10
    temper : float, default=1.0
        β in (0, 1], the exponent of tempered EM.
    max_iter : int, default=100
    tol : float, default=1e-4
        Stop when the log-likelihood per document changes by less.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    components_ : ndarray (K, V)
        Topic-word distributions φ.
    doc_topic_ : ndarray (N, K)
        θ of the training documents.
    history_ : list of dict

    References
    ----------
    Hofmann (1999), Probabilistic latent semantic indexing. SIGIR; and Probabilistic latent
    semantic analysis. UAI.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "temper": [Interval(Real, 0, 1, closed="right")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["boolean"],
    }
    _test_params: dict[str, Any] = {"n_components": 2, "max_iter": 20}
    _em_objective_name = "log_likelihood"
    _completion_kind = "stochastic estimate"
    _completion_how = "θ̂ folded in by EM on the observed half, topics fixed"

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"components_": A("f64", "n_components", "n_features_in_"),
                     "doc_topic_?": A("f64", "n", "n_components")}

    def __init__(self, n_components: int = 10, *, temper: float = 1.0, max_iter: int = 100,
                 tol: float = 1e-4, device: str = "auto", random_state: Any = None,
                 verbose: bool = False) -> None:
        self.n_components = n_components
        self.temper = temper
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _em_initialize(self, X: SparseDocs, gen: torch.Generator, n_runs: int) -> Any:
        K, (N, V) = int(self.n_components), X.shape
        phi = torch.rand(K, V, generator=gen, device=gen.device).to(X.device, X.dtype) + 0.5
        # drawn for every document of every rank, then sliced: sharding changes nothing
        start, n_all = ud.row_offset(N, X.device)
        theta = torch.rand(n_all, K, generator=gen, device=gen.device)[start:start + N]
        theta = theta.to(X.device, X.dtype) + 0.5
        ud.broadcast(phi)  # every rank starts from rank 0's topics
        return {"phi": phi / phi.sum(1, keepdim=True),
                "theta": theta / theta.sum(1, keepdim=True), "theta_next": theta.clone()}

    def _em_row_width(self, params: Any) -> int:
        return 4 * int(self.n_components)

    def _em_e_step(self, ch: SparseDocs, p: Any, rows: slice) -> dict[str, torch.Tensor]:
        P = p["theta"][rows][ch.row] * p["phi"].T[ch.col]  # (nnz, K)
        ll = (ch.val * torch.log(P.sum(1).clamp_min(1e-300))).sum()
        if float(self.temper) != 1.0:
            P = P ** float(self.temper)
        R = (ch.val / P.sum(1).clamp_min(1e-300)).unsqueeze(1) * P
        S = torch.zeros(ch.shape[1], P.shape[1], dtype=P.dtype, device=P.device
                        ).index_add_(0, ch.col, R)
        nk = torch.zeros(ch.shape[0], P.shape[1], dtype=P.dtype, device=P.device
                         ).index_add_(0, ch.row, R)
        p["theta_next"][rows] = nk / nk.sum(1, keepdim=True).clamp_min(1e-300)
        return {"S": S.T.contiguous(), "objective": ll.reshape(1)}

    def _em_m_step(self, stats: dict[str, torch.Tensor], p: Any, X: Any) -> Any:
        S = stats["S"]
        phi = S / S.sum(1, keepdim=True).clamp_min(1e-300)
        return {"phi": phi, "theta": p["theta_next"].clone(), "theta_next": p["theta_next"]}

    def fit(self, X: Any, y: Any = None) -> PLSA:
        """Fit by EM on the documents x words counts ``X``. Returns ``self``."""
        self._validate_params()
        M = self._counts(X, reset=True)
        dev = self._device()
        res = self._em_fit(SparseDocs(M, dev), n_init=1, max_iter=int(self.max_iter),
                           tol=float(self.tol), generator=make_generator(self.random_state, dev),
                           stage="PLSA", verbose=bool(self.verbose))
        self.components_ = res.params["phi"].cpu().numpy()
        self.doc_topic_ = res.params["theta"].cpu().numpy()
        self.history_ = res.history
        self.n_iter_, self.converged_ = int(res.n_iter), bool(res.converged)
        return self

    def _phi(self) -> torch.Tensor:
        return torch.from_numpy(self.components_).to(self._device())

    def _topics(self) -> np.ndarray:
        return self.components_

    def transform(self, X: Any) -> np.ndarray:
        """Topic proportions θ of new documents, folded in by EM with the topics fixed."""
        ch = SparseDocs(self._counts(X, reset=False), self._device())
        return fold_in(self._phi(), ch, 0.0).cpu().numpy()

    def _completion(self, obs: SparseDocs, held: SparseDocs) -> torch.Tensor:
        from unsup.topics.mixture import _to

        dev = self._device()
        return admixture_completion(self._phi(), 0.0, _to(obs, dev), _to(held, dev)).cpu()
