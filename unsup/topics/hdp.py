r"""Hierarchical Dirichlet process topic model (HDP-LDA): LDA that discovers the number of topics.

Model (Teh, Jordan, Beal & Blei 2006): a global measure over topics and one per document,

.. math:: G_0 \sim \mathrm{DP}(\gamma, \mathrm{Dir}(\eta)),\qquad
          G_d \sim \mathrm{DP}(\alpha, G_0),\qquad
          \varphi_{di} \sim G_d,\quad w_{di} \sim \mathrm{Cat}(\varphi_{di}),

so documents share one countable set of topics, with global weights β ~ GEM(γ) and document
proportions π_d ~ DP(α, β). Sampled by the *direct-assignment* collapsed Gibbs scheme (ibid.
§5.3): with the topics integrated out, a token of word w in document d takes an existing topic
k or a new one with

.. math:: p(z_{di} = k \mid \cdot) \propto (n_{dk}^{-di} + \alpha\beta_k)
          \frac{n_{kw}^{-di} + \eta}{n_k^{-di} + V\eta},\qquad
          p(z_{di} = \text{new} \mid \cdot) \propto \alpha\beta_u \frac1V ,

where β_u is the weight of all unused topics; a new topic takes a Beta(1, γ) share of β_u and an
emptied topic returns its weight to it. After each sweep the number of tables m_dk serving topic
k in document d is drawn (Antoniak: m_dk = Σ_{i<n_dk} Bernoulli(αβ_k / (αβ_k + i))) and

.. math:: (\beta_1, \dots, \beta_K, \beta_u) \sim \mathrm{Dir}(m_{\cdot 1}, \dots, m_{\cdot K},
          \gamma).

The number of topics in use after each sweep is ``k_trace_``; its histogram after ``burn_in``
is ``k_posterior_``. The fitted model is the last state: topics φ_k = (n_kw + η)/(n_k + Vη) of
the used topics and the document prior α β_k; held-out documents are scored by document
completion like every topic model (the weight β_u of unused topics is left out of the
completion: a held-out word cannot open a new topic there). The concentrations γ and α are
fixed, or with ``sample_concentrations=True`` resampled after every sweep under Gamma(1, 1)
priors by the auxiliary-variable schemes of Escobar & West (1995) for γ and Teh et al. (2006,
appendix A) for α (:mod:`unsup.topics._concentration`). tomotopy's ``HDPModel`` is the peer
(``bench/bench_hdp.py``).

References: Teh, Jordan, Beal & Blei (2006), "Hierarchical Dirichlet processes", JASA 101;
Antoniak (1974) for the table counts; Escobar & West (1995), JASA 90, for the concentration.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin

from unsup._io_checks import A
from unsup.base import make_generator, report_progress
from unsup.params import Integral, Interval, Real
from unsup.registry import register_model
from unsup.topics._base import TopicModelBase
from unsup.topics._concentration import resample_doc_concentration, resample_top_concentration
from unsup.topics._docs import SparseDocs, admixture_completion, fold_in
from unsup.topics._hdp_gibbs import hdp_sweep, table_counts
from unsup.train._loop_checkpoint import LoopCheckpoint, generator_from_state, generator_state
from unsup.train.em import EM_CHECKPOINTING

__all__ = ["HDP"]


@register_model("hdp", family="topics", aliases=("hdp-lda",),
                summary="hierarchical Dirichlet process topic model (discovers the number of "
                        "topics; direct-assignment Gibbs)")
class HDP(TransformerMixin, TopicModelBase):
    """HDP topic model by direct-assignment collapsed Gibbs sampling (see the module docstring).

    Parameters
    ----------
    alpha : float, default=1.0
        Document-level concentration α (π_d ~ DP(α, β)).
    gamma : float, default=1.0
        Top-level concentration γ: larger values favour more topics.
    eta : float, default=0.01
        Symmetric Dirichlet prior of the topics' word distributions.
    sample_concentrations : bool, default=False
        Resample α and γ after every sweep (Gamma(1, 1) priors; ``alpha`` and ``gamma`` are
        then the starting values, the last draws are ``alpha_`` and ``gamma_``).
    initial_topics : int, default=1
        Topics of the random starting assignment (new ones open during sampling).
    n_sweeps : int, default=200
        Gibbs sweeps over all tokens.
    burn_in : int or None, default=None
        Sweeps left out of ``k_posterior_``; ``None``: half of ``n_sweeps``.
    random_state : int, RandomState or None, default=None
    device : str, default="cpu"
        Accepted for a uniform API; the sampler runs on the CPU.
    checkpoint_dir, checkpoint_every, resume :
        Checkpoints at the top of every ``checkpoint_every``-th sweep (None: at most every
        10 s) in the EM engine's format; ``resume=True`` continues bit for bit
        (:mod:`unsup.train._loop_checkpoint`).

    Attributes
    ----------
    components_ : (K, V) n_kw + η of the K topics in use at the end.
    topic_weights_ : (K,) their global weights β_k; ``unused_weight_`` is β_u.
    doc_topic_ : (N, K) training documents' topic proportions (n_dk + αβ_k, normalised).
    n_topics_ : K.
    k_trace_ : (n_sweeps,) topics in use after each sweep.
    k_posterior_ : probability of each number of topics (index = K) over the kept sweeps.
    alpha_, gamma_ : the concentrations of the last sweep (the parameters unless sampled).
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "eta": [Interval(Real, 0, None, closed="neither")],
        "initial_topics": [Interval(Integral, 1, None, closed="left")],
        "n_sweeps": [Interval(Integral, 1, None, closed="left")],
        "burn_in": [Interval(Integral, 0, None, closed="left"), None],
        "sample_concentrations": ["boolean"],
    }
    # model files from before the concentrations could be sampled: fixed ones
    _params_added_later = {"sample_concentrations": False}
    _param_groups = (EM_CHECKPOINTING,)  # checkpoint_dir, checkpoint_every, resume
    _test_params = {"n_sweeps": 5}
    # a token sampler needs whole tokens: scikit-learn's checks fit on real-valued data, which
    # HDP refuses with a clear error (our own conformance tests use integer counts)
    _expected_failed_checks: dict[str, str] = dict.fromkeys((
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_estimators_dtypes",
        "check_dtype_object",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimator_sparse_tag",
        "check_estimator_sparse_array",
        "check_estimator_sparse_matrix",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_transformer_data_not_an_array",
        "check_transformer_general",
        "check_transformer_preserve_dtypes",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit2d_predict1d",
    ), "the Gibbs sampler needs integer word counts; the check fits real-valued data")
    _completion_kind = "stochastic estimate"
    _completion_how = "θ̂ folded in on the observed half, topics fixed"
    _state_shapes = {"components_": A("f64", "k", "n_features_in_"),
                     "topic_weights_": A("f64", "k"),
                     "doc_topic_?": A("f64", "n", "k"),
                     "k_trace_": A("i64", "n_sweeps"), "k_posterior_": A("f64", "m")}

    def __init__(self, alpha: float = 1.0, *, gamma: float = 1.0, eta: float = 0.01,
                 sample_concentrations: bool = False, initial_topics: int = 1,
                 n_sweeps: int = 200, burn_in: int | None = None,
                 random_state: Any = None, device: str = "cpu") -> None:
        self.alpha = alpha
        self.gamma = gamma
        self.eta = eta
        self.sample_concentrations = sample_concentrations
        self.initial_topics = initial_topics
        self.n_sweeps = n_sweeps
        self.burn_in = burn_in
        self.random_state = random_state
        self.device = device

    def fit(self, X: Any, y: Any = None) -> HDP:
        """Sample the topics of the documents x words counts ``X``. Returns ``self``."""
        self._validate_params()
        M = self._counts(X, reset=True)
        c = np.rint(M.data).astype(np.int64)
        if not np.array_equal(c, M.data):
            raise ValueError("HDP needs integer word counts (X has fractional values)")
        burn = self.n_sweeps // 2 if self.burn_in is None else int(self.burn_in)
        if burn >= self.n_sweeps:
            raise ValueError(f"burn_in={burn} leaves no sweeps of the n_sweeps={self.n_sweeps} "
                             "to collect the posterior from")
        (D, V), K0 = M.shape, int(self.initial_topics)
        doc = np.repeat(np.repeat(np.arange(D), np.diff(M.indptr)), c)
        word = np.repeat(M.indices.astype(np.int64), c)
        gen = make_generator(self.random_state, torch.device("cpu"))
        a, g, eta = float(self.alpha), float(self.gamma), float(self.eta)
        T = int(self.n_sweeps)
        lc = LoopCheckpoint(self, SparseDocs(M), gen, n_total=D, max_iter=T, loop="hdp")
        state = lc.result.params if lc.result is not None else lc.params
        if state is None:  # a fresh chain: K0 topics at random
            rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=gen)))
            cap = max(16, 2 * K0)
            z = rng.integers(0, K0, doc.size)
            beta = np.zeros(cap + 1)  # used slots, then β_u last
            used0 = np.unique(z)
            beta[used0] = 1.0 / (len(used0) + 1)
            beta[cap] = 1.0 / (len(used0) + 1)
            trace: list[int] = []
        else:  # the counts are a function of z: rebuilt exactly
            rng = generator_from_state(state["rng"])
            z = np.array(state["z"], dtype=np.int64, copy=True)
            beta = np.array(state["beta"], dtype=np.float64, copy=True)
            trace = [int(k) for k in np.asarray(state["trace"]).reshape(-1)]
            if self.sample_concentrations:
                a, g = float(state["alpha"]), float(state["gamma"])
            cap = len(beta) - 1
            if z.shape != doc.shape or (z.size and not 0 <= z.min() <= z.max() < cap):
                raise ValueError(f"cannot resume from {lc.ck.path}: the checkpoint is damaged "
                                 f"(topic assignments of shape {z.shape} for {doc.size} "
                                 f"tokens, {cap} topic slots)")
        ndk, nwk = np.zeros((D, cap), np.int64), np.zeros((V, cap), np.int64)
        np.add.at(ndk, (doc, z), 1)
        np.add.at(nwk, (word, z), 1)
        nk = nwk.sum(0)
        active = nk > 0

        n_doc = np.bincount(doc, minlength=D)  # tokens per document

        def snapshot() -> dict[str, Any]:
            st = {"z": z, "beta": beta, "trace": np.asarray(trace, dtype=np.int64),
                  "rng": generator_state(rng)}
            if self.sample_concentrations:
                st.update(alpha=np.float64(a), gamma=np.float64(g))
            return st

        for sweep in range(lc.it, T) if lc.result is None else ():
            lc.top(sweep, snapshot(), [])
            hdp_sweep(doc, word, z, ndk, nwk, nk, active, beta, a, eta, V * eta,
                      rng.random(doc.size), g, True)
            used = np.nonzero(active)[0]
            m = table_counts(ndk[:, used], a * beta[used], rng.random(doc.size))
            # every used topic has at least one table: Dir parameters stay > 0
            beta[:] = 0.0
            beta[np.append(used, cap)] = rng.dirichlet(np.append(np.maximum(m, 1.0), g))
            if self.sample_concentrations:  # given the tables just drawn (Gamma(1, 1) priors)
                g = resample_top_concentration(g, len(used), float(m.sum()), 1.0, 1.0, rng, 5)
                a = resample_doc_concentration(a, float(m.sum()), n_doc, 1.0, 1.0, rng, 5)
            trace.append(len(used))
            if cap - len(used) < max(4, cap // 8):  # keep free slots for new topics
                grow = cap
                ndk = np.pad(ndk, ((0, 0), (0, grow)))
                nwk = np.pad(nwk, ((0, 0), (0, grow)))
                nk, active = np.pad(nk, (0, grow)), np.pad(active, (0, grow))
                beta = np.concatenate([beta[:cap], np.zeros(grow), beta[cap:]])
                cap += grow
            report_progress("HDP Gibbs", sweep + 1, T, topics=len(used))
        if lc.result is None:
            lc.finish(snapshot(), 0.0, T, [])
        used = np.nonzero(active)[0]
        self.components_ = (nwk[:, used].T + eta).astype(np.float64)
        self.topic_weights_ = beta[used].copy()
        th = ndk[:, used] + a * beta[used]
        self.doc_topic_ = th / th.sum(1, keepdims=True)
        self.k_trace_ = np.asarray(trace, dtype=np.int64)
        kept = self.k_trace_[burn:]
        self.k_posterior_ = np.bincount(kept, minlength=kept.max() + 1) / kept.size
        self.alpha_, self.gamma_ = float(a), float(g)
        self.n_iter_ = int(self.n_sweeps)
        return self

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        super()._set_state(arrays, values)
        for k in ("alpha_", "gamma_"):  # a file's concentrations are checked, not trusted
            v = getattr(self, k, None)
            if v is not None and not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ValueError(f"{k} = {v!r} must be a positive number")

    @property
    def n_topics_(self) -> int:
        """Topics in use at the end of sampling."""
        return int(self.components_.shape[0])

    @property
    def unused_weight_(self) -> float:
        """β_u: the global weight of the topics no token uses."""
        return float(max(0.0, 1.0 - self.topic_weights_.sum()))

    def _topics(self) -> np.ndarray:
        return self.components_ / self.components_.sum(1, keepdims=True)

    def _prior(self) -> np.ndarray:
        return float(getattr(self, "alpha_", self.alpha)) * self.topic_weights_

    def transform(self, X: Any) -> np.ndarray:
        """Topic proportions of documents, folded in with the topics fixed (prior αβ)."""
        self._check_fitted()
        ch = SparseDocs(self._counts(X, reset=False))
        phi = torch.from_numpy(self._topics())
        return fold_in(phi, ch, torch.from_numpy(self._prior())).numpy()

    def _completion(self, obs: SparseDocs, held: SparseDocs) -> torch.Tensor:
        phi = torch.from_numpy(self._topics())
        return admixture_completion(phi, torch.from_numpy(self._prior()), obs, held)
