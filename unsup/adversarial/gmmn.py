r"""Generative moment matching networks (Li, Swersky & Zemel 2015), in data space and in the
code space of an autoencoder (GMMN+AE).

A generator :math:`G_θ` maps noise :math:`h \sim U[-1, 1]^{k}` to data. Instead of a
discriminator, it is trained to minimise the maximum mean discrepancy between a minibatch of
data :math:`\{x_i\}_{i=1}^{n}` and a minibatch of samples :math:`\{G_θ(h_j)\}_{j=1}^{n}`, with a
mixture of Gaussian kernels :math:`k(a, b) = \sum_{σ} \exp(-\lVert a - b\rVert^2 / 2σ^2)`:

.. math::

    \mathcal L_{MMD^2} = \frac{1}{n^2}\sum_{i,i'} k(x_i, x_{i'})
        - \frac{2}{n^2}\sum_{i,j} k(x_i, G(h_j)) + \frac{1}{n^2}\sum_{j,j'} k(G(h_j), G(h_{j'}))

(:mod:`unsup.adversarial._mmd`); minimising it matches all moments of the two distributions
as the kernel is characteristic. As in the authors' code, the default objective is
:math:`\sqrt{\mathcal L_{MMD^2}}` (``loss="sqrt"``), whose gradient does not vanish as the
MMD shrinks. Bandwidths default to the multiples (0.2, 0.5, 1, 2, 4, 8) of the median pairwise
distance of the training data (in the space matched); on MNIST pixels, whose median distance is
about 10, that is the paper's set {2, 5, 10, 20, 40, 80}.

**GMMN+AE.** With ``autoencoder="auto"`` (or an :class:`unsup.autoencoders.Autoencoder`), an
autoencoder with sigmoid codes is trained first (its public API), frozen, and the generator
matches the distribution of the codes :math:`f(x)` instead of the pixels; a sample is
:math:`g(G(h))`, the decoder applied to a generated code. The paper reports it much better than
data-space GMMN on MNIST (lower-dimensional, smoother space for the kernel).

References
----------
.. [1] Li, Swersky & Zemel, "Generative Moment Matching Networks", ICML 2015.
.. [2] Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A Kernel Two-Sample Test", JMLR 13, 2012.
.. [3] Dziugaite, Roy & Ghahramani, "Training generative neural networks via maximum mean
   discrepancy optimization", UAI 2015.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods
from torch import nn

from unsup.adversarial._aae_common import (
    OUTPUTS,
    apply_output,
    check_choice,
    hidden_sizes,
    output_for,
    sample_seed,
)
from unsup.adversarial._mmd import median_distance, mmd2
from unsup.nn import ACTIVATIONS, MLP
from unsup.params import Interval, StrOptions
from unsup.registry import register_model
from unsup.train import TRAIN_PARAMS_DOC, GradientEstimator
from unsup.train.seeding import derive_seed

__all__ = ["GMMN"]

_pos = Interval(Integral, 1, None, closed="left")
BANDWIDTH_MULTIPLES = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


class GMMNNet(nn.Module):
    """``generator`` (noise -> data or code) and, for GMMN+AE, the frozen ``encoder`` and
    ``decoder`` of the autoencoder."""

    def __init__(self, noise: int, hidden: Sequence[int], out: int, act: str,
                 ae: dict[str, Any] | None) -> None:
        super().__init__()
        self.generator = MLP([noise, *hidden, out], act)
        self.encoder: nn.Module | None = None
        self.decoder: nn.Module | None = None
        if ae is not None:
            sizes = list(ae["sizes"])
            self.encoder = MLP(sizes, ae["activation"], ae["code_activation"])
            self.decoder = MLP(sizes[::-1], ae["activation"], "linear")
            for p in [*self.encoder.parameters(), *self.decoder.parameters()]:
                p.requires_grad_(False)  # frozen: only the generator is trained


@register_model("gmmn", family="adversarial", aliases=("moment-matching",),
                summary="generative moment matching network (MMD, data or autoencoder codes)")
class GMMN(GradientEstimator):
    """Generative moment matching network: a generator trained by minimising the MMD.

    Parameters
    ----------
    n_components : int, default=10
        Dimension k of the uniform noise h ~ U[-1, 1]^k fed to the generator.
    hidden_layer_sizes : sequence of int, default=(64, 256, 256, 1024)
        Hidden layers of the generator (the paper's MNIST generator).
    activation : str, default="relu"
        Hidden non-linearity of the generator.
    bandwidths : sequence of float or None, default=None
        σ of the Gaussian kernels of the mixture. None: (0.2, 0.5, 1, 2, 4, 8) times the
        median pairwise distance of the training data (or codes).
    loss : {"sqrt", "mmd2"}, default="sqrt"
        Minimise √MMD² (the authors' code) or MMD² itself (biased estimate).
    autoencoder : None, "auto" or Autoencoder, default=None
        None: match the data itself. "auto": first train an autoencoder with sigmoid codes
        (``ae_n_components``, ``ae_hidden_layer_sizes``, ``ae_epochs``) and match its codes
        (GMMN+AE). An :class:`unsup.autoencoders.Autoencoder` (MLP) is used as given when
        fitted, else a clone of it is fitted on X. A model with an Autoencoder instance as
        this parameter cannot be saved (parameters are stored as JSON): use "auto" for that.
    ae_n_components : int, default=32
        Code size of the "auto" autoencoder.
    ae_hidden_layer_sizes : sequence of int, default=(1024,)
        Hidden layers of the "auto" autoencoder (the paper's 784-1024-32).
    ae_epochs : int, default=30
        Training epochs of the "auto" autoencoder.
    epochs : int, default=100
    batch_size : int, default=500
        Rows per minibatch, and generated samples per step: the MMD is estimated on
        minibatches, so larger is better (the paper used 1000).
    {train_params}

    Attributes
    ----------
    module_ : GMMNNet
        ``generator``; for GMMN+AE also the frozen ``encoder`` and ``decoder``.
    bandwidths_ : list of float
        The kernel bandwidths used.
    output_ : str
        "sigmoid" (outputs in [0, 1]) or "linear": the generator's last layer.
    ae_sizes_ : list of int or None
        Layer widths of the autoencoder's encoder, input first (GMMN+AE).
    history_ : list of dict
        Per epoch: ``loss`` (the minibatch objective).
    n_features_in_ : int
    """

    _parameter_constraints: dict[str, Any] = {
        "n_components": [_pos],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "bandwidths": ["array-like", None],
        "loss": [StrOptions({"sqrt", "mmd2"})],
        "autoencoder": [None, StrOptions({"auto"}), HasMethods(["fit", "transform"])],
        "ae_n_components": [_pos],
        "ae_hidden_layer_sizes": ["array-like"],
        "ae_epochs": [_pos],
    }
    _test_params: dict[str, Any] = {"n_components": 2, "hidden_layer_sizes": (8,), "epochs": 2,
                                    "batch_size": 32}
    _stage_name = "GMMN"
    _amp_auto = False  # the MMD is a small difference of large kernel sums: no bf16

    def __init__(
        self,
        n_components: int = 10,
        *,
        hidden_layer_sizes: Sequence[int] = (64, 256, 256, 1024),
        activation: str = "relu",
        bandwidths: Sequence[float] | None = None,
        loss: str = "sqrt",
        autoencoder: Any = None,
        ae_n_components: int = 32,
        ae_hidden_layer_sizes: Sequence[int] = (1024,),
        ae_epochs: int = 30,
        epochs: int = 100,
        batch_size: int = 500,
    ) -> None:
        super().__init__()
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.bandwidths = bandwidths
        self.loss = loss
        self.autoencoder = autoencoder
        self.ae_n_components = ae_n_components
        self.ae_hidden_layer_sizes = ae_hidden_layer_sizes
        self.ae_epochs = ae_epochs
        self.epochs = epochs
        self.batch_size = batch_size

    # -- the autoencoder of GMMN+AE -----------------------------------------------------------
    def _fitted_autoencoder(self, X: Any) -> Any:
        from sklearn.base import clone

        from unsup.autoencoders import Autoencoder

        ae = self.autoencoder
        if isinstance(ae, str):  # "auto": the paper's sigmoid-code autoencoder
            ae = Autoencoder(int(self.ae_n_components),
                             hidden_layer_sizes=tuple(hidden_sizes(self.ae_hidden_layer_sizes,
                                                                   "ae_hidden_layer_sizes")),
                             code_activation="sigmoid", epochs=int(self.ae_epochs),
                             batch_size=100, device=self.device, verbose=self.verbose,
                             random_state=derive_seed(self._seed, 3))
        if not isinstance(ae, Autoencoder):
            raise ValueError("autoencoder must be None, 'auto' or an unsup Autoencoder, got "
                             f"{type(ae).__name__}")
        if ae.architecture != "mlp":
            raise ValueError("GMMN+AE takes an MLP autoencoder (architecture='mlp')")
        if not hasattr(ae, "module_"):
            ae = clone(ae).fit(X)
        elif ae.n_features_in_ != self.n_features_in_:
            raise ValueError(f"the autoencoder was fitted on {ae.n_features_in_} features, X "
                             f"has {self.n_features_in_}")
        return ae

    def _prepare(self, X: Any) -> None:
        hidden_sizes(self.hidden_layer_sizes)
        self._ae_source = None
        self.ae_sizes_ = None
        self.ae_activation_ = None
        self.ae_code_activation_ = None
        self.ae_output_ = None
        Xt = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X[:20000]))
        if self.autoencoder is not None:
            ae = self._fitted_autoencoder(X)
            self._ae_source = ae
            self.ae_sizes_ = [int(self.n_features_in_), *hidden_sizes(ae.hidden_layer_sizes),
                              int(ae.n_components)]
            self.ae_activation_ = str(ae.activation)
            self.ae_code_activation_ = str(ae.code_activation)
            self.ae_output_ = "sigmoid" if ae.loss_ == "bce" else "linear"
            space = torch.as_tensor(ae.transform(Xt.cpu().numpy()))
            self.output_ = "sigmoid" if self.ae_code_activation_ == "sigmoid" else "linear"
        else:
            space = Xt
            self.output_ = output_for(X)
        if self.bandwidths is None:
            med = median_distance(space.float())
            self.bandwidths_ = [float(m * med) for m in BANDWIDTH_MULTIPLES]
        else:
            bw = [float(b) for b in np.atleast_1d(np.asarray(self.bandwidths, dtype=float))]
            if not bw or not all(np.isfinite(b) and b > 0 for b in bw):
                raise ValueError(f"bandwidths must be positive numbers, got {self.bandwidths!r}")
            self.bandwidths_ = bw

    def _ae_spec(self) -> dict[str, Any] | None:
        if self.ae_sizes_ is None:
            return None
        sizes = hidden_sizes(self.ae_sizes_, "ae_sizes_")
        if len(sizes) < 2 or sizes[0] != self.n_features_in_:
            raise ValueError(f"ae_sizes_={self.ae_sizes_!r} does not start at the input width")
        check_choice("ae_output_", self.ae_output_, OUTPUTS)
        return {"sizes": sizes, "activation": self.ae_activation_,
                "code_activation": self.ae_code_activation_}

    def _build_module(self) -> nn.Module:
        check_choice("output_", self.output_, OUTPUTS)
        ae = self._ae_spec()
        out = ae["sizes"][-1] if ae else int(self.n_features_in_)
        net = GMMNNet(int(self.n_components), hidden_sizes(self.hidden_layer_sizes), out,
                      self.activation, ae)
        src = getattr(self, "_ae_source", None)
        if ae is not None and src is not None:  # copy the trained autoencoder in
            net.encoder.load_state_dict(src.module_.encoder.state_dict())
            net.decoder.load_state_dict(src.module_.decoder.state_dict())
        return net

    # -- the objective ------------------------------------------------------------------------
    def _generate(self, n: int, gen: torch.Generator, device: Any) -> torch.Tensor:
        h = torch.rand((n, int(self.n_components)), generator=gen, device=device) * 2 - 1
        return apply_output(self.module_.generator(h), self.output_)

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        target = batch
        if self.module_.encoder is not None:
            with torch.no_grad():
                target = self.module_.encoder(batch)
        fake = self._generate(batch.shape[0], self._gen, batch.device)
        m = mmd2(target, fake, self.bandwidths_)
        # √ of a V-statistic (never negative); the floor keeps the gradient finite at 0
        return m.clamp_min(1e-12).sqrt() if self.loss == "sqrt" else m

    # -- public API ---------------------------------------------------------------------------
    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draw ``n_samples`` rows: G(h), h ~ U[-1, 1]^k (GMMN+AE: the decoder of G(h))."""
        self._check_fitted()
        g = torch.Generator(device=self._device())
        g.manual_seed(sample_seed(random_state, self.random_state))
        with torch.no_grad():
            self.module_.eval()
            x = self._generate(int(n_samples), g, self._device())
            if self.module_.decoder is not None:
                x = apply_output(self.module_.decoder(x), self.ae_output_)
        return x.cpu().numpy()

    def mmd(self, X: Any, n_samples: int | None = None, unbiased: bool = True,
            random_state: Any = None) -> float:
        """MMD² between ``X`` and as many model samples (or ``n_samples``), in data space,
        with the fitted kernel (GMMN+AE: the kernel of the codes is not used; the bandwidths
        are recomputed from X by the median heuristic)."""
        self._check_fitted()
        x = self._input(X)
        s = torch.as_tensor(self.sample(n_samples or len(x), random_state), device=x.device)
        bw = self.bandwidths_ if self.ae_sizes_ is None else [
            m * median_distance(x) for m in BANDWIDTH_MULTIPLES]
        with torch.no_grad():
            return float(mmd2(x, s, bw, unbiased=unbiased))


GMMN.__doc__ = (GMMN.__doc__ or "").replace("{train_params}", TRAIN_PARAMS_DOC)
