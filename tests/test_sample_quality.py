"""Sample-quality metrics: FID, KID, precision/recall, Inception-style score, modes, weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import scipy.linalg
import torch

from unsup.metrics import _feature_net as fn
from unsup.metrics import sample_quality as sq


@pytest.fixture(scope="module")
def digits():
    from unsup.data import load

    ds = load("mnist5k")  # sorted by class: take a seeded shuffle
    idx = np.random.default_rng(0).permutation(len(ds.X))[:1000]
    X, y = ds.X[idx], np.asarray(ds.y)[idx]
    return X[:500], X[500:], y[:500]


@pytest.fixture(scope="module")
def feats(digits):
    return sq.extract_features(digits[0]), sq.extract_features(digits[1])


# -- the shipped network ----------------------------------------------------------------------
def test_shipped_weights_sha256_and_size():
    recorded = (fn.WEIGHTS_DIR / "mnist_digitnet.sha256").read_text().split()[0]
    assert fn.weights_sha256() == fn.WEIGHTS_SHA256 == recorded
    assert fn.WEIGHTS_PATH.stat().st_size < 500_000
    from safetensors import safe_open

    with safe_open(str(fn.WEIGHTS_PATH), "pt") as f:  # safetensors, never pickle
        meta = f.metadata()
    assert "mnist5k" in meta["trained_on"]
    net = fn.load_feature_net()
    assert not net.training and float(net.feature_scale) > 0
    assert all(p.device.type == "cpu" for p in net.parameters())


def test_corrupt_weights_are_refused(tmp_path, monkeypatch):
    bad = tmp_path / "w.safetensors"
    shutil.copy(fn.WEIGHTS_PATH, bad)
    data = bytearray(bad.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(fn, "WEIGHTS_PATH", bad)
    fn.load_feature_net.cache_clear()
    try:
        with pytest.raises(ValueError, match="sha256"):
            fn.load_feature_net()
    finally:
        monkeypatch.undo()
        fn.load_feature_net.cache_clear()


def test_classifier_accuracy_on_mnist_test_slice():
    from unsup.data import load

    test = load("mnist-test")  # ships with the package: never skipped
    X, y = test.X[:2000], np.asarray(test.y[:2000])
    acc = float((sq._digit_outputs(X)[1].argmax(1) == y).mean())
    print(f"digit classifier accuracy on MNIST test[:2000]: {acc:.4f}")
    assert acc >= 0.97


def test_bad_inputs():
    with pytest.raises(ValueError, match="784"):
        sq.extract_features(np.zeros((5, 10)))
    X = np.zeros((5, 784), np.float32)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sq.extract_features(X)
    with pytest.raises(ValueError, match="feature_space"):
        sq.extract_features(np.zeros((5, 784)), feature_space=3)
    with pytest.raises(ValueError, match="at least 2"):
        sq.fid(np.zeros((1, 784)), np.zeros((5, 784)))


# -- FID ----------------------------------------------------------------------------------------
def _scipy_fid(A, B):
    mu1, mu2 = A.mean(0), B.mean(0)
    s1, s2 = np.cov(A, rowvar=False), np.cov(B, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_scipy_sqrtm(digits, feats):
    A, B = (f.astype(np.float64) for f in feats)
    sa, sb = sq._stats(A), sq._stats(B)
    ours = sq.frechet_distance(sa["mu"], sa["sigma"], sb["mu"], sb["sigma"])
    assert ours == pytest.approx(_scipy_fid(A, B), rel=1e-6)
    assert sq.fid(digits[0], digits[1]) == pytest.approx(ours, rel=1e-6)
    # a random-covariance case, away from the digits
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 1
    sp, sq2 = sq._stats(P), sq._stats(Q)
    assert sq.frechet_distance(sp["mu"], sp["sigma"], sq2["mu"], sq2["sigma"]) == \
        pytest.approx(_scipy_fid(P, Q), rel=1e-8)


def test_fid_self_is_zero_and_grows_with_noise(digits):
    X = digits[0][:300]
    assert sq.fid(X, X) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=X.shape).astype(np.float32)
    vals = [sq.fid(np.clip(X + s * noise, 0, 1), X) for s in (0.05, 0.1, 0.2, 0.4)]
    assert all(np.diff(vals) > 0), vals
    assert vals[0] > 0


# -- KID ----------------------------------------------------------------------------------------
def _kid_direct(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_kid_matches_direct_formula():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(25, 4)), rng.normal(0.5, 1.0, size=(18, 4))
    # subsets at least as large as the sets: every subset is the whole set (permuted)
    mean, std = sq.kernel_inception_distance(x, y, n_subsets=3, subset_size=100)
    assert mean == pytest.approx(_kid_direct(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-9)
    # with subsets: the mean over subsets of the direct formula on the same subsets
    _check_kid_over_subsets(x, y, n_subsets=4, size=10, seed=7)


def _check_kid_over_subsets(x, y, n_subsets: int, size: int, seed: int) -> None:
    """KID's (mean, std) equal the direct formula's over the subsets its seed draws."""
    mean, std = sq.kernel_inception_distance(x, y, n_subsets=n_subsets, subset_size=size,
                                             random_state=seed)
    r = np.random.default_rng(seed)
    direct = []
    for _ in range(n_subsets):
        xi, yi = r.choice(len(x), size, replace=False), r.choice(len(y), size, replace=False)
        direct.append(_kid_direct(x[xi], y[yi]))
    assert mean == pytest.approx(np.mean(direct), rel=1e-10)
    assert std == pytest.approx(np.std(direct), rel=1e-8)


@pytest.mark.parametrize("full_max", [0, 1 << 25])
def test_kid_subset_sums_from_the_full_kernel_equal_the_subsets_own(monkeypatch, full_max):
    """Proper subsets, sizes where the whole-set kernel is formed once (full_max 2^25) and
    where every subset forms its own block (0): both are the direct formula per subset."""
    monkeypatch.setattr(sq, "_KID_FULL_MAX", full_max)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 64)), rng.normal(0.3, 1.0, size=(20, 64))
    _check_kid_over_subsets(x, y, n_subsets=20, size=10, seed=5)


def test_kid_is_unbiased_for_equal_distributions():
    rng = np.random.default_rng(2)
    vals = [sq.kernel_inception_distance(rng.normal(size=(8, 3)), rng.normal(size=(8, 3)),
                                         n_subsets=1)[0] for _ in range(400)]
    # a biased (V-statistic) estimator would be positive by O(1/n) here
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))


# -- precision / recall ----------------------------------------------------------------------
def _ring(centre, n=10, r=1.0):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1) * r + np.asarray(centre, float)


def test_precision_recall_constructed():
    ref = np.concatenate([_ring((0, 0)), _ring((100, 0))])
    # half the samples on the first reference ring, half on a ring nowhere near the reference
    samples = np.concatenate([_ring((0, 0), r=0.9), _ring((0, 100))])
    assert sq.precision_recall(samples, ref, k=3) == (0.5, 0.5)
    assert sq.precision_recall(ref, ref, k=3) == (1.0, 1.0)
    # all samples on ring A: every sample is real-looking, only ring A is recalled
    assert sq.precision_recall(_ring((0, 0), n=20, r=0.95), ref, k=3) == (1.0, 0.5)
    with pytest.raises(ValueError, match="more than k"):
        sq.precision_recall(ref[:3], ref, k=3)


# -- classifier scores --------------------------------------------------------------------------
def test_inception_score_and_modes_on_known_probabilities():
    P = np.eye(10)[np.arange(100) % 10]
    assert sq.inception_score(None, probs=P, n_splits=2)[0] == pytest.approx(10.0)
    one = np.eye(10)[np.zeros(50, int)]
    assert sq.inception_score(None, probs=one, n_splits=1)[0] == pytest.approx(1.0)
    mc = sq.mode_coverage(None, probs=P)
    assert mc["modes"] == 10 and mc["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    mc = sq.mode_coverage(None, probs=one)
    assert mc["modes"] == 1 and mc["kl_uniform"] == pytest.approx(np.log(10))
    # 3 classes of 200 and 5 strays of a fourth: a class needs 10% of its uniform share
    # (0.1 * 605 / 10 = 6.05 samples) to count, so 3 modes; 10 strays (of 610) make it 4
    lab = np.r_[np.zeros(200), np.ones(200), np.full(200, 2), np.full(5, 3)].astype(int)
    mc = sq.mode_coverage(None, probs=np.eye(10)[lab])
    assert mc["modes"] == 3 and mc["histogram"][:4] == [200, 200, 200, 5]
    assert sq.mode_coverage(None, probs=np.eye(10)[np.r_[lab, [3] * 5]])["modes"] == 4
    p = np.array([200, 200, 200, 5]) / 605
    assert mc["kl_uniform"] == pytest.approx(float((p * np.log(10 * p)).sum()))


def test_mode_coverage_of_real_digits_and_a_collapsed_set(digits):
    y = digits[2]
    mc = sq.mode_coverage(torch.as_tensor(digits[0]))  # tensors are accepted
    assert mc["modes"] == 10 and mc["kl_uniform"] < 0.05
    ones = digits[0][y == 1]
    mc = sq.mode_coverage(ones)
    assert mc["modes"] == 1 and mc["kl_uniform"] > 2.0
    calls = []
    tracker = sq.ModeTracker(lambda: calls.append(1) or ones, every=2)
    for step in range(5):
        tracker(step, {})
    assert len(calls) == 3 and [h["step"] for h in tracker.history] == [0, 2, 4]


# -- the helper, caching, other feature spaces --------------------------------------------------
def test_sample_quality_helper_and_cache(digits, tmp_path):
    sq._MEMORY.clear()
    q = sq.sample_quality(digits[0], digits[1], n_subsets=5, subset_size=200,
                          cache_dir=tmp_path)
    assert set(q) >= {"fid", "kid", "kid_std", "precision", "recall", "modes", "kl_uniform",
                      "inception_score", "class_histogram"}
    assert q["modes"] == 10 and q["inception_score"] > 8 and 0.5 < q["precision"] <= 1
    files = list(tmp_path.glob("sq-*.safetensors"))
    assert len(files) == 1
    sq._MEMORY.clear()
    again = sq.sample_quality(digits[0], digits[1], n_subsets=5, subset_size=200,
                              cache_dir=tmp_path)  # reference from the file
    assert again["fid"] == q["fid"] and again["kid"] == q["kid"]
    json.dumps(q)  # plain Python numbers
    # uniform noise: the classifier calls every image an 8, so the samples sit in one tight
    # clump, which lies inside the digits' manifold (precision stays high, as for any
    # collapsed set) but covers none of it: FID, KID, recall and the modes all say so
    noise = np.random.default_rng(0).random((500, 784)).astype(np.float32)
    bad = sq.sample_quality(noise, digits[1], n_subsets=5, subset_size=200)
    assert bad["fid"] > 10 * q["fid"] and bad["kid"] > 10 * abs(q["kid"]) + 3 * q["kid_std"]
    assert bad["recall"] < 0.05 < 0.5 < q["recall"] and bad["modes"] == 1


def test_other_feature_spaces(digits):
    from unsup.decomposition import PCA

    A, B = digits[0][:200], digits[1][:200]
    pca = PCA(n_components=8).fit(B)
    expect = sq.frechet_distance(*(lambda s, t: (s["mu"], s["sigma"], t["mu"], t["sigma"]))(
        sq._stats(pca.transform(A)), sq._stats(pca.transform(B))))
    assert sq.fid(A, B, feature_space=pca) == pytest.approx(expect, rel=1e-9)
    lin = torch.nn.Linear(784, 5)
    with torch.no_grad():
        fa, fb = lin(torch.as_tensor(A)).numpy(), lin(torch.as_tensor(B)).numpy()
    expect = sq.kernel_inception_distance(fa, fb, n_subsets=3, subset_size=100)
    got = sq.kid(A, B, feature_space=lin, n_subsets=3, subset_size=100)
    assert got == pytest.approx(expect, rel=1e-4)
    q = sq.sample_quality(A, B, feature_space="pixels", n_subsets=2, subset_size=100)
    assert q["feature_space"] == "pixels" and q["modes"] == 10


# -- report section -----------------------------------------------------------------------------
class _Sampler:
    n_features_in_ = 784

    def __init__(self, X):
        self.X = X

    def sample(self, n, random_state=None):
        idx = np.random.default_rng(random_state).choice(len(self.X), n)
        return self.X[idx]


class _FakeReport:
    def __init__(self):
        self.tables, self.texts = [], []

    def table(self, rows, caption=""):
        self.tables.append((rows, caption))

    def text(self, t):
        self.texts.append(t)


def test_report_section_applies_to_digit_samplers(digits, monkeypatch):
    from unsup.report.hooks import SectionContext, sections_for

    model = _Sampler(digits[0])
    titles = [t for t, _ in sections_for(model)]
    assert "Sample quality" in titles
    assert "Sample quality" not in [t for t, _ in sections_for(object())]
    monkeypatch.setattr(sq, "_REPORT_SAMPLES", 100)
    rep = _FakeReport()
    X = np.concatenate(digits[:2])[:500]
    sq.sample_quality_section(model, SectionContext(report=rep, X=X, image_shape=(28, 28)))
    (rows, caption), = rep.tables
    assert [r["set"] for r in rows] == ["model samples", "data rows (floor)"]
    assert rows[0]["modes"] == "10 / 10"


# -- the command line -----------------------------------------------------------------------------
def test_cli_evaluate_fid(tmp_path, capsys):
    from unsup.cli import main

    out = tmp_path / "gm"

    def run(*args):
        code = main([str(a) for a in args])
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    code, _, err = run("fit", "gmm", "--data", "digits", "--out", out, "--n-components", 3,
                       "--covariance-type", "diag", "--max-iter", 5, "--random-state", 0, "-q")
    assert code == 0, err
    model_bytes = (out / "model.safetensors").read_bytes()
    # the digit classifier needs 784-pixel data: a one-line error, not a traceback
    code, _, err = run("evaluate", out, "--fid", "--n-samples", 50)
    assert code == 2 and "784" in err and "Traceback" not in err
    code, text, err = run("evaluate", out, "--json", "--fid", "--n-samples", 60,
                          "--fid-features", "pixels")
    assert code == 0, err
    q = json.loads(text)["sample_quality"]
    assert q["n_samples"] == 60 and q["feature_space"] == "pixels" and q["fid"] > 0
    assert "modes" not in q  # 64-pixel digits: no classifier scores
    stored = json.loads((out / "metrics.json").read_text())["evaluate"]["sample_quality"]
    assert stored["fid"] == pytest.approx(q["fid"]) and stored["data"] == "digits"
    assert (out / "model.safetensors").read_bytes() == model_bytes  # measuring never changes it
    code, _, err = run("evaluate", out, "--fid", "--n-samples", 1, "--fid-features", "pixels")
    assert code == 2 and "--n-samples" in err
