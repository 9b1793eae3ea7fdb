r"""Replicated softmax: an RBM over word counts of documents of different lengths."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unsup._io_checks import A
from unsup.base import make_generator, report_progress
from unsup.data.validation import DataError
from unsup.energy._rbm import (
    RBM_STATE_SHAPES,
    State,
    _BaseRBM,
    _bernoulli,
    _RBMMath,
    _to_t,
    visible_ais_increment,
)
from unsup.likelihood import Likelihood
from unsup.registry import register_model
from unsup.train.ais import LogPartition, _summarise, ais
from unsup.train.mcmc import check_int

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


@register_model('replicated-softmax', family='energy', aliases=('rsm',),
                summary='replicated softmax RBM for word counts (documents of any length)')
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
    document's length). ``transform`` gives :math:`p(h \mid v)`, usable as document codes.

    Likelihood. A document is D tokens, each one replica of the softmax, so with
    :math:`F(v) = -b^\top v - \sum_j \operatorname{softplus}(D c_j + W_{j\cdot} v)`,

    .. math::

        \log p(\text{tokens}) = -F(v) - \log Z_D, \qquad
        Z_D = \sum_h e^{D c^\top h} \Big(\sum_k e^{b_k + (W^\top h)_k}\Big)^D,

    one partition function per document length. :meth:`score_samples` returns it per
    document (nats; the probability of the token sequence, as in the paper's perplexities),
    with :math:`\log Z_D` exact by enumerating h when H <= 16, else estimated by AIS run for
    every distinct length at once (base model: the unigram distribution, W = 0;
    intermediate models anneal W and the biases together; Salakhutdinov & Hinton 2009, §4).
    :meth:`perplexity` is :math:`\exp(-\sum_n \log p(v_n) / \sum_n D_n)`.

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
    ais_runs : int, default=100
        AIS runs per document length.
    ais_betas : int or array-like, default=10000
        AIS inverse temperatures.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    components_ : ndarray (H, K)
    intercept_hidden_ : ndarray (H,)
    intercept_visible_ : ndarray (K,)
    base_rate_logits_ : ndarray (K,)
        Log unigram frequencies of the training words (smoothed): the AIS base model.
    log_partition_lengths_, log_partition_values_, log_partition_stds_ : ndarray
        Document lengths whose log Z_D is cached, the values, and their AIS standard
        deviations (0 when exact); filled only by :meth:`set_log_partition`.
    likelihood_kind_ : str
        "exact" (H <= 16) or "AIS estimate".

    References
    ----------
    Salakhutdinov & Hinton (2009), Replicated softmax: an undirected topic model. NIPS.
    """

    _test_data = "counts"
    # word counts usually come sparse (unsup.data.text, CountVectorizer): read them densely
    # (documents × vocabulary floats; Tiny Shakespeare's speeches: 6,883 × 2,941, 81 MB)
    _densify_sparse = True

    _math_cls = _RSMMath
    _stage = "ReplicatedSoftmaxRBM"

    _test_params: dict[str, Any] = {"n_components": 4, "n_updates": 20, "ais_runs": 10,
                                    "ais_betas": 50, "device": "cpu", "random_state": 0}

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {**RBM_STATE_SHAPES, "log_partition_lengths_?": A("i64", "m"),
                     "log_partition_stds_?": A("f64", "m"),
                     "log_partition_values_?": A("f64", "m")}

    def __init__(self, n_components: int = 50, *, learning_rate: float = 0.001,
                 n_updates: int = 5000, weight_decay: float = 1e-4, ais_runs: int = 100,
                 ais_betas: Any = 10000, device: str = "auto", random_state: Any = None,
                 verbose: Any = False) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.n_updates = n_updates
        self.weight_decay = weight_decay
        self.ais_runs = ais_runs
        self.ais_betas = ais_betas
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True  # densified (_densify_sparse)
        return tags

    def _check_data(self, X: torch.Tensor, fitting: bool) -> torch.Tensor:
        bad = X < 0
        if bool(bad.any()):
            i, j = (int(t) for t in torch.nonzero(bad)[0])
            raise DataError(
                f"Negative values in data passed to ReplicatedSoftmaxRBM: it models word "
                f"counts (non-negative), but X has negative values (e.g. X[{i}, {j}] = "
                f"{float(X[i, j]):.4g})")
        return X

    def _likelihood_input(self, X: Any) -> tuple[torch.Tensor, str | None]:
        """Integer counts: likelihoods are defined for token counts; fractional values
        (weighted counts, accepted by ``fit`` and ``transform``) are rounded, and said so."""
        Xt = self._input(X)
        R = torch.round(Xt)
        if torch.equal(R, Xt):
            return Xt, None
        return R, "counts rounded to integers (X had fractional values)"

    def _init_math(self, X: torch.Tensor, gen: torch.Generator) -> _RSMMath:
        K, H = X.shape[1], int(self.n_components)
        freq = X.sum(0) + 1.0
        b = torch.log(freq / freq.sum())
        self.base_rate_logits_ = b.double().cpu().numpy()
        W = (0.01 * torch.randn(H, K, generator=gen, device=gen.device)).to(X)
        return _RSMMath(W, b.to(X.dtype), torch.zeros(H, dtype=X.dtype, device=X.device))

    def _after_fit(self, X: torch.Tensor) -> None:
        self.likelihood_kind_ = "exact" if self._exact_possible() else "AIS estimate"
        self.log_partition_lengths_ = np.zeros(0, dtype=np.int64)
        self.log_partition_values_ = np.zeros(0)
        self.log_partition_stds_ = np.zeros(0)

    def _exact_possible(self) -> bool:
        return int(self.components_.shape[0]) <= 16

    # -- likelihood ---------------------------------------------------------------------------
    def log_partition_exact(self, length: int, max_units: int = 20) -> float:
        r""":math:`\log Z_D` by enumerating the :math:`2^H` hidden states (float64)."""
        self._check_fitted()
        H = int(self.components_.shape[0])
        if H > max_units:
            raise ValueError(f"exact log Z enumerates 2**{H} hidden states; allowed up to "
                             f"2**{max_units} (max_units)")
        D = check_int("length", length, 0)
        W = torch.as_tensor(self.components_, dtype=torch.float64)
        b = torch.as_tensor(self.intercept_visible_, dtype=torch.float64)
        c = torch.as_tensor(self.intercept_hidden_, dtype=torch.float64)
        total = None
        chunk = 1 << 14
        for start in range(0, 1 << H, chunk):
            codes = torch.arange(start, min(1 << H, start + chunk), dtype=torch.int64)
            h = ((codes.unsqueeze(1) >> torch.arange(H)) & 1).to(torch.float64)
            a = D * (h @ c) + D * torch.logsumexp(torch.addmm(b, h, W), 1)
            part = torch.logsumexp(a, 0)
            total = part if total is None else torch.logaddexp(total, part)
        assert total is not None
        return float(total)

    def estimate_log_partition(self, lengths: Any, n_runs: int | None = None,
                               n_betas: Any = None, random_state: Any = None
                               ) -> dict[int, LogPartition]:
        r"""AIS estimates of :math:`\log Z_D` for every length in ``lengths`` (one batched
        annealing: ``n_runs`` runs per length). Never changes the model; cache the results
        with :meth:`set_log_partition`.

        Base model: :math:`p_A(v) \propto e^{a^\top v}` with :math:`a` the unigram log
        frequencies, hidden units independent with probability 1/2:
        :math:`\log Z_A = H \log 2 + D \log\sum_k e^{a_k}`. Intermediate
        :math:`p_\beta^*(v) = e^{((1-\beta) a + \beta b)^\top v}
        \prod_j (1 + e^{\beta (D c_j + W_{j\cdot} v)})`; the transition samples
        :math:`h \mid v` then :math:`v \mid h \sim \operatorname{Mult}(D,
        \operatorname{softmax}((1-\beta) a + \beta(b + W^\top h)))`.
        """
        self._check_fitted()
        Ls = sorted({check_int("length", int(d), 1) for d in np.asarray(lengths).reshape(-1)})
        runs = check_int("ais_runs", self.ais_runs if n_runs is None else n_runs, 2)
        betas = self.ais_betas if n_betas is None else n_betas
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        m = self._math(dev)
        H = m.W.shape[0]
        a = _to_t(self.base_rate_logits_, dev)
        a = a - torch.logsumexp(a, 0)  # normalised: log sum_k e^{a_k} = 0
        Dn = torch.tensor(Ls, dtype=torch.float32, device=dev).repeat_interleave(runs)
        b_minus_a = (m.b - a).double()

        def init(n: int) -> tuple[torch.Tensor, float]:
            p = torch.softmax(a, 0).expand(Dn.shape[0], -1).contiguous()
            return _multinomial_rows(p, Dn.long(), gen), H * math.log(2.0)

        def step(v: torch.Tensor, b0: float, b1: float, last: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
            x = m.hidden_input(v)  # D c + W v
            d = visible_ais_increment(v, x, b_minus_a, b0, b1)
            if last:
                return d, v
            h = _bernoulli(torch.sigmoid(b1 * x), gen)
            logits = torch.addmm(m.b, h, m.W).mul_(b1).add_(a, alpha=1.0 - b1)
            return d, _multinomial_rows(torch.softmax(logits, 1), Dn.long(), gen)

        res = ais(init, step, n_runs=Dn.shape[0], betas=betas,
                  progress=lambda k, K: report_progress("AIS", k, K))
        lw = torch.as_tensor(res.log_weights).view(len(Ls), runs)
        return {D: _summarise(lw[i], res.log_z_base, res.n_betas) for i, D in enumerate(Ls)}

    def set_log_partition(self, result: Any) -> ReplicatedSoftmaxRBM:  # type: ignore[override]
        """Cache log Z_D results (``{length: LogPartition}``, as returned by
        :meth:`estimate_log_partition`) in ``log_partition_lengths_`` / ``_values_`` /
        ``_stds_`` (saved with the model). Returns ``self``."""
        self._check_fitted()
        if not isinstance(result, dict):
            raise TypeError("ReplicatedSoftmaxRBM.set_log_partition takes {length: "
                            "LogPartition}, one log Z per document length")
        self._cache_log_z({int(D): (float(r.log_z), float(r.log_z_std))
                           for D, r in result.items()})
        return self

    def clear_log_partition(self) -> ReplicatedSoftmaxRBM:  # type: ignore[override]
        """Forget every cached log Z_D. Returns ``self``."""
        self._after_fit(torch.empty(0))
        return self

    def _cache_log_z(self, new: dict[int, tuple[float, float]]) -> None:
        if getattr(self, "log_partition_lengths_", None) is None:
            self._after_fit(torch.empty(0))
        have = dict(zip(self.log_partition_lengths_.tolist(),
                        zip(self.log_partition_values_.tolist(),
                            self.log_partition_stds_.tolist(), strict=True), strict=True))
        have.update(new)
        keys = sorted(have)
        self.log_partition_lengths_ = np.asarray(keys, dtype=np.int64)
        self.log_partition_values_ = np.asarray([have[k][0] for k in keys])
        self.log_partition_stds_ = np.asarray([have[k][1] for k in keys])

    def _log_z_table(self, lengths: np.ndarray) -> dict[int, LogPartition]:
        """log Z_D for each distinct entry of ``lengths``: cached, else exact (H <= 16), else
        one batched forward AIS over the missing lengths (not stored)."""
        H = int(self.components_.shape[0])
        table: dict[int, LogPartition] = {0: LogPartition.exact(H * math.log(2.0))}
        known = getattr(self, "log_partition_lengths_", None)
        if known is not None:
            for D, v, sd in zip(known.tolist(), self.log_partition_values_.tolist(),
                                self.log_partition_stds_.tolist(), strict=True):
                table[int(D)] = (LogPartition.exact(v) if sd == 0.0 and self._exact_possible()
                                 else LogPartition(v, v - 3 * sd, v + 3 * sd, sd,
                                                   method="forward AIS"))
        missing = sorted({int(d) for d in lengths.tolist()} - set(table))
        if missing:
            if self._exact_possible():
                table.update({D: LogPartition.exact(self.log_partition_exact(D))
                              for D in missing})
            else:
                table.update(self.estimate_log_partition(missing))
        return table

    def score_samples(self, X: Any) -> np.ndarray:  # type: ignore[override]
        r"""log p of each document's token sequence (nats): :math:`-F(v) - \log Z_D`.

        An **estimate** when log Z_D comes from AIS; exact for H <= 16. Lengths without a
        cached log Z_D (:meth:`set_log_partition`) are estimated afresh (one batched AIS) and
        not stored. Fractional counts are rounded first.
        """
        return self._per_row(X)[0]

    def _per_row(self, X: Any) -> tuple[np.ndarray, dict[int, LogPartition], np.ndarray,
                                        str | None, int]:
        Xt, transform = self._likelihood_input(X)
        lengths = Xt.sum(1).round().long().cpu().numpy()
        neg_f = -self._math(Xt.device).free_energy(Xt).double().cpu().numpy()
        table = self._log_z_table(lengths)
        log_z = np.asarray([table[int(d)].log_z for d in lengths.tolist()])
        return neg_f - log_z, table, lengths, transform, int(Xt.shape[1])

    def log_likelihood(self, X: Any) -> Likelihood:  # type: ignore[override]
        """Typed mean log-likelihood per document (nats; discrete): exact (H <= 16) or a
        forward-AIS estimate, with the interval from the per-length log Z intervals."""
        ll, table, lengths, transform, K = self._per_row(X)
        used = [table[int(d)] for d in lengths.tolist()]
        exact = all(t.is_exact for t in used)
        like = Likelihood.from_samples(
            ll, kind="exact" if exact else "stochastic estimate",
            estimator="exact enumeration" if exact else "forward AIS", support="discrete",
            n_dims=K, transform=transform)
        if exact:
            return like
        lo = float(np.mean([t.log_z_low - t.log_z for t in used]))
        hi = float(np.mean([t.log_z_high - t.log_z for t in used]))
        runs = max((t.n_runs for t in used), default=0)
        betas = max((int(t.n_betas) for t in used), default=0)
        return replace(like, interval=(like.nats - hi, like.nats - lo),
                       counts={"runs": runs, "temperatures": betas,
                               "lengths": len({int(d) for d in lengths.tolist()})})

    def score(self, X: Any, y: Any = None) -> float:  # type: ignore[override]
        """Mean log-likelihood per document (nats)."""
        return float(np.mean(self.score_samples(X)))

    def perplexity(self, X: Any) -> float:
        r"""Per-word perplexity :math:`\exp(-\sum_n \log p(v_n) / \sum_n D_n)`."""
        ll = self.score_samples(X)
        n_words = float(np.asarray(self._input(X).sum().cpu()))
        if n_words <= 0:
            raise DataError("perplexity needs at least one word in X")
        return float(np.exp(-ll.sum() / n_words))

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
