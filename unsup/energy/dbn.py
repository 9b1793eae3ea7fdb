r"""Deep belief network: greedily stacked binary RBMs, a variational bound, up-down fine-tuning.

Model
-----
For hidden layer sizes :math:`H_1, \dots, H_L` over binary data :math:`v = h^0 \in
\{0,1\}^D`, a DBN is a directed sigmoid belief net whose top two layers form an undirected
RBM (Hinton, Osindero & Teh 2006):

.. math::

    p(v, h^1, \dots, h^L) = \Big[\prod_{k=1}^{L-1} p(h^{k-1} \mid h^k)\Big]\,
    p(h^{L-1}, h^L), \qquad
    p(h^{k-1}_i = 1 \mid h^k) = \sigma\big(b^k_i + (G_k^\top h^k)_i\big),

with :math:`p(h^{L-1}, h^L)` the top RBM (weights :math:`W_L`, biases :math:`b^L`,
:math:`c^L`). Inference uses the factorial *recognition* distributions
:math:`q(h^k_j = 1 \mid h^{k-1}) = \sigma(c^k_j + (R_k h^{k-1})_j)`.

Greedy training
---------------
RBM 1 is trained on the data (CD-k or PCD, :class:`~unsup.energy.BernoulliRBM`); RBM k+1 is
trained on the posteriors :math:`q(h^k \mid h^{k-1})` of the layer below, redrawn as Bernoulli
samples every minibatch (``BernoulliRBM(binarize_input="stochastic")``: the upper RBMs see
binary states whose means are the mean-field probabilities, as in Hinton et al. 2006). After
greedy training the weights are *tied*: :math:`R_k = G_k = W_k` (RBM k's weights), the
generative biases :math:`b^k` are RBM k's visible biases and the recognition biases
:math:`c^k` its hidden biases. Adding a layer whose RBM starts at :math:`W_{k+1} = W_k^\top`
(biases swapped) leaves the model unchanged and the bound below tight; training it then
cannot lower the bound (Hinton et al. 2006, §4).

The variational lower bound
---------------------------
For any :math:`q(h^1 \mid v)`, :math:`\log p(v) \ge E_q[\log p(v \mid h^1) + \log p(h^1)] +
\mathcal H(q(h^1 \mid v))`; for two hidden layers :math:`\log p(h^1) = -F_{top}(h^1) -
\log Z_{top}` (Salakhutdinov & Murray 2008, eq. 13), and for deeper nets :math:`\log p(h^1)`
is bounded the same way by the DBN above, recursively:

.. math::

    \log p(v) \ge E_{q}\Big[\sum_{k=1}^{L-1}\big(\log p(h^{k-1} \mid h^k)
    + \mathcal H(q(\cdot \mid h^{k-1}))\big) - F_{top}(h^{L-1})\Big] - \log Z_{top}.

:meth:`DBN.score_samples` estimates the expectation with ``n_samples`` draws of
:math:`h^1 \sim q(h^1 \mid v)` per row (one draw of each deeper layer per draw below it; the
entropies are analytic) — a **stochastic estimate of a lower bound** — or exactly, by
enumerating every hidden layer below the top RBM (``n_samples="exact"``, layers of at most 16
units). :math:`\log Z_{top}` is exact when the top RBM's smaller layer has at most 20 units,
else an AIS estimate whose error shifts every row's bound by the same amount (the interval is
``log_partition_interval_``). With one layer the "bound" is the RBM's log-likelihood.

Up-down fine-tuning
-------------------
:meth:`DBN.fine_tune_updown` unties :math:`R_k` and :math:`G_k` and runs the up-down
algorithm of Hinton et al. (2006, appendix B), a contrastive version of wake-sleep, on
minibatches: a *wake* (up) pass samples :math:`h^k \sim q(\cdot \mid h^{k-1})` and moves the
generative weights by the delta rule
:math:`\Delta G_k \propto h^k (h^{k-1} - \sigma(b^k + G_k^\top h^k))^\top`; the top RBM
takes a CD-k step with :math:`h^{L-1}` as data; a *sleep* (down) pass from the CD chain's
final :math:`h^{L-1}` samples :math:`h^{k-1} \sim p(\cdot \mid h^k)` and moves the
recognition weights by :math:`\Delta R_k \propto (h^k - \sigma(c^k + R_k h^{k-1}))
(h^{k-1})^\top`.

References
----------
Hinton, Osindero & Teh (2006), A fast learning algorithm for deep belief nets. Neural
Computation 18(7).
Hinton & Salakhutdinov (2006), Reducing the dimensionality of data with neural networks.
Science 313.
Salakhutdinov & Murray (2008), On the quantitative analysis of deep belief networks. ICML.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from torch import nn

from unsup._io_checks import A
from unsup.base import make_generator, report_progress
from unsup.energy._deep import _DeepEnergy
from unsup.energy._engine import set_twin_state, twin_state
from unsup.energy._rbm import _bernoulli
from unsup.energy.rbm import BernoulliRBM, binary_input
from unsup.likelihood import Likelihood
from unsup.params import ParamGroup
from unsup.registry import register_model
from unsup.train._loop_checkpoint import LoopCheckpoint, generator_from_state
from unsup.train.ais import LogPartition, binary_states
from unsup.train.checkpoint import checkpoint_params
from unsup.train.mcmc import check_float, check_int

__all__ = ["DBN"]

_LIST_ATTRS = ("weights_", "visible_biases_", "hidden_biases_", "generative_weights_")
_LIST_KEY = re.compile(r"^(weights|visible_biases|hidden_biases|generative_weights)_(\d+)_$")
_EXACT_MAX_UNITS = 16


def _per_layer(name: str, value: Any, L: int) -> list[Any]:
    """A scalar broadcast to ``L`` layers, or a sequence of exactly ``L`` values."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value] * L
    vals = list(value)
    if len(vals) != L:
        raise ValueError(f"{name} has {len(vals)} values but the DBN has {L} layers; give one "
                         "value or one per layer")
    return vals


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _dbn_state_shapes(p: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    """The arrays a model file must hold, layer by layer (checked by :func:`unsup.io.load`)."""
    sizes = [int(f["n_features_in_"]), *(int(s) for s in p["layer_sizes"])]
    out: dict[str, Any] = {}
    for i in range(len(sizes) - 1):
        out[f"weights_{i}_"] = A("f32", sizes[i + 1], sizes[i])
        out[f"generative_weights_{i}_?"] = A("f32", sizes[i + 1], sizes[i])
        out[f"hidden_biases_{i}_"] = A("f32", sizes[i + 1])
        out[f"visible_biases_{i}_"] = A("f32", sizes[i])
    out["top_base_rate_logits_?"] = A("f32", sizes[-2])
    out["top_hidden_base_rate_logits_?"] = A("f32", sizes[-1])
    out["top_check_states_?"] = A("u8", "m", "c")
    return out


@register_model('dbn', family='energy', aliases=('deep-belief-net',),
                summary='deep belief net: greedy stacked RBMs, up-down fine-tuning, AIS bound')
class DBN(_DeepEnergy):
    r"""Deep belief network of binary units, trained greedily as a stack of RBMs.

    See the module docstring (:mod:`unsup.energy.dbn`) for the model, the variational lower
    bound on :math:`\log p(v)` and the up-down fine-tuning.

    Parameters
    ----------
    layer_sizes : sequence of int, default=(500, 500, 2000)
        Hidden layer sizes :math:`H_1, \dots, H_L` (the visible size comes from the data);
        the last two layers (the penultimate and :math:`H_L`) form the top RBM.
    learning_rate : float or sequence, default=0.01
        Learning rate of each layer's RBM (one value, or one per layer; likewise below).
    n_updates : int or sequence, default=10000
        Parameter updates per layer.
    cd_k : int or sequence, default=1
        Gibbs steps per update.
    persistent : bool, sequence of bool, or "top", default="top"
        PCD instead of CD-k; "top" uses PCD for the top RBM only (the one that stays an RBM
        in the generative model, where a better density model pays) and CD-k below.
    weight_decay : float or sequence, default=1e-3
    batch_size : int, default=100
    momentum : float, default=0.9
    lr_schedule : {"linear", "cosine", "constant"}, default="linear"
    binarize_input : None, float or "stochastic", default=None
        As in :class:`~unsup.energy.BernoulliRBM`: None uses X as given (values in [0, 1]
        are probabilities, the mean-field input of the first RBM and of ``transform``;
        likelihoods binarise non-binary rows at 0.5 and say so), a number thresholds,
        "stochastic" samples Bernoulli(X) every minibatch of the first layer and thresholds
        at 0.5 for likelihoods.
    bound_samples : int or "exact", default=10
        Default ``n_samples`` of :meth:`score_samples`.
    ais_runs : int, default=100
        AIS runs for log Z of the top RBM.
    ais_betas : int or array-like, default=10000
        AIS inverse temperatures.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
    verbose : bool, default=False

    Attributes
    ----------
    weights_ : list of ndarray, shape (H_k, D_k)
        Recognition weights :math:`R_k` of the directed layers and the top RBM's weights
        :math:`W_L` (last entry). ``D_1 = n_features_in_``, ``D_k = H_{k-1}``.
    hidden_biases_ : list of ndarray (H_k,)
        Recognition biases :math:`c^k` (the top RBM's hidden biases last).
    visible_biases_ : list of ndarray (D_k,)
        Generative biases :math:`b^k` (the top RBM's visible biases last).
    generative_weights_ : list of ndarray (H_k, D_k)
        Generative weights :math:`G_k` of the L-1 directed layers (equal to ``weights_``
        while ``tied_``).
    tied_ : bool
        False once :meth:`fine_tune_updown` has untied the weights.
    top_base_rate_logits_ : ndarray
        Visible biases of the AIS base-rate model of the top RBM.
    layer_sizes_ : list of int
    pretrain_history_ : list of list of dict
        Each layer's RBM training history.
    updown_history_ : list of dict
        Reconstruction error during up-down fine-tuning.
    likelihood_kind_ : str
        "lower bound (exact log Z)" or "lower bound (AIS)" (one layer: "exact" or
        "AIS estimate", as the RBM).
    log_partition_, log_partition_interval_, log_partition_std_ : float, list, float
        log Z of the top RBM and its ±3σ AIS interval, once cached by
        :meth:`set_log_partition` (None otherwise: measuring never stores them).
    n_features_in_ : int

    References
    ----------
    Hinton, Osindero & Teh (2006); Hinton & Salakhutdinov (2006); Salakhutdinov & Murray
    (2008). See :mod:`unsup.energy.dbn`.
    """

    _test_data = "binary"

    _test_params: dict[str, Any] = {"layer_sizes": (4, 3), "n_updates": 20,
                                    "bound_samples": "exact", "ais_runs": 10, "ais_betas": 50,
                                    "device": "cpu", "random_state": 0}

    # each layer's RBM checkpoints in its own sub-directory (layer1/, layer2/, ...)
    _param_groups = (ParamGroup("dbn checkpointing", checkpoint_params(
        "Checkpoint every this many updates of each layer's RBM (None: once per pass over the "
        "data).")),)

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = staticmethod(_dbn_state_shapes)

    def __init__(
        self,
        layer_sizes: Sequence[int] = (500, 500, 2000),
        *,
        learning_rate: float | Sequence[float] = 0.01,
        n_updates: int | Sequence[int] = 10000,
        cd_k: int | Sequence[int] = 1,
        persistent: bool | str | Sequence[bool] = "top",
        weight_decay: float | Sequence[float] = 1e-3,
        batch_size: int = 100,
        momentum: float = 0.9,
        lr_schedule: str = "linear",
        binarize_input: Any = None,
        bound_samples: int | str = 10,
        ais_runs: int = 100,
        ais_betas: Any = 10000,
        device: str = "auto",
        random_state: Any = None,
        verbose: Any = False,
    ) -> None:
        self.layer_sizes = layer_sizes
        self.learning_rate = learning_rate
        self.n_updates = n_updates
        self.cd_k = cd_k
        self.persistent = persistent
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.momentum = momentum
        self.lr_schedule = lr_schedule
        self.binarize_input = binarize_input
        self.bound_samples = bound_samples
        self.ais_runs = ais_runs
        self.ais_betas = ais_betas
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- validation ---------------------------------------------------------------------------
    def _sizes(self) -> list[int]:
        s = self.layer_sizes
        if isinstance(s, (str, bytes)) or not isinstance(s, Sequence) or len(s) == 0:
            raise ValueError(f"layer_sizes must be a non-empty sequence of positive integers "
                             f"(hidden layer sizes), got {s!r}")
        for v in s:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"layer_sizes must contain positive integers, got {list(s)!r}")
        return [int(v) for v in s]

    def _check_data(self, X: torch.Tensor, *, for_likelihood: bool, fitting: bool = False
                    ) -> torch.Tensor:
        return binary_input(X, self._binarize_mode(), type(self).__name__,
                            keep_raw=fitting or not for_likelihood)

    def _input(self, X: Any, for_likelihood: bool = True) -> torch.Tensor:
        Xt = self._validate(X, reset=False, dtype=torch.float32)
        return self._check_data(Xt, for_likelihood=for_likelihood)

    def _persistent_list(self, L: int) -> list[bool]:
        p = self.persistent
        if isinstance(p, str):
            if p != "top":
                raise ValueError(f"persistent must be a bool, one per layer, or 'top', got {p!r}")
            return [k == L - 1 for k in range(L)]
        vals = _per_layer("persistent", p, L)
        for v in vals:
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"persistent must be True/False (or 'top'), got {v!r}")
        return [bool(v) for v in vals]

    # -- construction -------------------------------------------------------------------------
    def _layer_rbm(self, k: int, L: int, seed: int) -> BernoulliRBM:
        sizes = self._sizes()
        lr = _per_layer("learning_rate", self.learning_rate, L)[k]
        nu = _per_layer("n_updates", self.n_updates, L)[k]
        cdk = _per_layer("cd_k", self.cd_k, L)[k]
        wd = _per_layer("weight_decay", self.weight_decay, L)[k]
        pers = self._persistent_list(L)[k]
        first = "stochastic" if (k == 0 and self._binarize_mode() == "stochastic") else None
        return BernoulliRBM(
            sizes[k], learning_rate=lr, batch_size=self.batch_size, cd_k=cdk,
            persistent=pers, n_updates=nu, momentum=self.momentum, weight_decay=wd,
            lr_schedule=self.lr_schedule, binarize_input=first if k == 0 else "stochastic",
            ais_runs=self.ais_runs, ais_betas=self.ais_betas, device=self.device,
            random_state=seed, verbose=self.verbose,
            checkpoint_dir=None if self.checkpoint_dir is None
            else os.path.join(self.checkpoint_dir, f"layer{k + 1}"),
            checkpoint_every=self.checkpoint_every, resume=self.resume)

    def _set_layers(self, rbms: Sequence[BernoulliRBM]) -> None:
        self.weights_ = [np.asarray(r.components_, dtype=np.float32) for r in rbms]
        self.hidden_biases_ = [np.asarray(r.intercept_hidden_, dtype=np.float32) for r in rbms]
        self.visible_biases_ = [np.asarray(r.intercept_visible_, dtype=np.float32)
                                for r in rbms]
        self.generative_weights_ = [w.copy() for w in self.weights_[:-1]]
        self.tied_ = True
        top = rbms[-1]
        base = getattr(top, "base_rate_logits_", None)
        if base is None:  # e.g. an RBM loaded without it: use its visible biases
            base = top.intercept_visible_
        self.top_base_rate_logits_ = np.asarray(base, dtype=np.float32)
        states = getattr(top, "check_states_", None)  # for the top RBM's log Z check
        if states is not None:
            self.top_check_states_ = np.asarray(states)
        hbase = getattr(top, "hidden_base_rate_logits_", None)  # hidden-side AIS base model
        if hbase is not None:
            self.top_hidden_base_rate_logits_ = np.asarray(hbase, dtype=np.float32)
        self.layer_sizes_ = [int(r.components_.shape[0]) for r in rbms]
        self.n_features_in_ = int(rbms[0].components_.shape[1])
        self.n_layers_ = len(rbms)
        self.updown_history_ = []
        self.updown_updates_ = 0
        self._invalidate_log_z()

    def _kind_default(self) -> str:
        exact = min(self.weights_[-1].shape) <= 20
        if len(self.weights_) == 1:
            return "exact" if exact else "AIS estimate"
        return "lower bound (exact log Z)" if exact else "lower bound (AIS)"

    @classmethod
    def from_rbms(cls, rbms: Sequence[BernoulliRBM], **params: Any) -> DBN:
        """A DBN from fitted :class:`~unsup.energy.BernoulliRBM` layers, bottom first.

        Layer k's hidden units are layer k+1's visible units, so
        ``rbms[k].n_components`` must equal ``rbms[k+1].n_features_in_``. ``params`` go to
        the constructor (``layer_sizes`` is taken from the RBMs).

        Raises
        ------
        ValueError
            If the list is empty, an element is not a fitted BernoulliRBM, or the layers do
            not chain.
        """
        rbms = list(rbms)
        if not rbms:
            raise ValueError("from_rbms needs at least one fitted BernoulliRBM")
        for k, r in enumerate(rbms):
            if not isinstance(r, BernoulliRBM):
                raise ValueError(f"rbms[{k}] is a {type(r).__name__}, not a BernoulliRBM")
            r._check_fitted()
        for k in range(len(rbms) - 1):
            h, d = rbms[k].components_.shape[0], rbms[k + 1].components_.shape[1]
            if h != d:
                raise ValueError(
                    f"layers do not chain: rbms[{k}] has {h} hidden units (n_components) but "
                    f"rbms[{k + 1}] has {d} visible units (n_features_in_); they must be equal")
        params.setdefault("random_state", rbms[-1].random_state)
        dbn = cls([int(r.components_.shape[0]) for r in rbms], **params)
        dbn._set_layers(rbms)
        dbn.pretrain_history_ = [list(getattr(r, "history_", [])) for r in rbms]
        return dbn

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> DBN:
        """Greedy layer-wise training: RBM 1 on ``X``, RBM k+1 on RBM k's posteriors.

        Returns ``self``.
        """
        self._reset_fitted()
        self._validate_params()
        sizes = self._sizes()
        L = len(sizes)
        self._persistent_list(L)  # validate early
        check_int("batch_size", self.batch_size, 1)
        Xt = self._validate(X, reset=True, dtype=torch.float32)
        data = self._check_data(Xt, for_likelihood=False, fitting=True)
        rs = check_random_state(self.random_state)
        seeds = [int(s) for s in rs.randint(0, 2**31 - 1, size=L)]
        rbms = []
        for k in range(L):
            rbm = self._layer_rbm(k, L, seeds[k])
            rbm.fit(data)
            rbms.append(rbm)
            if k < L - 1:  # posteriors q(h | layer below): the next RBM's (stochastic) data
                data = torch.from_numpy(rbm.transform(data)).to(data.device)
        self._set_layers(rbms)
        self.pretrain_history_ = [r.history_ for r in rbms]
        return self

    # -- tensors ------------------------------------------------------------------------------
    def _params(self, dev: torch.device, dtype: torch.dtype = torch.float32) -> dict[str, list]:
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a), device=dev).to(dtype)

        return {"R": [t(w) for w in self.weights_], "c": [t(c) for c in self.hidden_biases_],
                "b": [t(b) for b in self.visible_biases_],
                "G": [t(g) for g in self.generative_weights_]}

    # -- inference ----------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        r"""Top-layer posterior means by a mean-field up pass through the recognition weights.

        :math:`\mu^k = \sigma(c^k + R_k \mu^{k-1})`, :math:`\mu^0 = v`; returns
        :math:`\mu^L` of shape (N, H_L).
        """
        Xt = self._input(X, for_likelihood=False)
        P = self._params(Xt.device)
        h = Xt
        for R, c in zip(P["R"], P["c"], strict=True):
            h = torch.sigmoid(torch.addmm(c, h, R.T))
        return h.cpu().numpy()

    def encoder_module(self) -> nn.Sequential:
        """The up pass as ``nn.Sequential`` of ``Linear`` + ``Sigmoid`` layers (on CPU).

        Initialised from the recognition weights, so ``module(X)`` equals
        :meth:`transform` (X); append a head and fine-tune it for a supervised task
        (:mod:`unsup.metrics.pretraining`, or :meth:`fit_classifier`).
        """
        self._check_fitted()
        layers: list[nn.Module] = []
        for R, c in zip(self.weights_, self.hidden_biases_, strict=True):
            lin = nn.Linear(R.shape[1], R.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.array(R, dtype=np.float32)))
                lin.bias.copy_(torch.from_numpy(np.array(c, dtype=np.float32)))
            layers += [lin, nn.Sigmoid()]
        return nn.Sequential(*layers)

    def fit_classifier(self, X: Any, y: Any, *, steps: int = 500, batch_size: int = 64,
                       lr: float = 1e-3, weight_decay: float = 0.0,
                       random_state: int = 0) -> nn.Sequential:
        """Discriminative fine-tuning: the DBN's up pass plus a softmax layer, trained end to end.

        Builds ``Sequential(encoder_module(), Linear(H_L, n_classes))`` with
        :func:`unsup.metrics.pretraining.build_classifier` and trains every layer with
        cross-entropy (:func:`unsup.metrics.pretraining.finetune`, Adam), as in Hinton &
        Salakhutdinov (2006). ``y`` holds integer labels 0..n_classes-1. The DBN itself is not
        modified.

        Returns
        -------
        torch.nn.Sequential
            The classifier (CPU, train mode off); ``model(x).argmax(1)`` predicts.
        """
        from unsup.metrics.pretraining import build_classifier, finetune

        Xt = self._input(X, for_likelihood=False).cpu()
        yt = torch.as_tensor(np.asarray(y)).long().reshape(-1)
        if yt.numel() != Xt.shape[0]:
            raise ValueError(f"y has {yt.numel()} labels for {Xt.shape[0]} rows")
        n_classes = int(yt.max()) + 1
        model = build_classifier(self.encoder_module(), self.n_features_in_, max(2, n_classes),
                                 random_state=random_state)
        finetune(model, Xt, yt, steps=steps, batch_size=batch_size, lr=lr,
                 weight_decay=weight_decay, random_state=random_state)
        model.eval()
        return model

    # -- likelihood ---------------------------------------------------------------------------
    def _top_rbm(self) -> BernoulliRBM:
        rbm = BernoulliRBM(self.layer_sizes_[-1], ais_runs=self.ais_runs,
                           ais_betas=self.ais_betas, device=self.device,
                           random_state=self.random_state)
        rbm.components_ = np.asarray(self.weights_[-1])
        rbm.intercept_visible_ = np.asarray(self.visible_biases_[-1])
        rbm.intercept_hidden_ = np.asarray(self.hidden_biases_[-1])
        rbm.base_rate_logits_ = np.asarray(self.top_base_rate_logits_)
        rbm.n_features_in_ = int(rbm.components_.shape[1])
        states = getattr(self, "top_check_states_", None)
        if states is not None:
            rbm.check_states_ = np.asarray(states)
        hbase = getattr(self, "top_hidden_base_rate_logits_", None)
        if hbase is not None:
            rbm.hidden_base_rate_logits_ = np.asarray(hbase)
        return rbm

    def estimate_log_partition(self, n_runs: int | None = None, n_betas: Any = None,
                               random_state: Any = None) -> LogPartition:
        """AIS estimate of log Z of the top RBM (see BernoulliRBM's method), checked against
        the top RBM's stored training states. Never changes the model; cache it with
        :meth:`set_log_partition`."""
        self._check_fitted()
        return self._top_rbm().estimate_log_partition(n_runs, n_betas, random_state)

    def estimate_log_partition_reverse(self, n_runs: int | None = None, n_betas: Any = None,
                                       burn_in: int = 5000, random_state: Any = None
                                       ) -> LogPartition:
        """Reverse AIS on the top RBM (see BernoulliRBM's method): the other side of the
        forward/reverse sandwich of log Z (``method="reverse AIS"``). Never changes the model;
        :meth:`set_log_partition` caches it as ``log_partition_reverse_`` (never used for the
        bound itself)."""
        self._check_fitted()
        return self._top_rbm().estimate_log_partition_reverse(n_runs, n_betas, burn_in,
                                                              random_state)

    def _exact_log_partition(self) -> float | None:
        return self._top_rbm()._exact_log_partition()

    def _bound(self, x: torch.Tensor, k: int, n: int | None, P: dict[str, list],
               gen: torch.Generator) -> torch.Tensor:
        """Lower bound on log p(x) (float64 rows) for states x of the input of layer k."""
        L = len(P["R"])
        if k == L - 1:
            W, b, c = P["R"][k], P["b"][k], P["c"][k]
            return x @ b + F.softplus(torch.addmm(c, x, W.T)).sum(1)  # -F_top (log Z later)
        R, c, G, b = P["R"][k], P["c"][k], P["G"][k], P["b"][k]
        H = R.shape[0]
        N = x.shape[0]
        if n is None:
            S = binary_states(H, dtype=x.dtype, device=x.device)  # (2^H, H)
            inner = self._bound(S, k + 1, None, P, gen)  # (2^H,), independent of x
            logits = torch.addmm(b, S, G)  # (2^H, D_k)
            sp = F.softplus(logits).sum(1)
            rows = max(1, 2**21 // S.shape[0])
            out = torch.empty(N, dtype=x.dtype, device=x.device)
            for s in range(0, N, rows):
                xs = x[s:s + rows]
                a = torch.addmm(c, xs, R.T)  # (n, H)
                logq = a @ S.T - F.softplus(a).sum(1, keepdim=True)  # (n, 2^H)
                logp = xs @ logits.T - sp  # (n, 2^H)
                ent = (F.softplus(a) - torch.sigmoid(a) * a).sum(1)
                out[s:s + rows] = (logq.exp() * (logp + inner)).sum(1) + ent
            return out
        rows = max(1, 2**22 // (n * max(H, x.shape[1], *(r.shape[0] for r in P["R"]))))
        out = torch.empty(N, dtype=x.dtype, device=x.device)
        for s in range(0, N, rows):
            xs = x[s:s + rows]
            m = xs.shape[0]
            a = torch.addmm(c, xs, R.T)
            q = torch.sigmoid(a)
            ent = (F.softplus(a) - q * a).sum(1)
            h = _bernoulli(q.unsqueeze(0).expand(n, m, H).reshape(n * m, H).contiguous(), gen)
            logits = torch.addmm(b, h, G)
            xr = xs.unsqueeze(0).expand(n, m, xs.shape[1]).reshape(n * m, -1)
            logp = (xr * logits - F.softplus(logits)).sum(1)
            inner = self._bound(h, k + 1, 1, P, gen)
            out[s:s + m] = (logp + inner).reshape(n, m).mean(0) + ent
        return out

    def score_samples(self, X: Any, n_samples: int | str | None = None,
                      random_state: Any = None) -> np.ndarray:
        r"""Variational lower bound on log p(v) per row, in nats (see :mod:`unsup.energy.dbn`).

        .. math::

            \log p(v) \ge E_{q(h^1 \mid v)}[\log p(v \mid h^1) + \log p(h^1)]
            + \mathcal H(q(h^1 \mid v)),

        applied recursively up to the top RBM, whose :math:`\log Z` is exact (smaller layer
        <= 20 units) or an AIS estimate (cached by :meth:`set_log_partition`, else computed
        afresh and not stored; its error shifts every row equally, and
        :meth:`log_likelihood` carries the interval). With one layer this is the RBM's
        log p(v). Non-binary X is binarised at 0.5 first (the likelihood is defined for
        binary data).

        Parameters
        ----------
        n_samples : int, "exact" or None
            Draws of :math:`h^1 \sim q` per row (a stochastic, unbiased estimate of the
            bound), or "exact" to enumerate every hidden layer below the top RBM (each at most
            16 units). None uses ``bound_samples``.
        random_state : optional
            Seed of the draws (default: the estimator's ``random_state``).
        """
        return self._rows(X, n_samples, random_state)[0]

    def _rows(self, X: Any, n_samples: int | str | None, random_state: Any
              ) -> tuple[np.ndarray, LogPartition, str | None, int | None, int]:
        Xt, transform = self._likelihood_input(X)
        n = self.bound_samples if n_samples is None else n_samples
        if n == "exact":
            big = [h for h in self.layer_sizes_[:-1] if h > _EXACT_MAX_UNITS]
            if big:
                raise ValueError(f"n_samples='exact' enumerates the hidden layers below the "
                                 f"top RBM; layers of {big} units are too many (at most "
                                 f"{_EXACT_MAX_UNITS}); pass a number of samples")
            n = None
        else:
            n = check_int("n_samples", n, 1)
        lz = self.log_partition_result()
        dev = Xt.device
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        P = self._params(dev, torch.float64)
        rows = (self._bound(Xt.double(), 0, n, P, gen) - lz.log_z).cpu().numpy()
        return rows, lz, transform, n, int(Xt.shape[1])

    def log_likelihood(self, X: Any, n_samples: int | str | None = None,
                       random_state: Any = None) -> Likelihood:
        """The mean of :meth:`score_samples` as a typed :class:`~unsup.likelihood.Likelihood`.

        One layer: the RBM's log-likelihood (exact, or a forward-AIS estimate). Deeper: the
        variational lower bound, kind "lower bound" (hidden layers enumerated, exact log Z),
        "stochastic lower bound" (bound sampled, exact log Z) or "stochastic estimate" (log Z
        by forward AIS, whose error can push the value above the bound); the estimator names
        both parts. Never changes the model.
        """
        rows, lz, transform, n, D = self._rows(X, n_samples, random_state)
        if len(self.weights_) == 1:
            bound = None
        elif n is None:
            bound = "variational lower bound (hidden layers enumerated)"
        else:
            bound = f"variational lower bound ({n} samples of q per row)"
        return self._bound_likelihood(rows, lz, n_dims=D, transform=transform, bound=bound,
                                      bound_exact=n is None)

    def score(self, X: Any, y: Any = None, n_samples: int | str | None = None) -> float:
        """Mean of :meth:`score_samples`: the average lower bound on log p(v) per row."""
        return float(np.mean(self.score_samples(X, n_samples)))

    def reconstruction_error(self, X: Any) -> np.ndarray:
        r"""Squared error of a deterministic up-down pass, per row.

        Up with recognition means to the top RBM's visible layer, then down with the
        generative weights: :math:`\lVert v - \hat v\rVert^2`.
        """
        Xt = self._input(X)
        P = self._params(Xt.device)
        h = Xt
        for R, c in zip(P["R"][:-1], P["c"][:-1], strict=True):
            h = torch.sigmoid(torch.addmm(c, h, R.T))
        W, b, c = P["R"][-1], P["b"][-1], P["c"][-1]
        h = torch.sigmoid(torch.addmm(b, torch.sigmoid(torch.addmm(c, h, W.T)), W))
        for G, bb in zip(reversed(P["G"]), reversed(P["b"][:-1]), strict=True):
            h = torch.sigmoid(torch.addmm(bb, h, G))
        return ((Xt - h) ** 2).sum(1).double().cpu().numpy()

    # -- sampling -----------------------------------------------------------------------------
    def _down(self, top_visible: torch.Tensor, P: dict[str, list], gen: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-down pass from states of the top RBM's visible layer: (visible means, samples)."""
        h = top_visible
        mean = h
        for G, b in zip(reversed(P["G"]), reversed(P["b"][:-1]), strict=True):
            mean = torch.sigmoid(torch.addmm(b, h, G))
            h = _bernoulli(mean, gen)
        return mean, h

    def _top_chain_start(self, P: dict[str, list], n: int, gen: torch.Generator
                         ) -> torch.Tensor:
        a = torch.as_tensor(self.top_base_rate_logits_, device=P["R"][-1].device)
        return _bernoulli(torch.sigmoid(a.float()).expand(n, -1).contiguous(), gen)

    def gibbs_chain(self, n_chains: int = 16, steps: Any = (1, 10, 100, 1000),
                    random_state: Any = None) -> np.ndarray:
        """Gibbs chains in the top RBM, read out through the generative layers.

        ``n_chains`` chains start from the top RBM's base-rate model; after each number of
        full Gibbs steps in ``steps`` the top RBM's visible state goes down through the
        directed layers (sampling intermediate layers) to the visible means.

        Returns
        -------
        ndarray of shape (len(steps), n_chains, n_features_in_)
        """
        self._check_fitted()
        n_chains = check_int("n_chains", n_chains, 1)
        steps = sorted(int(s) for s in steps)
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        P = self._params(dev)
        W, b, c = P["R"][-1], P["b"][-1], P["c"][-1]
        x = self._top_chain_start(P, n_chains, gen)
        out, done = [], 0
        for s in steps:
            mean_top = None
            for _ in range(s - done):
                h = _bernoulli(torch.sigmoid(torch.addmm(c, x, W.T)), gen)
                mean_top = torch.sigmoid(torch.addmm(b, h, W))
                x = _bernoulli(mean_top, gen)
            done = s
            if not P["G"]:  # one layer: the RBM's own visible means
                if mean_top is None:
                    h = _bernoulli(torch.sigmoid(torch.addmm(c, x, W.T)), gen)
                    mean_top = torch.sigmoid(torch.addmm(b, h, W))
                out.append(mean_top.cpu().numpy())
            else:
                out.append(self._down(x, P, gen)[0].cpu().numpy())
        return np.stack(out)

    def sample(self, n_samples: int = 1, *, burn_in: int = 1000, n_chains: int = 100,
               thinning: int = 1, return_means: bool = False,
               random_state: Any = None) -> np.ndarray:
        """Draw visible vectors: Gibbs sampling in the top RBM, then a top-down pass.

        ``min(n_samples, n_chains)`` chains alternate the top two layers for ``burn_in``
        steps, then each contributes one sample every ``thinning`` steps; every sample of
        the penultimate layer is propagated down through the generative weights (sampling
        each directed layer).

        Returns
        -------
        ndarray of shape (n_samples, n_features_in_)
            Binary samples, or :math:`p(v \\mid h^1)` when ``return_means``.
        """
        self._check_fitted()
        n = check_int("n_samples", n_samples, 1)
        burn_in = check_int("burn_in", burn_in, 0)
        thinning = check_int("thinning", thinning, 1)
        C = min(n, check_int("n_chains", n_chains, 1))
        dev = self._device()
        gen = make_generator(self.random_state if random_state is None else random_state, dev)
        P = self._params(dev)
        W, b, c = P["R"][-1], P["b"][-1], P["c"][-1]
        x = self._top_chain_start(P, C, gen)
        got: list[torch.Tensor] = []
        total = step = 0
        while total < n:
            h = _bernoulli(torch.sigmoid(torch.addmm(c, x, W.T)), gen)
            mean_top = torch.sigmoid(torch.addmm(b, h, W))
            x = _bernoulli(mean_top, gen)
            step += 1
            if step > burn_in and (step - burn_in) % thinning == 0:
                if P["G"]:
                    mean, v = self._down(x, P, gen)
                else:
                    mean, v = mean_top, x
                take = (mean if return_means else v)[: n - total]
                got.append(take.clone())
                total += take.shape[0]
        return torch.cat(got).cpu().numpy()

    # -- up-down fine-tuning --------------------------------------------------------------------
    def fine_tune_updown(self, X: Any, *, n_updates: int = 1000, learning_rate: float = 1e-3,
                         cd_k: int = 10, batch_size: int | None = None,
                         weight_decay: float = 0.0, random_state: Any = None) -> DBN:
        r"""Up-down fine-tuning (Hinton, Osindero & Teh 2006, appendix B). Returns ``self``.

        Unties recognition (:math:`R_k, c^k`) and generative (:math:`G_k, b^k`) parameters of
        the directed layers, then for ``n_updates`` minibatches:

        1. *wake*: :math:`h^k \sim q(\cdot \mid h^{k-1})` up to the top RBM's visible layer;
           :math:`G_k \mathrel{+}= \epsilon\, h^k (h^{k-1} - \sigma(b^k + G_k^\top h^k))^\top`
           and :math:`b^k \mathrel{+}= \epsilon\,(h^{k-1} - \sigma(\cdot))`;
        2. *top level*: CD-``cd_k`` on the top RBM with :math:`h^{L-1}` as data;
        3. *sleep*: from the CD chain's :math:`h^{L-1}`, sample down
           :math:`h^{k-1} \sim p(\cdot \mid h^k)`;
           :math:`R_k \mathrel{+}= \epsilon\,(h^k - \sigma(c^k + R_k h^{k-1}))(h^{k-1})^\top`,
           :math:`c^k \mathrel{+}= \epsilon\,(h^k - \sigma(\cdot))`.

        Averages are over the minibatch; ``weight_decay`` is an L2 penalty on the weights.
        With one layer only step 2 runs (CD-k on the RBM). Clears the cached log Z.

        Checkpoints: with the estimator's ``checkpoint_dir``, the fine-tuning writes its state
        (weights, biases, minibatch order, history, generator) every ``checkpoint_every``
        updates (None: every 10 s) to ``checkpoint_dir/updown<u>`` (``u``: the up-down updates
        done before this call, so successive calls keep separate checkpoints); with
        ``resume=True`` it continues from there and gives the model of a fine-tuning never
        stopped, bit for bit on one thread (a finished one is returned as it was). A
        checkpoint of other data, arguments or starting weights is refused by name.
        """
        self._check_fitted()
        Xt = self._input(X, for_likelihood=False)
        stochastic = self._binarize_mode() == "stochastic"
        n_updates = check_int("n_updates", n_updates, 0)
        lr = check_float("learning_rate", learning_rate, 0.0, low_open=True)
        k_cd = check_int("cd_k", cd_k, 1)
        wd = check_float("weight_decay", weight_decay, 0.0)
        bs = check_int("batch_size", self.batch_size if batch_size is None else batch_size, 1)
        N = Xt.shape[0]
        bs = min(bs, N)
        dev = Xt.device
        seed = self.random_state if random_state is None else random_state
        gen = make_generator(seed, dev)
        # copies: the arrays of the model are only replaced at the end (a crash leaves it whole)
        P = {k: [t.clone() for t in v] for k, v in self._params(dev).items()}
        lc = _updown_checkpoint(self, Xt, gen, P, seed, n_updates=n_updates, learning_rate=lr,
                                cd_k=k_cd, batch_size=bs, weight_decay=wd)
        state = lc.result.params if lc.result is not None else lc.params
        if state is not None:  # resumed: the state written at the top of update state["t"]
            P = {k: list(state[k]) for k in ("R", "c", "G", "b")}
        R, c, G, b = P["R"], P["c"], P["G"], P["b"]
        L = len(R)
        W, bt, ct = R[-1], b[-1], c[-1]
        if state is None:
            perm = torch.randperm(N, generator=gen, device=gen.device).to(dev)
            pos, t0 = 0, 0
            history = list(getattr(self, "updown_history_", []))
        else:
            perm, pos, t0 = state["perm"].to(dev), int(state["pos"]), int(state["t"])
            tw = state.get("twin")  # the NumPy twin that draws the CPU samples (energy._rbm)
            set_twin_state(gen, None if tw is None
                           else generator_from_state(tw).bit_generator.state)
            history = [dict(h) for h in (lc.result.history if lc.result is not None
                                         else lc.history)]
        every = max(1, n_updates // 50)
        for t in range(t0, n_updates) if lc.result is None else ():
            lc.top(t, {"R": R, "c": c, "G": G, "b": b, "perm": perm, "pos": pos, "t": t,
                       "twin": _twin_json(gen)}, history)
            if pos + bs > N:
                perm, pos = torch.randperm(N, generator=gen, device=gen.device).to(dev), 0
            v = Xt[perm[pos:pos + bs]]
            pos += bs
            if stochastic:
                v = _bernoulli(v, gen)
            # wake (up) pass with samples
            wake = [v]
            for k in range(L - 1):
                wake.append(_bernoulli(torch.sigmoid(torch.addmm(c[k], wake[-1], R[k].T)), gen))
            # top-level CD-k
            x0 = wake[-1]
            p0 = torch.sigmoid(torch.addmm(ct, x0, W.T))
            hk = _bernoulli(p0, gen)
            for _ in range(k_cd):
                xk = _bernoulli(torch.sigmoid(torch.addmm(bt, hk, W)), gen)
                pk = torch.sigmoid(torch.addmm(ct, xk, W.T))
                hk = _bernoulli(pk, gen)
            # sleep (down) pass from the chain's final top-visible state
            sleep = [xk]
            for k in reversed(range(L - 1)):
                sleep.append(_bernoulli(torch.sigmoid(torch.addmm(b[k], sleep[-1], G[k])), gen))
            sleep.reverse()  # sleep[k] = states of the input of layer k
            # generative updates (wake), recognition updates (sleep)
            recon_err = None
            for k in range(L - 1):
                lower, upper = wake[k], wake[k + 1]
                err = lower - torch.sigmoid(torch.addmm(b[k], upper, G[k]))
                if k == 0:
                    recon_err = float((err ** 2).sum(1).mean())
                G[k].add_(upper.T @ err / bs - wd * G[k], alpha=lr)
                b[k].add_(err.mean(0), alpha=lr)
                slo, shi = sleep[k], sleep[k + 1]
                serr = shi - torch.sigmoid(torch.addmm(c[k], slo, R[k].T))
                R[k].add_(serr.T @ slo / bs - wd * R[k], alpha=lr)
                c[k].add_(serr.mean(0), alpha=lr)
            W.add_((p0.T @ x0 - pk.T @ xk) / bs - wd * W, alpha=lr)
            bt.add_((x0 - xk).mean(0), alpha=lr)
            ct.add_((p0 - pk).mean(0), alpha=lr)
            if (t + 1) % every == 0 or t == n_updates - 1:
                if recon_err is None:
                    mean = torch.sigmoid(torch.addmm(bt, _bernoulli(p0, gen), W))
                    recon_err = float(((x0 - mean) ** 2).sum(1).mean())
                history.append({"step": self.updown_updates_ + t + 1,
                                "reconstruction_error": recon_err})
            report_progress("DBN up-down", t + 1, n_updates)
        if lc.result is None:
            last = history[-1]["reconstruction_error"] if history else 0.0
            lc.finish({"R": R, "c": c, "G": G, "b": b, "perm": perm, "pos": pos,
                       "t": n_updates, "twin": _twin_json(gen)}, last, n_updates, history)
        self.weights_ = [_np(w) for w in R]
        self.hidden_biases_ = [_np(x) for x in c]
        self.visible_biases_ = [_np(x) for x in b]
        self.generative_weights_ = [_np(g) for g in G]
        if n_updates > 0 and L > 1:
            self.tied_ = False
        self.updown_updates_ = int(self.updown_updates_) + n_updates
        self.updown_history_ = history
        self._invalidate_log_z()
        return self

    # -- persistence: lists of per-layer arrays ------------------------------------------------
    _save_exclude = _LIST_ATTRS

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super()._get_state()
        for name in _LIST_ATTRS:
            for k, a in enumerate(getattr(self, name, [])):
                arrays[f"{name}{k}_"] = np.asarray(a)
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        lists: dict[str, dict[int, np.ndarray]] = {n: {} for n in _LIST_ATTRS}
        rest = {}
        for key, a in arrays.items():
            m = _LIST_KEY.match(key)
            if m:
                lists[m.group(1) + "_"][int(m.group(2))] = a
            else:
                rest[key] = a
        super()._set_state(rest, values)
        for name, d in lists.items():
            if sorted(d) != list(range(len(d))):
                raise ValueError(f"{name} layers are not numbered 0..n-1")
            setattr(self, name, [d[k] for k in range(len(d))])
        L = int(values.get("n_layers_", len(self.weights_)))
        if len(self.weights_) != L or len(self.generative_weights_) != L - 1:
            raise ValueError("the number of stored layers does not match n_layers_")


class _UpDownRun:
    """What :class:`~unsup.train._loop_checkpoint.LoopCheckpoint` reads of an estimator, for
    one up-down fine-tuning: its own checkpoint directory, the DBN's parameters and the
    fine-tuning's seed."""

    def __init__(self, dbn: DBN, directory: str | None, seed: Any) -> None:
        self._dbn_params = dbn.get_params(deep=False)
        self.checkpoint_dir = directory
        self.checkpoint_every = dbn.checkpoint_every
        self.resume = bool(dbn.resume)
        self.random_state = seed

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return dict(self._dbn_params)


def _twin_json(gen: torch.Generator) -> dict[str, Any] | None:
    """The state of ``gen``'s NumPy twin (its CPU draws) as JSON scalars; None before any."""
    st = twin_state(gen)
    if st is None:
        return None
    return {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def _updown_checkpoint(dbn: DBN, Xt: torch.Tensor, gen: torch.Generator,
                       P: dict[str, list], seed: Any, **args: Any) -> LoopCheckpoint:
    """The checkpointer of one up-down fine-tuning (inactive without ``checkpoint_dir``).

    Its signature holds the arguments, the data (by digest, in the checkpoint) and a digest of
    the starting weights, so a checkpoint of another fine-tuning is refused, not continued."""
    import hashlib

    start = int(getattr(dbn, "updown_updates_", 0))
    d = dbn.checkpoint_dir
    h = hashlib.sha256()
    for k in ("R", "c", "G", "b"):
        for t in P[k]:
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    run = _UpDownRun(dbn, None if d is None else os.path.join(d, f"updown{start}"),
                     seed if isinstance(seed, numbers.Integral) else None)
    return LoopCheckpoint(run, Xt, gen, loop="updown", start_updates=start,
                          start_weights=h.hexdigest(), **args)
