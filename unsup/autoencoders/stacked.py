r"""The stacked (deep) autoencoder: greedy layer-wise pre-training, then end-to-end fine-tuning.

For layer sizes ``d_0 = D, d_1, ..., d_L`` (``d_L`` the code):

1. **Pre-training.** Layer ``i`` is a one-hidden-layer autoencoder (an AE or a denoising AE)
   ``h_i = a_i(W_i h_{i-1} + b_i)``, ``ĥ_{i-1} = W'_i h_i + c_i`` trained on the codes
   ``h_{i-1}`` of the layer below (``h_0 = x``), each with the loss that suits its input
   (Bernoulli cross-entropy for data or sigmoid units in [0, 1], squared error otherwise).
   The top layer's code is linear.
2. **Unrolling.** The encoder is ``x → h_1 → … → h_L`` with the pre-trained ``W_i``; the decoder
   is ``h_L → ĥ_{L-1} → … → x̂`` with the pre-trained ``W'_i``.
3. **Fine-tuning.** The whole ``2L``-layer network is trained end to end on the reconstruction
   loss of the data.

Pre-training puts the weights in a region from which back-propagation can fine-tune a deep
autoencoder; trained from random initialisation the same network often finds a poor solution
[1]_ [2]_. The preset ``layer_sizes="hinton2006"`` is the 784-1000-500-250-30 network of [1]_
(which pre-trained with RBMs; we use autoencoders, as in [2]_ [3]_).

References
----------
.. [1] Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks",
   Science 313(5786), 504-507, 2006.
.. [2] Bengio, Lamblin, Popovici & Larochelle, "Greedy layer-wise training of deep networks",
   NIPS 2006.
.. [3] Vincent et al., "Stacked denoising autoencoders", JMLR 11, 2010.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from unsup.autoencoders._nets import mlp_net
from unsup.autoencoders.autoencoder import Autoencoder
from unsup.autoencoders.denoising import DenoisingAutoencoder, corrupt
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC
from unsup.train.engine import checkpoint_seed
from unsup.train.seeding import seed_from

__all__ = ["StackedAutoencoder", "PRESETS"]

PRESETS: dict[str, tuple[int, ...]] = {"hinton2006": (1000, 500, 250, 30)}


@register_model('stacked-autoencoder', family='autoencoders', aliases=('deep-autoencoder',),
                summary='deep autoencoder: greedy layer-wise pre-training, then fine-tuning')
class StackedAutoencoder(Autoencoder):
    """Deep autoencoder: greedy layer-wise pre-training of AEs/DAEs, then fine-tuning.

    Parameters
    ----------
    layer_sizes : sequence of int or "hinton2006"
        Sizes of the encoder layers after the input, the last being the code, e.g.
        ``[1000, 500, 250, 30]`` (the "hinton2006" preset).
    pretrain : {"ae", "dae", "none"}
        Each layer pre-trained as an autoencoder or a denoising autoencoder; "none" skips
        pre-training (random initialisation, for comparison).
    pretrain_epochs : int
        Epochs of pre-training per layer.
    pretrain_learning_rate : float
        Learning rate of the pre-training stages.
    noise : {"masking", "gaussian", "salt_and_pepper"}
        Corruption of the denoising pre-training (pretrain="dae").
    noise_level : float
        Its level (ν or σ).
    fine_tune_noise : float
        Masking noise ν applied to the inputs during fine-tuning (0: none); the loss still
        compares with the clean input, a regulariser when data are few.
    activation : str
        Non-linearity of the hidden layers (the code is linear).
    loss : {"auto", "bce", "mse"}
        Reconstruction loss of the data ("auto": "bce" for data in [0, 1]).
    {train_params}

    Attributes
    ----------
    layer_sizes_ : list of int
        The resolved layer sizes.
    pretrain_history_ : list of list of dict
        Per-layer pre-training histories.
    history_ : list of dict
        Fine-tuning history.
    module_ : torch.nn.Module
        The unrolled, fine-tuned network.
    n_features_in_ : int
        Number of input features.

    Notes
    -----
    The defaults (denoising pre-training with masking ν = 0.2, 10 epochs per layer at Adam
    3e-3; 50 epochs of fine-tuning at Adam 3e-3 with a cosine schedule; sigmoid units, a linear
    code, Bernoulli cross-entropy) were tuned on the mnist5k → MNIST-test reconstruction
    benchmark (``bench/bench_autoencoders.py``).

    ``encoder_module()`` returns the encoder (``Linear`` + activation layers, as an
    ``nn.Sequential``) for use in a supervised network: pass ``pretrained_only=True`` for the
    weights right after greedy pre-training (before fine-tuning).
    """

    _test_params: dict[str, Any] = {"layer_sizes": (8, 2), "pretrain_epochs": 1, "epochs": 2,
                                   "batch_size": 32}

    def __init__(
        self,
        layer_sizes: Sequence[int] | str = (1000, 500, 250, 30),
        *,
        pretrain: str = "dae",
        pretrain_epochs: int = 10,
        pretrain_learning_rate: float = 3e-3,
        noise: str = "masking",
        noise_level: float = 0.2,
        fine_tune_noise: float = 0.0,
        activation: str = "sigmoid",
        loss: str = "auto",
        epochs: int = 50,
        learning_rate: float = 3e-3,
        lr_schedule: str = "cosine",
    ) -> None:
        # the base __init__ first: it stores the training group's defaults, which the three
        # training parameters this model re-declares (other defaults) then overwrite
        super().__init__(0, hidden_layer_sizes=(), activation=activation,
                         code_activation="linear", loss=loss)
        self.layer_sizes = layer_sizes
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_learning_rate = pretrain_learning_rate
        self.noise = noise
        self.noise_level = noise_level
        self.fine_tune_noise = fine_tune_noise
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule

    def _sizes(self) -> list[int]:
        ls = self.layer_sizes
        if isinstance(ls, str):
            if ls not in PRESETS:
                raise ValueError(f"layer_sizes={ls!r} is not a preset ({', '.join(PRESETS)}) "
                                 "nor a list of sizes")
            ls = PRESETS[ls]
        try:
            sizes = [int(s) for s in ls]
        except (TypeError, ValueError):
            raise ValueError(f"layer_sizes must be a list of positive integers, got {ls!r}"
                             ) from None
        if not sizes or any(s < 1 for s in sizes) or any(
                isinstance(s, bool) or (isinstance(s, float) and s != int(s)) for s in ls):
            raise ValueError(f"layer_sizes must be a non-empty list of positive integers, got "
                             f"{ls!r}")
        return sizes

    def _check_params(self) -> None:
        sizes = self._sizes()
        d = self.n_features_in_
        if sizes[-1] > d:
            raise ValueError(f"the code size {sizes[-1]} (last of layer_sizes={sizes}) is larger "
                             f"than the input (n_features={d})")
        if self.pretrain not in ("ae", "dae", "none"):
            raise ValueError(f"pretrain={self.pretrain!r} is not 'ae', 'dae' or 'none'")
        if self.activation not in ("relu", "sigmoid", "tanh", "elu", "gelu", "leaky_relu",
                                   "softplus", "linear"):
            raise ValueError(f"activation={self.activation!r} is not a known activation")
        if self.loss not in ("auto", "bce", "mse"):
            raise ValueError(f"loss={self.loss!r} is not one of ('auto', 'bce', 'mse')")
        if not 0.0 <= float(self.fine_tune_noise) < 1.0:
            raise ValueError(f"fine_tune_noise must be in [0, 1), got {self.fine_tune_noise!r}")
        self.layer_sizes_ = sizes
        self.n_components_ = sizes[-1]

    # -- network --------------------------------------------------------------------------
    def _build_module(self) -> nn.Module:
        return mlp_net([self.n_features_in_, *self._sizes()], self.activation, "linear")

    # -- training ---------------------------------------------------------------------------
    def _run_seed(self) -> int:
        # resuming a run seeded from entropy: the fine-tuning checkpoint knows the seed (a run
        # killed during pre-training resumes only with an explicit random_state)
        if self.resume and self.random_state is None:
            seed = checkpoint_seed(_subdir(self.checkpoint_dir, "finetune"))
            if seed is not None:
                return seed
        return seed_from(self.random_state)

    def _layer_estimator(self, i: int, n_layers: int, size: int) -> Autoencoder:
        top = i == n_layers - 1
        common: dict[str, Any] = dict(
            hidden_layer_sizes=(), activation=self.activation,
            code_activation="linear" if top else self.activation,
            loss=self.loss if i == 0 else "auto", epochs=self.pretrain_epochs,
            batch_size=self.batch_size, learning_rate=self.pretrain_learning_rate,
            optimizer=self.optimizer, momentum=self.momentum, weight_decay=self.weight_decay,
            warmup_steps=self.warmup_steps, clip_grad_norm=self.clip_grad_norm,
            checkpoint_dir=_subdir(self.checkpoint_dir, f"pretrain{i + 1}"),
            checkpoint_every=self.checkpoint_every, resume=self.resume,
            log_dir=_subdir(self.log_dir, f"pretrain{i + 1}"), log_every=self.log_every,
            tensorboard=self.tensorboard, amp=self.amp, device=self.device,
            random_state=(self._seed + 7919 * (i + 1)) % (2**31 - 1), verbose=self.verbose)
        if self.pretrain == "dae":
            return DenoisingAutoencoder(size, noise=self.noise, noise_level=self.noise_level,
                                        **common)
        return _LayerAE(size, **common)

    def fit(self, X: Any, y: Any = None, callbacks: Any = None) -> StackedAutoencoder:
        """Pre-train layer by layer, unroll, fine-tune end to end (``y`` is ignored)."""
        self._validate_params()
        self._seed = self._run_seed()
        Xv = self._validate_train_input(X)
        self._prepare(Xv)
        self.module_ = self._init_module()
        self._gen = self._make_generator()
        sizes = self.layer_sizes_
        self.pretrain_history_ = []
        if self.pretrain != "none":
            H: Any = Xv
            enc_lin = self.module_.encoder.linears
            dec_lin = self.module_.decoder.linears[::-1]  # dec_lin[i]: h_{i+1} -> h_i
            for i, size in enumerate(sizes):
                layer = self._layer_estimator(i, len(sizes), size)
                layer._stage_name = f"pre-train layer {i + 1}/{len(sizes)}"
                layer.fit(H)
                self.pretrain_history_.append(layer.history_)
                e, d = layer.module_.encoder[0], layer.module_.decoder[0]
                with torch.no_grad():
                    enc_lin[i].weight.copy_(e.weight)
                    enc_lin[i].bias.copy_(e.bias)
                    dec_lin[i].weight.copy_(d.weight)
                    dec_lin[i].bias.copy_(d.bias)
                if i < len(sizes) - 1:
                    H = torch.as_tensor(layer.transform(H), device=self._device())
        self.pretrained_encoder_ = {k: v.detach().cpu().numpy().copy() for k, v in
                                    self.module_.encoder.state_dict().items()}
        if self.epochs > 0:
            cfg = self._train_config(stage="fine-tune",
                                     checkpoint_dir=_subdir(self.checkpoint_dir, "finetune"),
                                     log_dir=_subdir(self.log_dir, "finetune"))
            res = self._run(Xv, cfg, callbacks or ())
            self._record(res)
        else:
            self.history_, self.n_steps_, self.stopped_early_ = [], 0, False
        self.module_.eval()
        return self

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch
        nu = float(self.fine_tune_noise or 0.0)
        if nu > 0 and self.module_.training:
            x = corrupt(batch, "masking", nu, self._gen)
        _, out = self.module_(x)
        return self._mean_recon_loss(out, batch)

    def encoder_module(self, pretrained_only: bool = False) -> nn.Sequential:
        """A copy of the encoder as ``nn.Sequential`` of ``Linear`` + activation layers.

        Parameters
        ----------
        pretrained_only : bool, default=False
            Return the weights right after greedy pre-training instead of the fine-tuned ones.

        Returns
        -------
        torch.nn.Sequential
            Maps (n, n_features_in_) inputs to (n, layer_sizes[-1]) codes (linear top layer).
            Append a head and train it for a supervised task.
        """
        self._check_fitted()
        enc = copy.deepcopy(self.module_.encoder).cpu()
        if pretrained_only:
            enc.load_state_dict({k: torch.from_numpy(np.array(v))
                                 for k, v in self.pretrained_encoder_.items()})
        return enc

    # -- persistence: pretrained encoder weights are dicts of arrays ---------------------
    _save_exclude = ("module_", "pretrained_encoder_")

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, values = super()._get_state()
        for k, v in self.pretrained_encoder_.items():
            arrays[f"pretrained__{k}_"] = v
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        pre = {k[len("pretrained__"):-1]: v for k, v in arrays.items()
               if k.startswith("pretrained__")}
        super()._set_state({k: v for k, v in arrays.items()
                            if not k.startswith("pretrained__")}, values)
        self.pretrained_encoder_ = pre


def _subdir(directory: str | None, name: str) -> str | None:
    return os.path.join(directory, name) if directory else None


class _LayerAE(Autoencoder):
    """One pre-training layer (inputs may be wider than the code: no bottleneck check)."""

    _allow_overcomplete = True


StackedAutoencoder.__doc__ = (StackedAutoencoder.__doc__ or "").replace(
    "{train_params}", TRAIN_PARAMS_DOC)
