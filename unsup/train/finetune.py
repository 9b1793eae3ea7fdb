r"""Discriminative fine-tuning: a classifier from a (pre-trained) encoder, trained end to end.

:func:`build_classifier` puts a linear softmax layer on a copy of an encoder's hidden stack
(either keeping the pre-trained weights or re-initialising every layer, seeded, for the
random-initialisation baseline); :func:`finetune` trains every layer with the cross-entropy

.. math::  \min_θ\ -\frac{1}{|B|}\sum_{(x, y) \in B} \log \mathrm{softmax}(f_θ(x))_y

and Adam for a fixed budget of minibatch steps. This is the supervised stage that follows
unsupervised pre-training in Hinton & Salakhutdinov (2006) and Erhan et al. (2010); the
controlled comparison of the two initialisations is
:func:`unsup.metrics.pretraining_experiment`.

References
----------
.. [1] Hinton, G. E. and Salakhutdinov, R. R. (2006). Reducing the dimensionality of data
   with neural networks. Science 313(5786), 504–507.
.. [2] Erhan, D., Bengio, Y., Courville, A., Manzagol, P.-A., Vincent, P. and Bengio, S.
   (2010). Why does unsupervised pre-training help deep learning? JMLR 11, 625–660.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from unsup.train.seeding import derive_seed, seeded

__all__ = ["build_classifier", "finetune", "resolve_encoder"]


def resolve_encoder(encoder: Any) -> nn.Module:
    """The encoder as an ``nn.Module``.

    Parameters
    ----------
    encoder : nn.Module or fitted estimator
        A module mapping inputs (n, n_features) to codes (n, n_codes), or an estimator that
        exposes its encoder through ``encoder_module()`` (as
        :class:`unsup.autoencoders.StackedAutoencoder` does).

    Returns
    -------
    nn.Module
        The module itself (not a copy).
    """
    if isinstance(encoder, nn.Module):
        return encoder
    get = getattr(encoder, "encoder_module", None)
    if callable(get):
        module = get()
        if isinstance(module, nn.Module):
            return module
    raise TypeError(f"expected an nn.Module encoder or an estimator with encoder_module(), got "
                    f"{type(encoder).__name__}")


def _output_dim(module: nn.Module, n_features: int) -> int:
    was = module.training
    module.eval()
    try:
        p = next(iter(module.parameters()), None)
        x = torch.zeros(2, n_features, device=p.device if p is not None else "cpu",
                        dtype=p.dtype if p is not None else torch.float32)
        with torch.no_grad():
            out = module(x)
    finally:
        module.train(was)
    if out.ndim != 2:
        raise ValueError(f"the encoder must map (n, {n_features}) to 2-D codes, got shape "
                         f"{tuple(out.shape)}")
    return int(out.shape[1])


def build_classifier(
    encoder: Any,
    n_features: int,
    n_classes: int,
    *,
    pretrained: bool = True,
    random_state: int = 0,
) -> nn.Sequential:
    """A classifier ``Sequential(hidden, Linear(n_codes, n_classes))`` from an encoder.

    Parameters
    ----------
    encoder : nn.Module or estimator with ``encoder_module()``
        The hidden layers. It is deep-copied: the original is never modified.
    n_features : int
        Input dimension (used to find the code size).
    n_classes : int
        Number of outputs (logits).
    pretrained : bool, default=True
        Keep the encoder's weights (True), or re-initialise every layer that has
        ``reset_parameters`` with PyTorch's default scheme (False), seeded by
        ``random_state`` — the same network from random init.
    random_state : int, default=0
        Seed of the random re-initialisation and of the output layer. The output layer is
        drawn from the same seed in both cases, so the two networks differ only in where the
        hidden layers start.

    Returns
    -------
    nn.Sequential
        ``model[0]`` is the (copied) hidden stack, ``model[1]`` the output layer.
    """
    hidden = copy.deepcopy(resolve_encoder(encoder))
    n_codes = _output_dim(hidden, n_features)
    # seeds derived from random_state (not random_state itself, so that an encoder created
    # under torch.manual_seed(s) is not reproduced by the "random" arm with seed s)
    seed_hidden, seed_head = (derive_seed(int(random_state), i) for i in (1, 2))
    with seeded(seed_hidden):
        if not pretrained:
            n_reset = 0
            for m in hidden.modules():
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
                    n_reset += 1
            if n_reset == 0 and any(True for _ in hidden.parameters()):
                raise ValueError("no layer of the encoder has reset_parameters(); cannot build "
                                 "the randomly initialised baseline")
        torch.manual_seed(seed_head)
        p = next(iter(hidden.parameters()), None)
        head = nn.Linear(n_codes, n_classes)
        if p is not None:
            head = head.to(device=p.device, dtype=p.dtype)
    return nn.Sequential(hidden, head)


def finetune(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    random_state: int = 0,
) -> list[float]:
    """Train every layer of ``model`` with cross-entropy and Adam for ``steps`` minibatches.

    Parameters
    ----------
    model : nn.Module
        Maps (n, n_features) to logits (n, n_classes); trained in place.
    X : Tensor of shape (n, n_features)
        Inputs, on the model's device.
    y : Tensor of shape (n,), int64
        Labels.
    steps : int, default=500
        Gradient steps (a fixed budget: with 100 labels there is no data to spare for early
        stopping).
    batch_size : int, default=64
        Minibatch size (capped at ``n``); minibatches are drawn by seeded reshuffles.
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam weight decay.
    random_state : int, default=0
        Seed of the minibatch order (identical for both arms of the experiment).

    Returns
    -------
    list of float
        The training loss after each step.
    """
    n = len(X)
    bs = min(int(batch_size), n)
    g = torch.Generator().manual_seed(int(random_state))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    losses: list[float] = []
    perm = torch.randperm(n, generator=g)
    pos = 0
    for step in range(int(steps)):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos:pos + bs].to(X.device)
        pos += bs
        loss = loss_fn(model(X[idx]), y[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"fine-tuning loss became {loss.item()} at step {step}; "
                                     "lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
