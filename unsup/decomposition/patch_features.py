r"""Single-layer convolutional features from a dictionary of image patches (Coates, Lee & Ng 2011).

The "learned representation" side of the course's hand-crafted-versus-learned experiment:

1. **Patches.** ``n_patches`` random p×p patches of the training images, each normalised
   (mean removed, divided by :math:`\sqrt{\mathrm{var} + \epsilon_n}`, with
   :math:`\epsilon_n = 10` on the 0-255 scale) and ZCA-whitened:
   :math:`x \leftarrow U (S + \epsilon_z I)^{-1/2} U^\top (x - \bar x)` from the eigen-decomposition
   :math:`U S U^\top` of their covariance (:math:`\epsilon_z = 0.1`).
2. **Dictionary.** K atoms learned on the whitened patches: k-means centres
   (:class:`~unsup.cluster.KMeans`) or a sparse-coding dictionary
   (:class:`~unsup.decomposition.SparseCoding`, unit-norm atoms).
3. **Encoding**, at every p×p position of an image (stride ``stride``):
   k-means "triangle" :math:`f_k = \max(0, \mu(z) - z_k)`, :math:`z_k = \lVert x - c_k \rVert`,
   μ the mean of the z_k (about half the features are zero); sparse coding "soft threshold"
   :math:`f = [\max(0, D^\top x - \alpha), \max(0, -D^\top x - \alpha)]` (2K features: the
   sign-split encoder of the paper, which was as good as solving the lasso and far faster).
4. **Pooling.** Sum of each feature over the four quadrants of the map: 4K (or 8K) features.

All of it is GEMM-shaped: the patches of a chunk of images are gathered with ``unfold`` and
encoded against the atoms in one product.

Reference: A. Coates, H. Lee, A. Y. Ng (2011), An analysis of single-layer networks in
unsupervised feature learning, AISTATS.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin

from unsup._io_checks import A
from unsup.base import BaseEstimator, make_generator
from unsup.params import Integral, Interval, Real, StrOptions
from unsup.registry import register_model
from unsup.train.em import EM_CHECKPOINTING

__all__ = ["PatchFeatures"]

_NORM_EPS_255 = 10.0  # Coates et al.: on the 0-255 scale
_ZCA_EPS = 0.1


def _geometry(n_features: int, image_shape: Any, p: int) -> tuple[int, int, int, int]:
    """(height, width, patch height, patch width). Rows that are not square images without an
    ``image_shape`` are 1 × D strips (patches 1 × p), as PixelCNN reads them."""
    if image_shape is not None:
        h, w = (int(v) for v in image_shape)
        if h < 1 or w < 1 or h * w != n_features:
            raise ValueError(f"image_shape {(h, w)} does not match the {n_features} features")
    else:
        side = math.isqrt(n_features)
        h, w = (side, side) if side * side == n_features else (1, n_features)
    ph, pw = min(p, h), min(p, w)
    if ph * pw < 2:
        raise ValueError(f"patches of {ph}x{pw} pixel: a normalised patch needs at least 2 "
                         f"(X has {n_features} feature(s); give image_shape or more features)")
    return h, w, ph, pw


def _state_shapes(params: dict[str, Any], fitted: dict[str, Any]) -> dict[str, Any]:
    n = fitted.get("n_features_in_")
    if not isinstance(n, int) or not isinstance(params.get("patch_size"), int):
        raise ValueError("n_features_in_ and patch_size must be integers")
    _, _, ph, pw = _geometry(n, params.get("image_shape"), params["patch_size"])
    scale = fitted.get("scale_")
    if isinstance(scale, bool) or scale not in (1.0, 255.0):
        raise ValueError(f"fitted scale_ = {scale!r} is not 1 or 255")
    return {"atoms_": A("f64", "n_atoms", ph * pw), "zca_": A("f64", ph * pw, ph * pw),
            "patch_mean_": A("f64", ph * pw)}


@register_model("patch-features", family="decomposition", aliases=("coates",),
                summary="single-layer convolutional features from a k-means or sparse-coding "
                        "patch dictionary (Coates et al. 2011)")
class PatchFeatures(TransformerMixin, BaseEstimator):
    """Convolutional features from a learned patch dictionary (see the module docstring).

    Parameters
    ----------
    n_atoms : int, default=100
        Dictionary size K.
    dictionary : {"kmeans", "sparse-coding"}, default="kmeans"
        How the atoms are learned (and so the encoder: triangle or soft threshold).
    patch_size : int, default=6
        p: patches are p × p (cut to the image: 1 × p on rows that are not images).
    stride : int, default=1
        Step between patch positions when encoding.
    n_patches : int, default=50000
        Random patches to learn the dictionary from.
    alpha : float, default=0.25
        Sparse coding: the lasso penalty of the dictionary and the soft-threshold of the encoder.
    image_shape : (int, int) or None, default=None
        (height, width) of an image row; ``None``: square when the width is a square number,
        else a 1 × D strip.
    device, random_state : as elsewhere.
    checkpoint_dir, checkpoint_every, resume
        Passed to the dictionary learner (k-means on the EM engine, or sparse coding), whose
        checkpoints make a killed fit resume exactly: the patches and the whitening are a
        function of the data and the seed and are recomputed. ``unsup fit`` sets them.

    Attributes
    ----------
    atoms_ : (K, p²) dictionary in the whitened space.
    zca_ : (p², p²) whitening matrix; ``patch_mean_`` (p²,) its centre.
    scale_ : 1 or 255, the pixel scale inferred from the training data.
    """

    _parameter_constraints = {
        "n_atoms": [Interval(Integral, 1, None, closed="left")],
        "dictionary": [StrOptions({"kmeans", "sparse-coding"})],
        "patch_size": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "n_patches": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "image_shape": [tuple, list, None],
    }
    _test_params = {"n_atoms": 4, "patch_size": 2, "n_patches": 200}
    _param_groups = (EM_CHECKPOINTING,)  # checkpoint_dir, checkpoint_every, resume
    # model files from before checkpointing existed
    _params_added_later = {"checkpoint_dir": None, "checkpoint_every": None, "resume": False}
    _state_shapes = staticmethod(_state_shapes)

    def __init__(self, n_atoms: int = 100, *, dictionary: str = "kmeans", patch_size: int = 6,
                 stride: int = 1, n_patches: int = 50000, alpha: float = 0.25,
                 image_shape: Any = None, device: str = "auto", random_state: Any = None
                 ) -> None:
        self.n_atoms = n_atoms
        self.dictionary = dictionary
        self.patch_size = patch_size
        self.stride = stride
        self.n_patches = n_patches
        self.alpha = alpha
        self.image_shape = image_shape
        self.device = device
        self.random_state = random_state

    # -- geometry ----------------------------------------------------------------------------
    def _geometry(self, n_features: int) -> tuple[int, int, int, int]:
        return _geometry(n_features, self.image_shape, int(self.patch_size))

    def _normalise(self, P: torch.Tensor) -> torch.Tensor:
        eps = _NORM_EPS_255 * (self.scale_ / 255.0) ** 2
        P = P - P.mean(1, keepdim=True)
        return P / torch.sqrt(P.var(1, keepdim=True) + eps)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> PatchFeatures:
        """Learn the whitening and the dictionary from random patches of ``X``. Returns self."""
        self._validate_params()
        X = self._validate(X, reset=True).to(torch.float64)
        h, w, ph, pw = self._geometry(X.shape[1])
        self.scale_ = 255.0 if float(X.max()) > 1.0 else 1.0
        gen = make_generator(self.random_state, torch.device("cpu"))
        n = int(self.n_patches)
        img = torch.randint(X.shape[0], (n,), generator=gen)
        r = torch.randint(h - ph + 1, (n,), generator=gen)
        c = torch.randint(w - pw + 1, (n,), generator=gen)
        off = (torch.arange(ph)[:, None] * w + torch.arange(pw)[None, :]).reshape(-1)
        P = self._normalise(X[img.to(X.device)[:, None],
                              (r * w + c).to(X.device)[:, None] + off.to(X.device)])
        self.patch_mean_ = P.mean(0)
        C = torch.cov(P.T)
        s, U = torch.linalg.eigh(C)
        self.zca_ = (U * (s.clamp(min=0) + _ZCA_EPS).rsqrt()) @ U.T
        Z = (P - self.patch_mean_) @ self.zca_
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
        ck = {"checkpoint_dir": self.checkpoint_dir, "checkpoint_every": self.checkpoint_every,
              "resume": self.resume}
        if self.dictionary == "kmeans":
            from unsup.cluster import KMeans

            km = KMeans(int(self.n_atoms), n_init=1, max_iter=50, random_state=seed,
                        device=X.device.type, **ck).fit(Z.float().cpu().numpy())
            atoms = km.cluster_centers_
        else:
            from unsup.decomposition.sparse_coding import SparseCoding

            sc = SparseCoding(int(self.n_atoms), alpha=float(self.alpha), max_iter=10,
                              random_state=seed, device=X.device.type, **ck
                              ).fit(Z.cpu().numpy())
            atoms = sc.components_
        self.atoms_ = torch.as_tensor(np.asarray(atoms, dtype=np.float64)).numpy()
        self.patch_mean_ = self.patch_mean_.cpu().numpy()
        self.zca_ = self.zca_.cpu().numpy()
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "atoms_")

    # -- encoding ----------------------------------------------------------------------------
    def _encode(self, Z: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        """Features of whitened patches Z (m × p²) against atoms D (K × p²)."""
        if self.dictionary == "kmeans":
            dist = torch.cdist(Z, D)
            return (dist.mean(1, keepdim=True) - dist).clamp_(min=0)
        a = float(self.alpha)
        s = Z @ D.T
        return torch.cat([(s - a).clamp(min=0), (-s - a).clamp(min=0)], 1)

    def transform(self, X: Any) -> np.ndarray:
        """Quadrant-pooled features (N × 4K for k-means, N × 8K for sparse coding)."""
        self._check_fitted()
        X = self._validate(X, reset=False).to(torch.float64)
        h, w, ph, pw = self._geometry(X.shape[1])
        st = int(self.stride)
        dev = X.device
        D = torch.as_tensor(self.atoms_, device=dev)
        W = torch.as_tensor(self.zca_, device=dev)
        mu = torch.as_tensor(self.patch_mean_, device=dev)
        gh, gw = (h - ph) // st + 1, (w - pw) // st + 1
        rows = torch.arange(gh, device=dev) >= gh / 2  # bottom half of the map
        cols = torch.arange(gw, device=dev) >= gw / 2
        quad = (rows[:, None].long() * 2 + cols[None, :].long()).reshape(-1)  # 0..3 per position
        out = []
        per = max(1, 2**22 // (gh * gw * max(ph * pw, D.shape[0])))  # images per chunk
        for lo in range(0, X.shape[0], per):
            imgs = X[lo:lo + per].reshape(-1, 1, h, w)
            P = F.unfold(imgs, (ph, pw), stride=st).transpose(1, 2).reshape(-1, ph * pw)
            f = self._encode((self._normalise(P) - mu) @ W, D)  # (b·positions) × F
            f = f.reshape(imgs.shape[0], gh * gw, -1)
            pooled = torch.zeros(imgs.shape[0], 4, f.shape[2], dtype=f.dtype, device=dev)
            pooled.index_add_(1, quad, f)
            out.append(pooled.reshape(imgs.shape[0], -1))
        return torch.cat(out).cpu().numpy()
