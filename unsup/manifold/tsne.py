r"""t-SNE: t-distributed stochastic neighbour embedding, exact or FFT-accelerated, with transform.

The map ``Y`` (N × d) minimises ``KL(P‖Q) = Σ_{ij} p_{ij} \log(p_{ij}/q_{ij})`` between
perplexity-calibrated input affinities ``P`` (Gaussian over k nearest neighbours, exact or, for
large N, approximate; symmetrised; :mod:`unsup.manifold._affinity`) and Student-t output affinities
``q_{ij} ∝ (1 + ‖y_i - y_j‖²)^{-1}`` (van der Maaten & Hinton 2008). The gradient
(:mod:`unsup.manifold._gradient`) is exact over all pairs for small N and uses FFT-accelerated
interpolation (Linderman et al. 2019) for large N.

Optimisation follows the reference implementations: gradient descent with momentum and
per-coordinate gains (delta-bar-delta; gains grow by 0.2 where the gradient changes sign, else
shrink by 0.8, floor 0.01); ``early_exaggeration`` multiplies ``P`` for the first
``early_exaggeration_iter`` iterations with momentum 0.5, then momentum 0.8; the "auto" learning
rate is ``max(N / (4 α), 12.5)`` in each phase with exaggeration ``α`` (openTSNE's ``N/α``; our
gradient keeps the factor 4). PCA initialisation is rescaled to a first-coordinate standard
deviation of 1e-4 (as scikit-learn and openTSNE do).

``transform`` embeds new points against the fixed map (openTSNE's approach [3]_): each new point
gets conditional affinities ``p_{j|i}`` to its nearest training points (perplexity
``transform_perplexity``), starts at the median of its neighbours' positions, and moves to
minimise its own ``KL(P_i‖Q_i)`` with ``q_{j|i} ∝ (1 + ‖y_i - y_j‖²)^{-1}`` over the training
points: new points never move each other, so the result does not depend on which points are
transformed together.

References
----------
.. [1] van der Maaten & Hinton, "Visualizing data using t-SNE", JMLR 9, 2008.
.. [2] Linderman, Rachh, Hoskins, Steinerberger & Kluger, "Fast interpolation-based t-SNE for
   improved visualization of single-cell RNA-seq data", Nature Methods 16, 2019.
.. [3] Poličar, Stražar & Zupan, "openTSNE: a modular Python library for t-SNE dimensionality
   reduction and embedding", JSS 109, 2024.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils import check_random_state

from unsup._io_checks import A
from unsup.base import BaseEstimator, make_generator, report_progress
from unsup.manifold._affinity import calibrate, joint_affinities, knn
from unsup.manifold._gradient import (
    attraction,
    exact_gradient,
    fft_fits,
    fft_repulsion,
    kernel_sums_exact,
    kernel_sums_fft,
    kl_divergence,
)
from unsup.manifold._neighbors import knn_approx
from unsup.params import Interval, StrOptions
from unsup.registry import Demo, register_model
from unsup.train._loop_checkpoint import LoopCheckpoint
from unsup.train.em import EM_CHECKPOINTING

__all__ = ["TSNE"]


class _Optimizer:
    """Momentum gradient descent with delta-bar-delta gains (Jacobs 1988), as in bhtsne."""

    def __init__(self, Y: torch.Tensor) -> None:
        self.update = torch.zeros_like(Y)
        self.gains = torch.ones_like(Y)

    def step(self, Y: torch.Tensor, grad: torch.Tensor, lr: float, momentum: float,
             max_grad_norm: float | None = None) -> None:
        if max_grad_norm is not None:  # per point, as openTSNE does for transform
            nrm = grad.norm(dim=1, keepdim=True)
            grad = grad * (max_grad_norm / nrm.clamp_min(max_grad_norm))
        same = torch.sign(grad) == torch.sign(self.update)
        self.gains = torch.where(same, self.gains * 0.8, self.gains + 0.2).clamp_min_(0.01)
        self.update = momentum * self.update - lr * self.gains * grad
        Y.add_(self.update)


@register_model("tsne", family="manifold", aliases=("t-sne",),
                summary="t-SNE neighbour embedding (exact or FFT-interpolated gradient, "
                        "transform for new points)",
                demo=Demo("t-SNE (2-D map)", params={"random_state": 0, "n_iter": 500},
                          quick={"n_iter": 100, "early_exaggeration_iter": 50}, order=90))
class TSNE(TransformerMixin, BaseEstimator):
    """t-SNE embedding (van der Maaten & Hinton 2008) with an exact or FFT gradient.

    Parameters
    ----------
    n_components : int, default=2
        Output dimension (any; the FFT gradient is used while its grid fits, see ``method``).
    perplexity : float, default=30.0
        Effective number of neighbours; ``k = min(N - 1, 3 perplexity)`` neighbours are used
        (all ``N - 1`` with the exact method). Clipped to ``(N - 1) / 3`` for tiny data.
    early_exaggeration : float, default=12.0
    early_exaggeration_iter : int, default=250
    n_iter : int, default=750
        Total iterations, early exaggeration included.
    learning_rate : float or "auto", default="auto"
        "auto": ``max(N / (4 α), 12.5)`` in each phase (``α`` its exaggeration).
    method : {"auto", "exact", "fft"}, default="auto"
        "exact": all-pairs affinities and gradient (O(N²)); "fft": kNN affinities and
        FFT-interpolated repulsion (2-D and 1-D at any N; higher dimensions while the grid
        fits, else exact sums, with a warning). "auto": exact below 2,000 points.
    neighbors : {"auto", "exact", "approx"}, default="auto"
        The ``k`` nearest neighbours of the affinities: "exact" (chunked GEMMs, O(N² D)) or
        "approx" (random-projection forest refined by NN-descent's local joins, deterministic;
        :mod:`unsup.manifold._neighbors`; recall 0.88 at 100,000 points). "auto": approximate
        with the FFT method above 30,000 points.
    init : {"pca", "random"} or array (N, n_components), default="pca"
    transform_perplexity : float, default=5.0
        Perplexity of new points' affinities to the training points (openTSNE's default).
    transform_n_iter : int, default=250
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, RandomState or None, default=None
        Seed of the random initialisation. The fit is deterministic for a seed on CPU (on GPU
        up to the order of floating-point atomic additions).
    checkpoint_dir, checkpoint_every, resume
        Checkpoints of the optimisation (the map, the optimiser's momentum and gains, the KL
        record) at the top of every ``checkpoint_every``-th iteration (None: at most every
        10 s) and at the end; ``resume=True`` continues a killed fit and returns the map of a
        fit never stopped, bit for bit on the same machine and thread count (the affinities
        are recomputed: they are a function of the data). ``unsup fit tsne`` sets them.

    Attributes
    ----------
    embedding_ : ndarray of shape (N, n_components)
    kl_divergence_ : float
        ``KL(P‖Q)`` of the final map (with the P actually used: exact or kNN).
    kl_history_ : list of [iteration, KL]
        KL every 50 iterations (without exaggeration).
    n_iter_ : int
    training_data_ : ndarray of shape (N, n_features)
        Kept for ``transform`` (the neighbours of new points are searched among them).
    """

    _param_groups = (EM_CHECKPOINTING,)  # checkpoint_dir, checkpoint_every, resume
    # model files from before checkpointing existed
    _params_added_later = {"checkpoint_dir": None, "checkpoint_every": None, "resume": False,
                           "neighbors": "exact"}

    # scikit-learn checks t-SNE fails by design (read by tests/test_common.py)
    _expected_failed_checks: dict[str, str] = {
        "check_transformer_general": "fit_transform returns the jointly optimised map; "
        "transform places points against that fixed map, so the two differ by design",
        "check_transformer_data_not_an_array": "as check_transformer_general: fit_transform "
        "and fit(X).transform(X) differ by design",
        "check_methods_subset_invariance": "transform's interpolation grid spans the points "
        "transformed together, so a subset agrees to interpolation accuracy, not to 1e-7",
    }

    _test_params: dict[str, Any] = {"perplexity": 5.0, "n_iter": 60,
                                   "early_exaggeration_iter": 20, "transform_n_iter": 30,
                                   "random_state": 0}

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "perplexity": [Interval(Real, 0, None, closed="neither")],
        "early_exaggeration": [Interval(Real, 1, None, closed="left")],
        "early_exaggeration_iter": [Interval(Integral, 0, None, closed="left")],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "method": [StrOptions({"auto", "exact", "fft"})],
        "neighbors": [StrOptions({"auto", "exact", "approx"})],
        "init": [StrOptions({"pca", "random"}), "array-like"],
        "transform_perplexity": [Interval(Real, 0, None, closed="neither")],
        "transform_n_iter": [Interval(Integral, 0, None, closed="left")],
    }

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"embedding_": A("f32", "n", "n_components"),
                     "training_data_": A("f32", "n", "n_features_in_"),
                     "__fitted__": ("method_",)}

    def __init__(self, n_components: int = 2, *, perplexity: float = 30.0,
                 early_exaggeration: float = 12.0, early_exaggeration_iter: int = 250,
                 n_iter: int = 750, learning_rate: Any = "auto", method: str = "auto",
                 neighbors: str = "auto", init: Any = "pca", transform_perplexity: float = 5.0,
                 transform_n_iter: int = 250, device: str = "auto",
                 random_state: Any = None) -> None:
        self.n_components = n_components
        self.perplexity = perplexity
        self.early_exaggeration = early_exaggeration
        self.early_exaggeration_iter = early_exaggeration_iter
        self.n_iter = n_iter
        self.learning_rate = learning_rate
        self.method = method
        self.neighbors = neighbors
        self.init = init
        self.transform_perplexity = transform_perplexity
        self.transform_n_iter = transform_n_iter
        self.device = device
        self.random_state = random_state

    # -- pieces ------------------------------------------------------------------------------
    _APPROX_ABOVE = 30_000  # neighbors="auto": approximate search above this many points

    def _method(self, n: int) -> str:
        return ("exact" if n < 2000 else "fft") if self.method == "auto" else self.method

    def _repulsion(self, Y: torch.Tensor, method: str) -> tuple[torch.Tensor, float]:
        """``Σ_j w_ij² (y_i − y_j)`` and ``Z`` of the map (FFT while its grid fits)."""
        if method == "fft":
            span = float((Y.max(0).values - Y.min(0).values).max())
            if fft_fits(span, Y.shape[1]):
                return fft_repulsion(Y)
        phi0, phi1, phiy = self._kernel_sums(Y, Y, method)  # exact sums (warns once)
        return phi1[:, None] * Y - phiy, float((phi0 - 1).sum())

    def _kernel_sums(self, T: torch.Tensor, S: torch.Tensor, method: str
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if method == "fft":
            both = T if T is S else torch.cat([T, S])
            span = float((both.max(0).values - both.min(0).values).max())
            if fft_fits(span, T.shape[1]):
                return kernel_sums_fft(T, S)
            if not getattr(self, "_warned", False):
                warnings.warn(f"t-SNE: the FFT grid for a {T.shape[1]}-D map of span "
                              f"{span:.0f} is too large; using exact kernel sums (O(N²))",
                              RuntimeWarning, stacklevel=3)
                self._warned = True
        return kernel_sums_exact(T, S)

    def _affinities(self, X: torch.Tensor, method: str
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = X.shape[0]
        perp = min(float(self.perplexity), (n - 1) / 3)
        k = n - 1 if method == "exact" else min(n - 1, int(3 * perp))
        approx = self.neighbors == "approx" or (
            self.neighbors == "auto" and method == "fft" and n > self._APPROX_ABOVE)
        D, idx = knn_approx(X, k) if approx and k < n - 1 else knn(X, k)
        P, _ = calibrate(D, perp)
        return joint_affinities(P.to(X.dtype), idx)

    def _init(self, X: torch.Tensor, rs: np.random.RandomState) -> torch.Tensor:
        n, d = X.shape[0], int(self.n_components)
        if not isinstance(self.init, str):
            Y = np.asarray(self.init, dtype=np.float64)
            if Y.shape != (n, d):
                raise ValueError(f"init has shape {Y.shape}, expected ({n}, {d})")
            return torch.as_tensor(Y, dtype=X.dtype, device=X.device).clone()
        if self.init == "random" or min(X.shape) < d:
            Y = rs.standard_normal((n, d)) * 1e-4
            return torch.as_tensor(Y, dtype=X.dtype, device=X.device)
        Xc = X.double() - X.double().mean(0)
        _, _, Vt = torch.linalg.svd(Xc, full_matrices=False)
        V = Vt[:d]
        V = V * torch.sign(V.gather(1, V.abs().argmax(1, keepdim=True)))  # deterministic signs
        Y = Xc @ V.T
        Y = Y / Y[:, 0].std().clamp_min(1e-12) * 1e-4
        return Y.to(X.dtype)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> TSNE:
        """Embed ``X`` (``y`` is ignored). Returns ``self``."""
        self._validate_params()
        Xt = self._validate(X, reset=True, min_samples=2)
        if Xt.shape[0] < 4:
            raise ValueError(f"t-SNE needs at least 4 samples, got n_samples={Xt.shape[0]}")
        rs = check_random_state(self.random_state)
        n, method = Xt.shape[0], self._method(Xt.shape[0])
        rows, cols, p = self._affinities(Xt, method)
        T = int(self.n_iter)
        lc = LoopCheckpoint(self, Xt, make_generator(0, torch.device("cpu")), n_total=n,
                            max_iter=T, loop="tsne")
        state = lc.result.params if lc.result is not None else lc.params
        Y = self._init(Xt, rs) if state is None else state["Y"].to(Xt)
        opt = _Optimizer(Y)
        if state is not None:
            if Y.shape != (n, int(self.n_components)):
                raise ValueError(f"cannot resume from {lc.ck.path}: the checkpoint is damaged "
                                 f"(a map of shape {tuple(Y.shape)} for {n} points)")
            opt.update, opt.gains = state["update"].to(Xt), state["gains"].to(Xt)
        history = list(lc.result.history) if lc.result is not None else lc.history
        if method == "exact":  # dense P: the gradient is one pass over the N×N kernel
            P = torch.zeros(n, n, dtype=Y.dtype, device=Y.device)
            P[rows, cols] = p
        n_ee = min(int(self.early_exaggeration_iter), T)
        Z = 1.0

        def snapshot() -> dict[str, torch.Tensor]:
            return {"Y": Y, "update": opt.update, "gains": opt.gains}

        for it in range(lc.it, T) if lc.result is None else ():
            lc.top(it, snapshot(), history)
            early = it < n_ee
            alpha = float(self.early_exaggeration) if early else 1.0
            lr = (max(n / (4 * alpha), 12.5) if self.learning_rate == "auto"
                  else float(self.learning_rate))
            if method == "exact":
                grad, Z = exact_gradient(Y, P, alpha)
            else:
                rep, Z = self._repulsion(Y, method)
                grad = 4 * (alpha * attraction(Y, rows, cols, p) - rep / Z)
            opt.step(Y, grad, lr, 0.5 if early else 0.8)
            if it == n_ee - 1:  # openTSNE starts the second phase with a fresh optimiser
                opt = _Optimizer(Y)
            if (it + 1) % 50 == 0:
                history.append({"iter": it + 1, "kl": kl_divergence(Y, rows, cols, p, Z)})
                report_progress("t-SNE", it + 1, T, kl=history[-1]["kl"])
        if lc.result is None:
            lc.finish(snapshot(), history[-1]["kl"] if history else 0.0, T, history)
        self.kl_history_ = [[h["iter"], h["kl"]] for h in history]
        # Z of the final map by the method of the fit (the FFT sums are within ~1e-4 of the
        # exact ones; the exact O(N²) pass took ~10% of a 15,000-point fit)
        Z = exact_gradient(Y, P)[1] if method == "exact" else self._repulsion(Y, method)[1]
        self.kl_divergence_ = kl_divergence(Y, rows, cols, p, Z)
        self.embedding_ = Y.cpu().numpy()
        self.training_data_ = Xt.cpu().numpy()
        self.n_iter_ = int(self.n_iter)
        self.method_ = method
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Embed ``X`` and return the map ``embedding_``."""
        return self.fit(X).embedding_

    # -- new points --------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Embed new points against the fixed map (openTSNE's approach; see the module doc)."""
        Xt = self._validate(X, reset=False)
        dev = Xt.device
        R = torch.as_tensor(self.training_data_, device=dev).to(Xt.dtype)
        Yr = torch.as_tensor(self.embedding_, device=dev).to(Xt.dtype)
        n_ref = R.shape[0]
        perp = min(float(self.transform_perplexity), (n_ref - 1) / 3)
        k = min(n_ref, max(1, int(3 * perp)))
        D, idx = knn(Xt, k, R)
        P, _ = calibrate(D, perp)
        P = P.to(Yr.dtype)
        Y = Yr[idx].median(dim=1).values.clone()
        m = Y.shape[0]
        rows = torch.arange(m, device=dev).repeat_interleave(k)
        cols, p = idx.reshape(-1), P.reshape(-1)
        opt = _Optimizer(Y)
        method = self.method_
        for it in range(int(self.transform_n_iter)):
            phi0, phi1, phiy = self._kernel_sums(Y, Yr, method)
            # each point's own normalisation Z_i = Σ_j w_ij: points are independent
            grad = 4 * (attraction(Y, rows, cols, p, Yr) - (phi1[:, None] * Y - phiy)
                        / phi0[:, None])
            opt.step(Y, grad, 1.0, 0.5 if it < 50 else 0.8, max_grad_norm=0.25)
        return Y.cpu().numpy()
