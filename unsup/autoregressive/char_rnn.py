r"""The character-level recurrent language model (char-RNN; Karpathy 2015, Graves 2013).

A sequence :math:`x_1 \dots x_T` of symbols from a vocabulary of size V has the exact
probability of the chain rule

.. math::

    p(x_{1:T}) = \prod_{t=1}^T p(x_t \mid x_{<t}), \qquad
    p(\cdot \mid x_{<t}) = \operatorname{softmax}(W h_t + b), \quad
    h_t = \mathrm{RNN}(e(x_{t-1}), h_{t-1}),

with :math:`x_0` a start symbol, :math:`h_0 = 0`, :math:`e` an embedding and RNN a stacked
LSTM (Hochreiter & Schmidhuber 1997) or GRU (Cho et al. 2014). For a fixed length T the
probabilities of all :math:`V^T` sequences sum to one, so ``score_samples`` (nats per
sequence) and ``log_likelihood`` (kind "exact"; nats and bits per character in ``counts``)
are exact, not bounds.

Training minimises the cross-entropy :math:`-\frac1N \sum_t \log p(x_t \mid x_{<t})` by
truncated backpropagation through time (TBPTT; Williams & Peng 1990): the training sequences
are cut into rows of ``segment_length`` symbols; one engine step takes a minibatch of rows and
makes ``ceil(segment_length / seq_length)`` optimiser updates, one per consecutive chunk of
``seq_length`` symbols, each starting from the hidden state the previous chunk ended in,
*detached* (gradients stop at the chunk boundary; the state itself carries on). This runs on
the gradient engine unchanged: the step is one phase repeated once per chunk
(:class:`unsup.train.steps.Phase`, ``repeat``), and the phase's loss moves to the next chunk
on every call, so checkpoints, resume, clipping, schedules and logs are the engine's. Rows
start from the zero state with the symbol before them as input (the start symbol for a
sequence's first row).

Sampling draws :math:`x_t \sim \operatorname{softmax}((W h_t + b) / τ)` after running the
model over a priming string; τ → 0 is greedy decoding (τ = 0 is the argmax exactly), τ > 1
flattens the distribution. With ``layout="columns"`` each input string is a grid (a Super
Mario Bros. level of :func:`unsup.data.sequences.mario_levels`), read column by column, bottom
to top, each column ended by a newline (Summerville & Mateas 2016), and ``sample`` writes
new levels back as grids.

Grid context (``context="auto"`` with layout "columns"): read as a string, a level hides its
two-dimensional structure: the tile to the left of ``x_t`` is ``n_rows + 1`` symbols back,
and where a column ends must be counted. So each step's input is the sum of three embeddings,

.. math::

    h_t = \mathrm{RNN}\big(e(x_{t-1}) + e_{\text{row}}(r_t) + e_{\text{left}}(l_t),\,
    h_{t-1}\big),

with :math:`r_t` the row of :math:`x_t` in its column (the number of symbols since the last
column end) and :math:`l_t` the symbol at that row of the previous column ("none" in the first
column). Both are functions of :math:`x_{<t}` alone, so this is still the chain rule and the
likelihood stays exact (a test sums it to one); the column end stays a symbol the model must
predict. Without it (``context="sequence"``, the plain char-RNN) a pipe's right half must be
recalled 15 symbols back; measured on the 18 levels, 62.5% of sampled pipes were well formed
and 98.8% of columns had 14 tiles; with it, see ``docs/char-rnn.md``.

References
----------
.. [1] Karpathy, "The Unreasonable Effectiveness of Recurrent Neural Networks", 2015;
   github.com/karpathy/char-rnn.
.. [2] Graves, "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850, 2013.
.. [3] Williams & Peng, "An efficient gradient-based algorithm for on-line training of
   recurrent network trajectories", Neural Computation 2(4), 1990.
.. [4] Summerville & Mateas, "Super Mario as a String: Platformer Level Generation Via
   LSTMs", DiGRA/FDG 2016.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unsup._io_checks import A
from unsup.autoregressive import _seq_data as sd
from unsup.autoregressive._seq_net import CharRNNNet, detach_state
from unsup.autoregressive._seq_sample import chain_log_probs, draw
from unsup.data.sequences import MARIO_EMPTY, decode, sequence_to_level
from unsup.likelihood import Likelihood
from unsup.params import Interval, StrOptions
from unsup.registry import Demo, register_model
from unsup.train import TRAIN_PARAMS_DOC, GradientEstimator
from unsup.train.seeding import seed_from
from unsup.train.steps import Phase

__all__ = ["CharRNN"]

_pos = Interval(Integral, 1, None, closed="left")


def _state_shapes(params: dict[str, Any], fitted: dict[str, Any]) -> dict[str, Any]:
    """Model files: integer input ties the row width to an array (``position_counts_``)."""
    base: dict[str, Any] = {"__fitted__": ("input_kind_", "n_symbols_")}
    if fitted.get("input_kind_") == "ids":
        base["position_counts_"] = A("i64", "n_features_in_", "n_symbols_")
    return base


def _mario_demo_data(quick: bool) -> tuple[str, list[str], list[str]]:
    """The demo's data: the first 15 Mario levels to train on, the last 3 to score."""
    from unsup.data.sequences import mario_levels

    levels = list(mario_levels().values())
    return "Super Mario Bros. levels (VGLC): 15 to train, 3 to test", levels[:15], levels[15:]


@register_model("char-rnn", family="autoregressive", aliases=("charrnn",),
                summary="character-level LSTM/GRU language model (TBPTT, exact likelihood)",
                demo=Demo("char-RNN on Super Mario levels (LSTM, read column by column, bottom "
                          "to top, with the grid context)",
                          params={"layout": "columns", "hidden_size": 256, "dropout": 0.1,
                                  "epochs": 120, "batch_size": 16, "random_state": 0},
                          quick={"hidden_size": 64, "epochs": 2}, order=90,
                          data=_mario_demo_data))
class CharRNN(GradientEstimator):
    """Character-level recurrent language model (LSTM or GRU) with an exact likelihood.

    Parameters
    ----------
    cell : {"lstm", "gru"}, default="lstm"
    hidden_size : int, default=384
        Units per recurrent layer.
    n_layers : int, default=1
        Stacked recurrent layers (1 to 64).
    embedding_dim : int, default=64
        Size of the symbol embedding.
    dropout : float, default=0.0
        Dropout on the recurrent outputs (between layers and before the softmax head).
    seq_length : int, default=100
        TBPTT truncation: symbols per chunk (per optimiser update).
    segment_length : int, default=1000
        Symbols per training row; the hidden state is carried over its chunks (reset between
        rows). Shorter sequences make shorter rows.
    layout : {"text", "columns"}, default="text"
        "columns": every string is a grid of rows (a level), read column by column, bottom to
        top, each column ended by a newline; ``sample`` returns grids.
    context : {"auto", "sequence", "grid"}, default="auto"
        Inputs of every step. "sequence": the previous symbol. "grid" (layout "columns"):
        also the row of the symbol to predict in its column and its left neighbour (the symbol
        at that row of the previous column), both read off the symbols before it, so the
        likelihood stays exact. "auto": "grid" for layout "columns", else "sequence".
    vocabulary : str, sequence of str, int or None, default=None
        The symbols: characters (a string or list), or for integer input the number of ids.
        None: the characters (or ids 0..max) of the training data. Characters outside a
        given vocabulary are an error.
    temperature : float, default=1.0
        Default sampling temperature τ (0: greedy).
    sample_length : int or None, default=None
        Default length of ``sample``: symbols after the prime (text; None: 200), columns
        (layout "columns"; None: the median width of the training levels) or, for integer
        input, the row width (None: ``n_features_in_``).
    epochs : int, default=7
        Sized for a default fit under 10 minutes of one CPU core on Tiny Shakespeare (1M
        characters): the 15 epochs of before took ~935 CPU s and validation cross-entropy was
        best after epoch 7 (it overfits after epoch 10; docs/char-rnn.md).
    batch_size : int, default=32
        Rows (of ``segment_length`` symbols) per minibatch.
    learning_rate : float, default=0.002
    clip_grad_norm : float, default=5.0
    {train_params}

    Attributes
    ----------
    vocabulary_ : str or None
        The characters (symbol ``i`` is ``vocabulary_[i]``); None for integer input.
    n_symbols_ : int
    input_kind_ : str
        "text" or "ids": what ``fit`` was given (and what the other methods take).
    n_rows_, n_columns_ : int
        Layout "columns": the grids' height and median width.
    module_ : CharRNNNet
    """

    _parameter_constraints: dict[str, Any] = {
        "cell": [StrOptions({"lstm", "gru"})],
        "hidden_size": [_pos], "embedding_dim": [_pos],
        # a sanity bound: a model file claiming 10^9 layers must not build 10^9 modules
        "n_layers": [Interval(Integral, 1, 64, closed="both")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "seq_length": [_pos], "segment_length": [_pos],
        "layout": [StrOptions({"text", "columns"})],
        "context": [StrOptions({"auto", "sequence", "grid"})],
        "vocabulary": [str, list, tuple, _pos, None],
        "temperature": [Interval(Real, 0, None, closed="left")],
        "sample_length": [_pos, None],
    }
    _test_params: dict[str, Any] = {"hidden_size": 8, "embedding_dim": 4, "seq_length": 4,
                                    "epochs": 2}
    _test_data = "counts"
    _likelihood_support = "discrete"
    # `unsup fit char-rnn --data` takes text (a .txt file, a folder, a corpus) or id arrays
    _input_kinds = ("text", "array")
    _stage_name = "CharRNN"
    _expected_failed_checks: dict[str, str] = {}
    # files written before the grid context existed were plain sequence models
    _params_added_later = {"context": "sequence"}
    _state_shapes = staticmethod(_state_shapes)

    def __init__(self, cell: str = "lstm", *, hidden_size: int = 384, n_layers: int = 1,
                 embedding_dim: int = 64, dropout: float = 0.0, seq_length: int = 100,
                 segment_length: int = 1000, layout: str = "text", context: str = "auto",
                 vocabulary: Any = None,
                 temperature: float = 1.0, sample_length: int | None = None,
                 epochs: int = 7, batch_size: int = 32, learning_rate: float = 2e-3,
                 clip_grad_norm: float | None = 5.0) -> None:
        super().__init__()
        self.cell = cell
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.seq_length = seq_length
        self.segment_length = segment_length
        self.layout = layout
        self.context = context
        self.vocabulary = vocabulary
        self.temperature = temperature
        self.sample_length = sample_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.clip_grad_norm = clip_grad_norm

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True  # an array holds symbol ids
        tags.input_tags.positive_only = True
        return tags

    # -- data ---------------------------------------------------------------------------------
    def _sequences(self, X: Any, reset: bool) -> list[np.ndarray]:
        """Symbol-id sequences of ``X`` (text or a 2-D id array); on ``reset`` also learn the
        vocabulary and the input kind."""
        if not reset:
            self._check_fitted()
        if sd.is_text(X):
            if not reset and self.input_kind_ != "text":
                raise ValueError("this CharRNN was fitted on symbol ids: pass a 2-D array of "
                                 "ids, not text")
            texts, heights = sd.text_sequences(X, self.layout)
            voc = None if reset else self.vocabulary_
            if reset and self.vocabulary is not None:
                if isinstance(self.vocabulary, Integral):
                    raise ValueError("an integer vocabulary (a number of ids) is for id "
                                     "arrays; give text a string of characters")
                voc = self.vocabulary
            ids, voc = sd.text_ids(texts, voc, reset)
            if reset:
                self.input_kind_, self.vocabulary_, self.n_symbols_ = "text", voc, len(voc)
                for k in ("n_features_in_", "position_counts_", "n_rows_", "n_columns_"):
                    self.__dict__.pop(k, None)  # from an earlier fit on other input
                if heights:
                    self.n_rows_ = int(np.bincount(heights).argmax())
                    self.n_columns_ = int(np.median([len(t.split("\n")[0]) for t in
                                                     ([X] if isinstance(X, str) else X)]))
            return ids
        if isinstance(X, (list, tuple)) and X and all(isinstance(v, str) for v in X[:1]):
            raise ValueError("a list of sequences must hold only strings")
        if not reset and self.input_kind_ != "ids":
            raise ValueError("this CharRNN was fitted on text: pass strings, not an array")
        t = self._validate(X, reset=reset, dtype=torch.float64)
        if reset:
            n = self.vocabulary
            if n is not None and not isinstance(n, Integral):
                raise ValueError("a numeric X holds symbol ids: give vocabulary as the number "
                                 "of ids (an int) or None")
            seqs = sd.id_sequences(t, None if n is None else int(n))
            self.input_kind_, self.vocabulary_ = "ids", None
            self.__dict__.pop("n_rows_", None)
            self.__dict__.pop("n_columns_", None)
            self.n_symbols_ = int(n) if n is not None else int(max(s.max() for s in seqs)) + 1
            counts = np.zeros((self.n_features_in_, self.n_symbols_), dtype=np.int64)
            for s in seqs:
                counts[np.arange(len(s)), s] += 1
            self.position_counts_ = counts  # symbol counts at every position of the rows
            return seqs
        return sd.id_sequences(t, self.n_symbols_)

    def _grid(self) -> bool:
        """Whether the network reads the grid context (row, left neighbour)."""
        if self.context == "grid" and self.layout != "columns":
            raise ValueError('context="grid" reads levels column by column: it needs '
                             'layout="columns"')
        return self.context == "grid" or (self.context == "auto" and self.layout == "columns"
                                          and getattr(self, "input_kind_", "text") == "text")

    def _end(self) -> int | None:
        """The column-end symbol when the grid context is read, else None."""
        if not self._grid():
            return None
        end = self.vocabulary_.find("\n") if isinstance(self.vocabulary_, str) else -1
        if end < 0:
            raise ValueError("the grid context needs the column end (a newline) in the "
                             "vocabulary")
        return end

    def _build_module(self) -> nn.Module:
        return CharRNNNet(int(self.n_symbols_), self.cell, int(self.hidden_size),
                          int(self.n_layers), int(self.embedding_dim), float(self.dropout),
                          grid=self._grid())

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        """Restore, refusing fitted values that contradict each other (untrusted files)."""
        kind, n = values.get("input_kind_"), values.get("n_symbols_")
        if kind not in ("text", "ids") or not isinstance(n, int) or n < 1:
            raise ValueError(f"input_kind_ {kind!r} / n_symbols_ {n!r} are not a char-RNN's")
        voc = values.get("vocabulary_")
        if kind == "text":
            if not (isinstance(voc, str) and len(voc) == n and len(set(voc)) == n):
                raise ValueError("vocabulary_ must be n_symbols_ distinct characters")
            if self.layout == "columns":
                for k in ("n_rows_", "n_columns_"):
                    if not isinstance(values.get(k), int) or values[k] < 1:
                        raise ValueError(f"{k} must be a positive integer")
        elif voc is not None or "n_features_in_" not in values:
            raise ValueError("a model of symbol ids has no vocabulary_ and has n_features_in_")
        super()._set_state(arrays, values)

    # -- training: TBPTT on the engine ----------------------------------------------------------
    def _phases(self) -> list[Phase] | None:
        return [Phase("tbptt", self._chunk_loss, repeat=self._n_chunks)]

    def _chunk_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the next chunk of the rows in ``batch``. The engine calls the
        phase ``_n_chunks`` times in a row on the same minibatch: call ``j`` reads chunk
        ``j``, starting from the (detached) state where chunk ``j - 1`` ended."""
        j = self._tb_j
        if j == 0:
            self._tb_state = None
        self._tb_j = (j + 1) % self._n_chunks
        k = int(self.seq_length)
        ids, ctx = sd.split_rows(batch, self._grid())
        S = ids.shape[1] - 1
        lo, hi = j * k, min(j * k + k, S)
        x = ids[:, lo:hi]
        y = ids[:, lo + 1:hi + 1]
        c = None if ctx is None else ctx[:, lo + 1:hi + 1]
        logits, state = self.module_(x.clamp(min=0), self._tb_state, c)
        self._tb_state = detach_state(state)  # truncation: the state goes on, gradients stop
        n = int((y != sd.PAD).sum())
        if n == 0:
            return logits.sum() * 0.0
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=sd.PAD, reduction="sum") / n

    def _val_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean nats per symbol of whole rows (state carried over every chunk)."""
        ids, ctx = sd.split_rows(batch, self._grid())
        x, y = ids[:, :-1], ids[:, 1:]
        logits, _ = self.module_(x.clamp(min=0), None, None if ctx is None else ctx[:, 1:])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=sd.PAD)

    def fit(self, X: Any, y: Any = None, callbacks: Any = None) -> CharRNN:
        """Train on ``X``: a string, a list of strings, or a 2-D array of symbol ids."""
        self._validate_params()
        self._seed = self._run_seed()
        seqs = self._sequences(X, reset=True)
        longest = max(len(s) for s in seqs)
        self.segment_length_ = seg = min(int(self.segment_length), longest)
        self._n_chunks = sd.n_chunks(seg, int(self.seq_length))
        self._tb_j, self._tb_state = 0, None
        rows = sd.training_rows(seqs, int(self.n_symbols_), seg, self._end())
        self.module_ = self._init_module()
        self._gen = self._make_generator()
        res = self._run(rows, self._train_config(), callbacks or (), val_loss=self._val_loss)
        self._record(res)
        return self

    # -- likelihood -------------------------------------------------------------------------------
    def _log_probs(self, seqs: list[np.ndarray]) -> np.ndarray:
        """Exact log p(x) of every sequence (nats, float64), by the chain rule."""
        return chain_log_probs(self.module_, seqs, int(self.n_symbols_), self._device(),
                               end=self._end())

    def log_likelihood(self, X: Any) -> Likelihood:
        """Exact log p(x) per sequence (nats); ``counts`` holds the number of symbols and the
        cross-entropy in nats and bits per character (symbol), ``-Σ log p / N``."""
        seqs = self._sequences(X, reset=False)
        lp = self._log_probs(seqs)
        lengths = {len(s) for s in seqs}
        n = int(sum(len(s) for s in seqs))
        npc = float(-lp.sum() / n)
        return Likelihood.from_samples(
            lp, kind="exact", estimator="chain rule (exact)", support="discrete",
            n_dims=lengths.pop() if len(lengths) == 1 else None,
            counts={"n_chars": n, "nats_per_char": npc, "bits_per_char": npc / math.log(2)})

    def score_samples(self, X: Any) -> np.ndarray:
        """Exact log-likelihood of every sequence, in nats."""
        return self._log_probs(self._sequences(X, reset=False))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean exact log-likelihood per sequence (nats)."""
        return float(np.mean(self.score_samples(X)))

    # -- sampling ---------------------------------------------------------------------------------
    def _prime_ids(self, prime: Any) -> list[int]:
        if prime is None or len(prime) == 0:
            return []
        if self.input_kind_ == "text":
            if not isinstance(prime, str):
                raise ValueError("prime must be a string for a model of text")
            return [int(i) for i in sd.text_ids([prime], self.vocabulary_, False)[0][0]]
        ids = [int(i) for i in prime]
        if min(ids) < 0 or max(ids) >= int(self.n_symbols_):
            raise ValueError(f"prime ids must lie in 0..{int(self.n_symbols_) - 1}")
        return ids

    @torch.no_grad()
    def generate(self, n_samples: int = 1, length: int | None = None, *,
                 temperature: float | None = None, prime: Any = "", random_state: Any = None,
                 n_columns: int | None = None) -> list[list[int]]:
        """Symbol ids of ``n_samples`` sequences: the prime, then ``length`` drawn symbols (or,
        with ``n_columns``, symbols until that many column ends, at most 2·n_columns·(rows+1)).
        """
        self._check_fitted()
        T = float(self.temperature if temperature is None else temperature)
        if T < 0:
            raise ValueError(f"temperature must be >= 0, got {T}")
        g = torch.Generator(device=self._device())
        g.manual_seed(seed_from(self.random_state if random_state is None else random_state))
        if n_columns is not None:  # a cap, in case the column ends never come
            length = 2 * n_columns * (getattr(self, "n_rows_", 14) + 1)
        end = self.vocabulary_.find("\n") if self.vocabulary_ else -1
        return draw(self.module_, int(self.n_symbols_), int(n_samples),
                    self._prime_ids(prime), int(length or 0), T, g, self._device(),
                    end=end, n_columns=n_columns, grid=self._grid())

    def sample_sequences(self, n_samples: int = 1, random_state: Any = None, *,
                         length: int | None = None, temperature: float | None = None,
                         prime: Any = "") -> list[str]:
        """Drawn sequences as strings (layout "columns": the column sequences, unconverted)."""
        if self.input_kind_ != "text":
            raise ValueError("sample_sequences is for models of text; use sample")
        if self.layout == "columns":
            ncol = int(length or self.sample_length or self.n_columns_)
            ids = self.generate(n_samples, temperature=temperature, prime=prime,
                                random_state=random_state, n_columns=ncol)
        else:
            ids = self.generate(n_samples, int(length or self.sample_length or 200),
                                temperature=temperature, prime=prime,
                                random_state=random_state)
        return [decode(s, self.vocabulary_) for s in ids]

    def sample(self, n_samples: int = 1, random_state: Any = None, *,
               length: int | None = None, temperature: float | None = None,
               prime: Any = "") -> np.ndarray:
        """Draw sequences: strings for text (layout "columns": grids of ``n_rows_`` rows,
        top row first), or an int64 array (n_samples, len(prime) + length) of ids.

        Parameters
        ----------
        n_samples : int
        random_state : int or None
            Seed (default: the estimator's ``random_state``).
        length : int, optional
            Symbols drawn after the prime (columns for layout "columns"); default
            ``sample_length``.
        temperature : float, optional
            τ (default ``temperature``); 0 is greedy.
        prime : str or sequence of int
            Symbols to start from; every sample begins with them.
        """
        self._check_fitted()
        if self.input_kind_ == "ids":
            w = int(length if length is not None else
                    (self.sample_length or self.n_features_in_) - len(prime or []))
            ids = self.generate(n_samples, max(w, 0), temperature=temperature, prime=prime,
                                random_state=random_state)
            return np.asarray(ids, dtype=np.int64)
        seqs = self.sample_sequences(n_samples, random_state, length=length,
                                     temperature=temperature, prime=prime)
        if self.layout == "columns":
            seqs = [sequence_to_level(s, int(self.n_rows_), MARIO_EMPTY)[0] for s in seqs]
        return np.asarray(seqs, dtype=str)


CharRNN.__doc__ = (CharRNN.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)

from unsup.autoregressive import _seq_report  # noqa: E402,F401  (registers the report section)
