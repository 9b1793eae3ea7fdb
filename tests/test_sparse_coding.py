"""Sparse coding (issue 15, §1): codes against an exact solver and scikit-learn, atoms recovered."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.decomposition import sparse_encode as sk_sparse_encode

from unsup.decomposition import SparseCoding, sparse_coding_objective, sparse_encode

pytestmark = pytest.mark.usefixtures("one_thread")


def _dictionary(k: int, d: int, seed: int) -> np.ndarray:
    D = np.random.default_rng(seed).normal(size=(k, d))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _sparse_data(n: int = 600, k: int = 6, d: int = 12, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Rows with 2 active atoms of a known unit-norm dictionary, plus a little noise."""
    rng = np.random.default_rng(seed)
    D = _dictionary(k, d, seed + 100)
    Z = np.zeros((n, k))
    for i in range(n):
        Z[i, rng.choice(k, 2, replace=False)] = 2 * rng.normal(size=2)
    return Z @ D + 0.01 * rng.normal(size=(n, d)), D


def _matched_cosines(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """|cos| of atoms matched up to sign and permutation (Hungarian assignment)."""
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    cos = np.abs(A @ B.T)
    r, c = linear_sum_assignment(-cos)
    return cos[r, c]


@pytest.mark.parametrize("positive", [False, True])
def test_fista_equals_exact_and_sklearn(positive):
    rng = np.random.default_rng(1)
    D = _dictionary(6, 10, 0)
    X = rng.normal(size=(40, 10))
    exact = sparse_encode(X, D, 0.3, algorithm="exact", positive=positive, device="cpu")
    fista = sparse_encode(X, D, 0.3, positive=positive, max_iter=20000, tol=1e-12,
                          device="cpu")
    ref = sk_sparse_encode(X, D, alpha=0.3, algorithm="lasso_cd", max_iter=20000,
                           positive=positive)
    assert 0.2 < (exact != 0).mean() < 0.9  # a problem where sparsity actually bites
    np.testing.assert_allclose(fista, exact, atol=1e-7)
    np.testing.assert_allclose(fista, ref, atol=1e-5)
    if positive:
        assert (fista >= 0).all()


def test_exact_codes_satisfy_kkt():
    """The exact solver's codes are optimal: the residual's correlations obey the lasso KKT."""
    rng = np.random.default_rng(2)
    D = _dictionary(5, 8, 3)
    X = rng.normal(size=(30, 8))
    Z = sparse_encode(X, D, 0.5, algorithm="exact", device="cpu")
    corr = (X - Z @ D) @ D.T
    on = Z != 0
    np.testing.assert_allclose(corr[on], 0.5 * np.sign(Z[on]), atol=1e-9)
    assert (np.abs(corr[~on]) <= 0.5 + 1e-9).all()


def test_exact_refuses_large_dictionaries():
    with pytest.raises(ValueError, match="exact"):
        sparse_encode(np.ones((2, 20)), _dictionary(13, 20, 0), algorithm="exact", device="cpu")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_learning_recovers_the_dictionary(seed):
    X, D_true = _sparse_data()
    m = SparseCoding(6, alpha=0.05, max_iter=200, random_state=seed, device="cpu").fit(X)
    assert _matched_cosines(m.components_, D_true).min() > 0.99
    # its objective reaches the true dictionary's (with that dictionary's optimal codes)
    true_obj = sparse_coding_objective(X, sparse_encode(X, D_true, 0.05, device="cpu"), D_true,
                                       0.05)
    assert m.objective_[-1] <= true_obj * 1.01
    np.testing.assert_allclose(np.linalg.norm(m.components_, axis=1), 1, atol=1e-6)


def test_objective_decreases_and_transform_is_the_lasso():
    X, _ = _sparse_data(n=300)
    m = SparseCoding(6, alpha=0.1, max_iter=15, random_state=0, device="cpu").fit(X)
    obj = np.array(m.objective_)
    assert (np.diff(obj) <= 1e-9 * obj[0]).all()
    Z = m.transform(X)
    ref = sk_sparse_encode(X, m.components_, alpha=0.1, algorithm="lasso_cd", max_iter=20000)
    np.testing.assert_allclose(Z, ref, atol=1e-4)
    np.testing.assert_allclose(m.inverse_transform(Z), Z @ m.components_)
    assert m.score(X) == pytest.approx(-sparse_coding_objective(X, Z, m.components_, 0.1))


def test_online_learning_streams_a_memmap_and_matches_sklearn(tmp_path):
    X, _ = _sparse_data(n=600)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    kw = dict(alpha=0.05, batch_size=64, max_iter=10, random_state=0, device="cpu")
    a = SparseCoding(6, **kw).fit(mm)
    b = SparseCoding(6, **kw).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)  # same batches, same fit
    # local minima differ by seed for both: compare the mean objective over three seeds
    ours, theirs = [], []
    for seed in range(3):
        m = SparseCoding(6, **{**kw, "random_state": seed}).fit(X)
        ours.append(sparse_coding_objective(X, m.transform(X), m.components_, 0.05))
        sk = MiniBatchDictionaryLearning(6, alpha=0.05, batch_size=64, max_iter=10,
                                         random_state=seed, tol=0,
                                         max_no_improvement=None).fit(X)
        theirs.append(sparse_coding_objective(X, sk_sparse_encode(X, sk.components_, alpha=0.05),
                                              sk.components_, 0.05))
    assert np.mean(ours) <= np.mean(theirs) * 1.02


def test_non_negative_codes_and_atoms():
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(200, 10)))
    m = SparseCoding(5, alpha=0.1, max_iter=10, positive_code=True, positive_dict=True,
                     unit_norm_atoms=False, random_state=0, device="cpu").fit(X)
    assert (m.components_ >= 0).all()
    assert (np.linalg.norm(m.components_, axis=1) <= 1 + 1e-6).all()
    assert (m.transform(X) >= 0).all()


def test_clear_errors():
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match="alpha"):
        SparseCoding(3, alpha=-1.0).fit(X)
    with pytest.raises(ValueError, match="dict_init"):
        SparseCoding(3, dict_init=np.ones((2, 4)), device="cpu").fit(X)
    with pytest.raises(ValueError, match="features"):
        sparse_encode(X, np.ones((3, 5)), device="cpu")


# -- PSD ----------------------------------------------------------------------------------------
def test_psd_inference_is_the_augmented_lasso():
    """min ½‖x - zD‖² + β‖z - F‖² + α‖z‖₁ is a lasso on [x, √(2β) F] with [D, √(2β) I]."""
    import torch

    from unsup.decomposition import PSD

    rng = np.random.default_rng(0)
    D = _dictionary(5, 8, 1)
    X = rng.normal(size=(20, 8))
    F = 0.5 * rng.normal(size=(20, 5))
    m = PSD(5, alpha=0.3, beta=0.7, code_max_iter=5000)
    z = m._infer(torch.as_tensor(X), torch.as_tensor(D), torch.as_tensor(F)).numpy()
    s = np.sqrt(2 * 0.7)
    exact = sparse_encode(np.c_[X, s * F], np.c_[D, s * np.eye(5)], 0.3, algorithm="exact",
                          device="cpu")
    np.testing.assert_allclose(z, exact, atol=1e-4)  # FISTA stops at a relative change 1e-4


def test_psd_encoder_learns_to_predict_the_codes():
    from unsup.decomposition import PSD

    X, _ = _sparse_data(n=600)
    X = X.astype(np.float32)
    m = PSD(6, alpha=0.05, epochs=1, batch_size=64, random_state=0, device="cpu").fit(X)
    err0 = np.linalg.norm(m.transform(X) - m.sparse_codes(X)) / np.linalg.norm(m.sparse_codes(X))
    m = PSD(6, alpha=0.05, epochs=40, batch_size=64, random_state=0, device="cpu").fit(X)
    Z = m.sparse_codes(X)
    err = np.linalg.norm(m.transform(X) - Z) / np.linalg.norm(Z)
    losses = [h["loss"] for h in m.history_]
    assert losses[-1] < 0.5 * losses[0]
    assert err < 0.5 and err < err0
    np.testing.assert_allclose(np.linalg.norm(m.components_, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(m.inverse_transform(Z), Z @ m.components_, rtol=1e-4, atol=1e-5)


def test_online_learning_takes_lists_and_tensors():
    import torch

    X = np.random.default_rng(0).normal(size=(50, 4))
    kw = dict(batch_size=16, max_iter=2, random_state=0, device="cpu")
    ref = SparseCoding(3, **kw).fit(X).components_
    np.testing.assert_array_equal(SparseCoding(3, **kw).fit(X.tolist()).components_, ref)
    np.testing.assert_array_equal(SparseCoding(3, **kw).fit(torch.as_tensor(X)).components_,
                                  ref)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("data", ["batch", "online", "online-memmap"])
def test_crash_then_resume_gives_the_dictionary_of_a_fit_never_stopped(tmp_path, monkeypatch,
                                                                        data):
    """Stopped after its 3rd checkpoint and resumed: the dictionary, the objective record and
    (online) the statistics' step count of a fit never stopped, bit for bit."""
    from _interrupt import Crash, checkpoint_meta, crash_after

    import unsup.train._em_checkpoint as emc

    X = np.random.default_rng(0).normal(size=(120, 8))
    if data == "online-memmap":
        np.save(tmp_path / "X.npy", X)
        X = np.load(tmp_path / "X.npy", mmap_mode="r")
    kw = {"n_components": 6, "alpha": 0.2, "max_iter": 6, "random_state": 0, "device": "cpu",
          "batch_size": None if data == "batch" else 16}
    ref = SparseCoding(**kw).fit(X)
    d = tmp_path / "ck"
    with monkeypatch.context() as m:
        crash_after(m, emc, 3)
        with pytest.raises(Crash):
            SparseCoding(**kw, checkpoint_dir=str(d), checkpoint_every=2).fit(X)
    assert checkpoint_meta(d)["state"]["batch"]["it"] == 4
    got = SparseCoding(**kw, checkpoint_dir=str(d), checkpoint_every=2, resume=True).fit(X)
    np.testing.assert_array_equal(got.components_, ref.components_)
    assert got.objective_ == ref.objective_ and len(got.objective_) == 6
    assert getattr(got, "n_steps_", None) == getattr(ref, "n_steps_", None)
    if data == "online":  # other data of the same shape is refused
        with pytest.raises(ValueError, match="different run.*data"):
            SparseCoding(**kw, checkpoint_dir=str(d), resume=True).fit(X[::-1])
