"""SemanticHashing: binary codes from noisy logistic code units, Hamming retrieval with them.

Small runs on the 8x8 digits (1,797 x 64). The conformance suite covers sklearn's checks, the
save/load round trip, the CLI and bad input (``pytest tests/test_common.py -k semantic``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import unsup
import unsup.autoencoders.semantic_hashing  # noqa: F401  (registers the model)
from unsup.autoencoders.semantic_hashing import SemanticHashing
from unsup.data import load
from unsup.metrics.retrieval import pack_bits, retrieval_report, retrieval_scores
from unsup.registry import get_model

pytestmark = pytest.mark.usefixtures("one_thread")

# the paper's recipe (sigmoid units, no input masking), pinned: the measured thresholds below
# were set with it, whatever the class defaults become
PARAMS = dict(hidden_layer_sizes=(64,), pretrain_epochs=3, epochs=60, batch_size=64,
              learning_rate=3e-3, activation="sigmoid", fine_tune_noise=0.0, random_state=0)


@pytest.fixture(scope="module")
def digits():
    d = load("digits")
    perm = np.random.default_rng(0).permutation(len(d.X))
    X, y = d.X[perm], d.y[perm]
    return X[:1400], y[:1400], X[1400:], y[1400:]


@pytest.fixture(scope="module")
def fitted(digits):
    torch.set_num_threads(1)
    return SemanticHashing(12, code_noise=4.0, **PARAMS).fit(digits[0])


def test_registered_under_its_name():
    assert get_model("semantic-hashing").cls is SemanticHashing
    assert get_model("semhash").cls is SemanticHashing


def test_codes_are_bits_and_packed_bits(fitted, digits):
    X = digits[2]
    B = fitted.transform(X)
    assert B.dtype == np.uint8 and B.shape == (len(X), 12) and set(np.unique(B)) <= {0, 1}
    np.testing.assert_array_equal(fitted.transform_packed(X), pack_bits(B))
    np.testing.assert_array_equal(fitted.code_probabilities(X) > 0.5, B.astype(bool))
    assert 0.05 < B.mean() < 0.95  # no dead bit pattern: codes use both values


def test_noise_drives_code_units_to_binary(fitted, digits):
    # the same network without code noise: its sigmoid codes sit much further from {0, 1}
    plain = SemanticHashing(12, code_noise=0.0, **PARAMS).fit(digits[0])
    X = digits[2]

    def binary_fraction(m):
        p = m.code_probabilities(X)
        return float(((p < 0.05) | (p > 0.95)).mean())

    assert binary_fraction(fitted) > 0.75  # measured 0.83 (seed 0)
    assert binary_fraction(fitted) > binary_fraction(plain) + 0.3  # plain: 0.32


def test_defaults_are_the_recipe_selected_on_validation():
    # chosen on 1,000 mnist5k queries against the other 4,000 (bench/results/retrieval.md):
    # changing one of these changes the benchmark the docs quote
    p = SemanticHashing().get_params()
    assert {k: p[k] for k in ("n_bits", "hidden_layer_sizes", "code_noise", "activation",
                              "fine_tune_noise", "learning_rate", "epochs", "pretrain",
                              "pretrain_epochs")} == {
        "n_bits": 32, "hidden_layer_sizes": (500, 500), "code_noise": 4.0, "activation": "relu",
        "fine_tune_noise": 0.4, "learning_rate": 1e-3, "epochs": 30, "pretrain": "dae",
        "pretrain_epochs": 5}


def test_default_recipe_gives_near_binary_codes_that_beat_lsh(digits):
    # the default training recipe (ReLU, input masking 0.4, rate 1e-3) on a small network:
    # codes are near-binary and Hamming ranking beats random hyperplanes (measured, seed 0:
    # 93% of activations within 0.05 of 0/1, P@10 0.655 and mAP 0.565 against LSH's P@10 0.564;
    # on this small problem 2 of the 12 bits are constant over the database, and the paper's
    # recipe above retrieves about as well: the defaults were chosen for MNIST-sized networks)
    Xtr, ytr, Xte, yte = digits
    m = SemanticHashing(12, hidden_layer_sizes=(64,), epochs=100, batch_size=64,
                        random_state=0).fit(Xtr)
    p = m.code_probabilities(Xte)
    assert float(((p < 0.05) | (p > 0.95)).mean()) > 0.85
    r = retrieval_scores(m.transform(Xte), yte, m.transform(Xtr), ytr, k=(10,))
    W = np.random.default_rng(0).normal(size=(64, 12))
    mu = Xtr.mean(0)
    lsh = retrieval_scores(((Xte - mu) @ W > 0).astype(np.uint8), yte,
                           ((Xtr - mu) @ W > 0).astype(np.uint8), ytr, k=(10,))
    assert r["precision@10"] > lsh["precision@10"] + 0.05 and r["map"] > 0.5


def test_reconstruct_decodes_the_binary_code(fitted, digits):
    X = digits[2][:20]
    np.testing.assert_allclose(fitted.reconstruct(X),
                               fitted.inverse_transform(fitted.transform(X)), atol=1e-6)


def test_hash_codes_retrieve_same_class_digits(fitted, digits):
    Xtr, ytr, Xte, yte = digits
    r = retrieval_report(fitted, Xtr, ytr, Xte, yte, k=(10, 50))
    assert r["metric"] == "hamming" and r["n_codes"] == 12
    # chance is ~0.1 (ten balanced classes); 12 learned bits retrieve far better
    assert r["precision@10"] > 0.55 and r["map"] > 0.4  # measured 0.65 and 0.54 (seed 0)
    # random 12-bit sign projections of the centred pixels (LSH) do worse
    W = np.random.default_rng(0).normal(size=(64, 12))
    mu = Xtr.mean(0)
    lsh = retrieval_scores(((Xte - mu) @ W > 0).astype(np.uint8), yte,
                           ((Xtr - mu) @ W > 0).astype(np.uint8), ytr, k=(10,))
    assert r["precision@10"] > lsh["precision@10"]


def test_hash_index_ball_and_ranking(fitted, digits):
    Xtr, _, Xte, _ = digits
    index = fitted.hash_index(Xtr)
    Bq, Bd = fitted.transform(Xte[:10]), fitted.transform(Xtr)
    ref = (Bq[:, None] != Bd[None]).sum(2)
    dist, idx = index.kneighbors(Bq, 5)
    np.testing.assert_array_equal(dist, np.sort(ref, axis=1)[:, :5])
    for i, (d, ids) in enumerate(index.radius_search(Bq, 1)):
        np.testing.assert_array_equal(np.sort(ids), np.flatnonzero(ref[i] <= 1))
        assert (np.diff(d.astype(int)) >= 0).all()


def test_seeded_runs_agree_and_round_trip(fitted, digits, tmp_path):
    again = SemanticHashing(12, code_noise=4.0, **PARAMS).fit(digits[0])
    np.testing.assert_array_equal(again.transform(digits[2]), fitted.transform(digits[2]))
    fitted.save(tmp_path / "sh.safetensors")
    loaded = unsup.load(tmp_path / "sh.safetensors")
    np.testing.assert_array_equal(loaded.transform(digits[2]), fitted.transform(digits[2]))


def test_more_bits_than_features_is_allowed():
    X = np.random.default_rng(0).uniform(size=(64, 2))
    B = SemanticHashing(8, hidden_layer_sizes=(8,), pretrain_epochs=1, epochs=2,
                        random_state=0).fit(X).transform(X)
    assert B.shape == (64, 8)


@pytest.mark.parametrize("params, match", [
    ({"activation": "swish"}, "activation"),
    ({"n_bits": 0}, "n_bits"),
    ({"code_noise": -1.0}, "code_noise"),
    ({"fine_tune_noise": 1.0}, "fine_tune_noise"),
    ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
])
def test_bad_parameters_are_clear_errors(params, match, digits):
    with pytest.raises(ValueError, match=match):
        SemanticHashing(**{"n_bits": 4, "epochs": 1, "pretrain_epochs": 1, **params}).fit(
            digits[0][:50])


def test_report_draws_queries_with_their_hamming_neighbours(fitted, digits):
    from unsup.report import model_report

    X, y = digits[2], digits[3]
    html = model_report(fitted, X, y, image_shape=(8, 8)).to_html()
    assert "Hamming retrieval" in html and "Precision@9 of the 6 queries" in html
    assert "distinct codes" in html
