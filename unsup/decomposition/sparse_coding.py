r"""Sparse coding and dictionary learning: batched FISTA codes, block-coordinate atoms, online.

A dictionary ``D`` (``k`` atoms as rows, ``‖d_j‖ ≤ 1``) and codes ``z_n`` minimise

.. math::  \frac{1}{N}\sum_n \tfrac12 ‖x_n - z_n D‖² + α ‖z_n‖_1

(scikit-learn's convention: :func:`sklearn.decomposition.sparse_encode` solves the same code
problem for the same ``alpha``).

**Code step** (lasso, dictionary fixed): FISTA [2]_ on all rows at once. With the Gram matrix
``G = D Dᵀ`` and ``C = X Dᵀ`` the gradient of the smooth part is ``Z G - C``: one ``n×k×k`` GEMM per
iteration. With ``L = λ_max(G)``

.. math::  Z ← S_{α/L}(Y - (Y G - C)/L), \quad t' = \tfrac{1+\sqrt{1+4t²}}2,
           \quad Y ← Z + \tfrac{t-1}{t'}(Z - Z_{old})

where ``S`` soft-thresholds (``max(·, 0)`` after the shift for non-negative codes). The
``"exact"`` solver enumerates sign patterns ``s ∈ {-1,0,1}^k`` and returns the one whose
solution ``z_S = G_{SS}^{-1}(C_S - α s_S)`` satisfies the KKT conditions: exact for small ``k``
(≤ 12), the ground truth FISTA is tested against.

**Dictionary step** (codes fixed): block coordinate descent on the sufficient statistics
``A = Σ zᵀz`` (k×k) and ``B = Σ zᵀx`` (k×d), one atom at a time (Mairal et al. 2009 [1]_, Alg. 2)

.. math::  u_j = d_j + (B_j - A_j D)/A_{jj}, \qquad d_j = Π(u_j)

with ``Π`` the projection on the unit ball (or sphere with ``unit_norm_atoms``), after clipping
negative entries for non-negative atoms.

**Online learning** (``batch_size`` set): each mini-batch is coded, ``A`` and ``B`` are decayed by
Mairal's factor ``β = (θ + 1 - η)/(θ + 1)`` (Sec. 3.4.2, ``η`` the batch size) and accumulated,
and one BCD sweep updates ``D``. Batches are read row by row from the input, so a
``np.load(path, mmap_mode="r")`` array is never loaded whole.

References
----------
.. [1] Mairal, Bach, Ponce & Sapiro, "Online dictionary learning for sparse coding", ICML 2009.
.. [2] Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
   problems", SIAM J. Imaging Sciences 2(1), 2009.
.. [3] Olshausen & Field, "Emergence of simple-cell receptive field properties by learning a
   sparse code for natural images", Nature 381, 1996.
"""

from __future__ import annotations

import itertools
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils import check_random_state

from unsup._io_checks import A
from unsup.base import BaseEstimator, report_progress, resolve_device
from unsup.data.validation import check_array, check_min_samples, check_n_features
from unsup.ops import chunk_rows, chunks
from unsup.params import Interval, StrOptions
from unsup.registry import Demo, register_model
from unsup.train._loop_checkpoint import LoopCheckpoint
from unsup.train.em import EM_CHECKPOINTING

__all__ = ["SparseCoding", "DictionaryLearning", "sparse_encode", "sparse_coding_objective"]

_EXACT_MAX_ATOMS = 12


# -- the code step ---------------------------------------------------------------------------
def _shrink(V: torch.Tensor, thr: float, positive: bool) -> torch.Tensor:
    """Soft threshold ``sign(v) max(|v| - thr, 0)`` (``max(v - thr, 0)`` when positive)."""
    if positive:
        return torch.nn.functional.relu(V - thr)
    return torch.nn.functional.softshrink(V, thr)


def fista(C: torch.Tensor, G: torch.Tensor, alpha: float, *, positive: bool = False,
          max_iter: int = 1000, tol: float = 1e-6, Z0: torch.Tensor | None = None
          ) -> tuple[torch.Tensor, int]:
    """FISTA for ``min_Z ½‖X - Z D‖² + α‖Z‖₁`` given ``C = X Dᵀ`` and ``G = D Dᵀ``.

    Stops when the largest change of a code entry falls below ``tol`` times the largest code
    entry (or ``tol`` when all codes are 0). Returns the codes and the iterations run.
    """
    L = float(torch.linalg.eigvalsh(G.double()).max().clamp_min(1e-12))
    # the gradient step Y - (Y G - C)/L is one addmm: C/L + Y (I - G/L)
    M = torch.eye(G.shape[0], dtype=G.dtype, device=G.device) - G / L
    CL = C / L
    thr = alpha / L
    Z = torch.zeros_like(C) if Z0 is None else Z0.clone()
    Y, t = Z, 1.0
    it = 0
    for it in range(1, int(max_iter) + 1):
        Z_old = Z
        Z = _shrink(torch.addmm(CL, Y, M), thr, positive)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        Y = torch.add(Z, Z - Z_old, alpha=(t - 1) / t_new)
        t = t_new
        if it % 10 == 0 or it == max_iter:  # a host sync every iteration would cost more
            if float((Z - Z_old).abs().max()) <= tol * max(float(Z.abs().max()), 1.0):
                break
    return Z, it


def _exact(C: torch.Tensor, G: torch.Tensor, alpha: float, positive: bool) -> torch.Tensor:
    """Exact lasso by enumerating sign patterns (KKT check); ``k`` ≤ 12, float64."""
    k = G.shape[0]
    if k > _EXACT_MAX_ATOMS:
        raise ValueError(f"the exact solver enumerates 3^k sign patterns; k={k} atoms is more "
                         f"than {_EXACT_MAX_ATOMS}; use algorithm='fista'")
    C, G = C.double(), G.double()
    signs = (0, 1) if positive else (-1, 0, 1)
    S = torch.tensor(list(itertools.product(signs, repeat=k)), dtype=torch.float64,
                     device=C.device)  # (P, k)
    M = (S != 0).double()
    # M_S G_SS M_S + I on the zero coordinates: an invertible system whose zero block is trivial
    A = G * M[:, :, None] * M[:, None, :] + torch.diag_embed(1 - M)
    ok_sys = torch.linalg.matrix_rank(A) == k  # a singular G_SS cannot hold a unique solution
    A = torch.where(ok_sys[:, None, None], A, torch.eye(k, dtype=A.dtype, device=A.device))
    Ainv = torch.linalg.inv(A)
    out = torch.zeros_like(C)
    for rows in chunks(C.shape[0], max(1, 2**20 // (S.shape[0] * k))):
        rhs = (C[rows, None, :] - alpha * S[None]) * M[None]  # (n, P, k)
        Z = torch.einsum("pij,npj->npi", Ainv, rhs)
        grad = C[rows, None, :] - Z @ G  # correlation of the residual with each atom
        sign_ok = ((torch.sign(Z) == S[None]) | (M[None] == 0)).all(-1)
        if positive:
            kkt_ok = ((grad <= alpha * (1 + 1e-9) + 1e-12) | (M[None] == 1)).all(-1)
        else:
            kkt_ok = ((grad.abs() <= alpha * (1 + 1e-9) + 1e-12) | (M[None] == 1)).all(-1)
        valid = sign_ok & kkt_ok & ok_sys[None]
        if not bool(valid.any(1).all()):
            raise RuntimeError("exact lasso: no sign pattern satisfies the KKT conditions "
                               "(a degenerate dictionary?)")
        out[rows] = Z[torch.arange(Z.shape[0]), valid.double().argmax(1)]
    return out


def sparse_encode(X: Any, dictionary: Any, alpha: float = 1.0, *, algorithm: str = "fista",
                  positive: bool = False, max_iter: int = 1000, tol: float = 1e-6,
                  device: str = "auto") -> np.ndarray:
    """Codes ``argmin_z ½‖x - z D‖² + α‖z‖₁`` of every row of ``X`` for the ``dictionary`` D.

    ``algorithm`` is ``"fista"`` (batched on GEMMs, chunked over rows) or ``"exact"``
    (sign-pattern enumeration, ≤ 12 atoms). Same problem and ``alpha`` as scikit-learn's
    ``sparse_encode(X, D, alpha=alpha, algorithm="lasso_cd")``.
    """
    dev = resolve_device(device)
    Xt = check_array(X, device=dev)
    D = check_array(dictionary, name="dictionary", device=dev).to(Xt.dtype)
    check_n_features(Xt, D.shape[1], "the dictionary")
    if algorithm not in ("fista", "exact"):
        raise ValueError(f"algorithm={algorithm!r} is not 'fista' or 'exact'")
    return _encode(Xt, D, float(alpha), algorithm, positive, max_iter, tol).cpu().numpy()


def _encode(X: torch.Tensor, D: torch.Tensor, alpha: float, algorithm: str, positive: bool,
            max_iter: int, tol: float) -> torch.Tensor:
    G = D @ D.T
    out = torch.empty(X.shape[0], D.shape[0], dtype=X.dtype, device=X.device)
    for rows in chunks(X.shape[0], chunk_rows(max(D.shape), X.shape[0])):
        C = X[rows] @ D.T
        if algorithm == "exact":
            out[rows] = _exact(C, G, alpha, positive).to(X.dtype)
        else:
            out[rows] = fista(C, G, alpha, positive=positive, max_iter=max_iter, tol=tol)[0]
    return out


def sparse_coding_objective(X: Any, codes: Any, dictionary: Any, alpha: float) -> float:
    """Mean over rows of ``½‖x - z D‖² + α‖z‖₁`` (the objective both steps decrease)."""
    X, Z, D = (np.asarray(a, dtype=np.float64) for a in (X, codes, dictionary))
    return float((0.5 * ((X - Z @ D) ** 2).sum(1) + alpha * np.abs(Z).sum(1)).mean())


# -- the dictionary step ---------------------------------------------------------------------
def _update_dict(D: torch.Tensor, A: torch.Tensor, B: torch.Tensor, *, positive: bool,
                 unit_norm: bool, gen: torch.Generator, X: torch.Tensor | None = None,
                 n_sweeps: int = 1) -> torch.Tensor:
    """Block coordinate descent on the atoms given ``A = Zᵀ Z`` and ``B = Zᵀ X`` (in place).

    An atom no code uses (``A_jj ≈ 0``) is restarted on a random row of ``X`` (when given), so
    atoms do not die.
    """
    k = D.shape[0]
    for _ in range(n_sweeps):
        for j in range(k):
            ajj = float(A[j, j])
            if ajj < 1e-10:
                if X is not None and X.shape[0]:
                    i = int(torch.randint(X.shape[0], (1,), generator=gen, device=X.device))
                    u = X[i].clone()
                else:
                    continue
            else:
                u = D[j] + (B[j] - A[j] @ D) / ajj
            if positive:
                u.clamp_min_(0)
            nrm = float(u.norm())
            if unit_norm or nrm > 1:
                u = u / nrm if nrm > 1e-12 else u
            D[j] = u
    return D


def _rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of an array, memmap or tensor, reading only those rows (in file order)."""
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(idx, device=X.device)]
    order = np.argsort(idx, kind="stable")
    rows = np.asarray(X[idx[order]])
    out = np.empty_like(rows)
    out[order] = rows
    return out


@register_model("sparse-coding", family="decomposition", aliases=("dictionary-learning",),
                summary="sparse coding: dictionary learning with FISTA codes (batch or online)",
                demo=Demo("sparse coding (64 atoms)",
                          params={"n_components": 64, "alpha": 0.5, "batch_size": 256,
                                  "max_iter": 5, "random_state": 0},
                          quick={"max_iter": 1}, order=25))
class SparseCoding(TransformerMixin, BaseEstimator):
    """Dictionary learning with lasso codes: batch (alternating) or online (Mairal et al. 2009).

    Parameters
    ----------
    n_components : int, default=64
        Number of atoms ``k`` (may exceed the number of features: an overcomplete dictionary).
    alpha : float, default=1.0
        Sparsity penalty of the codes (scikit-learn's ``alpha``).
    max_iter : int, default=20
        Alternations (batch) or epochs over the data (online).
    batch_size : int or None, default=None
        None: batch learning, all rows coded at every alternation. An int: online mini-batch
        learning, rows read batch by batch (memmaps stream).
    code_algorithm : {"fista", "exact"}, default="fista"
        Lasso solver of ``transform`` ("exact": ≤ 12 atoms).
    code_max_iter : int, default=50
        FISTA iterations per code step while learning (``transform`` uses 1000).
    tol : float, default=1e-6
        Relative tolerance of FISTA.
    positive_code : bool, default=False
        Non-negative codes.
    positive_dict : bool, default=False
        Non-negative atoms.
    unit_norm_atoms : bool, default=True
        Atoms of exactly unit norm (else in the unit ball, scikit-learn's constraint).
    dict_init : array (k, d) or None, default=None
        Starting dictionary (default: random rows of the data, normalised).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to compute.
    random_state : int, RandomState or None, default=None
        Seed of the initial dictionary and the batch order.
    checkpoint_dir, checkpoint_every, resume
        Checkpoints at the top of every ``checkpoint_every``-th alternation / epoch (None: at
        most every 10 s) and at the end: the dictionary, the online statistics A and B (or the
        batch codes, the warm start), the objective record and both random generators, so a
        resumed fit returns the dictionary of a fit never stopped, bit for bit. The data is
        fingerprinted when it is in memory (a memmap is checked by shape and dtype only).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The atoms (rows).
    objective_ : list of float
        Mean objective ``½‖x - zD‖² + α‖z‖₁`` after each alternation / epoch (online: over the
        batches of the epoch, each coded before its dictionary update).
    n_iter_ : int
        Alternations or epochs run.
    n_features_in_ : int

    References
    ----------
    Mairal, Bach, Ponce & Sapiro (2009), ICML; Beck & Teboulle (2009), SIAM J. Imaging Sci.
    """

    _test_params: dict[str, Any] = {"n_components": 3, "max_iter": 3, "alpha": 0.1}
    _param_groups = (EM_CHECKPOINTING,)  # checkpoint_dir, checkpoint_every, resume
    # model files from before checkpointing existed
    _params_added_later = {"checkpoint_dir": None, "checkpoint_every": None, "resume": False}

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "code_algorithm": [StrOptions({"fista", "exact"})],
        "code_max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "positive_code": ["boolean"],
        "positive_dict": ["boolean"],
        "unit_norm_atoms": ["boolean"],
        "dict_init": ["array-like", None],
    }

    # the arrays a model file must hold (checked by unsup.io.load before any state is restored)
    _state_shapes = {"components_": A("f32", "n_components", "n_features_in_")}

    def __init__(self, n_components: int = 64, *, alpha: float = 1.0, max_iter: int = 20,
                 batch_size: int | None = None, code_algorithm: str = "fista",
                 code_max_iter: int = 50, tol: float = 1e-6, positive_code: bool = False,
                 positive_dict: bool = False, unit_norm_atoms: bool = True,
                 dict_init: Any = None, device: str = "auto", random_state: Any = None) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.code_algorithm = code_algorithm
        self.code_max_iter = code_max_iter
        self.tol = tol
        self.positive_code = positive_code
        self.positive_dict = positive_dict
        self.unit_norm_atoms = unit_norm_atoms
        self.dict_init = dict_init
        self.device = device
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------
    def _init_dict(self, X: Any, n: int, rs: np.random.RandomState, gen: torch.Generator,
                   dtype: torch.dtype) -> torch.Tensor:
        k, dev = int(self.n_components), self._device()
        if self.dict_init is not None:
            D = check_array(self.dict_init, name="dict_init", device=dev).to(dtype).clone()
            if D.shape != (k, self.n_features_in_):
                raise ValueError(f"dict_init has shape {tuple(D.shape)}, expected "
                                 f"({k}, {self.n_features_in_})")
        else:
            idx = rs.choice(n, size=min(n, k), replace=False)
            D = torch.randn(k, self.n_features_in_, generator=gen, device=dev, dtype=dtype)
            D[: len(idx)] = check_array(_rows(X, np.sort(idx)), device=dev).to(dtype)
        if self.positive_dict:
            D = D.abs()
        nrm = D.norm(dim=1, keepdim=True)
        D = torch.where(nrm > 1e-12, D / nrm.clamp_min(1e-12),
                        torch.full_like(D, self.n_features_in_ ** -0.5))
        return D

    def fit(self, X: Any, y: Any = None) -> SparseCoding:
        """Learn the dictionary from ``X`` (array, memmap or tensor; ``y`` ignored)."""
        self._validate_params()
        # the NumPy generator as private per-fit state: checkpoints save and restore it
        self._rs = check_random_state(self.random_state)
        gen = torch.Generator(device=self._device())
        gen.manual_seed(int(self._rs.randint(0, 2**31 - 1)))
        try:
            if self.batch_size is None:
                return self._fit_batch(self._validate(X, reset=True), gen)
            return self._fit_online(X, gen)
        finally:
            del self._rs

    def _finish(self, lc: LoopCheckpoint, state: dict[str, Any], history: list[dict]) -> None:
        T = int(self.max_iter)
        if lc.result is None:
            lc.finish(state, history[-1]["objective"] if history else 0.0, T, history)
        self.objective_ = [h["objective"] for h in history]
        self.components_ = state["D"].cpu().numpy()
        self.n_iter_ = T

    def _fit_batch(self, X: torch.Tensor, gen: torch.Generator) -> SparseCoding:
        T = int(self.max_iter)
        lc = LoopCheckpoint(self, X, gen, n_total=X.shape[0], max_iter=T, loop="batch")
        state = lc.result.params if lc.result is not None else lc.params
        history = list(lc.result.history) if lc.result is not None else lc.history
        if state is None:
            D, Z = self._init_dict(X, X.shape[0], self._rs, gen, X.dtype), None
        else:
            D = state["D"].to(X)
            Z = state["Z"].to(X) if state["Z"].numel() else None
        alpha = float(self.alpha)
        for it in range(lc.it, T) if lc.result is None else ():
            lc.top(it, {"D": D, "Z": X.new_zeros(0) if Z is None else Z}, history)
            C, G = X @ D.T, D @ D.T
            Z, _ = fista(C, G, alpha, positive=self.positive_code, max_iter=self.code_max_iter,
                         tol=self.tol, Z0=Z)  # warm start: the same rows every alternation
            history.append({"iter": it + 1, "objective": self._objective(X, Z, D)})
            # Mairal's dictionary step on the full statistics (several sweeps: they are cheap)
            D = _update_dict(D, Z.T @ Z, Z.T @ X, positive=self.positive_dict,
                             unit_norm=self.unit_norm_atoms, gen=gen, X=X, n_sweeps=3)
            report_progress("sparse coding", it + 1, T, objective=history[-1]["objective"])
        self._finish(lc, {"D": D, "Z": X.new_zeros(0) if Z is None else Z}, history)
        return self

    def _fit_online(self, X: Any, gen: torch.Generator) -> SparseCoding:
        if not isinstance(X, (np.ndarray, torch.Tensor)):  # lists, data frames: into memory
            X = check_array(X, device="cpu")
        first = check_array(_rows(X, np.arange(min(len(X), 1))) if len(X) else X,
                            device=self._device())  # clear errors for empty / 1-D input
        n = int(len(X))
        check_min_samples(n, 1, "SparseCoding")
        self.n_features_in_ = int(first.shape[1])
        dtype, T = first.dtype, int(self.max_iter)
        # in-memory data is fingerprinted for resume; a memmap is not read whole for it
        key = torch.from_numpy(np.ascontiguousarray(X)) if type(X) is np.ndarray else X
        lc = LoopCheckpoint(self, key, gen, n_total=n, max_iter=T, loop="online")
        state = lc.result.params if lc.result is not None else lc.params
        history = list(lc.result.history) if lc.result is not None else lc.history
        if state is None:
            D = self._init_dict(X, n, self._rs, gen, dtype)
            k, d, dev = D.shape[0], D.shape[1], D.device
            A = torch.zeros(k, k, dtype=dtype, device=dev)
            B = torch.zeros(k, d, dtype=dtype, device=dev)
            step = 0
        else:
            dev = first.device
            D, A, B = (state[c].to(dev, dtype) for c in ("D", "A", "B"))
            k, d, step = D.shape[0], D.shape[1], int(state["step"])
        eta, alpha = int(self.batch_size), float(self.alpha)

        def snapshot() -> dict[str, Any]:
            return {"D": D, "A": A, "B": B, "step": torch.tensor(step)}

        for epoch in range(lc.it, T) if lc.result is None else ():
            lc.top(epoch, snapshot(), history)
            order, total = self._rs.permutation(n), 0.0
            for s in range(0, n, eta):
                idx = order[s:s + eta]
                Xb = check_array(_rows(X, idx), device=dev, row_numbers=idx).to(dtype)
                check_n_features(Xb, d, "SparseCoding")
                Z, _ = fista(Xb @ D.T, D @ D.T, alpha, positive=self.positive_code,
                             max_iter=self.code_max_iter, tol=self.tol)
                total += self._objective(Xb, Z, D) * len(idx)
                # Mairal et al. (2009), Sec. 3.4.2: past statistics decay by beta
                theta = (step + 1) * eta if step < eta - 1 else eta * eta + step + 1 - eta
                beta = (theta + 1 - eta) / (theta + 1)
                A.mul_(beta).add_(Z.T @ Z / len(idx))
                B.mul_(beta).add_(Z.T @ Xb / len(idx))
                D = _update_dict(D, A, B, positive=self.positive_dict,
                                 unit_norm=self.unit_norm_atoms, gen=gen, X=Xb)
                step += 1
            history.append({"iter": epoch + 1, "objective": total / n})
            report_progress("sparse coding", epoch + 1, T, objective=history[-1]["objective"])
        self._finish(lc, snapshot(), history)
        self.n_steps_ = step
        return self

    def _objective(self, X: torch.Tensor, Z: torch.Tensor, D: torch.Tensor) -> float:
        r = X - Z @ D
        return float((0.5 * r.pow(2).sum(1) + float(self.alpha) * Z.abs().sum(1)).mean())

    # -- mapping ----------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Sparse codes of ``X`` for the learned dictionary (lasso, ``code_algorithm``)."""
        Xt = self._validate(X, reset=False)
        D = torch.as_tensor(self.components_, device=Xt.device).to(Xt.dtype)
        return _encode(Xt, D, float(self.alpha), self.code_algorithm, self.positive_code,
                       1000, self.tol).cpu().numpy()

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Reconstruction ``x̂ = z D``."""
        self._check_fitted()
        Zt = check_array(Z, name="Z", device=self._device())
        if Zt.shape[1] != self.components_.shape[0]:
            raise ValueError(f"Z has {Zt.shape[1]} columns, but this SparseCoding has "
                             f"{self.components_.shape[0]} atoms")
        return (Zt @ torch.as_tensor(self.components_, device=Zt.device).to(Zt.dtype)
                ).cpu().numpy()

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean objective ``-(½‖x - zD‖² + α‖z‖₁)`` of the codes of ``X``."""
        Z = self.transform(X)
        return -sparse_coding_objective(np.asarray(self._validate(X, reset=False).cpu()), Z,
                                        self.components_, float(self.alpha))


# scikit-learn's name for the same model
DictionaryLearning = SparseCoding
