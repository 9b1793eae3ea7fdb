"""Linear probe, k-NN accuracy, balanced label subsets and label-fraction curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from unsup.metrics import balanced_subset, knn_accuracy, label_fraction_curve, linear_probe
from unsup.metrics.probes import encode


def _blobs(n_per: int, k: int, d: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, sep, size=(k, d))
    y = np.repeat(np.arange(k), n_per)
    X = centres[y] + rng.normal(size=(len(y), d))
    perm = rng.permutation(len(y))
    return X[perm].astype(np.float32), y[perm]


class _Linear:
    """An 'estimator' whose codes are a fixed linear map of the inputs."""

    def __init__(self, W: np.ndarray) -> None:
        self.W = W

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X) @ self.W


class _Random:
    """Codes that carry no information about the inputs."""

    def __init__(self, d: int) -> None:
        self.d = d
        self.rng = np.random.default_rng(123)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.rng.normal(size=(len(X), self.d))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    X, y = _blobs(150, 4, 10, sep=6.0, seed=0)
    return X[:400], y[:400], X[400:], y[400:]


def test_linear_probe_separable_codes_near_perfect(data: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr, Xte, yte = data
    W = np.random.default_rng(1).normal(size=(10, 6))  # codes: a linear function of X
    r = linear_probe(_Linear(W), Xtr, ytr, Xte, yte)
    assert r["accuracy"] >= 0.98
    assert r["n_codes"] == 6 and r["n_train"] == 400 and r["n_test"] == 200
    assert r["converged"]


def test_linear_probe_random_codes_near_chance(data: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr, Xte, yte = data
    r = linear_probe(_Random(8), Xtr, ytr, Xte, yte)
    assert 0.1 <= r["accuracy"] <= 0.42  # 4 classes: chance is 0.25


def test_knn_random_codes_near_chance_and_separable_near_perfect(
        data: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr, Xte, yte = data
    assert knn_accuracy(None, Xtr, ytr, Xte, yte, k=5)["accuracy"] >= 0.98
    assert knn_accuracy(_Random(8), Xtr, ytr, Xte, yte, k=5)["accuracy"] <= 0.42


def test_knn_metric_is_used() -> None:
    # classes are directions; training points are far from the origin, test points close to
    # it: cosine neighbours share the direction, Euclidean ones are just the nearest-in points
    rng = np.random.default_rng(0)

    def points(n: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, size=n)
        angles = y * (2 * np.pi / 3) + rng.normal(0, 0.05, size=n)
        radius = rng.uniform(lo, hi, size=n)
        return np.c_[np.cos(angles), np.sin(angles)] * radius[:, None], y

    Xtr, ytr = points(60, 1.0, 100.0)
    Xte, yte = points(300, 0.01, 0.1)
    cos = knn_accuracy(None, Xtr, ytr, Xte, yte, k=1, metric="cosine")
    euc = knn_accuracy(None, Xtr, ytr, Xte, yte, k=1, metric="euclidean")
    assert cos["accuracy"] >= 0.99
    assert euc["accuracy"] < 0.6
    X, y = Xtr, ytr
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(None, X, y, X, y, metric="manhattan")


def test_probe_on_raw_inputs_and_torch_encoder(data: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr, Xte, yte = data
    raw = linear_probe(None, Xtr, ytr, Xte, yte)
    assert raw["n_codes"] == 10 and raw["accuracy"] >= 0.98
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.Tanh())
    enc.train()
    Z = encode(enc, Xtr)
    assert Z.shape == (400, 5)
    assert enc.training  # mode restored
    with torch.no_grad():
        expected = enc(torch.as_tensor(Xtr)).numpy()
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-6)
    r = linear_probe(enc, torch.as_tensor(Xtr), ytr, Xte, torch.as_tensor(yte))
    assert r["n_codes"] == 5 and 0.0 <= r["accuracy"] <= 1.0


def test_probe_input_errors(data: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr, Xte, yte = data
    with pytest.raises(ValueError, match="labels"):
        linear_probe(None, Xtr, ytr[:-1], Xte, yte)
    with pytest.raises(ValueError, match="labels are needed"):
        knn_accuracy(None, Xtr, None, Xte, yte)

    class _NaN:
        def transform(self, X: np.ndarray) -> np.ndarray:
            return np.full((len(X), 2), np.nan)

    with pytest.raises(ValueError, match="NaN"):
        linear_probe(_NaN(), Xtr, ytr, Xte, yte)
    with pytest.raises(TypeError, match="transform"):
        linear_probe(42, Xtr, ytr, Xte, yte)


def test_balanced_subset_exact_counts() -> None:
    y = np.repeat(np.arange(10), [30, 40, 50, 60, 70, 80, 90, 100, 110, 120])
    idx = balanced_subset(y, 100, random_state=0)
    assert len(idx) == 100 and len(np.unique(idx)) == 100
    assert np.all(np.bincount(y[idx], minlength=10) == 10)
    idx = balanced_subset(y, 103, random_state=1)
    counts = np.bincount(y[idx], minlength=10)
    assert counts.sum() == 103 and set(counts) == {10, 11} and (counts == 11).sum() == 3
    # seeded: same seed same subset, different seed different subset
    np.testing.assert_array_equal(balanced_subset(y, 100, 5), balanced_subset(y, 100, 5))
    assert not np.array_equal(balanced_subset(y, 100, 5), balanced_subset(y, 100, 6))
    # string labels work too
    ys = np.array(["a", "b"])[np.arange(40) % 2]
    assert sorted(np.unique(ys[balanced_subset(ys, 10)], return_counts=True)[1]) == [5, 5]


def test_balanced_subset_errors() -> None:
    y = np.repeat(np.arange(3), [2, 50, 50])
    with pytest.raises(ValueError, match="cannot cover"):
        balanced_subset(y, 2)
    with pytest.raises(ValueError, match="class 0 has 2"):
        balanced_subset(y, 30)
    with pytest.raises(ValueError, match="only 102"):
        balanced_subset(y, 500)


def test_label_fraction_curve_rows(data: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr, Xte, yte = data
    rows = label_fraction_curve(None, Xtr, ytr, Xte, yte, n_labels=(8, 40, None),
                                seeds=(0, 1, 2))
    assert [(r["n_labels"], r["probe"]) for r in rows] == [
        (8, "linear"), (8, "knn"), (40, "linear"), (40, "knn"), (400, "linear"), (400, "knn")]
    for r in rows:
        assert r["n_seeds"] == len(r["accuracies"])
        assert r["accuracy_mean"] == pytest.approx(np.mean(r["accuracies"]))
        assert r["accuracy_std"] == pytest.approx(np.std(r["accuracies"]))
        assert r["n_codes"] == 10
    assert rows[-1]["n_seeds"] == 1 and rows[-1]["accuracy_std"] == 0.0
    assert rows[0]["n_seeds"] == 3
    # seeds are honoured: the subsets (hence some accuracies) differ between seeds
    noisy = label_fraction_curve(_Random(3), Xtr, ytr, Xte, yte, n_labels=(8,),
                                 probes=("linear",), seeds=(0, 1, 2))
    assert len(set(noisy[0]["accuracies"])) > 1
    # deterministic for fixed seeds
    again = label_fraction_curve(None, Xtr, ytr, Xte, yte, n_labels=(8, 40, None),
                                 seeds=(0, 1, 2))
    assert [r["accuracies"] for r in again] == [r["accuracies"] for r in rows]
    with pytest.raises(ValueError, match="probe"):
        label_fraction_curve(None, Xtr, ytr, Xte, yte, probes=("svm",))


def test_label_fraction_more_labels_help() -> None:
    X, y = _blobs(200, 5, 20, sep=1.0, seed=3)  # overlapping classes: labels matter
    rows = label_fraction_curve(None, X[:800], y[:800], X[800:], y[800:], n_labels=(10, None),
                                probes=("linear",), seeds=(0, 1, 2, 3))
    assert rows[1]["accuracy_mean"] > rows[0]["accuracy_mean"] + 0.05


def test_cli_evaluate_probe(tmp_path: Any, capsys: Any) -> None:
    import json

    from unsup.cli import main
    from unsup.report import probe_table

    X, y = _blobs(60, 3, 6, sep=5.0, seed=4)
    np.savez(tmp_path / "train.npz", X=X[:120], y=y[:120])
    np.savez(tmp_path / "test.npz", X=X[120:], y=y[120:])
    np.savez(tmp_path / "nolabels.npz", X=X[120:])
    run = tmp_path / "run"
    assert main(["fit", "kmeans", "--data", str(tmp_path / "train.npz"), "--test-data",
                 str(tmp_path / "test.npz"), "--n-clusters", "3", "--out", str(run), "-q"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--probe", "--json", "--probe-seeds", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["probe"]
    # 100 labels, then all 120 ("1000" collapses into "all"), codes then raw inputs
    assert [(r["representation"], r["probe"], r["n_labels"]) for r in rows] == [
        ("KMeans codes", "linear", 100), ("KMeans codes", "knn", 100),
        ("KMeans codes", "linear", 120), ("KMeans codes", "knn", 120),
        ("raw inputs", "linear", 100), ("raw inputs", "knn", 100),
        ("raw inputs", "linear", 120), ("raw inputs", "knn", 120)]
    assert rows[0]["n_seeds"] == 2 and rows[2]["n_seeds"] == 1
    assert all(r["accuracy_mean"] >= 0.9 for r in rows)  # well-separated blobs
    saved = json.loads((run / "probe.json").read_text())
    assert saved["rows"] == rows and saved["train_data"].endswith("train.npz")
    assert main(["report", str(run)]) == 0
    assert "Probe table" in (run / "report.html").read_text()
    html = probe_table(rows).to_html()
    assert "linear probe" in html and "k-NN" in html and "raw inputs" in html
    # held-out data is required, and labels too
    capsys.readouterr()
    assert main(["evaluate", str(run), "--probe", "--data", str(tmp_path / "train.npz")]) == 2
    assert "held-out" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--probe", "--data", str(tmp_path / "nolabels.npz")]) == 2
    assert "needs labels" in capsys.readouterr().err
