"""BoltzmannMachine: exact likelihood by enumeration, learning matches data statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from unsup.data import DataError
from unsup.energy import BoltzmannMachine

pytestmark = pytest.mark.usefixtures("one_thread")


def _sample_bm(n: int = 6, N: int = 3000, seed: int = 0) -> np.ndarray:
    """Exact samples from a random fully visible BM (by enumeration)."""
    rng = np.random.default_rng(seed)
    U = np.triu(rng.normal(0, 1.5, (n, n)), 1)
    W = U + U.T
    b = rng.normal(0, 0.5, n)
    xs = np.array(list(itertools.product([0, 1], repeat=n)), float)
    ne = 0.5 * np.einsum("si,ij,sj->s", xs, W, xs) + xs @ b
    p = np.exp(ne - ne.max())
    p /= p.sum()
    return xs[rng.choice(len(xs), N, p=p)].astype(np.float32)


def test_exact_likelihood_is_normalised() -> None:
    X = _sample_bm(5, 500)
    bm = BoltzmannMachine(n_hidden=2, n_updates=50, random_state=0, device="cpu").fit(X)
    allv = np.array(list(itertools.product([0, 1], repeat=5)), float)
    assert np.exp(bm.score_samples(allv)).sum() == pytest.approx(1.0, abs=1e-9)


def test_learning_raises_likelihood_and_matches_statistics() -> None:
    X = _sample_bm()
    bm0 = BoltzmannMachine(n_updates=1, learning_rate=1e-9, random_state=0, device="cpu").fit(X)
    bm = BoltzmannMachine(n_updates=1500, learning_rate=0.1, momentum=0.5, random_state=0,
                          device="cpu").fit(X)
    assert bm.score(X) > bm0.score(X) + 0.1
    # model moments by enumeration match the data moments
    xs = np.array(list(itertools.product([0, 1], repeat=6)), float)
    p = np.exp(bm.score_samples(xs))
    model_xx = (xs * p[:, None]).T @ xs
    data_xx = X.T @ X / len(X)
    assert np.abs(model_xx - data_xx).max() < 0.05
    # and the weights are symmetric with zero diagonal
    assert np.allclose(bm.weights_, bm.weights_.T) and np.all(np.diag(bm.weights_) == 0)


def test_hidden_units_help_and_sampling_works() -> None:
    X = _sample_bm(5, 2000, seed=3)
    bm = BoltzmannMachine(n_hidden=2, n_updates=800, learning_rate=0.1, random_state=0,
                          device="cpu").fit(X)
    bm0 = BoltzmannMachine(n_hidden=2, n_updates=1, learning_rate=1e-9, random_state=0,
                           device="cpu").fit(X)
    assert bm.score(X) > bm0.score(X)
    S = bm.sample(500, burn_in=50, random_state=0)
    assert S.shape == (500, 5) and np.abs(S.mean(0) - X.mean(0)).max() < 0.1
    assert bm.transform(X[:10]).shape == (10, 2)


def test_errors() -> None:
    # values in [0, 1] are probabilities (mean-field input), as scikit-learn's BernoulliRBM
    # takes them; the likelihood is defined on binary rows and says it binarised them
    bm_p = BoltzmannMachine(n_hidden=1, n_updates=2, device="cpu").fit(np.full((10, 3), 0.7))
    like = bm_p.log_likelihood(np.full((4, 3), 0.7))
    assert like.transform.startswith("binarised at 0.5")
    np.testing.assert_allclose(like.per_sample, bm_p.score_samples(np.ones((4, 3))))
    with pytest.raises(DataError, match="no hidden units"):
        BoltzmannMachine(n_updates=2, device="cpu").fit(np.ones((10, 3))).transform(np.ones((2, 3)))
    bm = BoltzmannMachine(n_hidden=20, n_updates=2, device="cpu").fit(_sample_bm(5, 50))
    with pytest.raises(AttributeError, match="20 units"):
        bm.score_samples(_sample_bm(5, 5))
    assert not hasattr(bm, "score_samples") and not hasattr(bm, "score")
    # the generic evaluation (what `unsup fit` runs after the fit) skips the likelihood
    from unsup.metrics.evaluate import evaluate_model
    report = evaluate_model(bm, _sample_bm(5, 50))
    assert "score" not in report and "log_likelihood" not in report
    with pytest.raises(ValueError, match="20 units"):
        bm.log_partition()
