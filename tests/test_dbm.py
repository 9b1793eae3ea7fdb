"""DBM: log Z by enumeration vs the composite RBM and AIS, the mean-field bound, the Gibbs
sampler against the enumerated p(v), training on a toy set, errors, persistence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.base import clone

import unsup
from unsup.base import NotFittedError
from unsup.energy.dbm import DBM

D, H1, H2 = 6, 5, 4


pytestmark = pytest.mark.usefixtures("one_thread")


def _states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _params(seed: int = 0, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=(H1, D)), scale * rng.normal(size=(H2, H1)),
            rng.normal(size=D), rng.normal(size=H1), rng.normal(size=H2))


def _brute(W1, W2, b, c1, c2) -> tuple[float, np.ndarray]:
    """log Z and log p(v) for every v (rows of _states(D)) by summing over all (v, h1, h2)."""
    V, A, B = _states(D), _states(H1), _states(H2)
    neg_e = ((V @ b)[:, None, None] + (A @ c1)[None, :, None] + (B @ c2)[None, None, :]
             + (V @ W1.T @ A.T)[:, :, None] + (A @ W2.T @ B.T)[None, :, :])
    flat = neg_e.reshape(len(V), -1)
    m = flat.max()
    log_z = float(m + np.log(np.exp(flat - m).sum()))
    row_m = flat.max(1, keepdims=True)
    log_pv = (row_m[:, 0] + np.log(np.exp(flat - row_m).sum(1))) - log_z
    return log_z, log_pv


def _tiny(seed: int = 0, scale: float = 1.0) -> tuple[DBM, tuple[np.ndarray, ...]]:
    p = _params(seed, scale)
    return DBM.from_weights(*p, random_state=0, device="cpu"), p


def test_log_partition_exact_and_ais_match_enumeration() -> None:
    dbm, p = _tiny()
    log_z, log_pv = _brute(*p)
    assert abs(dbm.log_partition_exact() - log_z) < 1e-8
    assert np.allclose(dbm.log_likelihood_exact(_states(D)), log_pv, atol=1e-8)
    # enumerating h2 instead of h1 gives the same answer
    p2 = _params(1)
    big_h1 = DBM.from_weights(np.vstack([p2[0], p2[0][:2]]), np.hstack([p2[1], p2[1][:, :2]]),
                              p2[2], np.concatenate([p2[3], p2[3][:2]]), p2[4])
    lp = big_h1.log_likelihood_exact(_states(D))  # H1 = 7 > H2 = 4: sums over h2
    assert np.isclose(np.logaddexp.reduce(lp), 0.0, atol=1e-8)
    res = dbm.estimate_log_partition(n_runs=100, n_betas=2000, random_state=0)
    assert abs(res.log_z - log_z) < 0.1
    assert res.log_z_low - 0.05 <= log_z <= res.log_z_high + 0.05
    dbm.set_log_partition(res)  # caching is explicit
    assert dbm.likelihood_kind_ == "lower bound (AIS)"


def test_ais_over_h1_matches_enumeration() -> None:
    """The default AIS (state h1, v and h2 summed out, factorial base model over all units)
    against exact log Z: with the fallback h1 base rate, with explicit base rates on both
    sides, strong weights, and on a fitted model (whose h1 base rate fit sets)."""
    for seed, scale in [(0, 1.0), (3, 3.0)]:
        dbm, p = _tiny(seed, scale)
        log_z, _ = _brute(*p)
        res = dbm.estimate_log_partition(n_runs=100, n_betas=2000, random_state=0, method="h1")
        assert abs(res.log_z - log_z) < 0.1
        assert res.log_z_low - 0.05 <= log_z <= res.log_z_high + 0.05
    dbm, p = _tiny(1)
    log_z, _ = _brute(*p)
    rng = np.random.default_rng(5)
    dbm.base_rate_logits_ = rng.normal(size=D + H2)
    dbm.base_rate_logits_h1_ = rng.normal(size=H1)
    res = dbm.estimate_log_partition(n_runs=100, n_betas=2000, random_state=1)
    assert abs(res.log_z - log_z) < 0.1
    dbm.set_log_partition(res)
    assert dbm.log_partition_ == res.log_z
    comp = dbm.estimate_log_partition(n_runs=100, n_betas=2000, random_state=1,
                                      method="composite")
    assert abs(comp.log_z - log_z) < 0.1
    with pytest.raises(ValueError, match="method"):
        dbm.estimate_log_partition(n_runs=10, n_betas=10, method="bogus")
    fitted = DBM((4, 3), n_updates=50, pretrain_updates=50, random_state=0,
                 device="cpu").fit(_toy(60))
    assert fitted.base_rate_logits_h1_.shape == (4,)
    res = fitted.estimate_log_partition(n_runs=100, n_betas=2000, random_state=0)
    assert abs(res.log_z - fitted.log_partition_exact()) < 0.1


def test_mean_field_bound_below_exact_and_improved_by_iterations() -> None:
    dbm, p = _tiny(2)
    log_z, log_pv = _brute(*p)
    V = _states(D)
    bound = dbm.score_samples(V)  # exact log Z for this size
    assert dbm.likelihood_kind_ == "lower bound (exact log Z)"
    dbm.set_log_partition(dbm.log_partition_result())  # what score_samples used
    assert dbm.log_partition_ == pytest.approx(log_z, abs=1e-8)
    assert np.all(bound <= log_pv + 1e-5)
    # the gap is a KL divergence: positive somewhere with these weights, and not huge
    assert np.mean(log_pv - bound) > 1e-3
    assert np.mean(log_pv - bound) < 3.0
    b0 = dbm.lower_bound(V, n_iter=0) - log_z
    b1 = dbm.lower_bound(V, n_iter=1) - log_z
    assert np.all(b1 >= b0 - 1e-5) and np.all(bound >= b1 - 1e-5)
    assert np.mean(bound - b0) > 1e-2
    # the fixed point satisfies the mean-field equations
    mu1, mu2 = dbm.mean_field(V)
    W1, W2, b, c1, c2 = p
    assert np.allclose(mu1, 1 / (1 + np.exp(-(V @ W1.T + mu2 @ W2 + c1))), atol=1e-4)
    assert np.allclose(mu2, 1 / (1 + np.exp(-(mu1 @ W2.T + c2))), atol=1e-4)


def test_gibbs_sampler_matches_enumerated_marginal() -> None:
    dbm, p = _tiny(3)
    _, log_pv = _brute(*p)
    S = dbm.sample(60000, burn_in=50, thinning=2, n_chains=1000, random_state=1)
    codes = S.astype(int) @ (1 << np.arange(D - 1, -1, -1))  # same order as _states(D)
    emp = np.bincount(codes, minlength=2**D) / len(S)
    tv = 0.5 * np.abs(emp - np.exp(log_pv)).sum()
    assert tv < 0.02, tv  # sampling noise alone is about 0.01 here
    # a wrong sampler is detected: samples from the independent base-rate model are far
    # (sanity check of the statistic's power)
    base = dbm.sample(60000, burn_in=0, n_chains=60000, random_state=1)
    codes0 = base.astype(int) @ (1 << np.arange(D - 1, -1, -1))
    emp0 = np.bincount(codes0, minlength=2**D) / len(base)
    assert 0.5 * np.abs(emp0 - np.exp(log_pv)).sum() > 3 * tv
    g = dbm.gibbs_chain(n_chains=7, steps=(0, 1, 5))
    assert g.shape == (3, 7, D) and np.all((g > 0) & (g < 1))


def _toy(n: int = 300, seed: int = 0) -> np.ndarray:
    """Three 8-bit prototypes, 5% of bits flipped."""
    rng = np.random.default_rng(seed)
    protos = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1],
                       [1, 0, 1, 0, 1, 0, 1, 0]], float)
    X = protos[rng.integers(0, 3, n)]
    return np.abs(X - (rng.random(X.shape) < 0.05)).astype(np.float32)


@pytest.mark.parametrize("pretrain", [False, True])
def test_training_increases_exact_likelihood(pretrain: bool) -> None:
    X = _toy()
    p = X.mean(0)
    independent = float(np.mean(X @ np.log(p) + (1 - X) @ np.log(1 - p)))
    dbm = DBM((6, 4), learning_rate=0.02, batch_size=50, n_updates=1500, n_chains=50,
              cd_k=5, pretrain=pretrain, pretrain_updates=500, pretrain_learning_rate=0.05,
              weight_decay=0.0, random_state=0, device="cpu").fit(X)
    exact = float(np.mean(dbm.log_likelihood_exact(X)))
    # the model before joint training: the random init (tiny weights, base-rate biases: about
    # the independent model) or the pre-trained one; joint training must not lose ground
    start = float(np.mean(clone(dbm).set_params(n_updates=0).fit(X).log_likelihood_exact(X)))
    assert exact > start + (0.8 if not pretrain else -0.05), (exact, start)
    bound = dbm.score(X)
    # the prototypes' correlations are captured
    assert exact > independent + 1.5, (exact, independent)
    assert bound <= exact + 1e-5
    assert bound > independent
    assert dbm.history_ and "reconstruction_error" in dbm.history_[-1]
    if pretrain:
        assert len(dbm.pretrain_history_) == 2


def test_errors() -> None:
    X = _toy(40)
    with pytest.raises(ValueError, match="exactly two hidden layers"):
        DBM((5,)).fit(X)
    with pytest.raises(ValueError, match="exactly two hidden layers"):
        DBM((5, 4, 3)).fit(X)
    with pytest.raises(ValueError, match="layer_sizes"):
        DBM((5, 0)).fit(X)
    with pytest.raises(ValueError, match="layer_sizes"):
        DBM(5).fit(X)
    with pytest.raises(ValueError, match="transform_layers"):
        DBM((4, 3), transform_layers="middle", n_updates=1).fit(X)
    # values in [0, 1] are probabilities (mean-field input), not refused
    DBM((4, 3), n_updates=1, pretrain_updates=1, device="cpu").fit(X * 0.5)
    with pytest.raises(NotFittedError):
        DBM().transform(X)
    with pytest.raises(NotFittedError):
        DBM().score(X)
    dbm = DBM((4, 3), n_updates=5, pretrain_updates=5, random_state=0, device="cpu").fit(X)
    assert dbm.transform(X * 0.3).shape == (len(X), 3)  # [0, 1]: probabilities
    with pytest.raises(ValueError):
        dbm.transform(X[:, :5])
    # binarize_input handles real-valued data
    Xr = X * 0.8 + 0.1
    DBM((4, 3), n_updates=5, pretrain_updates=5, binarize_input=0.5, device="cpu").fit(Xr)
    s = DBM((4, 3), n_updates=5, pretrain_updates=5, binarize_input="stochastic",
            device="cpu").fit(Xr)
    assert np.isfinite(s.score(Xr))


def test_transform_encoder_save_load(tmp_path) -> None:
    X = _toy(60)
    dbm = DBM((5, 3), n_updates=20, pretrain_updates=20, random_state=0, device="cpu").fit(X)
    T = dbm.transform(X)
    assert T.shape == (60, 3) and np.all((T >= 0) & (T <= 1))
    assert clone(dbm).set_params(transform_layers="all").fit(X).transform(X).shape == (60, 8)
    enc = dbm.encoder_module()
    with torch.no_grad():
        up = enc(torch.as_tensor(X)).numpy()
    assert up.shape == (60, 3)
    assert np.allclose(up, dbm.mean_field(X, n_iter=0)[1], atol=1e-5)
    from unsup.metrics.pretraining import resolve_encoder

    assert isinstance(resolve_encoder(dbm), torch.nn.Sequential)
    score = dbm.score(X)
    path = tmp_path / "dbm.safetensors"
    dbm.save(path)
    back = unsup.io.load(path)
    assert isinstance(back, DBM)
    assert list(back.layer_sizes) == [5, 3]
    assert np.array_equal(back.W1_, dbm.W1_) and np.array_equal(back.W2_, dbm.W2_)
    assert np.allclose(back.transform(X), T)
    assert back.score(X) == pytest.approx(score)
    assert back.likelihood_kind_ == dbm.likelihood_kind_
    assert back.sample(4, burn_in=3).shape == (4, 8)


def test_log_partition_floor_is_certain_and_checks_ais() -> None:
    """The floor (log-sum over stored training states [v; h2], h1 summed out) never exceeds
    the exact log Z; AIS above it passes the check."""
    X = _toy(300)
    dbm = DBM((6, 4), learning_rate=0.02, batch_size=50, n_updates=300, n_chains=50,
              pretrain_updates=100, random_state=0, device="cpu").fit(X)
    assert dbm.check_states_.dtype == np.uint8
    floor = dbm.log_partition_floor()
    assert floor <= dbm.log_partition_exact() + 1e-9
    dbm.set_log_partition(dbm.estimate_log_partition(n_runs=50, n_betas=500, random_state=0))
    assert dbm.log_partition_check_.startswith("passed")
    assert dbm.log_partition_floor_ == pytest.approx(floor)


def test_reverse_ais_matches_enumeration() -> None:
    """Reverse AIS over h1 and over [v; h2] from the stored training states of a fitted DBM
    agrees with the exact log Z; the forward estimate stays the bound's log Z."""
    dbm = DBM((6, 4), learning_rate=0.02, batch_size=50, n_updates=300, n_chains=50,
              pretrain_updates=100, random_state=0, device="cpu").fit(_toy(300))
    log_z = dbm.log_partition_exact()
    fwd = dbm.estimate_log_partition(n_runs=100, n_betas=2000, random_state=0)
    dbm.set_log_partition(fwd)
    for method in ("h1", "composite"):
        r = dbm.estimate_log_partition_reverse(n_runs=100, n_betas=2000, burn_in=100,
                                               random_state=1, method=method)
        assert abs(r.log_z - log_z) < 0.1, (method, r.log_z, log_z)
        dbm.set_log_partition(r)
        assert dbm.log_partition_reverse_ == r.log_z
    assert dbm.log_partition_ == fwd.log_z
    tiny, p = _tiny()
    with pytest.raises(ValueError, match="stored"):
        tiny.estimate_log_partition_reverse(n_runs=10, n_betas=10)
    # chains may start at given rows instead (e.g. a model saved without stored states)
    r = tiny.estimate_log_partition_reverse(n_runs=100, n_betas=2000, burn_in=100,
                                            random_state=0, X=_states(D))
    assert abs(r.log_z - _brute(*p)[0]) < 0.1
    with pytest.raises(ValueError, match="method"):
        dbm.estimate_log_partition_reverse(n_runs=10, n_betas=10, method="bogus")
