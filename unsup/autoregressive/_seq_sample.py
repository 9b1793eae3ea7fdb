"""The char-RNN's exact sequence log-probabilities and its sampler (no estimator state)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unsup.autoregressive._seq_data import PAD, POS_MAX, grid_context

__all__ = ["chain_log_probs", "draw"]


@torch.no_grad()
def chain_log_probs(module: nn.Module, seqs: list[np.ndarray], n_symbols: int,
                    device: torch.device, chunk: int = 1024, batch: int = 256,
                    end: int | None = None) -> np.ndarray:
    """``Σ_t log p(x_t | x_<t)`` of every sequence (nats, float64): sequences of similar
    length batched together, ``chunk`` steps at a time with the state carried. With ``end``
    (the column end) the network reads the grid context of every target."""
    module.eval()
    out = np.zeros(len(seqs))
    order = np.argsort([len(s) for s in seqs], kind="stable")
    for b in range(0, len(seqs), batch):
        idx = order[b:b + batch]
        L = max(len(seqs[i]) for i in idx)
        full = torch.full((len(idx), L + 1), PAD, dtype=torch.long)
        ctx = None
        if end is not None:  # context of the target at k in column k (+1 spare column)
            ctx = torch.zeros((len(idx), L + 2, 2), dtype=torch.long)
            ctx[..., 1] = n_symbols
        for r, i in enumerate(idx):
            full[r, 0] = n_symbols  # the start symbol predicts x_1
            full[r, 1:len(seqs[i]) + 1] = torch.as_tensor(seqs[i])
            if ctx is not None:
                ctx[r, 1:len(seqs[i]) + 1] = torch.as_tensor(
                    grid_context(seqs[i], end, n_symbols))
        full = full.to(device)
        ctx = None if ctx is None else ctx.to(device)
        total = torch.zeros(len(idx), dtype=torch.float64, device=device)
        state = None
        for a in range(0, L, chunk):
            x, y = full[:, a:a + chunk], full[:, a + 1:a + chunk + 1]
            c = None if ctx is None else ctx[:, a + 1:a + 1 + x.shape[1]]
            logits, state = module(x.clamp(min=0), state, c)
            lp = torch.log_softmax(logits.float(), -1)
            got = lp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            total += torch.where(y != PAD, got, 0.0).double().sum(1)
        out[idx] = total.cpu().numpy()
    return out


@torch.no_grad()
def draw(module: nn.Module, n_symbols: int, n: int, prime: list[int], length: int,
         temperature: float, generator: torch.Generator, device: torch.device, *,
         end: int = -1, n_columns: int | None = None, grid: bool = False
         ) -> list[list[int]]:
    """``n`` sequences: ``prime``, then up to ``length`` symbols drawn from
    ``softmax(logits / temperature)`` (the argmax at temperature 0); with ``n_columns``, a
    sequence stops after that many ``end`` symbols. With ``grid`` the network reads the
    grid context (row in the column, left neighbour) of every symbol it predicts."""
    module.eval()
    x = torch.tensor([[n_symbols] + prime] * n, dtype=torch.long, device=device)
    out = [list(prime) for _ in range(n)]
    ctx = None
    if grid:  # contexts of the prime's symbols and of the first drawn one
        c = grid_context(np.asarray(prime + [end], dtype=np.int64), end, n_symbols)
        ctx = torch.as_tensor(c, device=device)[None].expand(n, -1, -1)
    logits, state = module(x, None, ctx)
    logits = logits[:, -1]
    cols = torch.zeros(n, dtype=torch.long, device=device)
    hist = [[v] * n for v in prime]  # symbols by time step (rows: samples)
    starts = [_column_starts(prime, end) for _ in range(n)]
    for _ in range(length):
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.double() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        drawn = nxt.tolist()
        for i, v in enumerate(drawn):
            if n_columns is None or int(cols[i]) < n_columns:
                out[i].append(v)
        if n_columns is not None:
            cols += (nxt == end).long()
            if bool((cols >= n_columns).all()):
                break
        ctx = None
        if grid:
            hist.append(drawn)  # every row's symbols, drawn after the stop too
            ctx = torch.as_tensor(_next_context(hist, end, n_symbols, starts), device=device)
        logits, state = module(nxt[:, None], state, ctx)
        logits = logits[:, -1]
    return out


def _column_starts(prime: list[int], end: int) -> list[int]:
    """Start positions of the previous and the current column of a sequence so far."""
    ends = [i for i, v in enumerate(prime) if v == end]
    cur = ends[-1] + 1 if ends else 0
    prev = (ends[-2] + 1 if len(ends) > 1 else 0) if ends else -1
    return [prev, cur]


def _next_context(hist: list[list[int]], end: int, n_symbols: int,
                  starts: list[list[int]]) -> np.ndarray:
    """(n, 1, 2): the grid context (row, left neighbour) of the next symbol of every sample,
    after ``hist[-1]`` was drawn; ``starts`` (per sample: previous and current column start)
    is updated in place. The same as :func:`grid_context` on the whole sequence."""
    t = len(hist)  # position of the next symbol
    out = np.empty((len(starts), 1, 2), dtype=np.int64)
    for i, st in enumerate(starts):
        if hist[-1][i] == end:
            st[0], st[1] = st[1], t
        pos = t - st[1]
        j = st[0] + pos
        left = hist[j][i] if st[0] >= 0 and j < st[1] else n_symbols
        out[i, 0] = (min(pos, POS_MAX), left)
    return out
