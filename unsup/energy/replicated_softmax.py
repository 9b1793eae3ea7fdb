r"""Replicated softmax: an RBM over word counts of documents of different lengths."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unsup.data.validation import DataError
from unsup.energy._rbm import State, _BaseRBM, _RBMMath, _to_t
from unsup.io import register

__all__ = ["ReplicatedSoftmaxRBM"]


def _multinomial_rows(p: torch.Tensor, counts: torch.Tensor, gen: torch.Generator
                      ) -> torch.Tensor:
    """Row n: a Multinomial(counts[n], p[n]) draw (vectorised over rows of any length)."""
    n_max = int(counts.max()) if counts.numel() else 0
    out = torch.zeros_like(p)
    if n_max == 0:
        return out
    idx = torch.multinomial(p, n_max, replacement=True, generator=gen)
    keep = (torch.arange(n_max, device=p.device).unsqueeze(0) < counts.unsqueeze(1))
    return out.scatter_add_(1, idx, keep.to(p.dtype))


class _RSMMath(_RBMMath):
    r""":math:`E(v,h) = -b^\top v - D\,c^\top h - h^\top W v`, v word counts, D = sum(v)."""

    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        return v @ self.W.T + v.sum(1, keepdim=True) * self.c

    def visible_mean(self, h: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        p = torch.softmax(torch.addmm(self.b, h, self.W), 1)
        return p * (like.sum(1, keepdim=True) if like is not None else 1.0)

    def sample_visible(self, h: torch.Tensor, gen: torch.Generator,
                       like: torch.Tensor | None = None) -> torch.Tensor:
        assert like is not None  # the document lengths come from the current state
        p = torch.softmax(torch.addmm(self.b, h, self.W), 1)
        return _multinomial_rows(p, like.sum(1).round().long(), gen)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -(v @ self.b) - F.softplus(self.hidden_input(v)).sum(1)

    def stats(self, rows: State, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        v, h = rows
        hw = h * weights.unsqueeze(1)
        return {"W": hw.T @ v, "b": weights @ v, "c": (hw * v.sum(1, keepdim=True)).sum(0)}


@register
class ReplicatedSoftmaxRBM(_BaseRBM):
    r"""Replicated softmax model for bags of words (Salakhutdinov & Hinton 2009).

    A document of length :math:`D` is D draws from one K-way softmax visible unit whose
    weights are shared ("replicated"); with :math:`v_k` the count of word k,

    .. math::

        E(v, h) &= -\sum_k b_k v_k - D \sum_j c_j h_j - \sum_{j,k} W_{jk} h_j v_k \\
        p(h_j = 1 \mid v) &= \sigma\Big(D c_j + \sum_k W_{jk} v_k\Big), \qquad
        v \mid h \sim \operatorname{Multinomial}\Big(D,\ \operatorname{softmax}_k(b_k +
        \textstyle\sum_j W_{jk} h_j)\Big)

    Scaling the hidden biases by the document length is what lets one model serve documents
    of different lengths. Trained by CD-k with the shared engine (Gibbs steps keep each
    document's length). ``transform`` gives :math:`p(h \mid v)`, usable as document codes;
    :meth:`free_energy` scores documents up to each length's log Z (no ``score_samples``:
    log Z depends on D and AIS per length is not implemented).

    Parameters
    ----------
    n_components : int, default=50
    learning_rate : float, default=0.001
    batch_size : int, default=100
    n_iter : int or None, default=None
    cd_k : int, default=1
    persistent : bool, default=False
        Persistent chains keep the lengths of the documents that started them.
    n_updates : int, default=5000
    momentum : float, default=0.9
    weight_decay : float, default=1e-4
    lr_schedule : {"linear", "cosine", "constant"}, default="linear"
    n_chains : int or None, default=None
    sparsity_target : float or None, default=None
    sparsity_cost : float, default=0.1
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    components_ : ndarray (H, K)
    intercept_hidden_ : ndarray (H,)
    intercept_visible_ : ndarray (K,)

    References
    ----------
    Salakhutdinov & Hinton (2009), Replicated softmax: an undirected topic model. NIPS.
    """

    _math_cls = _RSMMath
    _stage = "ReplicatedSoftmaxRBM"

    def __init__(self, n_components: int = 50, *, learning_rate: float = 0.001,
                 batch_size: int = 100, n_iter: int | None = None, cd_k: int = 1,
                 persistent: bool = False, n_updates: int = 5000, momentum: float = 0.9,
                 weight_decay: float = 1e-4, lr_schedule: str = "linear",
                 n_chains: int | None = None, sparsity_target: float | None = None,
                 sparsity_cost: float = 0.1, device: str = "auto", random_state: Any = None,
                 verbose: Any = False) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.cd_k = cd_k
        self.persistent = persistent
        self.n_updates = n_updates
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.n_chains = n_chains
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_data(self, X: torch.Tensor, fitting: bool) -> torch.Tensor:
        neg = X < 0
        frac = X != torch.round(X)
        for bad, what in ((neg, "negative"), (frac, "fractional")):
            if bool(bad.any()):
                i, j = (int(t) for t in torch.nonzero(bad)[0])
                raise DataError(
                    f"ReplicatedSoftmaxRBM models word counts (non-negative integers), but X "
                    f"has {what} values (e.g. X[{i}, {j}] = {float(X[i, j]):.4g})")
        return X

    def _init_math(self, X: torch.Tensor, gen: torch.Generator) -> _RSMMath:
        K, H = X.shape[1], int(self.n_components)
        freq = X.sum(0) + 1.0
        b = torch.log(freq / freq.sum())
        W = (0.01 * torch.randn(H, K, generator=gen, device=gen.device)).to(X)
        return _RSMMath(W, b.to(X.dtype), torch.zeros(H, dtype=X.dtype, device=X.device))

    def _after_fit(self, X: torch.Tensor) -> None:
        pass

    def _init_visible(self, m: _RBMMath, n: int, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    @property
    def score_samples(self) -> Any:  # type: ignore[override]
        raise AttributeError("ReplicatedSoftmaxRBM has no normalised likelihood (log Z depends "
                             "on the document length); use free_energy")

    @property
    def score(self) -> Any:  # type: ignore[override]
        raise AttributeError("ReplicatedSoftmaxRBM has no score; use free_energy")

    @property
    def sample(self) -> Any:  # type: ignore[override]
        raise AttributeError("ReplicatedSoftmaxRBM.sample is not implemented")

    @property
    def gibbs_chain(self) -> Any:  # type: ignore[override]
        raise AttributeError("ReplicatedSoftmaxRBM.gibbs_chain is not implemented")

    def reconstruct(self, X: Any) -> np.ndarray:
        """Expected counts :math:`D\\,\\operatorname{softmax}(b + W^\\top p(h \\mid v))`."""
        Xt = self._input(X)
        m = self._math(Xt.device)
        return m.visible_mean(m.hidden_mean_of(Xt), Xt).cpu().numpy()

    def _math(self, device: torch.device) -> _RSMMath:
        return _RSMMath(_to_t(self.components_, device), _to_t(self.intercept_visible_, device),
                        _to_t(self.intercept_hidden_, device))
