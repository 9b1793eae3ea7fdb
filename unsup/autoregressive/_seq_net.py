"""The char-RNN's network: symbol embedding, a stacked LSTM or GRU, a linear softmax head.

Inputs are symbol indices ``0..V-1`` plus the start symbol ``V`` (the "beginning of sequence"
input that predicts the first symbol), so ``p(x_1) = softmax(W h_1)`` with ``h_1 =
RNN(e_V, h_0 = 0)``: every sequence has an exact probability under the chain rule.

With the grid context (levels read column by column) the input of step ``t`` is the sum of
three embeddings: the previous symbol, the row of the symbol to predict in its column, and its
left neighbour in the grid (the symbol at that row of the previous column; see
:func:`unsup.autoregressive._seq_data.grid_context`). Both extra inputs are functions of the
symbols before ``t``, so the model is still a chain-rule factorisation with an exact likelihood.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unsup.autoregressive._seq_data import POS_MAX

__all__ = ["CharRNNNet", "State", "detach_state"]

State = Any  # tensor (GRU) or (h, c) tuple (LSTM), or None for the zero state


def detach_state(state: State) -> State:
    """The state as a constant: truncated backpropagation stops here."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


class CharRNNNet(nn.Module):
    """``logits_t = W RNN(E x_{<t})_t + b``; V symbols, input V is the start symbol."""

    def __init__(self, n_symbols: int, cell: str, hidden_size: int, n_layers: int,
                 embedding_dim: int, dropout: float, grid: bool = False) -> None:
        super().__init__()
        self.n_symbols = n_symbols
        self.grid = grid
        self.embed = nn.Embedding(n_symbols + 1, embedding_dim)
        if grid:  # row in the column, and the left neighbour (n_symbols: none)
            self.pos_embed = nn.Embedding(POS_MAX + 1, embedding_dim)
            self.left_embed = nn.Embedding(n_symbols + 1, embedding_dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embedding_dim, hidden_size, num_layers=n_layers, batch_first=True,
                       dropout=dropout if n_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, n_symbols)

    def forward(self, x: torch.Tensor, state: State = None, ctx: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, State]:
        """``x``: (B, T) int64 inputs -> (B, T, V) logits of the next symbols, new state.
        ``ctx`` (grid context): (B, T, 2) int64 rows and left neighbours of the targets."""
        e = self.embed(x)
        if self.grid:
            if ctx is None:
                raise ValueError("this network reads levels with the grid context: pass ctx")
            e = e + self.pos_embed(ctx[..., 0].clamp(0, POS_MAX)) \
                + self.left_embed(ctx[..., 1].clamp(0, self.n_symbols))
        h, state = self.rnn(e, state)
        return self.head(self.drop(h)), state

    def select(self, state: State, keep: torch.Tensor) -> State:
        """The state of the rows ``keep`` (index tensor)."""
        if state is None:
            return None
        if isinstance(state, tuple):
            return tuple(s.index_select(1, keep) for s in state)
        return state.index_select(1, keep)
