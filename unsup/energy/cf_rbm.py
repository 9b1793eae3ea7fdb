r"""RBM for collaborative filtering: K-way softmax visible units over ratings, missing skipped."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin

from unsup._io_checks import A
from unsup.base import BaseEstimator, make_generator
from unsup.data.validation import DataError, check_n_features
from unsup.params import Integral, Interval
from unsup.registry import register_model
from unsup.train.mcmc import MCMC_TRAINING, check_int, fit_mcmc, mcmc_config

__all__ = ["CollaborativeFilteringRBM"]

State = tuple[torch.Tensor, ...]


class _CFMath:
    r"""One-hot ratings V (N, M·K), observed mask O (N, M·K), W (H, M·K)."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor, K: int) -> None:
        self.W, self.b, self.c, self.K = W, b, c, K

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"W": self.W, "b": self.b, "c": self.c}

    def decayed(self) -> tuple[str, ...]:
        return ("W",)

    def hidden_mean_of(self, V: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.addmm(self.c, V, self.W.T))

    def rating_probs(self, h: torch.Tensor) -> torch.Tensor:
        """:math:`p(v_i^k = 1 \\mid h)` as (N, M, K)."""
        logits = torch.addmm(self.b, h, self.W)
        return torch.softmax(logits.view(h.shape[0], -1, self.K), 2)

    def positive(self, batch: torch.Tensor, gen: torch.Generator) -> State:
        mask = batch.view(batch.shape[0], -1, self.K).sum(2, keepdim=True).expand(
            -1, -1, self.K).reshape(batch.shape)
        return (batch, self.hidden_mean_of(batch), mask)

    def init_chains(self, batch: torch.Tensor, n: int, gen: torch.Generator) -> State:
        raise ValueError("collaborative filtering RBMs train with CD-k only")

    def gibbs(self, state: State, k: int, gen: torch.Generator) -> tuple[State, State]:
        V, hp, mask = state
        for _ in range(k):
            h = (torch.rand(hp.shape, generator=gen, device=gen.device, dtype=hp.dtype)
                 .to(hp.device) < hp).to(hp.dtype)
            p = self.rating_probs(h)
            u = torch.rand(p.shape[:2] + (1,), generator=gen, device=gen.device,
                           dtype=p.dtype).to(p.device)
            idx = (u > p.cumsum(2)).sum(2).clamp_(max=self.K - 1)
            V = F.one_hot(idx, self.K).to(p.dtype).reshape(V.shape) * mask
            hp = self.hidden_mean_of(V)
        return (V, hp, mask), (V, hp, mask)

    def stats(self, rows: State, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        V, h, _ = rows
        hw = h * weights.unsqueeze(1)
        return {"W": hw.T @ V, "b": weights @ V, "c": hw.sum(0)}

    def hidden_mean(self, pos: State) -> torch.Tensor:
        return pos[1]

    def sparsity_grads(self, pos: State, delta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"c": delta, "W": delta.unsqueeze(1) * pos[0].mean(0).unsqueeze(0)}


@register_model('cf-rbm', family='energy', aliases=('collaborative-filtering-rbm',),
                summary='RBM for collaborative filtering (softmax ratings 1..K, missing skipped)')
class CollaborativeFilteringRBM(TransformerMixin, BaseEstimator):
    r"""Restricted Boltzmann machine for collaborative filtering (Salakhutdinov, Mnih &
    Hinton 2007).

    Each user is one training case. Item i that the user rated is a K-way softmax visible
    unit :math:`v_i \in \{1..K\}` (one-hot :math:`v_i^k`); unrated items are simply absent
    from that user's RBM (all users share the weights :math:`W_{ij}^k`):

    .. math::

        E(V, h) &= -\sum_{i \in \text{rated}} \sum_k \big(W_{ij}^k h_j v_i^k + b_i^k v_i^k\big)
                   - c^\top h \\
        p(h_j = 1 \mid V) &= \sigma\Big(c_j + \sum_{i \in \text{rated}} \sum_k v_i^k
        W_{ij}^k\Big), \qquad
        p(v_i^k = 1 \mid h) = \operatorname{softmax}_k\Big(b_i^k + \sum_j h_j W_{ij}^k\Big)

    Trained by CD-k (reconstructing only the rated items) with the shared engine.
    :meth:`predict` fills the missing entries with the expected rating
    :math:`\sum_k k\, p(v_i^k = 1 \mid \hat h)`, :math:`\hat h = p(h \mid V)`.

    Parameters
    ----------
    n_components : int, default=100
    n_ratings : int, default=5
        K: ratings are the integers 1..K. Missing entries are 0 or NaN.
    learning_rate : float, default=0.05
    batch_size : int, default=100
    n_iter : int or None, default=None
    n_updates : int, default=3000
    cd_k : int, default=1
    momentum : float, default=0.9
    weight_decay : float, default=1e-3
    lr_schedule : {"linear", "cosine", "constant"}, default="linear"
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    components_ : ndarray (H, M·K)
    intercept_visible_ : ndarray (M·K,)
    intercept_hidden_ : ndarray (H,)
    n_features_in_ : int
        Number of items M.

    References
    ----------
    Salakhutdinov, Mnih & Hinton (2007), Restricted Boltzmann machines for collaborative
    filtering. ICML.
    """

    _test_data = "ratings"
    # scikit-learn checks that fit on real-valued data fail by design: the input domain is
    # ratings (read by tests/test_common.py, which also checks that the list is not stale)
    _expected_failed_checks: dict[str, str] = dict.fromkeys((
        "check_complex_data", "check_dict_unchanged", "check_dont_overwrite_parameters",
        "check_dtype_object", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
        "check_estimator_sparse_tag", "check_estimators_dtypes",
        "check_estimators_empty_data_messages", "check_estimators_fit_returns_self",
        "check_estimators_overwrite_params", "check_estimators_pickle",
        "check_f_contiguous_array_estimator", "check_fit2d_1feature", "check_fit2d_1sample",
        "check_fit2d_predict1d", "check_fit_check_is_fitted", "check_fit_idempotent",
        "check_fit_score_takes_y", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_n_features_in",
        "check_n_features_in_after_fitting", "check_pipeline_consistency",
        "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
        "check_transformer_data_not_an_array", "check_transformer_general"),
        "input domain: ratings are integers 1..n_ratings (0 or NaN missing); the check feeds "
        "real-valued data, which the model refuses with a DataError")

    _estimator_type = "recommender"  # unsup.metrics.evaluate_model reports RMSE for these

    _param_groups = (MCMC_TRAINING,)
    _parameter_constraints: dict[str, Any] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_ratings": [Interval(Integral, 2, None, closed="left")],
        "cd_k": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    _test_params: dict[str, Any] = {"n_components": 4, "n_updates": 20, "device": "cpu",
                                    "random_state": 0}

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"components_": A("f32", "n_components", "n_features_in_ * n_ratings"),
                     "intercept_hidden_": A("f32", "n_components"),
                     "intercept_visible_": A("f32", "n_features_in_ * n_ratings"),
                     "item_means_?": A("f64", "n_features_in_")}

    def __init__(self, n_components: int = 100, *, n_ratings: int = 5,
                 learning_rate: float = 0.05, n_updates: int = 3000, cd_k: int = 1,
                 device: str = "auto", random_state: Any = None) -> None:
        self.n_components = n_components
        self.n_ratings = n_ratings
        self.learning_rate = learning_rate
        self.n_updates = n_updates
        self.cd_k = cd_k
        self.device = device
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN marks a missing rating
        tags.transformer_tags.preserves_dtype = []
        return tags

    def _one_hot(self, R: Any, reset: bool) -> torch.Tensor:
        if not reset:
            self._check_fitted()
        K = check_int("n_ratings", self.n_ratings, 2)
        a = np.asarray(R, dtype=np.float64)
        if a.ndim != 2 or a.size == 0:
            raise DataError(f"ratings must be a non-empty 2-D array (users x items), got shape "
                            f"{a.shape}")
        if np.isinf(a).any():
            raise DataError("ratings contain infinity")
        a = np.nan_to_num(a, nan=0.0)
        bad = (a != 0) & ((a != np.round(a)) | (a < 1) | (a > K))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(f"ratings must be integers in 1..{K} (0 or NaN for missing), but "
                            f"R[{i}, {j}] = {a[i, j]:.4g}")
        if reset:
            self.n_features_in_ = a.shape[1]
        else:
            self._check_fitted()
            check_n_features(torch.empty(0, a.shape[1]), self.n_features_in_,
                             type(self).__name__)
        t = torch.as_tensor(a, dtype=torch.long, device=self._device())
        V = F.one_hot(t, K + 1)[..., 1:].to(torch.float32)  # rating 0 -> all zeros
        return V.reshape(a.shape[0], -1)

    def fit(self, R: Any, y: Any = None) -> CollaborativeFilteringRBM:
        """Fit to a users × items rating matrix ``R`` (0 or NaN = missing). Returns self."""
        self._validate_params()
        V = self._one_hot(R, reset=True)
        N = V.shape[0]
        K = int(self.n_ratings)
        cfg = mcmc_config(self, N, stage="CollaborativeFilteringRBM", persistent=False,
                          n_chains=None, sparsity_target=None, monitor_every=0)
        gen = make_generator(self.random_state, V.device)
        H = int(self.n_components)
        # visible biases: log of each item's smoothed rating frequencies
        cnt = V.sum(0).view(-1, K) + 1.0
        b = torch.log(cnt / cnt.sum(1, keepdim=True)).reshape(-1)
        W = (0.01 * torch.randn(H, V.shape[1], generator=gen, device=gen.device)).to(V)
        m = _CFMath(W, b.to(V), torch.zeros(H, device=V.device), K)
        fit_mcmc(m, V, cfg, gen)
        # item-mean baseline (global mean for items nobody rated), for rating_metrics
        a = np.nan_to_num(np.asarray(R, dtype=np.float64), nan=0.0)
        obs = a != 0
        glob = float(a[obs].mean()) if obs.any() else (K + 1) / 2
        n_obs = obs.sum(0)
        self.item_means_ = np.where(n_obs > 0, a.sum(0) / np.maximum(n_obs, 1), glob)
        self.components_ = m.W.cpu().numpy()
        self.intercept_visible_ = m.b.cpu().numpy()
        self.intercept_hidden_ = m.c.cpu().numpy()
        return self

    def _math(self) -> _CFMath:
        d = self._device()
        return _CFMath(torch.as_tensor(self.components_, device=d),
                       torch.as_tensor(self.intercept_visible_, device=d),
                       torch.as_tensor(self.intercept_hidden_, device=d), int(self.n_ratings))

    def predict_proba(self, R: Any) -> np.ndarray:
        """:math:`p(v_i = k \\mid \\hat h)` for every user and item, shape (N, M, K)."""
        V = self._one_hot(R, reset=False)
        m = self._math()
        return m.rating_probs(m.hidden_mean_of(V)).cpu().numpy()

    def predict(self, R: Any) -> np.ndarray:
        """``R`` with every missing entry (0 or NaN) replaced by the expected rating."""
        P = self.predict_proba(R)
        expected = P @ np.arange(1, int(self.n_ratings) + 1, dtype=P.dtype)
        a = np.nan_to_num(np.asarray(R, dtype=np.float64), nan=0.0)
        return np.where(a == 0, expected, a)

    def rating_metrics(self, R_target: Any, R_given: Any = None) -> dict[str, float]:
        """RMSE and MAE of the expected ratings at the observed entries of ``R_target``.

        Parameters
        ----------
        R_target : array (N, M)
            Ratings to predict (0 or NaN = not scored).
        R_given : array (N, M) or None
            Ratings of the same users to condition on (the usual held-out protocol: the
            training matrix, with ``R_target`` holding other entries). None conditions on
            ``R_target`` itself, which measures reconstruction, not prediction.

        Returns
        -------
        dict
            ``rmse``, ``mae``, ``n_ratings_scored`` and, when fitted by this version, the
            item-mean baseline's ``rmse_item_mean`` on the same entries.
        """
        given = R_target if R_given is None else R_given
        P = self.predict_proba(given)
        expected = P @ np.arange(1, int(self.n_ratings) + 1, dtype=P.dtype)
        t = np.nan_to_num(np.asarray(R_target, dtype=np.float64), nan=0.0)
        if t.shape != expected.shape:
            raise DataError(f"R_target has shape {t.shape} but the conditioning ratings give "
                            f"{expected.shape}; both must be users x items of the same users")
        obs = t != 0
        if not obs.any():
            raise DataError("R_target has no observed ratings to score")
        err = expected[obs] - t[obs]
        out = {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
               "n_ratings_scored": int(obs.sum())}
        if getattr(self, "item_means_", None) is not None:
            base = np.broadcast_to(self.item_means_, t.shape)[obs] - t[obs]
            out["rmse_item_mean"] = float(np.sqrt(np.mean(base ** 2)))
        return out

    def transform(self, R: Any) -> np.ndarray:
        """Hidden probabilities :math:`p(h \\mid V)` (user codes)."""
        V = self._one_hot(R, reset=False)
        return self._math().hidden_mean_of(V).cpu().numpy()
