"""BernoulliRBM: free-energy identity, gradient signs, scikit-learn compatibility, errors,
sampling, persistence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import bars
from sklearn.base import clone
from sklearn.neural_network import BernoulliRBM as SkRBM

import unsup
from unsup.data import DataError
from unsup.energy import BernoulliRBM
from unsup.energy._engine import lr_factor
from unsup.energy.rbm import _BernoulliMath

pytestmark = pytest.mark.usefixtures("one_thread")


def _bars(n: int = 400, seed: int = 0) -> np.ndarray:
    return bars(n, seed)


def _tiny_math(D: int = 5, H: int = 3, seed: int = 0) -> _BernoulliMath:
    g = torch.Generator().manual_seed(seed)
    return _BernoulliMath(torch.randn(H, D, generator=g, dtype=torch.float64),
                          torch.randn(D, generator=g, dtype=torch.float64),
                          torch.randn(H, generator=g, dtype=torch.float64))


def test_free_energy_identity_by_enumeration() -> None:
    """F(v) = -log sum_h exp(-E(v, h)) with E = -b.v - c.h - h.W.v, summed over all h."""
    m = _tiny_math()
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=torch.float64)
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=torch.float64)
    neg_e = (vs @ m.b)[:, None] + (hs @ m.c)[None, :] + vs @ m.W.T @ hs.T
    f = -torch.logsumexp(neg_e, dim=1)
    assert torch.allclose(m.free_energy(vs), f, atol=1e-10)
    # conditionals: p(h_j = 1 | v) from the joint
    p_h = (torch.softmax(neg_e, 1) @ hs)
    assert torch.allclose(m.hidden_mean_of(vs), p_h, atol=1e-10)


def test_cd_gradient_has_the_likelihood_gradient_sign() -> None:
    """On a tiny model, the CD-1 estimate of dlogp/dtheta agrees in sign with the exact
    gradient (computed by enumeration) for most parameters, and points uphill."""
    m = _tiny_math(4, 3, seed=1)
    rng = np.random.default_rng(0)
    data = torch.tensor(rng.integers(0, 2, (1, 4)).repeat(4000, 0), dtype=torch.float64)
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    # exact gradient of mean log p(data) wrt W: <h v>_data - <h v>_model
    pv = torch.softmax(-m.free_energy(vs), 0)
    model_hv = (m.hidden_mean_of(vs) * pv[:, None]).T @ vs
    data_hv = m.hidden_mean_of(data).T @ data / len(data)
    exact = data_hv - model_hv
    g = torch.Generator().manual_seed(0)
    pos = m.positive(data, g)
    _, neg = m.gibbs(pos, 1, g)
    w = torch.cat([torch.full((len(data),), 1 / len(data), dtype=torch.float64),
                   torch.full((len(data),), -1 / len(data), dtype=torch.float64)])
    cd = m.stats(tuple(torch.cat([p, n]) for p, n in zip(pos, neg, strict=True)), w)["W"]
    agree = (torch.sign(cd) == torch.sign(exact)).float().mean()
    assert agree >= 0.75
    assert float((cd * exact).sum()) > 0


def test_training_raises_exact_likelihood_on_bars() -> None:
    X = _bars()
    rbm = BernoulliRBM(8, learning_rate=0.05, n_updates=1500, batch_size=20, random_state=0,
                       device="cpu")
    rbm0 = clone(rbm).set_params(n_updates=1, learning_rate=1e-9).fit(X)
    rbm.fit(X)
    assert rbm.likelihood_kind_ == "exact"
    assert rbm.score(X) > rbm0.score(X) + 2.0
    # reconstructions get better
    assert rbm.history_[-1]["reconstruction_error"] < rbm.history_[0]["reconstruction_error"]
    assert rbm.reconstruction_error(X).mean() < 1.5


@pytest.mark.parametrize("persistent,cd_k", [(True, 1), (False, 3)])
def test_pcd_and_cdk_both_learn(persistent: bool, cd_k: int) -> None:
    X = _bars()
    rbm = BernoulliRBM(8, learning_rate=0.05, n_updates=800, batch_size=20, cd_k=cd_k,
                       persistent=persistent, weight_decay=1e-3, sparsity_target=0.2,
                       random_state=0, device="cpu").fit(X)
    assert rbm.score(X) > -10.5  # uniform model: -16 * log 2 = -11.1
    if persistent:
        assert rbm.h_samples_.shape == (20, 8)


def test_sklearn_parameter_compatibility() -> None:
    sk = SkRBM()
    ours = BernoulliRBM()
    for name in ("n_components", "learning_rate", "batch_size", "n_iter", "verbose",
                 "random_state"):
        assert name in ours.get_params() and name in sk.get_params()
    X = _bars(100)
    kw = dict(n_components=6, learning_rate=0.05, batch_size=10, n_iter=3, random_state=0)
    a, b = SkRBM(**kw).fit(X), BernoulliRBM(**kw, device="cpu").fit(X)
    for attr in ("components_", "intercept_hidden_", "intercept_visible_"):
        assert getattr(a, attr).shape == getattr(b, attr).shape
    assert b.n_updates_ == 3 * 10  # n_iter epochs of 100/10 batches
    assert b.transform(X).shape == a.transform(X).shape == (100, 6)
    t = b.transform(X)
    assert np.all((t > 0) & (t < 1))
    assert b.gibbs(X[:5]).dtype == bool
    # clone / set_params round trip, and a Pipeline like scikit-learn's digits example
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    # label: stripes (each row of the 4x4 image constant) or bars
    y = (np.abs(np.diff(X.reshape(-1, 4, 4), axis=2)).sum((1, 2)) < 2).astype(int)
    kw.update(n_iter=30, learning_rate=0.1, n_components=16)
    ours = Pipeline([("rbm", BernoulliRBM(**kw, device="cpu")), ("clf", LogisticRegression())])
    theirs = Pipeline([("rbm", SkRBM(**kw)), ("clf", LogisticRegression())])
    assert ours.fit(X, y).score(X, y) >= theirs.fit(X, y).score(X, y) - 0.05


def test_pseudo_likelihood_exact_and_stochastic() -> None:
    X = _bars(50)
    rbm = BernoulliRBM(6, n_updates=200, random_state=0, device="cpu").fit(X)
    pl = rbm.pseudo_likelihood(X)
    # brute force: sum_i log p(v_i | v_-i) from free energies of flipped vectors
    f = rbm.free_energy(X)
    brute = np.zeros(len(X))
    for i in range(X.shape[1]):
        Xf = X.copy()
        Xf[:, i] = 1 - Xf[:, i]
        brute += -np.logaddexp(0, f - rbm.free_energy(Xf))
    assert np.allclose(pl, brute, atol=1e-3)
    est = rbm.pseudo_likelihood(X, n_flips=16, random_state=0)
    assert abs(est.mean() - pl.mean()) < 0.25 * abs(pl.mean())


def test_sampling_shapes_and_statistics() -> None:
    X = _bars()
    rbm = BernoulliRBM(8, learning_rate=0.05, n_updates=1000, batch_size=20, persistent=True,
                       random_state=0, device="cpu").fit(X)
    S = rbm.sample(300, burn_in=200, thinning=2, n_chains=50, random_state=0)
    assert S.shape == (300, 16) and set(np.unique(S)) <= {0.0, 1.0}
    assert np.abs(S.mean(0) - X.mean(0)).max() < 0.15
    chain = rbm.gibbs_chain(4, steps=[1, 10, 100])
    assert chain.shape == (3, 4, 16) and np.all((chain >= 0) & (chain <= 1))


def test_values_in_unit_interval_are_probabilities_and_likelihoods_binarise() -> None:
    """The [0, 1] policy (scikit-learn's BernoulliRBM accepts grey levels): fit and transform
    take the values as probabilities; likelihoods are defined for binary data, so they
    binarise at 0.5 and the typed result says so."""
    X = np.random.default_rng(0).random((30, 5))
    rbm = BernoulliRBM(3, n_updates=5, device="cpu", random_state=0).fit(X)
    codes = rbm.transform(X)
    assert codes.shape == (30, 3) and not np.allclose(codes, rbm.transform(X > 0.5))
    Xb = (X > 0.5).astype(np.float64)
    np.testing.assert_allclose(rbm.score_samples(X), rbm.score_samples(Xb))
    like = rbm.log_likelihood(X)
    assert like.transform.startswith("binarised at 0.5") and like.kind == "exact"
    assert rbm.log_likelihood(Xb).transform is None
    assert rbm.check_states_.shape[1] == 1  # states stored binarised (5 bits -> 1 byte)
    BernoulliRBM(3, n_updates=5, binarize_input=0.5, device="cpu").fit(X)
    m = BernoulliRBM(3, n_updates=5, binarize_input="stochastic", device="cpu").fit(X)
    assert m.transform(X).shape == (30, 3)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        BernoulliRBM(3, n_updates=5, binarize_input="stochastic").fit(X * 3)
    with pytest.raises(ValueError, match="binarize"):
        BernoulliRBM(3, binarize_input="yes").fit(X)


@pytest.mark.parametrize("bad", [dict(n_components=0), dict(learning_rate=-1.0),
                                 dict(cd_k=0), dict(lr_schedule="step"),
                                 dict(momentum=1.0), dict(sparsity_target=0.0),
                                 dict(persistent="yes"), dict(n_iter=0)])
def test_bad_parameters_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        BernoulliRBM(**bad).fit(_bars(20))


def test_lr_schedules() -> None:
    assert lr_factor("linear", 0, 10) == 1.0 and lr_factor("linear", 5, 10) == 0.5
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.0)
    assert lr_factor("constant", 7, 10) == 1.0


def test_save_load_round_trip(tmp_path) -> None:
    X = _bars(100)
    rbm = BernoulliRBM(6, n_updates=100, persistent=True, random_state=0, device="cpu").fit(X)
    ll = rbm.score_samples(X)
    rbm.save(tmp_path / "rbm.safetensors")
    back = unsup.load(tmp_path / "rbm.safetensors")
    assert isinstance(back, BernoulliRBM)
    np.testing.assert_allclose(back.components_, rbm.components_)
    np.testing.assert_allclose(back.transform(X), rbm.transform(X), rtol=1e-6)
    np.testing.assert_allclose(back.score_samples(X), ll, rtol=1e-6)
    assert back.likelihood_kind_ == "exact"


def test_ais_estimate_is_labelled(monkeypatch) -> None:
    """Large models get an AIS estimate of log Z, labelled as such, with an interval."""
    X = _bars(100)
    X = np.hstack([X, X[:, :5]])  # 21 visible, 24 hidden: too many for automatic enumeration
    rbm = BernoulliRBM(24, n_updates=50, random_state=0, device="cpu", ais_runs=20,
                       ais_betas=300).fit(X)
    rbm.set_log_partition(rbm.estimate_log_partition())  # caching is explicit
    ll = rbm.score_samples(X)
    assert rbm.likelihood_kind_ == "AIS estimate"
    lo, hi = rbm.log_partition_interval_
    assert lo <= rbm.log_partition_ <= hi
    m_lo, m_hi = rbm.log_likelihood_interval(X)
    assert m_lo <= ll.mean() <= m_hi
    exact = rbm.log_partition_exact()
    assert abs(exact - rbm.log_partition_) < 0.5


@pytest.mark.parametrize("persistent,cd_k", [(True, 1), (False, 1), (True, 3), (False, 2)])
def test_fused_accumulate_matches_generic_update(persistent: bool, cd_k: int) -> None:
    """The engine's fast paths (phases written into stacked buffers; statistics added into
    the velocities inside the GEMMs) give the same parameters as the generic
    positive/gibbs/stats path, with momentum, decay and sparsity."""
    from unsup.energy._engine import MCMCConfig, fit_mcmc
    from unsup.energy.rbm import _BernoulliMath

    class Generic:  # the same model without ``accumulate``: forces the generic path
        def __init__(self, m: _BernoulliMath) -> None:
            self.m = m

        def __getattr__(self, name: str):
            if name in ("accumulate", "phases"):
                raise AttributeError(name)
            return getattr(self.m, name)

    rng = np.random.default_rng(0)
    X = torch.as_tensor((rng.random((60, 12)) < 0.3).astype(np.float32))
    cfg = MCMCConfig(batch_size=20, n_updates=40, learning_rate=0.05, weight_decay=1e-2,
                     sparsity_target=0.1, persistent=persistent, n_chains=20, cd_k=cd_k)
    out = []
    for wrap in (False, True):
        g = torch.Generator().manual_seed(3)
        W0 = 0.1 * torch.randn(7, 12, generator=torch.Generator().manual_seed(1))
        m = _BernoulliMath(W0.clone(), torch.zeros(12), torch.zeros(7))
        fit_mcmc(Generic(m) if wrap else m, X, cfg, g)
        out.append((m.W.clone(), m.b.clone(), m.c.clone()))
    assert not torch.equal(out[0][0], 0.1 * torch.randn(7, 12,
                                                        generator=torch.Generator().manual_seed(1)))
    for a, b in zip(out[0], out[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_log_partition_floor_is_certain_and_checks_ais() -> None:
    """The floor (log-sum over stored training states) never exceeds the exact log Z; an AIS
    estimate above it passes, one below it is flagged with a warning."""
    from unsup.energy._rbm import record_log_partition_check

    rng = np.random.default_rng(0)
    X = (rng.random((300, 16)) < 0.3).astype(np.float32)
    rbm = BernoulliRBM(12, n_updates=300, learning_rate=0.05, random_state=0,
                       device="cpu").fit(X)
    assert rbm.check_states_.dtype == np.uint8 and rbm.check_states_.shape[1] == 2
    floor = rbm.log_partition_floor()
    exact = rbm.log_partition_exact()
    assert floor <= exact
    assert floor > exact - 5  # the training states carry much of the mass
    rbm.set_log_partition(rbm.estimate_log_partition(n_runs=50, n_betas=1000, random_state=0))
    assert rbm.log_partition_check_.startswith("passed")
    with pytest.warns(RuntimeWarning, match="below"):
        record_log_partition_check(rbm, floor - 3.0, rbm.log_partition_floor())
    assert rbm.log_partition_check_.startswith("FAILED")
    assert "failed check" in rbm.likelihood_kind_
    # the states survive saving
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        rbm.save(Path(d) / "r.safetensors")
        back = unsup.load(Path(d) / "r.safetensors")
    assert back.log_partition_floor() == pytest.approx(floor, abs=1e-6)


@pytest.mark.parametrize("side", ["visible", "hidden"])
def test_ais_both_sides_within_0p1_of_exact_when_hidden_is_larger(side: str) -> None:
    """AIS over the hidden states (visibles summed out; base model at both layers' training
    marginals) and over the visible states agree with enumeration; "auto" picks the larger
    layer."""
    rng = np.random.default_rng(0)
    P = rng.random((4, 10)) < 0.5
    X = (P[rng.integers(0, 4, 400)] ^ (rng.random((400, 10)) < 0.05)).astype(np.float32)
    rbm = BernoulliRBM(16, n_updates=1000, learning_rate=0.05, random_state=0, ais_side=side,
                       device="cpu").fit(X)
    exact = rbm.log_partition_exact()
    res = rbm.estimate_log_partition(n_runs=100, n_betas=2000, random_state=0)
    assert abs(res.log_z - exact) < 0.1, (side, res.log_z, exact)
    rbm.set_log_partition(res)
    assert rbm.log_partition_check_.startswith("passed")
    assert rbm.set_params(ais_side="auto")._ais_side() == "hidden"
    with pytest.raises(ValueError, match="ais_side"):
        rbm.set_params(ais_side="both")._ais_side()
