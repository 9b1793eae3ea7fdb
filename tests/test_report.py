import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from unsup.report import (
    Report,
    comparison_table,
    confusion_matrix_plot,
    curves_plot,
    em_trace_plot,
    embedding_plot,
    flatten_dict,
    format_value,
    image_grid,
    model_report,
)


def _history(n=5):
    out = []
    for i in range(n):
        ll = -10.0 + 2.0 * (1 - 0.5**i)
        kl = 0.1 * 0.5**i
        out.append({"iter": i, "log_likelihood": ll, "bound": ll - kl, "kl": kl})
    return out


class FakeModel:
    """A minimal duck-typed fitted clustering model on 4x4 images."""

    def __init__(self, n_clusters=3):
        self.n_clusters = n_clusters
        rng = np.random.default_rng(0)
        self.cluster_centers_ = rng.normal(size=(n_clusters, 16))
        self.history_ = _history()
        self.n_iter_ = 5
        self.inertia_ = 12.5

    def get_params(self, deep=True):
        return {"n_clusters": self.n_clusters, "note": "<b>bold</b>"}

    def predict(self, X):
        d = ((np.asarray(X)[:, None, :] - self.cluster_centers_[None]) ** 2).sum(-1)
        return d.argmin(1)


def _data(n=60, d=16, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    X = rng.normal(size=(n, d)) + 3.0 * y[:, None]
    return X, y


def _assert_self_contained(html):
    for attr in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html):
        assert not attr.startswith(("http://", "https://", "//")), attr
    assert "<script" not in html.lower()
    assert "@import" not in html and "url(http" not in html


# ---------------------------------------------------------------- Report


def test_report_blocks_and_escaping(tmp_path):
    r = Report("<script>alert(1)</script> results")
    r.heading("Section & <stuff>")
    r.text("a < b and c > d\n\nsecond paragraph")
    r.table([{"name": "x<y", "value": 0.123456789, "n": 3}, {"name": "z", "extra": 1e-9}],
            caption="Table <1>")
    path = r.save(tmp_path / "sub" / "r.html")
    html = (tmp_path / "sub" / "r.html").read_text(encoding="utf-8")
    assert path.endswith("r.html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; results" in html
    assert '<h2 id="section-stuff">Section &amp; &lt;stuff&gt;</h2>' in html
    assert "<p>a &lt; b and c &gt; d</p>" in html and "<p>second paragraph</p>" in html
    assert "<th>name</th><th>value</th><th>n</th><th>extra</th>" in html
    assert "0.1235" in html and "0.123456" not in html
    assert "1e-09" in html
    assert "x&lt;y" in html
    assert "<caption>Table &lt;1&gt;</caption>" in html
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    _assert_self_contained(html)


def test_format_value():
    assert format_value(3.14159265) == "3.142"
    assert format_value(np.float32(1234567.0)) == "1.235e+06"
    assert format_value(7) == "7"
    assert format_value(np.int64(7)) == "7"
    assert format_value(True) == "True"
    assert format_value(None) == ""
    assert format_value(float("nan")) == "nan"
    assert format_value("s") == "s"


def test_figure_is_embedded_and_closed(tmp_path):
    r = Report("figs")
    fig = curves_plot({"a": [1.0, 2.0, 3.0]}, "x", "y")
    r.figure(fig, caption="cap <1>")
    html = r.to_html()
    assert html.count('<img src="data:image/png;base64,') == 1
    assert "<figcaption>cap &lt;1&gt;</figcaption>" in html
    assert len(fig.axes) == 0  # cleared after embedding
    _assert_self_contained(html)


def test_heading_level_validation():
    with pytest.raises(ValueError):
        Report("t").heading("x", level=7)


# ---------------------------------------------------------------- plots


def test_image_grid_mosaic():
    imgs = np.random.default_rng(0).random((7, 12))
    fig = image_grid(imgs, (3, 4), titles=[f"t{i}" for i in range(7)], ncols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 1  # one mosaic, not one axes per image
    canvas = np.asarray(fig.axes[0].images[0].get_array().filled(np.nan))
    # 3 rows of (1-pixel title band + 3 rows + 1-pixel gap), 3 columns of (4 + gap), no last gap
    assert canvas.shape == (3 * 5 - 1, 3 * 5 - 1)
    for i in range(7):
        y0, x0 = (i // 3) * 5 + 1, (i % 3) * 5
        img = imgs[i].reshape(3, 4)
        np.testing.assert_allclose(canvas[y0:y0 + 3, x0:x0 + 4],
                                   (img - img.min()) / (img.max() - img.min()))
    assert np.isnan(canvas[11:14, 5:14]).all()  # the two empty cells of the last row are blank
    assert [t.get_text() for t in fig.axes[0].texts] == [f"t{i}" for i in range(7)]
    fig = image_grid(np.zeros((2, 12)), (3, 4))  # constant images do not divide by zero
    assert np.isfinite(np.asarray(fig.axes[0].images[0].get_array())[:3, :4]).all()
    with pytest.raises(ValueError, match="12"):
        image_grid(imgs, (5, 5))


def test_confusion_matrix_plot_diagonal_order():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    p = np.array([7, 7, 5, 5, 9, 9, 8])
    fig = confusion_matrix_plot(y, p)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["7", "5", "9", "8"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["1", "2", "2", "2"]


def test_em_trace_plot():
    fig = em_trace_plot(_history())
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert "L(q" in fig._suptitle.get_text() and "KL" in fig._suptitle.get_text()
    hist = [{"log_likelihood": -1.0, "bound": -1.5}, {"log_likelihood": -0.5, "bound": -0.6}]
    fig = em_trace_plot(hist)  # iter and kl filled in
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [0.5, 0.1])
    with pytest.raises(ValueError):
        em_trace_plot([])


def test_embedding_and_curves_plot():
    Z = np.random.default_rng(0).normal(size=(50, 2))
    assert len(embedding_plot(Z, None).axes) == 1
    fig = embedding_plot(Z, np.arange(50) % 3, title="t")
    assert len(fig.axes) == 1 and fig.axes[0].get_legend() is not None
    assert len(embedding_plot(Z, np.arange(50)).axes) == 2  # many labels: a colour bar
    with pytest.raises(ValueError):
        embedding_plot(np.zeros((5, 3)), None)
    fig = curves_plot({"train": [3, 2, 1], "val": [3.5, 2.5, 2.0]}, "epoch", "loss", logy=True)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2


# ---------------------------------------------------------------- model_report


@pytest.fixture
def fake_centres_section():
    """FakeModel's family registers its centres section by class (as real families do)."""
    from unsup.report import hooks

    @hooks.report_section(FakeModel, title="Cluster centres")
    def _centres(model, ctx):
        ctx.report.figure(image_grid(model.cluster_centers_, ctx.image_shape),
                          caption=f"{len(model.cluster_centers_)} centres")

    yield
    hooks._SECTIONS[:] = [s for s in hooks._SECTIONS if s.fn is not _centres]


def test_model_report_generic_sections_ignore_family_attributes():
    """Without a registered section, a model's fitted attributes are never probed by name."""
    X, y = _data()
    html = model_report(FakeModel(), X, y, image_shape=(4, 4)).to_html()
    assert "Cluster centres" not in html
    assert ">Confusion matrix</h2>" in html and ">EM trace</h2>" in html


def test_model_report_fake_model(tmp_path, fake_centres_section):
    X, y = _data()
    model = FakeModel()
    r = model_report(model, X, y, image_shape=(4, 4),
                     metrics={"accuracy": 0.5, "extra": {"nmi": 0.25}},
                     title="Fake <model>")
    path = tmp_path / "report.html"
    r.save(path)
    assert path.exists()
    html = path.read_text(encoding="utf-8")
    assert '<img src="data:image/png;base64,' in html
    for h in ["Parameters", "Metrics", "Cluster centres", "Confusion matrix", "EM trace",
              "2-D projection"]:
        assert f">{h}</h2>" in html, h
    assert html.count('<img src="data:image/png;base64,') == 4
    assert "<th>extra</th>" in html and "<td>nmi</td>" in html  # a column per group
    assert "<title>Fake &lt;model&gt;</title>" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "n_iter_" in html and "inertia_" in html
    assert "Section skipped" not in html
    _assert_self_contained(html)


def test_model_report_kmeans_appends(tmp_path):
    from unsup.cluster import KMeans

    X, y = _data(n=80)
    km = KMeans(n_clusters=3, n_init=1, random_state=0, device="cpu").fit(X)
    km.history_ = _history(3)
    r = Report("Comparison")
    model_report(km, X, y, image_shape=(4, 4), report=r)
    model_report(km, X, None, report=r, title="KMeans without labels")
    html = r.to_html()
    assert "<h2>KMeans</h2>" in html and "<h2>KMeans without labels</h2>" in html
    assert "<h3>Confusion matrix</h3>" in html and "<h3>Cluster centres</h3>" in html
    assert "accuracy" in html  # metrics computed from y and predict
    assert html.count("<h3>Confusion matrix</h3>") == 1
    _assert_self_contained(html)


def test_model_report_unknown_and_broken_models():
    X, y = _data(n=30)

    class Bare:
        pass

    html = model_report(Bare(), X).to_html()
    assert ">2-D projection</h2>" in html
    assert "Parameters" not in html

    class Broken:
        cluster_centers_ = np.zeros((2, 16))
        history_ = [{"loss": 1.0}, {"loss": 0.5}]

        def get_params(self, deep=True):
            return {"a": np.arange(1000)}

        def predict(self, X):
            raise RuntimeError("boom")

    with pytest.warns(RuntimeWarning, match="boom"):
        r = model_report(Broken(), X, y, image_shape=(4, 4))
    html = r.to_html()
    assert "Section skipped" in html and "boom" in html
    assert ">Training history</h2>" in html
    assert ">2-D projection</h2>" in html
    assert "array(1000,)" in html


def test_flatten_and_comparison_table():
    assert flatten_dict({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
    r = comparison_table([{"model": "A", "m": {"nmi": 0.5}}, {"model": "B", "m": {"nmi": 0.75}}])
    html = r.to_html()
    assert "<th>m.nmi</th>" in html and "0.75" in html


# ---------------------------------------------------------------- by capability


def test_generic_report_names_no_family_attribute():
    """The generic sections choose by capability; family attributes live in family sections."""
    import inspect

    import unsup.metrics.evaluate
    import unsup.report.sections

    for mod in (unsup.report.sections, unsup.metrics.evaluate):
        src = inspect.getsource(mod)
        for name in ("W1_", "weights_", "log_partition", "gibbs_chain", "module_",
                     "pretrain_history_", "cluster_centers_", "means_", "components_",
                     "inertia_", "likelihood_kind_", "_estimator_type"):
            assert not re.search(rf"(?<!\w){name}", src), (mod.__name__, name)


def _binary_likelihood(nats=-10.0):
    from unsup.likelihood import Likelihood

    return Likelihood(nats, "stochastic estimate", "forward AIS", "discrete", 100, n_dims=16,
                      interval=(nats - 0.5, nats + 0.25))


def test_comparison_table_never_mixes_densities_and_masses():
    from unsup.likelihood import Likelihood

    dens = Likelihood(989.5, "exact", "closed form", "continuous", 100, n_dims=784)
    html = comparison_table([{"model": "GMM", "test": {"likelihood": dens}},
                             {"model": "RBM", "test": {"likelihood": _binary_likelihood()}}]
                            ).to_html()
    assert "<th>test.log-density (continuous, nats/sample)</th>" in html
    assert "<th>test.log-likelihood (nats/sample)</th>" in html
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]
    # each row fills one of the two columns and leaves the other empty
    gmm = [c for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)]
    rbm = [c for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[1], re.S)]
    assert "989.5" in " ".join(gmm) and "-10" not in " ".join(gmm)
    assert "-10" in " ".join(rbm) and "989.5" not in " ".join(rbm)
    # evaluate_model's flat copies (log_likelihood, one key for both) never make a column
    flat = {"log_likelihood": 989.5, "log_likelihood_kind": "exact", "bits_per_dim": None}
    html = comparison_table([{"model": "GMM", "test": {"likelihood": dens, **flat}}]).to_html()
    assert "test.log_likelihood" not in html and "bits_per_dim" not in html
    assert "<th>test.log-density (continuous, nats/sample)</th>" in html


def test_likelihood_section_from_metrics_and_from_the_model(tmp_path):
    from unsup.cluster import GaussianMixture

    X, y = _data(n=90, d=4)
    gmm = GaussianMixture(n_components=3, covariance_type="diag", random_state=0,
                          device="cpu").fit(X)
    html = model_report(gmm, X, y).to_html()
    assert ">Log-likelihood</h2>" in html
    assert "log-density (continuous, nats/sample)" in html
    assert f"{gmm.score(X):.4g}" in html or format_value(gmm.score(X)) in html
    # a typed record in the metrics is shown as it is (kind, estimator, interval, bits/dim)
    rec = _binary_likelihood(-7.0).to_dict()
    html = model_report(gmm, X, metrics={"test": {"likelihood": rec}}).to_html()
    assert "forward AIS" in html and "stochastic estimate" in html
    assert "bits/dim" in html and "[-7.5, -6.75]" in html


def test_samples_and_reconstructions_and_family_sections():
    from unsup.cluster import GaussianMixture
    from unsup.decomposition import PCA

    X, y = _data(n=90, d=16)
    gmm = GaussianMixture(n_components=3, covariance_type="diag", random_state=0,
                          device="cpu").fit(X)
    html = model_report(gmm, X, y, image_shape=(4, 4)).to_html()
    assert ">Samples</h2>" in html and "32 samples drawn" in html
    assert ">Cluster centres</h2>" in html  # registered for the cluster family
    pca = PCA(n_components=3, device="cpu").fit(X)
    html = model_report(pca, X, image_shape=(4, 4)).to_html()
    for h in ("Reconstructions", "First-layer filters (principal components)", "Log-likelihood",
              "2-D projection"):
        assert f">{h}</h2>" in html, h
    assert "Samples" not in html and "Confusion matrix" not in html  # no sample, no predict
    html = model_report(pca, X).to_html()  # no image shape: no images
    assert "Reconstructions" not in html


# ---------------------------------------------------------------- a page a researcher reads


def test_contents_bar_and_collapsed_sections():
    r = Report("page")
    r.heading("Overview")
    with r.section("Model A", hint="KMeans") as a1:
        r.heading("inner", 2)  # inside a section: not a contents entry
        r.text("body")
    with r.section("Model A", open=True) as a2:  # same title: a distinct anchor
        pass
    assert a1 != a2
    html = r.to_html()
    nav = re.search(r'<nav class="toc">(.*?)</nav>', html, re.S).group(1)
    assert re.findall(r'href="#([^"]+)"', nav) == ["overview", a1, a2]
    assert f'<details class="section" id="{a1}"><summary>' in html
    assert f'<details class="section" id="{a2}" open>' in html
    assert html.count("<details") == html.count("</details>") == 2
    assert html.index("<nav") < html.index('id="overview"')  # the bar comes first
    other = Report("other")
    with other.section("Model A"):
        pass
    with pytest.raises(ValueError, match="anchors"):
        r.extend(other)
    _assert_self_contained(html)


def test_curves_have_integer_epoch_ticks_and_named_series():
    from unsup.report.quality import history_axes, series_label

    hist = [{"epoch": 0.5 * (i + 1), "step": i + 1, "loss": 1.0 / (i + 1), "val_loss": 2.0}
            for i in range(7)]  # records inside epochs (MCMC monitors): fractional epochs
    x, xlabel = history_axes(hist)
    assert x == [0.5 * (i + 1) for i in range(7)] and xlabel.startswith("epoch")
    assert series_label("val_loss") == "validation loss"
    fig = curves_plot({"training loss": [h["loss"] for h in hist]}, xlabel, "loss", x=x)
    ax = fig.axes[0]
    assert ax.get_xlabel() == xlabel and ax.get_ylabel() == "loss"
    ticks = ax.get_xticks()
    np.testing.assert_array_equal(ticks, np.round(ticks))
    np.testing.assert_allclose(ax.lines[0].get_xdata(), x)
    fig = curves_plot({"a": [1, 2, 3], "b": [10, 20, 30]}, "epoch", panels=True)
    assert [a.get_ylabel() for a in fig.axes] == ["a", "b"]
    assert fig.axes[-1].get_xlabel() == "epoch"


def test_projection_axes_name_the_space_and_the_variance(monkeypatch):
    from sklearn.decomposition import PCA as SkPCA

    import unsup.report.sections as sec

    seen = {}

    def spy(Z, labels=None, **kw):
        seen.update(kw, Z=Z)
        return Figure()

    monkeypatch.setattr(sec, "embedding_plot", spy)
    X, y = _data(n=60, d=16)
    model_report(FakeModel(), X, y)
    ratio = SkPCA(2, random_state=0).fit(X).explained_variance_ratio_
    assert seen["xlabel"] == f"PC 1 of the inputs (input units; {100 * ratio[0]:.1f}% of variance)"
    assert seen["ylabel"].startswith("PC 2 of the inputs")
    assert seen["legend_title"] == "predicted cluster"
    fig = embedding_plot(np.zeros((4, 2)), None, xlabel="u", ylabel="v")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("u", "v")


def test_sample_diversity_against_the_histogram():
    from scipy.stats import entropy

    from unsup.data import load
    from unsup.report.quality import sample_diversity

    ds = load("digits")
    X, y = ds.X[:500], ds.y[:500]
    stuck = np.repeat(X[y == 3][:1], 32, axis=0)  # one image, 32 times
    d = sample_diversity(stuck, X, y)
    assert d["histogram"][d["classes"].index(d["top_class"])] == 32 and d["top_share"] == 1.0
    assert d["effective_classes"] == pytest.approx(1.0) and d["distance_ratio"] == 0.0
    assert d["mixed"] is False and d["data_effective_classes"] > 9.5
    spread = np.concatenate([X[y == c][:3] for c in range(10)])  # 3 real digits of each class
    d = sample_diversity(spread, X, y)
    h = np.array(d["histogram"])
    assert h.sum() == 30 and (h > 0).sum() >= 9  # the classifier saw these rows
    assert d["effective_classes"] == pytest.approx(np.exp(entropy(h / h.sum())))
    assert d["mixed"] is True and 0.7 < d["distance_ratio"] < 1.3
    assert sample_diversity(stuck, X, None) is None  # no labels: nothing to measure


def test_samples_section_notes_a_collapsed_sampler():
    X, y = _data(n=90, d=16)

    class Stuck(FakeModel):
        def sample(self, n, random_state=None):
            return np.repeat(X[:1], n, axis=0)

    html = model_report(Stuck(), X, y, image_shape=(4, 4)).to_html()
    assert "Sample diversity" in html and '<p class="note">The samples are not diverse' in html

    class Spread(FakeModel):
        def sample(self, n, random_state=None):
            return X[np.random.default_rng(0).choice(len(X), n, replace=False)]

    html = model_report(Spread(), X, y, image_shape=(4, 4)).to_html()
    assert "Sample diversity" in html and "not diverse" not in html


def test_representation_quality_against_a_peer():
    from sklearn.model_selection import train_test_split

    from unsup.data import load
    from unsup.decomposition import PCA
    from unsup.metrics.probes import linear_probe
    from unsup.report.quality import representation_quality

    ds = load("digits")
    X, y = ds.X[:400], ds.y[:400]
    pca = PCA(8, random_state=0).fit(X)
    rows = {r["measure"]: r for r in representation_quality(pca, X, y)}
    R = np.asarray(pca.inverse_transform(pca.transform(X)), dtype=np.float64)
    sse = ((R - X) ** 2).sum(1).mean()
    assert rows["reconstruction error"]["value"] == pytest.approx(sse, rel=1e-5)
    a, b = train_test_split(np.arange(400), test_size=0.5, random_state=0, stratify=y)
    peer = linear_probe(pca, X[a], y[a], X[b], y[b], max_iter=300)["accuracy"]
    assert rows["linear probe accuracy"]["value"] == peer > 0.5
    given = representation_quality(pca, X, y, probe=0.875)
    assert [r["value"] for r in given if r["measure"] == "linear probe accuracy"] == [0.875]


def test_demo_summary_groups_likelihoods_and_picks_pictures():
    from unsup.demo import _summary
    from unsup.likelihood import Likelihood

    models = Report("models")
    for title in ("RBM", "GMM"):
        with models.section(title):
            models.heading("2-D projection", 3)
            models.figure(Figure(figsize=(1, 1)), caption=f"{title} projection")
            models.heading("Samples", 3)
            models.figure(Figure(figsize=(1, 1)), caption=f"{title} samples")
    disc = Likelihood(-90.0, "stochastic estimate", "forward AIS", "discrete", 100, 784,
                      transform="binarised at 0.5").to_dict()
    cont = Likelihood(370.0, "exact", "closed form", "continuous", 100).to_dict()
    rows = [{"model": "RBM", "test log-likelihood (nats/sample)": -90.0, "test accuracy": None},
            {"model": "GMM", "test log-density (continuous, nats/sample)": 370.0,
             "test accuracy": 0.5}]
    rep = Report("demo")
    _summary(rep, models, rows, [("RBM", disc), ("GMM", cont)], _FakeTrain(), "test set")
    html = rep.to_html()
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    assert len(tables) == 3
    assert "log-likelihood" not in tables[0] and "log-density" not in tables[0]
    lk = {t: re.findall(r"<td>(RBM|GMM)</td>", t) for t in tables[1:]}
    assert sorted(v[0] for v in lk.values()) == ["GMM", "RBM"]  # one model per data kind
    assert all(len(v) == 1 for v in lk.values())
    assert "binarised at 0.5" in html
    gallery = re.search(r'<div class="gallery">.*?</div>', html, re.S).group(0)
    assert gallery.count("<img") == 2 and gallery.count("<br>Samples</figcaption>") == 2


class _FakeTrain:
    X = np.zeros((10, 4))


def test_demo_scores_on_the_real_test_set(tmp_path, monkeypatch):
    """No ../shared, no UNSUP_MNIST_DIR: the demo still tests on MNIST test digits (the packaged
    copy), none of which is a training row."""
    from unsup.data import datasets as ds_mod
    from unsup.data import load
    from unsup.demo import _data

    monkeypatch.delenv("UNSUP_MNIST_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ds_mod, "_PROJECT_ROOT", tmp_path / "project")
    train, test, name = _data(quick=True)
    assert "MNIST test set" in name and len(test.X) == 1000
    full = {r.tobytes() for r in load("mnist-test").X}
    assert all(r.tobytes() in full for r in test.X)
    assert not {r.tobytes() for r in train.X} & full


def test_metric_rows_put_train_and_test_side_by_side():
    from unsup.report.sections import metric_rows

    rows = metric_rows({"fit_seconds": 3.0, "train": {"nmi": 0.5, "acc": 0.25},
                        "test": {"nmi": 0.4, "sub": {"k": 1}}})
    assert rows == [
        {"metric": "fit_seconds", "train": None, "test": None, "value": 3.0},
        {"metric": "nmi", "train": 0.5, "test": 0.4, "value": None},
        {"metric": "acc", "train": 0.25, "test": None, "value": None},
        {"metric": "sub.k", "train": None, "test": 1, "value": None},
    ]
    assert metric_rows({"nmi": 0.5}) == [{"metric": "nmi", "value": 0.5}]
