"""The demo's t-SNE map goes to the representation with the best linear probe."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from unsup.decomposition import PCA
from unsup.demo import _tsne_of_best
from unsup.report import Report


def test_tsne_map_of_the_best_probe():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    X = rng.normal(size=(120, 10)) + 4 * np.eye(10)[y]
    good, bad = PCA(2).fit(X), PCA(1).fit(X)
    fitted = [("weak codes", bad, {}), ("strong codes", good, {})]
    rows = [{"model": "weak codes", "test linear-probe accuracy": 0.5},
            {"model": "k-means", "test linear-probe accuracy": None},
            {"model": "strong codes", "test linear-probe accuracy": 0.9}]
    r = Report("demo")
    _tsne_of_best(r, fitted, rows, SimpleNamespace(X=X, y=y))
    html = r.to_html()
    assert "best representation by linear probe (strong codes, 90.0%)" in html
    assert html.count('<img src="data:image/png;base64,') == 1


def test_no_map_without_a_representation():
    r = Report("demo")
    _tsne_of_best(r, [], [{"model": "k-means", "test linear-probe accuracy": None}],
                  SimpleNamespace(X=np.zeros((3, 2)), y=np.zeros(3)))
    assert "t-SNE" not in r.to_html()
