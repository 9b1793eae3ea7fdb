"""The typed likelihood result."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unsup.likelihood import Likelihood, likelihood_of


def test_from_samples_mean_and_standard_error():
    v = np.array([-1.0, -2.0, -3.0, -6.0])
    r = Likelihood.from_samples(v, support="discrete", n_dims=2)
    assert r.nats == pytest.approx(-3.0)
    assert r.stderr == pytest.approx(v.std(ddof=1) / 2)
    assert r.bits_per_dim == pytest.approx(3.0 / (2 * math.log(2)))
    assert r.n_samples == 4 and r.kind == "exact"


def test_continuous_densities_have_no_bits_per_dim_and_their_own_column():
    c = Likelihood.from_samples([1.0, 2.0], support="continuous", n_dims=2)
    d = Likelihood.from_samples([-1.0, -2.0], support="discrete", n_dims=2)
    assert c.bits_per_dim is None
    assert c.column != d.column


def test_shifted_moves_value_interval_and_rows():
    r = Likelihood(-5.0, "stochastic estimate", "forward AIS", "discrete", 3,
                   interval=(-6.0, -4.5), per_sample=np.array([-4.0, -5.0, -6.0]))
    s = r.shifted(1.0)
    assert s.nats == -4.0 and s.interval == (-5.0, -3.5)
    np.testing.assert_allclose(s.per_sample, [-3.0, -4.0, -5.0])
    assert r.nats == -5.0  # the original is unchanged


def test_to_dict_is_json_without_rows():
    import json

    r = Likelihood.from_samples([-1.0, -3.0], kind="lower bound", estimator="ELBO",
                                support="discrete", n_dims=4, counts={"k": 1},
                                transform="binarised at 0.5")
    d = json.loads(json.dumps(r.to_dict()))
    assert "per_sample" not in d and d["kind"] == "lower bound" and d["counts"] == {"k": 1}
    assert d["bits_per_dim"] == pytest.approx(r.bits_per_dim)


@pytest.mark.parametrize("field, value", [("kind", "probably"), ("support", "mixed")])
def test_unknown_kind_or_support_is_refused(field, value):
    kw = {"kind": "exact", "support": "discrete", field: value}
    with pytest.raises(ValueError, match=field):
        Likelihood(0.0, kw["kind"], "x", kw["support"], 1)


def test_empty_rows_are_refused():
    with pytest.raises(ValueError, match="no rows"):
        Likelihood.from_samples([], support="discrete")


def test_likelihood_of_wraps_score_samples_and_prefers_log_likelihood():
    class Dens:
        def score_samples(self, X):
            return -np.asarray(X, float).sum(1)

    class Typed(Dens):
        def log_likelihood(self, X):
            return Likelihood(-1.0, "lower bound", "ELBO", "discrete", len(X))

    X = np.ones((3, 2))
    r = likelihood_of(Dens(), X)
    assert r.nats == pytest.approx(-2.0) and r.support == "continuous" and r.kind == "exact"
    assert likelihood_of(Typed(), X).estimator == "ELBO"
    assert likelihood_of(object(), X) is None
