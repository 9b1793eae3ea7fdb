import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from unsup.metrics import (
    ari,
    clustering_accuracy,
    clustering_report,
    contingency_matrix,
    match_labels,
    nmi,
    silhouette,
)


def test_permuted_labels_give_perfect_accuracy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=200)
    perm = np.array([3, 0, 4, 1, 2])
    p = perm[y] + 10  # arbitrary label values
    assert clustering_accuracy(y, p) == 1.0
    np.testing.assert_array_equal(match_labels(y, p), y)


def test_hand_computed_example():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [1, 1, 0, 0, 0, 2]
    acc = clustering_accuracy(y_true, y_pred)
    assert isinstance(acc, float)
    assert acc == pytest.approx(5 / 6)
    mapped = match_labels(y_true, y_pred)
    np.testing.assert_array_equal(mapped, [0, 0, 1, 1, 1, 2])
    assert (mapped == np.array(y_true)).mean() == pytest.approx(acc)


def test_more_clusters_than_classes():
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [0, 0, 2, 1, 1, 3]  # clusters 2 and 3 cannot be matched
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    mapped = match_labels(y_true, y_pred)
    np.testing.assert_array_equal(mapped, [0, 0, -1, 1, 1, -1])
    # every sample in its own cluster: only 2 can be matched
    assert clustering_accuracy(y_true, np.arange(6)) == pytest.approx(2 / 6)


def test_fewer_clusters_than_classes():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 0, 1, 1]
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(4 / 6)


def test_string_labels_and_torch_tensors():
    assert clustering_accuracy(["a", "a", "b"], ["x", "x", "y"]) == 1.0
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    p = torch.tensor([1, 1, 0, 0, 0, 2])
    assert clustering_accuracy(y, p) == pytest.approx(5 / 6)
    assert isinstance(nmi(y, p), float)


def test_contingency_matrix():
    counts, classes, clusters = contingency_matrix([0, 0, 1], [5, 7, 7])
    np.testing.assert_array_equal(counts, [[1, 1], [0, 1]])
    np.testing.assert_array_equal(classes, [0, 1])
    np.testing.assert_array_equal(clusters, [5, 7])


def test_nmi_ari_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, size=300)
    p = np.where(rng.random(300) < 0.7, y, rng.integers(0, 6, size=300))
    assert nmi(y, p) == pytest.approx(normalized_mutual_info_score(y, p))
    assert ari(y, p) == pytest.approx(adjusted_rand_score(y, p))
    assert type(nmi(y, p)) is float and type(ari(y, p)) is float


def test_validation_errors():
    with pytest.raises(ValueError, match=r"len\(y_true\)=3.*len\(y_pred\)=2"):
        clustering_accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        clustering_accuracy([], [])
    with pytest.raises(ValueError, match="3"):
        nmi([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        ari(np.zeros((3, 3)), np.zeros((3, 3)))


def test_silhouette_basic_and_errors():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2))])
    lab = np.repeat([0, 1], 30)
    s = silhouette(X, lab)
    assert s == pytest.approx(silhouette_score(X, lab))
    assert s > 0.9
    assert silhouette(torch.from_numpy(X), torch.from_numpy(lab)) == pytest.approx(s)
    with pytest.raises(ValueError, match="at least 2 distinct"):
        silhouette(X, np.zeros(60, dtype=int))
    with pytest.raises(ValueError, match="len"):
        silhouette(X, lab[:10])


def test_silhouette_sampling_is_deterministic():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    lab = (X[:, 0] > 0).astype(int)
    a = silhouette(X, lab, sample_size=200, random_state=3)
    b = silhouette(X, lab, sample_size=200, random_state=3)
    c = silhouette(X, lab, sample_size=200, random_state=4)
    full = silhouette(X, lab, sample_size=None)
    assert a == b
    assert a != c
    assert np.isfinite(a) and abs(a - full) < 0.1


def test_clustering_report():
    y = [0, 0, 1, 1, 2, 2]
    p = [1, 1, 0, 0, 0, 2]
    r = clustering_report(y, p)
    assert set(r) == {"accuracy", "nmi", "ari"}
    assert r["accuracy"] == pytest.approx(5 / 6)
    X = np.array([[0.0], [0.1], [1.0], [1.1], [1.2], [3.0]])
    r = clustering_report(y, p, X=X)
    assert set(r) == {"accuracy", "nmi", "ari", "silhouette"}
    assert all(isinstance(v, float) for v in r.values())


# -- evaluate_model: by capability ------------------------------------------------------------
def _blobs3(n=150, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (rng.normal(size=(n, d)) + 6.0 * y[:, None]).astype(np.float32), y


def test_evaluate_density_model_gives_a_typed_likelihood():
    from unsup.cluster import GaussianMixture
    from unsup.metrics import evaluate_model

    X, y = _blobs3()
    gmm = GaussianMixture(3, covariance_type="diag", random_state=0, device="cpu").fit(X)
    m = evaluate_model(gmm, X, y)
    lk = m["likelihood"]
    assert lk["kind"] == "exact" and lk["estimator"] == "closed form"
    assert lk["support"] == "continuous" and lk["bits_per_dim"] is None  # a density
    assert lk["nats"] == pytest.approx(gmm.score(X), rel=1e-9)
    assert lk["stderr"] == pytest.approx(gmm.score_samples(X).std(ddof=1) / np.sqrt(len(X)),
                                         rel=1e-6)
    assert m["log_likelihood"] == lk["nats"] and m["log_likelihood_support"] == "continuous"
    assert m["accuracy"] > 0.95 and "score" not in m  # a density, so no separate score


def test_evaluate_without_density_uses_score_and_family_metrics():
    from unsup.cluster import KMeans
    from unsup.metrics import evaluate_model

    X, y = _blobs3()
    km = KMeans(3, n_init=1, random_state=0, device="cpu").fit(X)
    m = evaluate_model(km, X, y)
    assert "likelihood" not in m and "log_likelihood" not in m
    assert m["score"] == pytest.approx(km.score(X))
    # k-means inertia is registered by the cluster family (model_metrics), not probed by name
    assert m["inertia"] == pytest.approx(km.inertia_, rel=1e-5)
    assert m["inertia_per_sample"] == pytest.approx(m["inertia"] / len(X))


def test_model_metrics_hook_applies_by_class():
    from unsup.metrics import evaluate
    from unsup.metrics.evaluate import metrics_for, model_metrics

    class Toy:
        def score(self, X, y=None):
            return 1.0

    class SubToy(Toy):
        pass

    @model_metrics(Toy)
    def toy_metric(model, X):
        return {"toy": len(X)}

    try:
        assert metrics_for(SubToy()) == [toy_metric] and metrics_for(object()) == []
        m = evaluate.evaluate_model(SubToy(), np.zeros((4, 2)))
        assert m == {"n_samples": 4, "score": 1.0, "toy": 4}
        with pytest.raises(ValueError):
            model_metrics()
    finally:
        evaluate._METRICS[:] = [e for e in evaluate._METRICS if e[1] is not toy_metric]


def test_evaluate_records_an_undefined_likelihood_and_goes_on():
    # PCA keeping every component has zero noise variance: no likelihood, but the rest of the
    # evaluation (and `unsup fit pca` with defaults) must not fail
    from unsup.decomposition import PCA
    from unsup.likelihood import LikelihoodUndefined
    from unsup.metrics import evaluate_model

    X = np.random.default_rng(0).normal(size=(40, 5))
    m = PCA().fit(X)
    out = evaluate_model(m, X)
    assert "degenerate" in out["likelihood_undefined"]
    assert "likelihood" not in out and "score" not in out
    with pytest.raises(LikelihoodUndefined):
        m.score_samples(X)
