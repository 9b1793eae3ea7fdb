r"""Semantic hashing: a deep autoencoder whose code units are driven to binary values.

The encoder ``x → h_1 → … → z ∈ R^b`` ends in ``b`` logistic code units. During fine-tuning
Gaussian noise is added to the code units' inputs before the sigmoid [1]_:

.. math::

    h = σ(z + ε), \quad ε \sim \mathcal N(0, s^2 I), \qquad
    \min\ \frac1N \sum_n \ell\big(x_n, g(h_n)\big)

To carry information through the noise the network must push ``|z|`` far beyond ``s``, where
the sigmoid saturates: the codes become (nearly) binary. At use time the code is the bit vector
``b = 1[z > 0]`` (``σ(z) > ½``), and similar inputs get codes at a small Hamming distance.
Retrieval then needs only bit operations: a *Hamming ball* lookup (probe every address within
distance ``r`` of the query's code in a table of the database's codes, a cost independent of the
database size) or an exhaustive *Hamming ranking* (XOR + popcount on packed 64-bit words).

**Choices, and where they differ from [1]_.** The paper pre-trains a stack of RBMs, fine-tunes
by conjugate gradients and adds *deterministic* noise (fixed per training case, as conjugate
gradients needs a fixed objective) with variance 16 (``code_noise=4``, the default here). Here
the stack is pre-trained layer by layer as (denoising) autoencoders (:class:`StackedAutoencoder`,
the top layer with sigmoid codes), fine-tuned by mini-batch gradient descent (Adam), and the noise
is fresh for every mini-batch, drawn from the estimator's seeded generator (so a run is
reproducible and resumes bit for bit). Validation and :meth:`reconstruct` decode the *binary*
code, so the reported reconstruction loss is the one the hash codes actually achieve.

**Defaults, and why** (selected on a validation split of mnist5k, 1,000 digits as queries
against the other 4,000, the MNIST test set unused; ``bench/results/retrieval.md``): ReLU hidden
units, masking noise ν = 0.4 on the inputs during fine-tuning (a denoising objective: the code
must describe the digit, not its pixels; precision@100 0.635 → 0.644 at ν = 0.2 → 0.4 with
learning rate 3e-3), fine-tuning learning rate 1e-3 (0.644 → 0.668), 784-500-500-b, 5
pre-training and 30 fine-tuning epochs (60 and 10 measured no better: 0.670). Wider layers
(1000-1000) or a rate of 3e-3 with ReLU units let code units saturate for every input — a
"dead" bit, constant over the database, that the sigmoid's vanishing gradient never revives
(31 of 32 bits in one run) — so they were not taken. Code noise 2 and 8 did worse than 4.

References
----------
.. [1] Salakhutdinov & Hinton, "Semantic hashing", International Journal of Approximate
   Reasoning 50(7), 969-978, 2009.
.. [2] Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks",
   Science 313, 2006.
.. [3] Norouzi, Punjani & Fleet, "Fast search in Hamming space with multi-index hashing",
   CVPR 2012 (why exhaustive ranking with popcount is fast enough for millions of codes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from unsup.autoencoders._nets import ACTIVATIONS, AENet, mlp_net
from unsup.autoencoders.autoencoder import Autoencoder
from unsup.autoencoders.denoising import corrupt
from unsup.autoencoders.stacked import StackedAutoencoder
from unsup.metrics._hamming import HammingIndex, pack_bits
from unsup.params import Integral, Interval, Real
from unsup.registry import register_model
from unsup.report.hooks import SectionContext, report_section
from unsup.train import TRAIN_PARAMS_DOC

__all__ = ["SemanticHashing"]


class _HashNet(AENet):
    """``forward(x) -> (bits, decoder(bits))``: the deterministic (use-time) path; training
    adds the code noise in :meth:`SemanticHashing._loss`."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bits = (self.encoder(x) > 0).to(x.dtype)
        return bits, self.decoder(bits)


@register_model('semantic-hashing', family='autoencoders', aliases=('semhash',),
                summary='deep autoencoder with binary codes (semantic hashing, Hamming retrieval)')
class SemanticHashing(StackedAutoencoder):
    """Semantic hashing (Salakhutdinov & Hinton 2009): ``n_bits``-bit binary codes from a deep
    autoencoder with noisy logistic code units.

    Parameters
    ----------
    n_bits : int
        Code length ``b`` (it may exceed the number of input features: binary codes cannot
        copy their input).
    hidden_layer_sizes : sequence of int
        Encoder layers between the input and the code (the decoder mirrors them).
    code_noise : float
        Standard deviation ``s`` of the Gaussian noise added to the code units' inputs during
        fine-tuning (4: the paper's variance 16; 0: a plain sigmoid-code autoencoder, whose
        thresholded codes lose much more).
    pretrain : {"ae", "dae", "none"}
        Greedy layer-wise pre-training of each layer as an autoencoder, a denoising
        autoencoder, or none.
    pretrain_epochs : int
        Epochs of pre-training per layer.
    pretrain_learning_rate : float
        Learning rate of pre-training.
    noise : {"masking", "gaussian", "salt_and_pepper"}
        Input corruption of denoising pre-training.
    noise_level : float
        Its level.
    fine_tune_noise : float
        Masking noise ν on the inputs during fine-tuning (0: none; the loss compares with the
        clean input).
    activation : str
        Non-linearity of the hidden layers.
    loss : {"auto", "bce", "mse"}
        Reconstruction loss ("auto": Bernoulli cross-entropy for data in [0, 1]).
    {train_params}

    Attributes
    ----------
    layer_sizes_ : list of int
        The encoder's layer sizes, the last being ``n_bits``.
    history_ : list of dict
        Fine-tuning history (``val_loss`` decodes the binary codes).
    module_ : torch.nn.Module
        The unrolled network; ``module_.encoder`` maps inputs to the code logits ``z``.
    n_features_in_ : int
        Number of input features.

    Examples
    --------
    >>> from unsup.autoencoders import SemanticHashing                       # doctest: +SKIP
    >>> from unsup.data import load
    >>> train, test = load("mnist5k"), load("mnist-test")                   # doctest: +SKIP
    >>> sh = SemanticHashing(32, epochs=30).fit(train.X)                   # doctest: +SKIP
    >>> index = sh.hash_index(train.X)                                      # doctest: +SKIP
    >>> dist, idx = index.kneighbors(sh.transform(test.X[:5]), k=10)        # doctest: +SKIP
    >>> ball = index.radius_search(sh.transform(test.X[:5]), r=2)           # doctest: +SKIP
    """

    _test_params: dict[str, Any] = {"n_bits": 4, "hidden_layer_sizes": (8,),
                                   "pretrain_epochs": 1, "epochs": 2, "batch_size": 32}

    _parameter_constraints: dict[str, Any] = {
        "n_bits": [Interval(Integral, 1, None, closed="left")],
        "code_noise": [Interval(Real, 0, None, closed="left")],
    }

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # codes are uint8 bits whatever the input
        return tags

    def __init__(
        self,
        n_bits: int = 32,
        *,
        hidden_layer_sizes: Sequence[int] = (500, 500),
        code_noise: float = 4.0,
        pretrain: str = "dae",
        pretrain_epochs: int = 5,
        pretrain_learning_rate: float = 3e-3,
        noise: str = "masking",
        noise_level: float = 0.2,
        fine_tune_noise: float = 0.4,
        activation: str = "relu",
        loss: str = "auto",
        epochs: int = 30,
        learning_rate: float = 1e-3,
        lr_schedule: str = "cosine",
    ) -> None:
        super().__init__(None, pretrain=pretrain, pretrain_epochs=pretrain_epochs,  # type: ignore[arg-type]
                         pretrain_learning_rate=pretrain_learning_rate, noise=noise,
                         noise_level=noise_level, fine_tune_noise=fine_tune_noise,
                         activation=activation, loss=loss,
                         epochs=epochs, learning_rate=learning_rate, lr_schedule=lr_schedule)
        self.n_bits = n_bits
        self.hidden_layer_sizes = hidden_layer_sizes
        self.code_noise = code_noise

    # -- the network: the stacked autoencoder's, with logistic code units -----------------
    def _sizes(self) -> list[int]:
        h = self.hidden_layer_sizes
        hidden = [] if h is None else [h] if isinstance(h, (int, np.integer)) else list(h)
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
               for s in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {h!r}")
        return [*(int(s) for s in hidden), int(self.n_bits)]

    def _check_params(self) -> None:
        # the stacked autoencoder's checks, less its bottleneck: binary codes cannot copy the
        # input, so more bits than input features is a legitimate (if wasteful) hash
        sizes = self._sizes()
        if self.pretrain not in ("ae", "dae", "none"):
            raise ValueError(f"pretrain={self.pretrain!r} is not 'ae', 'dae' or 'none'")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is not one of {ACTIVATIONS}")
        if self.loss not in ("auto", "bce", "mse"):
            raise ValueError(f"loss={self.loss!r} is not one of ('auto', 'bce', 'mse')")
        if not 0.0 <= float(self.fine_tune_noise) < 1.0:
            raise ValueError(f"fine_tune_noise must be in [0, 1), got {self.fine_tune_noise!r}")
        self.layer_sizes_ = sizes
        self.n_components_ = sizes[-1]

    def _build_module(self) -> nn.Module:
        net = mlp_net([self.n_features_in_, *self._sizes()], self.activation, "linear")
        return _HashNet(net.encoder, net.decoder)

    def _layer_estimator(self, i: int, n_layers: int, size: int) -> Autoencoder:
        layer = super()._layer_estimator(i, n_layers, size)
        if i == n_layers - 1:  # the code layer is pre-trained with the logistic units it keeps
            layer.set_params(code_activation="sigmoid")
        return layer

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        nu = float(self.fine_tune_noise or 0.0)
        x = batch
        if nu > 0 and self.module_.training:
            x = corrupt(batch, "masking", nu, self._gen)
        z = self.module_.encoder(x)
        s = float(self.code_noise)
        if self.module_.training:
            if s > 0:
                z = z + s * torch.randn(z.shape, generator=self._gen, device=z.device,
                                        dtype=z.dtype)
            h = torch.sigmoid(z)
        else:  # validation: the binary code, as used
            h = (z > 0).to(z.dtype)
        return self._mean_recon_loss(self.module_.decoder(h), batch)

    # -- codes ---------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Binary codes ``1[z > 0]``, uint8 0/1 of shape (n_samples, n_bits)."""
        return self._map_batches(lambda b: self.module_.encoder(b) > 0, X).astype(np.uint8)

    def transform_packed(self, X: Any) -> np.ndarray:
        """The codes packed 64 bits to a word: uint64 of shape (n_samples, ⌈n_bits/64⌉), bit
        ``j`` of the code being bit ``j mod 64`` of word ``j // 64``."""
        return pack_bits(self.transform(X))

    def code_probabilities(self, X: Any) -> np.ndarray:
        """``σ(z)``, the code units' activations before thresholding (float32)."""
        return self._map_batches(lambda b: torch.sigmoid(self.module_.encoder(b)), X)

    def hash_index(self, X: Any) -> HammingIndex:
        """A :class:`~unsup.metrics.retrieval.HammingIndex` of the codes of ``X`` (the
        database): ``radius_search`` (Hamming ball) and ``kneighbors`` (Hamming ranking)."""
        return HammingIndex(self.transform_packed(X), n_bits=int(self.n_bits))


SemanticHashing.__doc__ = (SemanticHashing.__doc__ or "").replace(
    "{train_params}", TRAIN_PARAMS_DOC)


@report_section(SemanticHashing, title="Hamming retrieval", order=55)
def hamming_retrieval(model: Any, ctx: SectionContext) -> None:
    """Queries from the data and their nearest neighbours by Hamming distance among the other
    rows (exhaustive ranking; ties by row order); bit usage; precision@10 when labels exist."""
    if ctx.X is None or len(ctx.X) < 2:
        ctx.report.text("Not drawn: no data to retrieve from.")
        return
    X = np.asarray(ctx.X)[:_REPORT_ROWS]
    B = model.transform(X)
    n_q, k = min(_REPORT_QUERIES, len(X) - 1), min(_REPORT_NEIGHBOURS, len(X) - 1)
    index = HammingIndex(B[n_q:])
    dist, idx = index.kneighbors(B[:n_q], min(k, len(B) - n_q))
    idx = idx + n_q
    usage = B.mean(0)
    ctx.report.text(f"{model.n_bits}-bit codes of {len(X)} rows: {len(np.unique(B, axis=0))} "
                    f"distinct codes; bits on for {100 * usage.min():.0f}-"
                    f"{100 * usage.max():.0f}% of rows (50% uses a bit best).")
    if ctx.y is not None:
        y = np.asarray(ctx.y)[:len(X)]
        p = float((y[idx] == y[:n_q, None]).mean())
        ctx.report.text(f"Precision@{idx.shape[1]} of the {n_q} queries below (same label): "
                        f"{p:.3f}.")
    rows = np.concatenate([np.concatenate([X[i:i + 1], X[idx[i]]]) for i in range(n_q)])
    titles = [t for i in range(n_q) for t in ["query", *(f"d={d}" for d in dist[i])]]
    ctx.image_rows(rows, f"Each row: a query (first of the data's rows) and its "
                   f"{idx.shape[1]} nearest rows by Hamming distance d of the codes.",
                   titles=titles, ncols=idx.shape[1] + 1)


_REPORT_ROWS, _REPORT_QUERIES, _REPORT_NEIGHBOURS = 5000, 6, 9
