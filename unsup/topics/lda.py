r"""Latent Dirichlet allocation: variational Bayes (batch, online) and collapsed Gibbs."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin

from unsup import distributed as ud
from unsup._io_checks import A
from unsup.base import make_generator, report_progress
from unsup.metrics.topics import umass_from_counts
from unsup.params import Interval, StrOptions
from unsup.registry import register_model
from unsup.topics._base import TopicModelBase
from unsup.topics._docs import (
    SparseDocs,
    admixture_completion,
    sddmm,
    spmm,
    spmm_t,
    top_word_cooccurrence,
    top_words,
)
from unsup.topics._lda_gibbs import _TRACE_WORDS, fit_gibbs
from unsup.topics._priors import (
    dirichlet_mle,
    dirichlet_newton_step,
    symmetric_dirichlet_mle,
)
from unsup.topics.mixture import _to
from unsup.train._loop_checkpoint import LoopCheckpoint
from unsup.train.em import EMEngine, global_count

__all__ = ["LDA", "vb_e_step"]



def _dirichlet_expectation(x: torch.Tensor) -> torch.Tensor:
    """E[log θ] under Dirichlet(x), row-wise."""
    return torch.digamma(x) - torch.digamma(x.sum(1, keepdim=True))


def vb_e_step(ch: SparseDocs, exp_elog_beta_t: torch.Tensor, alpha: torch.Tensor,
              max_iter: int = 100, tol: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Variational E-step of LDA for a chunk of documents (Blei et al. 2003; Hoffman 2010).

    Iterates :math:`\gamma_{dk} = \alpha_k + e^{E\log\theta_{dk}} \sum_w n_{dw}
    e^{E\log\beta_{kw}} / \phi^{norm}_{dw}` with :math:`\phi^{norm}_{dw} = \sum_k
    e^{E\log\theta_{dk} + E\log\beta_{kw}}` over the non-zeros only; a document stops when the
    mean change of its γ is below ``tol``. Returns γ (rows, K) and φ^norm at the final γ.

    Work shrinks with the documents still moving: converged documents are frozen, and once
    fewer than 3/4 of the working set move, the working set is compacted to them. With random
    topics most short documents converge in a few iterations while a tail runs long, so this is
    several times less work than iterating the whole chunk (scikit-learn's per-document loop
    gets the same effect serially).
    """
    K = exp_elog_beta_t.shape[1]
    gamma = (alpha + (ch.lengths / K).unsqueeze(1)).expand(-1, K).clone()
    idx = torch.arange(ch.shape[0], device=gamma.device)  # chunk rows of the working set
    sub, g = ch, gamma
    moving = torch.ones(len(idx), dtype=torch.bool, device=gamma.device)
    for _ in range(max_iter):
        et = torch.exp(_dirichlet_expectation(g))
        r = sub.val / sddmm(sub, et, exp_elog_beta_t).clamp_min(1e-300)
        new = alpha + et * spmm(sub, exp_elog_beta_t, r)
        new = torch.where(moving.unsqueeze(1), new, g)
        moving &= (new - g).abs().mean(1) >= tol
        g = new
        n_moving = int(moving.sum())
        if n_moving == 0:
            break
        if n_moving < 0.75 * len(idx):  # compact: keep the moving documents only
            gamma[idx] = g
            sub, idx, g = sub.take(moving), idx[moving], g[moving]
            moving = torch.ones(n_moving, dtype=torch.bool, device=gamma.device)
    gamma[idx] = g
    et = torch.exp(_dirichlet_expectation(gamma))
    return gamma, sddmm(ch, et, exp_elog_beta_t).clamp_min(1e-300)


@register_model("lda", family="topics", aliases=("latent-dirichlet-allocation",),
                summary="latent Dirichlet allocation: variational Bayes (batch/online) or "
                        "collapsed Gibbs")
class LDA(TransformerMixin, EMEngine, TopicModelBase):
    r"""Latent Dirichlet allocation (Blei, Ng & Jordan 2003).

    .. math:: \beta_k \sim \mathrm{Dir}(\eta),\quad \theta_d \sim \mathrm{Dir}(\alpha),\quad
              z_{di} \sim \theta_d,\quad w_{di} \sim \beta_{z_{di}}

    ``method="vb"`` — batch variational Bayes on :mod:`unsup.train.em`. q(θ_d) = Dir(γ_d),
    q(β_k) = Dir(λ_k); the E-step (:func:`vb_e_step`, per chunk, on the non-zeros) gives
    γ and the statistics :math:`S_{kw} = e^{E\log\beta_{kw}} \sum_d n_{dw}
    e^{E\log\theta_{dk}}/\phi^{norm}_{dw}`; the M-step sets λ = η + S. The objective is the
    ELBO (per document; Hoffman et al. 2010, eq. 3), which increases up to the E-step's
    tolerance.
    ``method="online"`` — online VB (Hoffman, Blei & Bach 2010): minibatches of
    ``batch_size`` documents, :math:`\lambda \leftarrow (1-\rho_t)\lambda + \rho_t(\eta +
    \tfrac{N}{|B|} S_B)`, :math:`\rho_t = (\tau_0 + t)^{-\kappa}`; ``max_iter`` passes.
    ``method="gibbs"`` — collapsed Gibbs sampling (Griffiths & Steyvers 2004):
    :math:`p(z_i = k \mid z_{-i}, w) \propto (n_{dk}^{-i} + \alpha_k)
    \frac{n_{kw}^{-i} + \eta}{n_k^{-i} + V\eta}` (:mod:`unsup.topics._gibbs`, numba: dense
    below 64 topics, SparseLDA's buckets from 64 on, Yao, Mimno & McCallum 2009);
    ``max_iter`` sweeps; ``components_`` = n̄_kw + η, where n̄ averages the counts of the
    last ``average_sweeps`` sweeps (the posterior mean of the topics from one chain, rather
    than one sample; ``doc_topic_`` likewise), ``history_`` the exact collapsed
    :math:`\log p(w \mid z)` per document every ``evaluate_every`` sweeps.

    Checkpoints (``checkpoint_dir``, ``checkpoint_every``, ``resume``; ``unsup fit`` sets them):
    batch VB through the EM engine; online VB at the top of every ``checkpoint_every``-th pass
    (λ, the pass, the history, the generator) and Gibbs at the top of every
    ``checkpoint_every``-th sweep (the topic assignments z, from which the counts are rebuilt
    exactly, and the NumPy generator's state), in the EM checkpoint format
    (:mod:`unsup.train._loop_checkpoint`); None: at most every 10 s, and at the end. A
    resumed fit returns the model of a fit never stopped, bit for bit.

    ``optimize_priors="alpha"`` learns an asymmetric α, ``"both"`` also a symmetric η
    (:mod:`unsup.topics._priors`): batch VB maximises the ELBO in them in every M-step
    (Newton; the ELBO still increases),
    online VB takes one Newton step of size ρ_t per minibatch (as gensim's ``alpha="auto"``),
    and Gibbs applies Minka's fixed point to the current counts every 10 sweeps (as Mallet and
    tomotopy's ``optim_interval``). ``doc_topic_prior`` and ``topic_word_prior`` are then the
    starting values; the learned ones are ``doc_topic_prior_`` and ``topic_word_prior_``.

    ``components_`` holds λ (pseudo-counts, as scikit-learn's), the topics are its rows
    normalised. :meth:`transform` gives the document-topic proportions (normalised γ of the VB
    E-step with the topics fixed, for every method). Held-out measure: document completion
    (θ̂ folded in on the observed half with prior α, the topics fixed).

    Parameters
    ----------
    n_components : int, default=10
    method : {"vb", "online", "gibbs"}, default="vb"
    doc_topic_prior : float or None, default=None
        α (symmetric); None is 1/K.
    topic_word_prior : float or None, default=None
        η; None is 1/K.
    optimize_priors : {"none", "alpha", "both"} or bool, default="none"
        Learn α (asymmetric; ``True`` means ``"alpha"``) or α and η (symmetric) from the
        data, starting from the two above. On Shakespeare (K = 20, Gibbs, 3 seeds) learning
        α improved held-out completion by 0.08 nats/word; also learning η gained less
        (BENCHMARKS.md), hence α alone is the ``True`` of tomotopy and gensim.
    max_iter : int, default=100
        VB iterations, online passes, or Gibbs sweeps.
    tol : float, default=1e-3
        Batch VB: stop when the ELBO per document changes by less.
    batch_size : int, default=128
    learning_offset : float, default=10.0
        τ₀ of online VB.
    learning_decay : float, default=0.7
        κ of online VB, in (0.5, 1].
    average_sweeps : int or None, default=None
        Gibbs: average the topic-word and document-topic counts of this many final sweeps
        (None: the last half of ``max_iter``; 0: the final sample alone, as tomotopy and
        Mallet report). On Shakespeare (learned α, 8 seeds, K = 100, 500 sweeps) the last
        half scored -6.967 nats per held-out word against -7.055 for the final sample
        (BENCHMARKS.md).
    evaluate_every : int, default=10
        Gibbs: sweeps between log p(w | z) records; online: passes between ELBO records
        (0: never).
    device : {"auto", "cpu", "cuda"}, default="auto"
        VB's device (Gibbs runs on the CPU).
    random_state : int or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    components_ : ndarray (K, V)
    doc_topic_ : ndarray (N, K)
        Proportions of the training documents.
    doc_topic_prior_ : ndarray (K,)
        α used (learned with ``optimize_priors``).
    topic_word_prior_ : float
        η used (learned with ``optimize_priors``).
    history_ : list of dict
    n_iter_ : int

    References
    ----------
    Blei, Ng & Jordan (2003), Latent Dirichlet allocation. JMLR 3. Griffiths & Steyvers
    (2004), Finding scientific topics. PNAS. Hoffman, Blei & Bach (2010), Online learning for
    latent Dirichlet allocation. NIPS. Minka (2000), Estimating a Dirichlet distribution.
    Wallach, Mimno & McCallum (2009), Rethinking LDA: why priors matter. NIPS. Wallach, Murray,
    Salakhutdinov & Mimno (2009), Evaluation methods for topic models. ICML.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"vb", "online", "gibbs"})],
        "doc_topic_prior": [None, Interval(Real, 0, None, closed="neither")],
        "topic_word_prior": [None, Interval(Real, 0, None, closed="neither")],
        "optimize_priors": ["boolean", StrOptions({"none", "alpha", "both"})],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_offset": [Interval(Real, 0, None, closed="left")],
        "learning_decay": [Interval(Real, 0.5, 1, closed="right")],
        "average_sweeps": [None, Interval(Integral, 0, None, closed="left")],
        "evaluate_every": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["boolean"],
    }
    _test_params: dict[str, Any] = {"n_components": 2, "max_iter": 10}
    _em_objective_name = "elbo"
    # the E-step iterates up to 100 times per chunk with a few small kernels each time: large
    # chunks (bounded by memory) cost 1.9x less than cache-sized ones at K = 100
    _em_cache_blocked = False
    _completion_kind = "stochastic estimate"
    _completion_how = "θ̂ folded in on the observed half with prior α, topics fixed"

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"components_": A("f64", "n_components", "n_features_in_"),
                     "doc_topic_?": A("f64", "n", "n_components"),
                     "doc_topic_prior_?": A("f64", "n_components")}
    # files written before optimize_priors existed were fitted with fixed priors, and before
    # average_sweeps with the final Gibbs sample
    _params_added_later = {"optimize_priors": "none", "average_sweeps": 0}

    def __init__(self, n_components: int = 10, *, method: str = "vb",
                 doc_topic_prior: float | None = None, topic_word_prior: float | None = None,
                 optimize_priors: bool | str = "none", max_iter: int = 100, tol: float = 1e-3,
                 batch_size: int = 128, learning_offset: float = 10.0, learning_decay: float = 0.7,
                 average_sweeps: int | None = None, evaluate_every: int = 10,
                 device: str = "auto", random_state: Any = None, verbose: bool = False) -> None:
        self.n_components = n_components
        self.method = method
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.optimize_priors = optimize_priors
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.average_sweeps = average_sweeps
        self.evaluate_every = evaluate_every
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- priors --
    def _alpha(self) -> float:
        K = int(self.n_components)
        return 1.0 / K if self.doc_topic_prior is None else float(self.doc_topic_prior)

    def _eta(self) -> float:
        K = int(self.n_components)
        return 1.0 / K if self.topic_word_prior is None else float(self.topic_word_prior)

    def _fitted_alpha(self) -> np.ndarray:
        """α of the fitted model (K,): learned, or the parameter for files without it."""
        a = getattr(self, "doc_topic_prior_", None)
        a = np.full(int(self.n_components), self._alpha()) if a is None else np.asarray(a)
        if not (np.isfinite(a).all() and (a > 0).all()):
            raise ValueError("doc_topic_prior_ must be positive and finite")
        return a.astype(np.float64)

    def _fitted_eta(self) -> float:
        e = float(getattr(self, "topic_word_prior_", self._eta()))
        if not (np.isfinite(e) and e > 0):
            raise ValueError(f"topic_word_prior_ = {e!r} must be positive and finite")
        return e

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        super()._set_state(arrays, values)
        self._fitted_alpha(), self._fitted_eta()  # a file's priors are checked, not trusted

    def _learns(self) -> tuple[bool, bool]:
        """Whether α, and whether η, are learned."""
        o = self.optimize_priors
        return o not in (False, "none"), o == "both"

    def _priors(self, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        """(α, η) of the VB state ``p``: learned (in ``p``) or the fixed parameters."""
        lam = p["lam"]
        if "alpha" in p:
            return p["alpha"], float(p["eta"])
        return torch.tensor(self._alpha(), dtype=lam.dtype, device=lam.device), self._eta()

    # -- VB on the EM engine --
    def _em_initialize(self, X: SparseDocs, gen: torch.Generator, n_runs: int) -> Any:
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen, device=gen.device))
        lam = np.random.default_rng(seed).gamma(100.0, 0.01, (int(self.n_components),
                                                            X.shape[1]))
        lam = torch.from_numpy(lam).to(X.device, X.dtype)
        p = {"lam": ud.broadcast(lam)}
        if self._learns()[0]:
            p["alpha"] = torch.full((int(self.n_components),), self._alpha(), dtype=X.dtype,
                                    device=X.device)
            p["eta"] = torch.tensor(self._eta(), dtype=X.dtype, device=X.device)
        return p

    def _em_row_width(self, params: Any) -> int:
        # γ and its temporaries, and the presence matrix of the trace's top words
        K, V = params["lam"].shape
        return 8 * K + min(V, _TRACE_WORDS * K)

    def _em_e_step(self, ch: SparseDocs, p: Any, rows: slice) -> dict[str, torch.Tensor]:
        lam = p["lam"]
        elog_beta = _dirichlet_expectation(lam)
        eb_t = torch.exp(elog_beta).T.contiguous()
        a, eta = self._priors(p)
        gamma, phinorm = vb_e_step(ch, eb_t, a)
        elog_theta = _dirichlet_expectation(gamma)
        et = torch.exp(elog_theta)
        S = eb_t * spmm_t(ch, et, ch.val / phinorm)  # (V, K)
        obj = self._elbo_docs(ch, gamma, phinorm, a)
        if rows.start == 0 and ud.rank() == 0:
            obj = obj + self._elbo_topics(lam, elog_beta, eta)
        out = {"S": S.T.contiguous(), "objective": obj.reshape(1),
               "words": ch.val.sum().reshape(1),  # the training trace (_em_history)
               "cooc": top_word_cooccurrence(ch, top_words(lam, _TRACE_WORDS))}
        if "alpha" in p:  # Σ_d E[log θ_d], the statistic of α's update
            out["elog_theta"] = elog_theta.sum(0)
        return out

    @staticmethod
    def _elbo_docs(ch: SparseDocs, gamma: torch.Tensor, phinorm: torch.Tensor,
                   a: torch.Tensor) -> torch.Tensor:
        K = gamma.shape[1]
        a = a.expand(K)
        elog_theta = _dirichlet_expectation(gamma)
        return ((ch.val * torch.log(phinorm)).sum()
                + ((a - gamma) * elog_theta + torch.lgamma(gamma) - torch.lgamma(a)).sum()
                + (torch.lgamma(a.sum()) - torch.lgamma(gamma.sum(1))).sum())

    @staticmethod
    def _elbo_topics(lam: torch.Tensor, elog_beta: torch.Tensor, eta_: float) -> torch.Tensor:
        eta = torch.tensor(eta_, dtype=lam.dtype, device=lam.device)
        V = lam.shape[1]
        return (((eta - lam) * elog_beta + torch.lgamma(lam) - torch.lgamma(eta)).sum()
                + (torch.lgamma(V * eta) - torch.lgamma(lam.sum(1))).sum())

    def _em_history(self, stats: dict[str, torch.Tensor], n_total: int, j: int
                    ) -> dict[str, float]:
        """Training perplexity bound exp(−ELBO / words) (scikit-learn's ``perplexity``) and the
        UMass coherence of the top words on the training documents."""
        return {"perplexity": math.exp(-float(stats["objective"][j]) / float(stats["words"])),
                "umass": float(umass_from_counts(stats["cooc"].cpu().numpy(), n_total).mean())}

    def _em_m_step(self, stats: dict[str, torch.Tensor], p: Any, X: Any) -> Any:
        a, eta = self._priors(p)
        new = {"lam": eta + stats["S"]}
        if "alpha" in p:  # coordinate ascent on the ELBO: λ, then α, then η given λ
            D = global_count(X.shape[0], X.device)
            new["alpha"] = a.new_tensor(dirichlet_mle(a.cpu().numpy(),
                                                      stats["elog_theta"].cpu().numpy(), D))
            new["eta"] = p["eta"]
            if self._learns()[1]:
                s_eta = float(_dirichlet_expectation(new["lam"]).sum())
                K, V = new["lam"].shape
                new["eta"] = a.new_tensor(symmetric_dirichlet_mle(eta, s_eta, K, V))
        return new

    # -- online VB --
    def _fit_online(self, docs: SparseDocs, gen: torch.Generator) -> dict[str, torch.Tensor]:
        N, B = docs.shape[0], int(self.batch_size)
        T = int(self.max_iter)
        lc = LoopCheckpoint(self, docs, gen, n_total=N, max_iter=T, loop="online")
        if lc.result is not None:  # resumed a finished fit
            self.history_, self.n_iter_ = list(lc.result.history), T
            return lc.result.params
        p = lc.params if lc.params is not None else self._em_initialize(docs, gen, 1)
        self.history_ = lc.history
        M = self._csr
        t = lc.it * -(-N // B)  # minibatch updates before this pass (ρ_t continues)
        for epoch in range(lc.it, T):
            lc.top(epoch, p, self.history_)
            perm = torch.randperm(N, generator=gen, device=gen.device).cpu().numpy()
            for s in range(0, N, B):
                ch = SparseDocs(M[np.sort(perm[s:s + B])], docs.device)
                eb_t = torch.exp(_dirichlet_expectation(p["lam"])).T.contiguous()
                a, eta = self._priors(p)
                gamma, phinorm = vb_e_step(ch, eb_t, a)
                elog_theta = _dirichlet_expectation(gamma)
                S = (eb_t * spmm_t(ch, torch.exp(elog_theta), ch.val / phinorm)).T
                rho = (float(self.learning_offset) + t) ** -float(self.learning_decay)
                p["lam"] = (1 - rho) * p["lam"] + rho * (eta + N / ch.shape[0] * S)
                if "alpha" in p:
                    self._online_prior_step(p, elog_theta.sum(0) * (N / ch.shape[0]), N, rho,
                                            self._learns()[1])
                t += 1
            ev = int(self.evaluate_every)
            if ev and ((epoch + 1) % ev == 0 or epoch + 1 == T):
                stats = self._em_pass(docs, p)
                self.history_.append({"iter": epoch + 1,
                                      "elbo": float(stats["objective"]) / N,
                                      **self._em_history(stats, N, 0)})
            report_progress("LDA online", epoch + 1, T)
        self.n_iter_ = T
        lc.finish(p, self.history_[-1]["elbo"] if self.history_ else 0.0, T, self.history_)
        return p

    @staticmethod
    def _online_prior_step(p: dict[str, torch.Tensor], s: torch.Tensor, N: int,
                           rho: float, learn_eta: bool) -> None:
        """One Newton step of size ρ on α (corpus-scaled minibatch statistic ``s``) and on η
        (current λ), each kept only if the priors stay positive (Hoffman et al. 2010, §2.3)."""
        a = p["alpha"].cpu().numpy()
        new = a + rho * dirichlet_newton_step(a, s.cpu().numpy(), N)
        if (new > 0).all():
            p["alpha"] = p["alpha"].new_tensor(new)
        if not learn_eta:
            return
        K, V = p["lam"].shape
        eta = float(p["eta"])
        e = symmetric_dirichlet_mle(eta, float(_dirichlet_expectation(p["lam"]).sum()), K, V,
                                    max_iter=1)
        p["eta"] = p["eta"].new_tensor(eta + rho * (e - eta))

    # -- collapsed Gibbs (unsup.topics._lda_gibbs) --
    def _fit_gibbs(self, M: Any, gen: torch.Generator) -> None:
        fit_gibbs(self, M, gen)

    # -- public API --
    def fit(self, X: Any, y: Any = None) -> LDA:
        """Fit the topics on the documents x words counts ``X``. Returns ``self``."""
        self._validate_params()
        M = self._counts(X, reset=True)
        dev = self._device()
        gen = make_generator(self.random_state, dev)
        if self.method == "gibbs":
            self._fit_gibbs(M, gen)
            return self
        docs = SparseDocs(M, dev)
        if self.method == "online":
            self._csr = M
            try:
                p = self._fit_online(docs, gen)
            finally:
                del self._csr
        else:
            res = self._em_fit(docs, n_init=1, max_iter=int(self.max_iter),
                               tol=float(self.tol), generator=gen, stage="LDA",
                               verbose=bool(self.verbose))
            p, self.history_, self.n_iter_ = res.params, res.history, int(res.n_iter)
        a, eta = self._priors(p)
        self.doc_topic_prior_ = np.broadcast_to(a.cpu().numpy(), (int(self.n_components),)
                                                ).astype(np.float64)
        self.topic_word_prior_ = float(eta)
        self.components_ = p["lam"].cpu().numpy()
        self.doc_topic_ = self._transform(docs)
        return self

    def _topics(self) -> np.ndarray:
        return self.components_ / self.components_.sum(1, keepdims=True)

    def _transform(self, ch: SparseDocs) -> np.ndarray:
        lam = torch.from_numpy(self.components_).to(ch.device)
        eb_t = torch.exp(_dirichlet_expectation(lam)).T.contiguous()
        gamma, _ = vb_e_step(ch, eb_t, torch.from_numpy(self._fitted_alpha()).to(lam))
        return (gamma / gamma.sum(1, keepdim=True)).cpu().numpy()

    def transform(self, X: Any) -> np.ndarray:
        """Document-topic proportions (normalised γ of the VB E-step, topics fixed)."""
        return self._transform(SparseDocs(self._counts(X, reset=False), self._device()))

    def _completion(self, obs: SparseDocs, held: SparseDocs) -> torch.Tensor:
        dev = self._device()
        phi = torch.from_numpy(self._topics()).to(dev)
        return admixture_completion(phi, torch.from_numpy(self._fitted_alpha()).to(phi),
                                    _to(obs, dev), _to(held, dev)).cpu()

    def sample(self, n_samples: int = 1, random_state: Any = None, length: int | None = None
               ) -> np.ndarray:
        """Word counts of new documents: θ ~ Dir(α), then ``length`` words (default: the mean
        training length is not stored; 50)."""
        self._check_fitted()
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        phi = self._topics()
        theta = rng.dirichlet(self._fitted_alpha(), size=n_samples)
        n = 50 if length is None else int(length)
        return np.stack([rng.multinomial(n, t @ phi / (t @ phi).sum()) for t in theta]
                        ).astype(np.float64)
