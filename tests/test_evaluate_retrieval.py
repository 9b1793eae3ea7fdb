"""`unsup evaluate RUN --retrieval`: held-out queries against the run's training data."""

from __future__ import annotations

import json

import pytest

from unsup.cli import main


def _run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_retrieval_is_measured_and_recorded(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    code, _, err = _run(["fit", "pca", "--data", "mnist5k", "--out", out, "--n-components", "16",
                         "-q"], capsys)
    assert code == 0, err
    before = (out / "model.safetensors").read_bytes()
    code, text, err = _run(["evaluate", out, "--data", "mnist-test", "--retrieval", "--json"],
                           capsys)
    assert code == 0, err
    r = json.loads(text)["retrieval"]
    # 16 PCA components of MNIST retrieve same-digit neighbours far above chance (0.1)
    assert r["database"] == "mnist5k" and r["queries"] == "mnist-test"
    assert 0.3 < r["map"] <= 1.0 and 0.5 < r["precision@100"] <= 1.0
    assert (out / "model.safetensors").read_bytes() == before
    recorded = json.loads((out / "metrics.json").read_text())["evaluate"]["retrieval"]
    assert recorded["map"] == pytest.approx(r["map"]) and "pr_curve" in recorded


def test_retrieval_needs_held_out_labelled_queries(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert _run(["fit", "pca", "--data", "mnist5k", "--out", out, "--n-components", "4", "-q"],
                capsys)[0] == 0
    code, _, err = _run(["evaluate", out, "--data", "mnist5k", "--retrieval"], capsys)
    assert code != 0 and "held-out" in err
