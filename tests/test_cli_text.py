"""The command line on text: `unsup fit char-rnn --data FILE.txt | FOLDER | CORPUS`, evaluate
(nats and bits per character), sample and report on such runs; numeric models refuse text."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import unsup
from unsup.cli import main
from unsup.data.sequences import load_text, mario_levels, sequence_to_level, text_corpora

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--hidden-size", 12, "--embedding-dim", 6, "--seq-length", 8, "--segment-length", 40,
         "--epochs", 2, "--random-state", 0, "--device", "cpu", "-q"]


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    (d / "train").mkdir()
    (d / "train" / "a.txt").write_text("the cat sat on the mat.\n" * 3)
    (d / "train" / "b.txt").write_text("a dog sat on a log.\n" * 3)
    (d / "held.txt").write_text("the dog sat on the cat.\n")
    return d


@pytest.fixture(scope="module")
def text_run(text_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cr"
    code = main([str(a) for a in ["fit", "char-rnn", "--data", text_files / "train",
                                  "--test-data", text_files / "held.txt", "--out", out,
                                  *SMALL]])
    assert code == 0
    return out


def test_fit_on_a_folder_records_text_and_the_vocabulary_round_trips(text_run, text_files):
    run = json.loads((text_run / "run.json").read_text())
    assert run["input"] == "text" and run["n_samples"] == 2
    assert run["n_chars"] == 3 * len("the cat sat on the mat.\n") + 3 * len("a dog sat on a log.\n")
    assert run["n_features"] is None and run["image_shape"] is None
    model = unsup.load(text_run / "model.safetensors")
    texts = load_text(text_files / "train").texts
    assert model.input_kind_ == "text"
    assert model.vocabulary_ == "".join(sorted(set("".join(texts))))
    # the test metrics of fit are the Python API's exact likelihood of the held-out file
    held = (text_files / "held.txt").read_text()
    lk = model.log_likelihood([held])
    test = json.loads((text_run / "metrics.json").read_text())["test"]
    assert test["n_chars"] == len(held)
    assert test["nats_per_char"] == pytest.approx(-model.score([held]) / len(held), abs=1e-6)
    assert test["log_likelihood"] == pytest.approx(lk.nats, abs=1e-6)
    assert test["log_likelihood_kind"] == "exact"


def test_evaluate_gives_nats_and_bits_per_character(text_run, text_files, capsys):
    code, out, err = run(["evaluate", text_run, "--data", text_files / "held.txt", "--json"],
                         capsys)
    assert code == 0, err
    ev = json.loads(out)
    model = unsup.load(text_run / "model.safetensors")
    held = (text_files / "held.txt").read_text()
    npc = -float(model.score_samples([held])[0]) / len(held)
    assert ev["nats_per_char"] == pytest.approx(npc, abs=1e-6)
    assert ev["bits_per_char"] == pytest.approx(npc / math.log(2), abs=1e-6)
    # 2 epochs of a 12-unit LSTM: better than nothing, worse than perfect
    assert 0 < ev["nats_per_char"] < math.log(len(model.vocabulary_)) + 0.5
    # a character the run never saw: one line, naming it
    bad = text_files / "bad.txt"
    bad.write_text("the zebra")
    code, _, err = run(["evaluate", text_run, "--data", bad], capsys)
    assert code == 2 and "unknown character 'z'" in err and "Traceback" not in err
    code, _, err = run(["evaluate", text_run, "--data", text_files / "held.txt", "--fid"],
                       capsys)
    assert code == 2 and "--fid is for numeric data" in err


def test_sample_and_report_on_a_text_run(text_run, tmp_path, capsys):
    out = tmp_path / "s.txt"
    code, _, err = run(["sample", text_run, "--n", 3, "--out", out, "--seed", 1], capsys)
    assert code == 0, err
    model = unsup.load(text_run / "model.safetensors")
    expected = model.sample(3, random_state=1)
    assert out.read_text() == "\n\n".join(str(s) for s in expected) + "\n" or \
        out.read_text() == "\n".join(str(s) for s in expected) + "\n"
    assert set(out.read_text()) <= set(model.vocabulary_) | {"\n"}
    code, _, err = run(["report", text_run, "--out", tmp_path / "r.html"], capsys)
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    assert "Char-RNN samples and likelihood" in html and "nats/char" in html


def test_corpus_name_and_the_mario_layout(tmp_path, capsys):
    names = dict(text_corpora())
    assert {"tinyshakespeare", "tinyshakespeare-train", "tinyshakespeare-valid", "mario",
            "mario-train", "mario-test"} <= set(names)
    levels = list(mario_levels().values())
    assert load_text("vglc-smb").texts == levels and load_text("mario-test").texts == levels[15:]
    out = tmp_path / "mario"
    code, _, err = run(["fit", "char-rnn", "--data", "mario-test", "--out", out,
                        "--hidden-size", 8, "--embedding-dim", 4, "--epochs", 1,
                        "--random-state", 0, "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    run_ = json.loads((out / "run.json").read_text())
    # the corpus is read as grids (column by column) unless --layout says otherwise
    assert run_["params"]["layout"] == "columns" and "--layout columns" in run_["command"]
    model = unsup.load(out / "model.safetensors")
    assert model.n_rows_ == 14
    m = json.loads((out / "metrics.json").read_text())["train"]
    # characters = tiles + one column end per column
    assert m["n_chars"] == sum(len(g.replace("\n", "")) + len(g.split("\n")[0])
                               for g in levels[15:])
    s = tmp_path / "lv.txt"
    code, _, err = run(["sample", out, "--n", 2, "--out", s], capsys)
    assert code == 0, err
    grids = s.read_text().rstrip("\n").split("\n\n")
    assert len(grids) == 2 and all(len(g.split("\n")) == 14 for g in grids)


def test_numeric_models_refuse_text_in_one_line(text_files, tmp_path, capsys):
    for data in (text_files / "held.txt", text_files / "train", "tinyshakespeare"):
        code, _, err = run(["fit", "kmeans", "--data", data, "--out", tmp_path / "km"], capsys)
        assert code == 2 and "is text, but KMeans takes numeric arrays" in err
        assert "char-rnn" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_text_model_on_an_id_array_still_works(tmp_path, capsys):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 3, (30, 6))
    np.save(tmp_path / "ids.npy", ids)
    out = tmp_path / "ids"
    code, _, err = run(["fit", "char-rnn", "--data", tmp_path / "ids.npy", "--out", out,
                        *SMALL], capsys)
    assert code == 0, err
    model = unsup.load(out / "model.safetensors")
    assert model.input_kind_ == "ids" and model.n_symbols_ == 3
    code, text, err = run(["evaluate", out, "--json"], capsys)
    assert code == 0, err
    assert json.loads(text)["log_likelihood"] == pytest.approx(model.score(ids.astype(float)),
                                                               abs=1e-6)
    # text for an id model, and ids test data for a text fit, are refused in one line
    code, _, err = run(["evaluate", out, "--data", "mario-test"], capsys)
    assert code == 2 and "fitted on symbol ids" in err
    code, _, err = run(["fit", "char-rnn", "--data", "mario-test", "--test-data",
                        tmp_path / "ids.npy", "--out", tmp_path / "mix", *SMALL], capsys)
    assert code == 2 and "both be text or both be arrays" in err


def test_levels_written_back_are_grids():
    g, exact, n = sequence_to_level("XX" + "-" * 12 + "\n" + "X" * 14 + "\n")
    assert (exact, n) == (2, 2) and g.split("\n")[-1] == "XX"


def test_fit_help_names_the_text_sources(capsys):
    code, out, _ = run(["fit", "char-rnn", "--help"], capsys)
    assert code == 0 and "tinyshakespeare-valid" in out and ".txt" in out
    code, out, _ = run(["fit", "kmeans", "--help"], capsys)
    assert code == 0 and "tinyshakespeare" not in out
