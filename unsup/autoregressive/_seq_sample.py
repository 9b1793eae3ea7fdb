"""The char-RNN's exact sequence log-probabilities and its sampler (no estimator state)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unsup.autoregressive._seq_data import PAD

__all__ = ["chain_log_probs", "draw"]


@torch.no_grad()
def chain_log_probs(module: nn.Module, seqs: list[np.ndarray], n_symbols: int,
                    device: torch.device, chunk: int = 1024, batch: int = 256) -> np.ndarray:
    """``Σ_t log p(x_t | x_<t)`` of every sequence (nats, float64): sequences of similar
    length batched together, ``chunk`` steps at a time with the state carried."""
    module.eval()
    out = np.zeros(len(seqs))
    order = np.argsort([len(s) for s in seqs], kind="stable")
    for b in range(0, len(seqs), batch):
        idx = order[b:b + batch]
        L = max(len(seqs[i]) for i in idx)
        full = torch.full((len(idx), L + 1), PAD, dtype=torch.long)
        for r, i in enumerate(idx):
            full[r, 0] = n_symbols  # the start symbol predicts x_1
            full[r, 1:len(seqs[i]) + 1] = torch.as_tensor(seqs[i])
        full = full.to(device)
        total = torch.zeros(len(idx), dtype=torch.float64, device=device)
        state = None
        for a in range(0, L, chunk):
            x, y = full[:, a:a + chunk], full[:, a + 1:a + chunk + 1]
            logits, state = module(x.clamp(min=0), state)
            lp = torch.log_softmax(logits.float(), -1)
            got = lp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            total += torch.where(y != PAD, got, 0.0).double().sum(1)
        out[idx] = total.cpu().numpy()
    return out


@torch.no_grad()
def draw(module: nn.Module, n_symbols: int, n: int, prime: list[int], length: int,
         temperature: float, generator: torch.Generator, device: torch.device, *,
         end: int = -1, n_columns: int | None = None) -> list[list[int]]:
    """``n`` sequences: ``prime``, then up to ``length`` symbols drawn from
    ``softmax(logits / temperature)`` (the argmax at temperature 0); with ``n_columns``, a
    sequence stops after that many ``end`` symbols."""
    module.eval()
    x = torch.tensor([[n_symbols] + prime] * n, dtype=torch.long, device=device)
    logits, state = module(x)
    logits = logits[:, -1]
    out = [list(prime) for _ in range(n)]
    cols = torch.zeros(n, dtype=torch.long, device=device)
    for _ in range(length):
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.double() / temperature, -1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        for i, v in enumerate(nxt.tolist()):
            if n_columns is None or int(cols[i]) < n_columns:
                out[i].append(v)
        if n_columns is not None:
            cols += (nxt == end).long()
            if bool((cols >= n_columns).all()):
                break
        logits, state = module(nxt[:, None], state)
        logits = logits[:, -1]
    return out
