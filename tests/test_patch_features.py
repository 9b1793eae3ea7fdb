"""PatchFeatures (Coates et al. 2011): the vectorised transform against a loop over patches,
the whitening, both encoders, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from unsup.decomposition import PatchFeatures


def _images(n=40, h=7, w=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, h * w)) * (rng.random((n, h * w)) < 0.6)


def _brute(m, X, h, w):
    """Every patch by hand: normalise, whiten, encode, sum per quadrant of the map."""
    p, st = m.patch_size, m.stride
    eps = 10.0 * (m.scale_ / 255.0) ** 2
    gh, gw = (h - p) // st + 1, (w - p) // st + 1
    out = []
    for x in X.reshape(-1, h, w):
        feats = None
        for i in range(gh):
            for j in range(gw):
                v = x[i * st:i * st + p, j * st:j * st + p].reshape(-1)
                v = (v - v.mean()) / np.sqrt(v.var(ddof=1) + eps)
                z = (v - m.patch_mean_) @ m.zca_
                if m.dictionary == "kmeans":
                    d = np.linalg.norm(z - m.atoms_, axis=1)
                    f = np.maximum(0, d.mean() - d)
                else:
                    s = m.atoms_ @ z
                    f = np.concatenate([np.maximum(0, s - m.alpha), np.maximum(0, -s - m.alpha)])
                if feats is None:
                    feats = np.zeros((4, f.size))
                feats[2 * int(i >= gh / 2) + int(j >= gw / 2)] += f
        out.append(feats.reshape(-1))
    return np.array(out)


@pytest.mark.parametrize("dictionary", ["kmeans", "sparse-coding"])
def test_transform_equals_a_loop_over_patches(dictionary):
    X = _images()
    m = PatchFeatures(5, dictionary=dictionary, patch_size=3, stride=2, n_patches=400,
                      image_shape=(7, 6), alpha=0.1, random_state=0).fit(X)
    F = m.transform(X[:4])
    assert F.shape == (4, 4 * 5 * (1 if dictionary == "kmeans" else 2))
    np.testing.assert_allclose(F, _brute(m, X[:4], 7, 6), rtol=1e-9, atol=1e-9)
    assert (F >= 0).all() and (F > 0).any()


def test_whitening_is_zca_of_the_patch_covariance():
    # W = U (S + ε)^(-1/2) Uᵀ for the covariance U S Uᵀ of normalised patches: W is symmetric
    # and W⁻² − εI is that covariance (here compared with fresh patches of the same images)
    X = _images(200, 8, 8, seed=1)
    m = PatchFeatures(4, patch_size=3, n_patches=20000, random_state=0).fit(X)
    W = m.zca_
    np.testing.assert_allclose(W, W.T, atol=1e-12)
    rng = np.random.default_rng(5)
    P = []
    for _ in range(20000):  # the same construction as fit, on fresh patches
        x = X[rng.integers(len(X))].reshape(8, 8)
        i, j = rng.integers(6, size=2)
        v = x[i:i + 3, j:j + 3].reshape(-1)
        P.append((v - v.mean()) / np.sqrt(v.var(ddof=1) + 10 / 255**2))
    C = np.cov(np.array(P).T)
    implied = np.linalg.inv(W @ W) - 0.1 * np.eye(9)
    assert np.linalg.norm(implied - C) < 0.05 * np.linalg.norm(C)


def test_rows_that_are_not_images_are_strips():
    X = np.random.default_rng(2).random((30, 10))
    F = PatchFeatures(3, patch_size=4, n_patches=300, random_state=0).fit(X).transform(X)
    assert F.shape == (30, 12)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="image_shape"):
        PatchFeatures(image_shape=(5, 5)).fit(np.zeros((4, 24)))
    with pytest.raises(ValueError, match="1 feature"):
        PatchFeatures().fit(np.zeros((4, 1)))


def test_report_draws_the_patch_dictionary():
    from unsup.report import Report, model_report

    X = _images(30, 8, 8, seed=3)
    m = PatchFeatures(6, patch_size=3, n_patches=500, random_state=0).fit(X)
    r = Report("patches")
    model_report(m, X, None, report=r)
    html = r.to_html()
    assert "<h3>Patch dictionary</h3>" in html and "3×3 patches" in html
    assert "Section skipped" not in html


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("dictionary", ["kmeans", "sparse-coding"])
def test_crash_then_resume_gives_the_dictionary_of_a_fit_never_stopped(tmp_path, monkeypatch,
                                                                        dictionary):
    """The dictionary learner checkpoints into checkpoint_dir; stopped after its 2nd
    checkpoint and resumed (patches and whitening recomputed), the atoms are bit for bit."""
    from _interrupt import Crash, crash_after

    import unsup.train._em_checkpoint as emc

    X = _images()
    kw = {"n_atoms": 5, "dictionary": dictionary, "patch_size": 3, "n_patches": 400,
          "image_shape": (7, 6), "alpha": 0.1, "random_state": 0, "device": "cpu"}
    ref = PatchFeatures(**kw).fit(X)
    with monkeypatch.context() as m:
        crash_after(m, emc, 2)
        with pytest.raises(Crash):
            PatchFeatures(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=1).fit(X)
    got = PatchFeatures(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=1,
                        resume=True).fit(X)
    np.testing.assert_array_equal(got.atoms_, ref.atoms_)
    np.testing.assert_array_equal(got.zca_, ref.zca_)
