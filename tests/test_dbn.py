"""DBN: the variational bound against exact log p(v) by enumeration, tied layers, the 1-layer
case, sampling, the encoder, up-down fine-tuning, persistence and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import unsup.io
from unsup.base import NotFittedError
from unsup.energy.dbn import DBN
from unsup.energy.rbm import BernoulliRBM
from unsup.metrics.likelihood import binary_states

pytestmark = pytest.mark.usefixtures("one_thread")


def _bars(n: int = 300, seed: int = 0) -> np.ndarray:
    """2x4 bars-and-stripes-like binary data (D=8) with a little noise."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 2, (n, 2))
    cols = rng.integers(0, 2, (n, 4))
    X = np.where(rng.random(n)[:, None] < 0.5, np.repeat(rows, 4, axis=1),
                 np.tile(cols, 2)).astype(np.float32)
    return np.abs(X - (rng.random(X.shape) < 0.03)).astype(np.float32)


def _rbm(W: np.ndarray, b: np.ndarray, c: np.ndarray) -> BernoulliRBM:
    """A 'fitted' BernoulliRBM with the given parameters (W is H x D)."""
    r = BernoulliRBM(W.shape[0], device="cpu", random_state=0)
    r.components_ = W.astype(np.float32)
    r.intercept_visible_ = b.astype(np.float32)
    r.intercept_hidden_ = c.astype(np.float32)
    r.base_rate_logits_ = np.zeros(W.shape[1], dtype=np.float32)
    r.n_features_in_ = W.shape[1]
    return r


def _random_dbn(sizes: list[int], D: int = 8, seed: int = 0, scale: float = 1.0) -> DBN:
    rng = np.random.default_rng(seed)
    rbms, d = [], D
    for h in sizes:
        rbms.append(_rbm(scale * rng.normal(size=(h, d)), rng.normal(size=d) * 0.5,
                         rng.normal(size=h) * 0.5))
        d = h
    return DBN.from_rbms(rbms, device="cpu", random_state=0)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _exact_log_p(dbn: DBN, X: np.ndarray) -> np.ndarray:
    """log p(v) of a DBN by brute force over every hidden configuration (float64 numpy)."""
    W = [np.asarray(w, np.float64) for w in dbn.weights_]
    G = [np.asarray(g, np.float64) for g in dbn.generative_weights_]
    b = [np.asarray(x, np.float64) for x in dbn.visible_biases_]
    c = [np.asarray(x, np.float64) for x in dbn.hidden_biases_]
    L = len(W)
    # top RBM over (x, h): log p(x) = -F(x) - log Z, Z summed over x and h (both enumerated)
    top_x = binary_states(W[-1].shape[1]).numpy()
    top_h = binary_states(W[-1].shape[0]).numpy()
    neg_e = (top_x @ b[-1])[:, None] + (top_h @ c[-1])[None, :] + top_x @ W[-1].T @ top_h.T
    log_z = np.logaddexp.reduce(neg_e.ravel())
    log_p = np.logaddexp.reduce(neg_e, axis=1) - log_z  # over states of layer L-1's input
    # go down through the directed layers: log p(h^{k-1}) = logsumexp_h [log p(h^{k-1}|h) + ...]
    states = top_x
    for k in reversed(range(L - 1)):
        lower = X if k == 0 else binary_states(G[k].shape[1]).numpy()
        logits = b[k][None, :] + states @ G[k]  # (n_upper, D_k)
        cond = lower @ logits.T - _softplus(logits).sum(1)[None, :]  # (n_lower, n_upper)
        log_p = np.logaddexp.reduce(cond + log_p[None, :], axis=1)
        states = lower
    return log_p


def test_bound_below_exact_log_p_two_and_three_layers() -> None:
    """Lower bound (exact expectation, exact log Z) <= exact log p(v) for every row; the
    gap is positive for untied random weights."""
    X = _bars(64)
    for sizes in ([6, 4], [5, 4, 3]):
        dbn = _random_dbn(sizes, seed=len(sizes))
        exact = _exact_log_p(dbn, X)
        bound = dbn.score_samples(X, n_samples="exact")
        assert dbn.likelihood_kind_ == "lower bound (exact log Z)"
        gap = exact - bound
        assert np.all(gap >= -1e-6), gap.min()
        assert gap.mean() > 1e-3  # the factorial posterior is not exact here
        # the sampled estimate is unbiased for the same bound
        est = dbn.score_samples(X, n_samples=400, random_state=1)
        assert abs(est.mean() - bound.mean()) < 0.05


def test_tied_second_layer_makes_the_bound_tight() -> None:
    """A second RBM initialised as the transpose of the first (biases swapped) leaves the
    model equal to the first RBM, and the factorial posterior is then exact: the bound
    equals the RBM's exact log-likelihood (Hinton et al. 2006)."""
    X = _bars(64)
    rng = np.random.default_rng(3)
    W, b, c = rng.normal(size=(6, 8)), rng.normal(size=8) * 0.5, rng.normal(size=6) * 0.5
    r1 = _rbm(W, b, c)
    dbn = DBN.from_rbms([r1, _rbm(W.T, c, b)], device="cpu")
    ll = r1.score_samples(X)
    np.testing.assert_allclose(dbn.score_samples(X, n_samples="exact"), ll, atol=1e-4)
    np.testing.assert_allclose(_exact_log_p(dbn, X), ll, atol=1e-4)


def test_one_layer_dbn_is_the_rbm() -> None:
    X = _bars(200)
    rbm = BernoulliRBM(6, n_updates=300, learning_rate=0.05, device="cpu",
                       random_state=0).fit(X)
    dbn = DBN.from_rbms([rbm], device="cpu")
    np.testing.assert_allclose(dbn.score_samples(X), rbm.score_samples(X), atol=1e-4)
    assert dbn.likelihood_kind_ == "exact"
    np.testing.assert_allclose(dbn.transform(X), rbm.transform(X), atol=1e-6)
    # fit with one layer trains exactly that RBM
    assert DBN([6], n_updates=50, device="cpu", random_state=0).fit(X).weights_[0].shape == (6, 8)


@pytest.fixture(scope="module")
def fitted() -> tuple[DBN, np.ndarray]:
    X = _bars(300)
    dbn = DBN([8, 6], n_updates=1000, learning_rate=0.1, weight_decay=1e-4, batch_size=50,
              device="cpu", random_state=0).fit(X)
    return dbn, X


def test_greedy_fit_learns_and_bound_holds(fitted: tuple[DBN, np.ndarray]) -> None:
    dbn, X = fitted
    assert [w.shape for w in dbn.weights_] == [(8, 8), (6, 8)]
    assert dbn.tied_ and len(dbn.generative_weights_) == 1
    bound = dbn.score_samples(X, n_samples="exact")
    exact = _exact_log_p(dbn, X)
    assert np.all(bound <= exact + 1e-6)
    # better than independent pixels at their marginals
    p = X.mean(0).clip(1e-3, 1 - 1e-3)
    indep = (X * np.log(p) + (1 - X) * np.log(1 - p)).sum(1).mean()
    assert bound.mean() > indep + 1.0
    assert len(dbn.pretrain_history_) == 2


def test_shapes_sampling_encoder(fitted: tuple[DBN, np.ndarray]) -> None:
    dbn, X = fitted
    Z = dbn.transform(X)
    assert Z.shape == (len(X), 6) and np.all((Z > 0) & (Z < 1))
    enc = dbn.encoder_module()
    with torch.no_grad():
        out = enc(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, Z, atol=1e-5)
    S = dbn.sample(30, burn_in=20)
    assert S.shape == (30, 8) and set(np.unique(S)) <= {0.0, 1.0}
    M = dbn.sample(5, burn_in=5, return_means=True)
    assert M.shape == (5, 8) and np.all((M >= 0) & (M <= 1))
    C = dbn.gibbs_chain(n_chains=3, steps=(1, 5, 20))
    assert C.shape == (3, 3, 8) and np.all((C >= 0) & (C <= 1))
    # samples look like the data: each sample's distance to its nearest training row is
    # smaller than for uniformly random binary vectors
    S = dbn.sample(200, burn_in=200, random_state=2)
    near = np.abs(S[:, None, :] - X[None]).sum(2).min(1).mean()
    R = np.random.default_rng(0).integers(0, 2, S.shape)
    near_r = np.abs(R[:, None, :] - X[None]).sum(2).min(1).mean()
    assert near < near_r - 0.3


def test_save_load_round_trip(fitted: tuple[DBN, np.ndarray], tmp_path) -> None:
    dbn, X = fitted
    dbn2 = DBN(**dbn.get_params()).fit(X[:50])  # another fit; then untie it
    dbn2.fine_tune_updown(X, n_updates=20)
    for model in (dbn, dbn2):
        path = tmp_path / "dbn.safetensors"
        unsup.io.save(model, path)
        back = unsup.io.load(path)
        assert isinstance(back, DBN) and back.tied_ == model.tied_
        for name in ("weights_", "visible_biases_", "hidden_biases_", "generative_weights_"):
            assert len(getattr(back, name)) == len(getattr(model, name))
            for a, b in zip(getattr(back, name), getattr(model, name), strict=True):
                np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(back.score_samples(X[:20], n_samples="exact"),
                                   model.score_samples(X[:20], n_samples="exact"), atol=1e-6)
        np.testing.assert_allclose(back.transform(X), model.transform(X))


def test_updown_unties_and_improves_the_bound() -> None:
    """Up-down on an under-trained DBN raises the exact-expectation bound on its data."""
    X = _bars(300, seed=1)
    dbn = DBN([6, 4], n_updates=150, learning_rate=0.05, batch_size=50, device="cpu",
              random_state=0).fit(X)
    before = float(np.mean(dbn.score_samples(X, n_samples="exact")))
    err_before = dbn.reconstruction_error(X).mean()
    dbn.set_log_partition(dbn.estimate_log_partition_reverse(n_runs=10, n_betas=50, burn_in=10,
                                                             random_state=0))
    dbn.fine_tune_updown(X, n_updates=1500, learning_rate=0.1, cd_k=5, batch_size=50,
                         random_state=0)
    assert not dbn.tied_
    assert not np.allclose(dbn.weights_[0], dbn.generative_weights_[0])
    after = float(np.mean(dbn.score_samples(X, n_samples="exact")))
    assert after > before + 0.2, (before, after)  # ~0.37 nats over seeds 0-2
    assert np.all(dbn.score_samples(X, n_samples="exact") <= _exact_log_p(dbn, X) + 1e-6)
    assert dbn.reconstruction_error(X).mean() < err_before - 0.02
    assert dbn.updown_updates_ == 1500 and dbn.updown_history_
    assert dbn.log_partition_reverse_ is None  # the top RBM changed: its reverse log Z is stale


def test_fit_classifier_beats_chance() -> None:
    rng = np.random.default_rng(0)
    D, n = 16, 240
    y = rng.integers(0, 2, n)
    protos = rng.integers(0, 2, (2, D))
    X = np.abs(protos[y] - (rng.random((n, D)) < 0.15)).astype(np.float32)
    dbn = DBN([12, 8], n_updates=200, learning_rate=0.05, batch_size=40, device="cpu",
              random_state=0).fit(X[:160])
    model = dbn.fit_classifier(X[:160], y[:160], steps=200, lr=3e-3)
    with torch.no_grad():
        pred = model(torch.from_numpy(X[160:])).argmax(1).numpy()
    assert (pred == y[160:]).mean() >= 0.85


def test_errors() -> None:
    X = _bars(40)
    with pytest.raises(ValueError, match="layer_sizes"):
        DBN([]).fit(X)
    with pytest.raises(ValueError, match="positive"):
        DBN([4, 0]).fit(X)
    with pytest.raises(ValueError, match="layers"):
        DBN([4, 3], learning_rate=[0.1, 0.1, 0.1], n_updates=5).fit(X)
    # values in [0, 1] are probabilities (mean-field input), not refused
    DBN([4], n_updates=5, device="cpu").fit(X * 0.5)
    with pytest.raises(NotFittedError):
        DBN([4]).transform(X)
    with pytest.raises(NotFittedError):
        DBN([4]).sample(3)
    r1 = _rbm(np.zeros((5, 8)), np.zeros(8), np.zeros(5))
    r2 = _rbm(np.zeros((3, 4)), np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match=r"rbms\[0\] has 5 hidden.*rbms\[1\] has 4 visible"):
        DBN.from_rbms([r1, r2])
    with pytest.raises(ValueError, match="at least one"):
        DBN.from_rbms([])
    big = _random_dbn([20, 3])
    with pytest.raises(ValueError, match="exact"):
        big.score_samples(X, n_samples="exact")
    # thresholding makes non-binary data acceptable
    dbn = DBN([4, 3], n_updates=5, binarize_input=0.5, device="cpu", random_state=0)
    assert dbn.fit(X * 0.8).transform(X * 0.8).shape == (40, 3)


def test_top_log_z_checked_against_training_states(fitted: tuple[DBN, np.ndarray]) -> None:
    """The top RBM's AIS log Z is compared with a certain lower bound from the up-pass
    states kept at fit (a sum over known states never exceeds log Z)."""
    dbn, _ = fitted
    assert dbn.top_check_states_.dtype == np.uint8
    top = dbn._top_rbm()
    floor = top.log_partition_floor()
    assert floor <= top.log_partition_exact() + 1e-9
    dbn.set_log_partition(dbn.estimate_log_partition(n_runs=50, n_betas=500, random_state=0))
    assert dbn.log_partition_check_.startswith("passed")
    assert dbn.log_partition_floor_ == pytest.approx(floor)
    dbn._invalidate_log_z()


def test_top_reverse_ais_matches_exact(fitted: tuple[DBN, np.ndarray]) -> None:
    """Reverse AIS on the top RBM, chains from the up-pass training states, lands on the
    exact log Z and is recorded apart from the forward estimate."""
    dbn, _ = fitted
    exact = dbn._top_rbm().log_partition_exact()
    res = dbn.estimate_log_partition_reverse(n_runs=100, n_betas=1000, burn_in=500,
                                             random_state=0)
    assert abs(res.log_z - exact) < 0.1
    assert dbn.log_partition_reverse_ is None  # measuring never stores
    dbn.set_log_partition(res)
    assert dbn.log_partition_reverse_ == res.log_z
    assert dbn.log_partition_reverse_interval_ == [res.log_z_low, res.log_z_high]


# -- up-down fine-tuning: checkpoint and exact resume (issue 10 §2) -----------------------------
def _updown_arrays(dbn: DBN) -> dict[str, np.ndarray]:
    return {f"{n}{k}": np.asarray(a) for n in ("weights_", "visible_biases_", "hidden_biases_",
                                              "generative_weights_")
            for k, a in enumerate(getattr(dbn, n))}


def test_updown_crashed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch) -> None:
    """A fine-tuning stopped after its 3rd checkpoint and resumed gives the model (weights,
    biases, history) of one never stopped, bit for bit, and runs only the updates left."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _interrupt import Crash, checkpoint_meta, crash_after

    import unsup.energy.dbn as dbn_mod
    import unsup.train._em_checkpoint as emc

    X = _bars(200, seed=3)
    kw = {"layer_sizes": [6, 4, 3], "n_updates": 60, "batch_size": 25, "device": "cpu",
          "random_state": 0}
    ft = {"n_updates": 45, "learning_rate": 0.05, "cd_k": 2, "batch_size": 30,
          "weight_decay": 1e-4, "random_state": 7}  # 30 rows: the minibatch order wraps
    ref = DBN(**kw).fit(X).fine_tune_updown(X, **ft)

    d = tmp_path / "ck"
    crashed = DBN(**kw, checkpoint_dir=str(d), checkpoint_every=10).fit(X)
    before = _updown_arrays(crashed)
    crash_after(monkeypatch, emc, 3)  # checkpoints at updates 0, 10, 20: stop after the third
    with pytest.raises(Crash):
        crashed.fine_tune_updown(X, **ft)
    for k, a in _updown_arrays(crashed).items():  # the model is untouched by the crash
        np.testing.assert_array_equal(a, before[k])
    meta = checkpoint_meta(d / "updown0")
    assert meta["state"]["batch"]["it"] == 20 and not meta["state"]["finished"]

    calls = [0]
    orig = dbn_mod._bernoulli

    def counted(*a, **k):
        calls[0] += 1
        return orig(*a, **k)

    monkeypatch.setattr(dbn_mod, "_bernoulli", counted)
    resumed = DBN(**kw, checkpoint_dir=str(d), checkpoint_every=10, resume=True).fit(X)
    calls[0] = 0
    resumed.fine_tune_updown(X, **ft)
    # per update with 3 layers: 2 wake + 1 + 2*cd_k CD + 2 sleep = 9 samples (25 updates left)
    assert calls[0] == 25 * 9
    ra, rb = _updown_arrays(resumed), _updown_arrays(ref)
    assert ra.keys() == rb.keys()
    for k in ra:
        assert np.array_equal(ra[k], rb[k]), k
    assert resumed.updown_history_ == ref.updown_history_ and not resumed.tied_
    assert resumed.updown_updates_ == ref.updown_updates_ == 45

    # resuming a finished fine-tuning returns it without sampling again
    again = DBN(**kw, checkpoint_dir=str(d), resume=True).fit(X)
    calls[0] = 0
    again.fine_tune_updown(X, **ft)
    assert calls[0] == 0
    for k, a in _updown_arrays(again).items():
        assert np.array_equal(a, rb[k]), k
    assert again.updown_history_ == ref.updown_history_


def test_updown_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    X = _bars(120, seed=4)
    kw = {"layer_sizes": [5, 3], "n_updates": 30, "batch_size": 20, "device": "cpu",
          "random_state": 0}
    d = tmp_path / "ck"
    DBN(**kw, checkpoint_dir=str(d), checkpoint_every=5).fit(X).fine_tune_updown(
        X, n_updates=10, random_state=1)
    dbn = DBN(**kw, checkpoint_dir=str(d), checkpoint_every=5, resume=True).fit(X)
    with pytest.raises(ValueError, match="different run.*learning_rate"):
        dbn.fine_tune_updown(X, n_updates=10, learning_rate=0.5, random_state=1)
    with pytest.raises(ValueError, match="different run.*random_state"):
        dbn.fine_tune_updown(X, n_updates=10, random_state=2)
    # a second fine-tuning after the first has its own checkpoint (updown10)
    dbn.fine_tune_updown(X, n_updates=10, random_state=1)
    dbn.fine_tune_updown(X, n_updates=5, random_state=1)
    assert (d / "updown10" / "checkpoint.safetensors").exists()
    assert dbn.updown_updates_ == 15
