"""CharRNN: exact likelihood, TBPTT, sampling, Mario levels, persistence, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import unsup
from unsup.autoregressive import CharRNN
from unsup.autoregressive._mario import pipe_counts, tile_frequencies, total_variation
from unsup.data.sequences import (
    build_vocabulary,
    level_to_sequence,
    mario_levels,
    mario_tiles,
    read_texts,
    sequence_to_level,
    tiny_shakespeare,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "abcab cabba cab. " * 20


def _small(**kw):
    p = dict(hidden_size=16, embedding_dim=8, seq_length=8, segment_length=40, epochs=3,
             random_state=0, device="cpu")
    p.update(kw)
    return CharRNN(**p)


@pytest.fixture(scope="module")
def text_model():
    return _small().fit(TEXT)


# -- exactness ---------------------------------------------------------------------------------
def test_probabilities_of_all_sequences_sum_to_one(text_model):
    """Σ over all V^T strings of length T of p(x) = 1 (V = 5 symbols, T = 4: 625 strings)."""
    voc = text_model.vocabulary_
    assert voc == " .abc"
    every = ["".join(t) for t in itertools.product(voc, repeat=4)]
    total = np.exp(text_model.score_samples(every)).sum()
    assert total == pytest.approx(1.0, abs=1e-5)


def test_ids_probabilities_sum_to_one_and_likelihood_is_typed():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, (60, 5))
    m = _small(seq_length=2).fit(X)
    every = np.array(list(itertools.product(range(3), repeat=5)))
    assert np.exp(m.score_samples(every)).sum() == pytest.approx(1.0, abs=1e-5)
    lk = m.log_likelihood(X)
    assert lk.kind == "exact" and lk.support == "discrete" and lk.n_dims == 5
    assert lk.counts["nats_per_char"] == pytest.approx(-lk.nats / 5)
    assert lk.counts["bits_per_char"] == pytest.approx(lk.bits_per_dim)


def test_it_learns_a_periodic_text():
    """A period-4 string is predictable after its first symbols: far below log 4 nats."""
    m = _small(hidden_size=24, epochs=25, learning_rate=1e-2).fit("abcd" * 100)
    lk = m.log_likelihood(["abcd" * 25])
    assert lk.counts["nats_per_char"] < 0.1 < math.log(4)


# -- TBPTT -------------------------------------------------------------------------------------
def test_tbptt_carries_the_state_and_truncates_gradients(text_model):
    m = text_model
    assert m.segment_length_ == 40 and m._n_chunks == 5
    assert m._phases()[0].repeat == 5
    from unsup.autoregressive._seq_data import training_rows

    ids = [np.array([m.vocabulary_.index(c) for c in TEXT[:200]])]
    batch = torch.as_tensor(training_rows(ids, m.n_symbols_, 40))[:4]
    m.module_.eval()  # no dropout: chunked and whole-row losses must agree exactly
    m._tb_j = 0
    chunk = [float(m._chunk_loss(batch).detach()) for _ in range(5)]
    assert m._tb_j == 0  # the next call starts a new minibatch from the zero state
    assert not m._tb_state[0].requires_grad  # the carried state is detached
    with torch.no_grad():
        whole = float(m._val_loss(batch))
    assert np.mean(chunk) == pytest.approx(whole, rel=1e-5)  # the state went on across chunks
    # with the state reset at every chunk the losses differ: carrying it matters
    reset = []
    for j in range(5):  # each chunk alone (columns 8j .. 8j+8), from the zero state
        m._tb_j = 0
        reset.append(float(m._chunk_loss(batch[:, 8 * j:8 * j + 9]).detach()))
    assert abs(np.mean(reset) - whole) > 1e-3


def test_resume_continues_exactly(tmp_path):
    full = _small(epochs=2).fit(TEXT)
    a = _small(epochs=1, checkpoint_dir=str(tmp_path), resume=True).fit(TEXT)
    b = a.set_params(epochs=2).fit(TEXT)
    np.testing.assert_allclose(b.score_samples([TEXT[:50]]), full.score_samples([TEXT[:50]]),
                               rtol=1e-6)


# -- sampling ----------------------------------------------------------------------------------
def test_temperature_to_zero_is_argmax(text_model):
    m = text_model
    greedy = m.sample(3, random_state=0, temperature=0.0, length=40)
    assert len(set(greedy)) == 1  # argmax is deterministic
    for seed in range(3):
        assert m.sample(3, random_state=seed, temperature=1e-4, length=40)[0] == greedy[0]
    # the argmax by hand, one step at a time
    x = torch.tensor([[m.n_symbols_]])
    state, out = None, ""
    with torch.no_grad():
        for _ in range(40):
            logits, state = m.module_(x, state)
            k = int(logits[0, -1].argmax())
            out += m.vocabulary_[k]
            x = torch.tensor([[k]])
    assert greedy[0] == out
    hot = m.sample(3, random_state=0, temperature=5.0, length=40)
    assert len(set(hot)) == 3


def test_priming_string_is_respected(text_model):
    m = text_model
    s = m.sample(4, random_state=1, prime="cab", length=20)
    assert all(x.startswith("cab") and len(x) == 23 for x in s)
    # greedy after the prime = greedy from the state the prime leads to
    g = m.sample(1, prime="cab", temperature=0, length=10)[0]
    with torch.no_grad():
        ids = [m.n_symbols_] + [m.vocabulary_.index(c) for c in "cab"]
        logits, _ = m.module_(torch.tensor([ids]))
    assert g[3] == m.vocabulary_[int(logits[0, -1].argmax())]
    with pytest.raises(ValueError, match="unknown character"):
        m.sample(1, prime="xyz")


def test_sampling_is_seeded(text_model):
    a = text_model.sample(2, random_state=3, length=30)
    np.testing.assert_array_equal(a, text_model.sample(2, random_state=3, length=30))


# -- Super Mario levels ------------------------------------------------------------------------
def test_mario_corpus_and_column_encoding_round_trip():
    levels = mario_levels()
    assert len(levels) == 18
    for name, grid in levels.items():
        rows = grid.split("\n")
        assert len(rows) == 14, name
        seq = level_to_sequence(grid)
        assert len(seq) == 15 * len(rows[0])
        assert seq[:14] == "".join(r[0] for r in reversed(rows))  # column 0, bottom to top
        back, n_exact, n_cols = sequence_to_level(seq)
        assert back == grid and n_exact == n_cols == len(rows[0])
    assert set(mario_tiles()) >= set("".join(levels.values()).replace("\n", ""))


def test_pipe_checker_finds_the_89_pipes_of_the_corpus():
    counts = np.sum([pipe_counts(g) for g in mario_levels().values()], axis=0)
    assert tuple(counts) == (89, 0)
    # malformed: floating, half, headless
    assert pipe_counts("----\n-<>-\n----\nXXXX") == (0, 1)
    assert pipe_counts("----\n-<--\n-[]-\nXXXX") == (0, 2)
    assert pipe_counts("----\n-[]-\n-[]-\nXXXX") == (0, 1)
    assert pipe_counts("----\n-[--\n--]-\nXXXX") == (0, 2)
    assert pipe_counts("-<>-\n-[]-\n-[]-\nXXXX") == (1, 0)
    assert pipe_counts("-<>-\n-[]-\n-[]-\n-[]-") == (1, 0)  # resting on the bottom row


def test_tile_frequencies_and_total_variation():
    p = tile_frequencies(["XX\n--"])
    assert p == {"-": 0.5, "X": 0.5}
    assert total_variation(p, p) == 0
    assert total_variation(p, {"E": 1.0}) == pytest.approx(1.0)


def test_columns_layout_samples_levels():
    levels = [g for g in mario_levels().values()][:2]
    crop = ["\n".join(r[:30] for r in g.split("\n")) for g in levels]
    m = _small(layout="columns", epochs=2, segment_length=150, seq_length=30).fit(crop)
    assert m.n_rows_ == 14 and m.n_columns_ == 30
    s = m.sample(2, random_state=0)
    for g in s:
        rows = g.split("\n")
        assert len(rows) == 14 and {len(r) for r in rows} == {30}
    seqs = m.sample_sequences(2, random_state=0)
    assert all(sequence_to_level(q)[0] == g for q, g in zip(seqs, s, strict=True))
    lk = m.log_likelihood(crop)
    assert lk.counts["n_chars"] == 2 * 30 * 15
    from unsup.report import model_report

    html = model_report(m, crop).to_html()  # the section: likelihood table and a tile map
    assert "Char-RNN samples and likelihood" in html and "bits/char" in html
    assert html.count("<img") >= 1


def test_grid_context_values_on_a_tiny_level():
    """Columns "ab|" "ba|" "a|" (end = 2, V = 3): the row of every symbol and its left
    neighbour, read off the symbols before it only."""
    from unsup.autoregressive._seq_data import grid_context

    s = np.array([0, 1, 2, 1, 0, 2, 0, 2])
    c = grid_context(s, end=2, n_symbols=3)
    np.testing.assert_array_equal(c[:, 0], [0, 1, 2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(c[:, 1], [3, 3, 3, 0, 1, 2, 1, 0])
    # no symbol's context depends on itself or later symbols
    for t in range(len(s)):
        changed = s.copy()
        changed[t:] = 0
        np.testing.assert_array_equal(grid_context(changed, 2, 3)[:t + 1], c[:t + 1])


def test_grid_sampler_contexts_equal_the_batch_contexts():
    from unsup.autoregressive._seq_data import grid_context
    from unsup.autoregressive._seq_sample import _column_starts, _next_context

    rng = np.random.default_rng(0)
    for _ in range(30):
        s = rng.choice([0, 1, 2], size=30, p=[0.4, 0.4, 0.2]).tolist()
        k = int(rng.integers(0, 8))
        full = grid_context(np.array([*s, 2]), 2, 3)
        hist, starts = [[v] for v in s[:k]], [_column_starts(s[:k], 2)]
        for t in range(k, len(s)):
            hist.append([s[t]])
            assert tuple(_next_context(hist, 2, 3, starts)[0, 0]) == tuple(full[t + 1])


def test_grid_model_is_exact_and_round_trips(tmp_path):
    """With the grid context the probabilities of all V^3 id sequences still sum to one, and
    the model file restores the same likelihoods and samples."""
    levels = [g for g in mario_levels().values()][:2]
    crop = ["\n".join(r[:12] for r in g.split("\n")) for g in levels]
    m = _small(layout="columns", epochs=1, segment_length=90, seq_length=30).fit(crop)
    assert m.module_.grid and m.get_params()["context"] == "auto"
    V = m.n_symbols_
    every = [np.array(t) for t in itertools.product(range(V), repeat=3)]
    assert np.exp(m._log_probs(every)).sum() == pytest.approx(1.0, abs=1e-5)
    assert not _small(layout="columns", context="sequence")._grid()
    m.save(tmp_path / "g.safetensors")
    back = unsup.load(tmp_path / "g.safetensors")
    np.testing.assert_array_equal(back.score_samples(crop), m.score_samples(crop))
    np.testing.assert_array_equal(back.sample(2, random_state=1), m.sample(2, random_state=1))
    with pytest.raises(ValueError, match='needs layout="columns"'):
        _small(context="grid").fit(TEXT)


def test_report_section_on_text(text_model):
    from unsup.report import model_report

    html = model_report(text_model, [TEXT[:60]]).to_html()
    assert "Char-RNN samples and likelihood" in html and "nats/char" in html
    assert "τ" in html


# -- data, persistence, bad input --------------------------------------------------------------
def test_read_texts(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    assert read_texts(tmp_path) == ["first", "second"]
    assert read_texts(tmp_path / "b.txt") == ["second"]
    assert read_texts(["x", "y"]) == ["x", "y"]
    with pytest.raises(ValueError, match="no text"):
        read_texts([""])
    with pytest.raises(ValueError, match="neither a file nor a folder"):
        read_texts(tmp_path / "missing.txt")
    t = tiny_shakespeare()
    assert len(t) == 1115394 and len(build_vocabulary([t])) == 65


def test_save_load_round_trip(text_model, tmp_path):
    path = tmp_path / "m.safetensors"
    text_model.save(path)
    m = unsup.load(path)
    assert m.vocabulary_ == text_model.vocabulary_ and m.input_kind_ == "text"
    X = [TEXT[:30], "abc"]
    np.testing.assert_array_equal(m.score_samples(X), text_model.score_samples(X))
    np.testing.assert_array_equal(m.sample(3, random_state=0), text_model.sample(3,
                                                                                random_state=0))


def test_bad_input_errors(text_model):
    with pytest.raises(ValueError, match="unknown character 'z' at position 2"):
        _small(vocabulary="ab").fit(["abz"])
    with pytest.raises(ValueError, match="unknown character"):
        text_model.score_samples(["abX"])
    for empty in ("", [""], ["", ""]):
        with pytest.raises(ValueError, match="empty text"):
            _small().fit(empty)
    with pytest.raises(ValueError, match="fitted on text"):
        text_model.score_samples(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Negative values"):
        _small().fit(-np.ones((3, 4)))
    with pytest.raises(ValueError, match="non-integer"):
        _small().fit(np.full((3, 4), 0.5))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        _small(vocabulary=2).fit(np.full((3, 4), 2))
    with pytest.raises(ValueError, match="distinct single characters"):
        _small(vocabulary="aab").fit(["ab"])
