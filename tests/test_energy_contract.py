"""The energy family's platform contract: scikit-learn conformance, typed likelihoods checked
against exact enumeration, and measuring never changing the model (nor its saved file)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import unsup
from unsup.energy import (
    DBM,
    DBN,
    BernoulliRBM,
    BoltzmannMachine,
    GaussianBernoulliRBM,
    ReplicatedSoftmaxRBM,
)
from unsup.likelihood import Likelihood, likelihood_of
from unsup.train.ais import LogPartition


def _bars(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    P = rng.random((4, 8)) < 0.5
    return (P[rng.integers(0, 4, n)] ^ (rng.random((n, 8)) < 0.05)).astype(np.float32)


def _file_content(path) -> tuple[dict, dict]:
    """Metadata and tensors of a saved model (the bytes of two saves of the same model can
    differ: safetensors writes the metadata keys in no fixed order)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(path), framework="numpy") as f:
        meta = dict(f.metadata())
    meta.pop("sha256", None)
    return meta, load_file(str(path))


def _snapshot(model: object) -> dict:
    return copy.deepcopy(vars(model))


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(np.asarray(x), np.asarray(y)):
                return False
        elif isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            if len(x) != len(y) or not all(np.array_equal(p, q) for p, q in zip(x, y,
                                                                                 strict=True)):
                return False
        elif x != y:
            return False
    return True


def _models() -> list:
    X = _bars()
    rbm = BernoulliRBM(12, n_updates=200, learning_rate=0.05, random_state=0, ais_runs=10,
                       ais_betas=100, device="cpu").fit(X)
    big = BernoulliRBM(24, n_updates=50, random_state=0, ais_runs=10, ais_betas=100,
                       device="cpu").fit(np.hstack([X, X, X[:, :5]]))  # 21 x 24: AIS
    dbn = DBN([6, 4], n_updates=50, ais_runs=10, ais_betas=100, random_state=0,
              device="cpu").fit(X)
    dbm = DBM((6, 4), n_updates=50, pretrain_updates=50, ais_runs=10, ais_betas=100,
              random_state=0, device="cpu").fit(X)
    bm = BoltzmannMachine(n_hidden=2, n_updates=50, random_state=0, device="cpu").fit(X)
    g = GaussianBernoulliRBM(5, n_updates=50, random_state=0, device="cpu").fit(
        np.random.default_rng(0).normal(size=(100, 4)))
    return [(rbm, X), (big, np.hstack([X, X, X[:, :5]])), (dbn, X), (dbm, X), (bm, X),
            (g, np.random.default_rng(1).normal(size=(20, 4)))]


def test_measuring_never_changes_the_model_nor_its_file(tmp_path) -> None:
    for model, X in _models():
        path = tmp_path / f"{type(model).__name__}.safetensors"
        model.save(path)
        raw = _file_content(path)
        before = _snapshot(model)
        model.score_samples(X[:20])
        like = likelihood_of(model, X[:20])
        assert isinstance(like, Likelihood)
        if hasattr(model, "estimate_log_partition"):
            assert isinstance(model.estimate_log_partition(n_runs=5, n_betas=20), LogPartition)
        if hasattr(model, "estimate_log_partition_reverse"):
            r = model.estimate_log_partition_reverse(n_runs=5, n_betas=20, burn_in=2)
            assert r.method == "reverse AIS"
        assert _same(before, vars(model)), type(model).__name__
        model.save(path)
        meta, arrays = _file_content(path)
        assert meta == raw[0] and arrays.keys() == raw[1].keys(), type(model).__name__
        assert all(np.array_equal(arrays[k], raw[1][k]) for k in arrays)


def test_caching_is_explicit_and_saved(tmp_path) -> None:
    _, (big, X), *_ = _models()
    assert getattr(big, "log_partition_", None) is None
    res = big.estimate_log_partition(n_runs=20, n_betas=300, random_state=0)
    big.set_log_partition(res)
    assert big.log_partition_ == res.log_z and big.log_partition_method_ == "forward AIS"
    like = big.log_likelihood(X)
    np.testing.assert_allclose(like.per_sample, -big.free_energy(X) - res.log_z)
    big.save(tmp_path / "m.safetensors")
    back = unsup.load(tmp_path / "m.safetensors")
    assert back.log_likelihood(X).nats == pytest.approx(like.nats)
    big.clear_log_partition()
    assert getattr(big, "log_partition_", None) is None


def test_typed_likelihoods_against_exact_enumeration() -> None:
    (rbm, X), (big, Xb), (dbn, _), (dbm, _), (bm, _), (g, Xg) = _models()
    like = rbm.log_likelihood(X)
    assert (like.kind, like.estimator, like.support) == ("exact", "exact enumeration",
                                                         "discrete")
    exact = -rbm.free_energy(X) - rbm.log_partition_exact()
    assert like.nats == pytest.approx(exact.mean()) and like.n_dims == 8
    assert like.bits_per_dim == pytest.approx(-exact.mean() / (8 * np.log(2)))
    # the AIS-estimated model: labelled, with counts and an interval, near the exact value
    a = big.log_likelihood(Xb)
    assert (a.kind, a.estimator) == ("stochastic estimate", "forward AIS")
    assert a.counts == {"runs": 10, "temperatures": 100}
    lo, hi = a.interval
    assert lo <= a.nats <= hi
    exact_big = float(np.mean(-big.free_energy(Xb) - big.log_partition_exact()))
    assert abs(a.nats - exact_big) < 1.0
    # DBN: enumerated bound with exact log Z is a certain lower bound below exact log p(v)
    d = dbn.log_likelihood(X, n_samples="exact")
    assert d.kind == "lower bound" and "variational lower bound" in d.estimator
    assert dbn.log_likelihood(X, n_samples=5).kind == "stochastic lower bound"
    m = dbm.log_likelihood(X)
    assert m.kind == "lower bound" and m.estimator.startswith("mean-field lower bound")
    assert m.nats <= float(np.mean(dbm.log_likelihood_exact(X))) + 1e-6
    b = bm.log_likelihood(X)
    assert (b.kind, b.estimator) == ("exact", "exact enumeration")
    assert g.log_likelihood(Xg).support == "continuous"
    np.testing.assert_allclose(g.log_likelihood(Xg).per_sample, g.score_samples(Xg))
    # a binarising model says so
    t = BernoulliRBM(4, n_updates=5, binarize_input=0.5, device="cpu").fit(X * 0.9)
    assert t.log_likelihood(X * 0.9).transform == "binarised at 0.5"


def test_sampling_group_composed_with_real_signatures() -> None:
    import inspect

    from unsup.train.mcmc import MCMC_TRAINING, SAMPLING, SPARSITY

    for cls in (BernoulliRBM, GaussianBernoulliRBM, ReplicatedSoftmaxRBM):
        names = set(inspect.signature(cls).parameters)
        assert set(SAMPLING.names) | set(MCMC_TRAINING.names) | set(SPARSITY.names) <= names
    assert GaussianBernoulliRBM().learning_rate == 0.005  # class default overrides the group's
    assert BernoulliRBM().get_params()["cd_k"] == 1
    with pytest.raises(ValueError, match="cd_k"):
        BernoulliRBM(cd_k=0).fit(_bars(20))
    with pytest.raises(ValueError, match="n_chains"):
        DBM(n_chains=0).fit(_bars(20))


def test_report_sections_registered_by_the_family() -> None:
    from unsup.report.hooks import SectionContext, sections_for
    from unsup.report.html import Report

    X = _bars(60)
    dbm = DBM((5, 3), n_updates=10, pretrain_updates=5, random_state=0, device="cpu").fit(X)
    titles = [t for t, _ in sections_for(dbm)]
    assert titles == ["First-layer filters", "Gibbs chains", "log Z", "Pre-training curves"]
    before = _snapshot(dbm)
    r = Report("t")
    for _, fn in sections_for(dbm):
        fn(dbm, SectionContext(report=r, X=X, image_shape=(2, 4)))
    assert len(r) == 4 and _same(before, vars(dbm))
