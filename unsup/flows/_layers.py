r"""The invertible layers of RealNVP and Glow, and the multi-scale flow that chains them.

Every layer maps ``x -> (y, a)`` with ``a`` the per-row log|det ∂y/∂x| (for a :class:`Split`,
the log-density of the factored-out half under its prior), and has an exact ``inverse``. The
flow's log-density is the change of variables

.. math::

    \log p_X(x) = \log p_Z(f(x)) + \sum_l \log \left| \det \frac{\partial f_l}{\partial f_{l-1}}
    \right|, \qquad p_Z = N(0, I),

and sampling is ``x = f^{-1}(z)``, ``z ~ N(0, I)``. Layers (Dinh, Sohl-Dickstein & Bengio
2017; Kingma & Dhariwal 2018):

- :class:`ActNorm`: ``y = (x + b) ⊙ e^{s}`` per channel, initialised from the first training
  batch so that ``y`` has zero mean and unit variance per channel; log-det ``H W Σ s``.
- :class:`InvConv1x1`: ``y = W x`` per pixel with ``W = P L (U + diag(sign ⊙ e^{log|s|}))``
  (LU form: ``P`` fixed, ``L`` unit lower, ``U`` strictly upper); log-det ``H W Σ log|s|``.
  In eval mode without gradients ``W`` and ``W^{-1}`` are computed once and cached.
- :class:`AffineCoupling`: with a binary mask ``m`` (checkerboard, channel or alternating
  vector mask) or a channel split, ``y = m ⊙ x + (1 - m) ⊙ (x ⊙ e^{s(m ⊙ x)} + t(m ⊙ x))``;
  log-det ``Σ (1 - m) ⊙ s``. ``s`` is ``scale · tanh(raw)`` (RealNVP) or
  ``log σ(raw + 2)`` (Glow). The conditioner's last layer starts at zero: every coupling
  starts as the identity.
- :class:`Squeeze`: ``(C, H, W) -> (4C, H/2, W/2)``, a permutation (log-det 0).
- :class:`Split`: factor out half the channels; their density is ``N(0, I)`` (RealNVP) or a
  Gaussian with a learned mean and log-scale per dimension (Glow), to which a zero-initialised
  convolution of the kept half can add (Glow's conditional ``split2d_prior``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NonFiniteFlowError", "ActNorm", "InvConv1x1", "AffineCoupling", "Squeeze", "Split",
           "Standardize", "Flow", "conv_net", "mlp_net", "checkerboard"]

_LOG_2PI = math.log(2 * math.pi)


class NonFiniteFlowError(ValueError):
    """A flow produced a non-finite log-density, log-determinant or sample."""


def guard(t: torch.Tensor, what: str) -> torch.Tensor:
    """``t`` unchanged when finite; else a :class:`NonFiniteFlowError` saying what broke."""
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).reshape(t.shape[0], -1).any(1).sum()) if t.ndim else 1
        raise NonFiniteFlowError(
            f"the flow produced a non-finite {what} for {bad} of {max(len(t), 1) if t.ndim else 1}"
            " rows (inf or NaN): the model diverged (try a lower learning_rate or "
            "clip_grad_norm) or the input lies far outside the data it was trained on")
    return t


def _building_on_meta() -> bool:
    """Whether modules are being built on the ``meta`` device (file checks: shapes only)."""
    return torch.empty(()).device.type == "meta"


def _pixels(x: torch.Tensor) -> int:
    return x.shape[2] * x.shape[3] if x.ndim == 4 else 1


def _view(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return p.view(1, -1, 1, 1) if x.ndim == 4 else p.view(1, -1)


class ActNorm(nn.Module):
    """Per-channel affine map with data-dependent initialisation (Glow §3.1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.zeros(1, dtype=torch.uint8))
        self._done = False

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set ``b = -mean``, ``s = -log std`` per channel from ``x`` (a training batch)."""
        dims = [d for d in range(x.ndim) if d != 1]
        mean = x.mean(dims)
        std = (x - _view(mean, x)).pow(2).mean(dims).sqrt()
        self.loc.copy_(-mean)
        self.log_scale.copy_(-torch.log(std.clamp_min(1e-3)))  # a constant channel: scale 1e3
        self.initialized.fill_(1)

    @property
    def ready(self) -> bool:
        """Whether a forward pass would leave the parameters as they are (no initialisation)."""
        return self._done or not self.training

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self._done:
            if not bool(self.initialized):
                self.initialize(x)
            self._done = True  # no device sync per step once initialised
        y = (x + _view(self.loc, x)) * _view(self.log_scale, x).exp()
        return y, (_pixels(x) * self.log_scale.sum()).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * _view(-self.log_scale, y).exp() - _view(self.loc, y)


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution (or, on vectors, invertible linear map) in LU form."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = int(channels)
        if _building_on_meta():  # shapes only: no decomposition of a (possibly huge) matrix
            P = L = U = torch.empty(c, c)
            s = torch.empty(c)
        else:  # a random rotation (Glow's initialisation), decomposed once
            w = torch.linalg.qr(torch.randn(c, c, dtype=torch.float64))[0]
            P, L, U = torch.linalg.lu(w)
            s = torch.diagonal(U)
        self.register_buffer("perm", P.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.lower = nn.Parameter(torch.tril(L, -1).float())
        self.upper = nn.Parameter(torch.triu(U, 1).float())
        self.log_s = nn.Parameter(torch.log(s.abs()).float())
        self._cache: tuple[tuple[int, ...], torch.Tensor, torch.Tensor] | None = None

    def _weight(self) -> torch.Tensor:
        eye = torch.eye(self.lower.shape[0], device=self.lower.device, dtype=self.lower.dtype)
        L = torch.tril(self.lower, -1) + eye
        U = torch.triu(self.upper, 1) + torch.diag(self.sign_s * self.log_s.exp())
        return self.perm @ L @ U

    def weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(W, W^{-1})``; cached in eval mode without gradients (recomputed when a parameter
        changes), else ``W`` alone."""
        if self.training or torch.is_grad_enabled():
            return self._weight(), None
        key = (self.lower._version, self.upper._version, self.log_s._version,
               self.lower.data_ptr(), self.perm._version)
        if self._cache is None or self._cache[0] != key:
            w = self._weight()
            self._cache = (key, w, torch.linalg.inv(w.double()).to(w.dtype))
        return self._cache[1], self._cache[2]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights()[0]
        y = F.conv2d(x, w[:, :, None, None]) if x.ndim == 4 else x @ w.T
        return y, (_pixels(x) * self.log_s.sum()).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w, w_inv = self.weights()
        if w_inv is None:
            w_inv = torch.linalg.inv(w)
        return F.conv2d(y, w_inv[:, :, None, None]) if y.ndim == 4 else y @ w_inv.T


def conv_net(c_in: int, c_out: int, hidden: int) -> nn.Sequential:
    """Glow's coupling network: 3x3 conv, ReLU, 1x1 conv, ReLU, zero-initialised 3x3 conv."""
    last = nn.Conv2d(hidden, c_out, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(hidden, hidden, 1), nn.ReLU(), last)


def mlp_net(d_in: int, d_out: int, hidden: Sequence[int]) -> nn.Sequential:
    """A ReLU MLP whose last layer starts at zero (vector couplings)."""
    sizes = [int(d_in), *(int(h) for h in hidden)]
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    last = nn.Linear(sizes[-1], d_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


def checkerboard(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """The (1, C, H, W) checkerboard mask whose ones are the pixels with ``(i + j) % 2 ==
    parity``."""
    ij = torch.arange(h)[:, None] + torch.arange(w)[None, :]
    return ((ij % 2) == parity).float().expand(1, c, h, w).contiguous()


class AffineCoupling(nn.Module):
    """Affine coupling: a masked one (``mask`` given: checkerboard or vector mask) or a channel
    split (``mask=None``: the first ``C - C//2`` channels condition the last ``C//2``; with
    ``flip`` the other way round)."""

    def __init__(self, net: nn.Module, mask: torch.Tensor | None = None, *, flip: bool = False,
                 scale: str = "tanh", n_out: int | None = None, mask_input: bool = False
                 ) -> None:
        super().__init__()
        self.net = net
        self.flip = bool(flip)
        self.kind = scale
        self.mask_input = bool(mask_input)
        if mask is not None:
            self.register_buffer("mask", mask)
        else:
            self.mask = None
        if scale == "tanh":  # RealNVP: s = scale ⊙ tanh(raw), one learned scale per output
            self.scale = nn.Parameter(torch.ones(int(n_out or 1)))

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        a, b = x[:, :c - c // 2], x[:, c - c // 2:]
        return (b, a) if self.flip else (a, b)

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat((b, a) if self.flip else (a, b), 1)

    def _log_s_t(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if cond.dim() == 4:  # images: oneDNN's convolutions run 20-35% faster channels-last
            cond = cond.contiguous(memory_format=torch.channels_last)
        raw, t = self.net(cond).chunk(2, 1)
        if self.kind == "tanh":
            return _view(self.scale, raw) * torch.tanh(raw), t
        return F.logsigmoid(raw + 2.0), t

    def _cond(self, x: torch.Tensor) -> torch.Tensor:
        assert self.mask is not None
        xm = x * self.mask
        if self.mask_input:  # images: the conditioner sees where the fixed pixels are
            xm = torch.cat([xm, self.mask[:, :1].expand(x.shape[0], 1, *x.shape[2:])], 1)
        return xm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mask is None:
            a, b = self._split(x)
            log_s, t = self._log_s_t(a)
            return self._join(a, b * log_s.exp() + t), log_s.flatten(1).sum(1)
        free = 1 - self.mask
        log_s, t = self._log_s_t(self._cond(x))
        log_s, t = log_s * free, t * free
        return x * self.mask + free * (x * log_s.exp() + t), log_s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            a, b = self._split(y)
            log_s, t = self._log_s_t(a)
            return self._join(a, (b - t) * (-log_s).exp())
        free = 1 - self.mask
        log_s, t = self._log_s_t(self._cond(y))
        return y * self.mask + free * ((y - t) * (-log_s * free).exp())


class Squeeze(nn.Module):
    """Space to depth: each 2x2 block of pixels becomes 4 channels."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        y = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        y = y.reshape(n, 4 * c, h // 2, w // 2).contiguous(memory_format=torch.channels_last)
        return y, x.new_zeros(n)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        n, c, h, w = y.shape
        x = y.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(n, c // 4, 2 * h, 2 * w).contiguous(memory_format=torch.channels_last)


def _gauss(z: torch.Tensor, mean: torch.Tensor | float = 0.0,
           log_scale: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Per-row log N(z; mean, e^{2 log_scale})."""
    if isinstance(log_scale, float):
        lp = -0.5 * ((z - mean) ** 2 + _LOG_2PI)
    else:
        lp = -0.5 * (((z - mean) * (-log_scale).exp()) ** 2 + _LOG_2PI) - log_scale
    return lp.flatten(1).sum(1)


class Split(nn.Module):
    """Factor out the last ``C // 2`` channels: ``(x_keep, log p(z_out | x_keep))``.

    ``learned_prior=False``: ``N(0, I)``. ``learned_prior=True`` with ``size=(H, W)``: a
    Gaussian with a learned mean and log-scale per position and channel (``offset``; so that,
    e.g., the blank border of a digit can get its own narrow density); with ``conditional``
    as well, a zero-initialised 3x3 convolution of the kept half (``prior``) is added to them
    (Glow's ``split2d_prior``), making the prior of ``z_out`` depend on ``x_keep``."""

    def __init__(self, channels: int, learned_prior: bool, size: Sequence[int] = (1, 1),
                 conditional: bool = True) -> None:
        super().__init__()
        self.n_out = int(channels) // 2
        self.learned = bool(learned_prior)
        self.prior: nn.Module | None = None
        if learned_prior:
            if conditional:
                self.prior = nn.Conv2d(int(channels) - self.n_out, 2 * self.n_out, 3, padding=1)
                nn.init.zeros_(self.prior.weight)
                nn.init.zeros_(self.prior.bias)
            self.offset = nn.Parameter(torch.zeros(2 * self.n_out, *(int(s) for s in size)))

    def _params(self, keep: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        if not self.learned:
            return 0.0, 0.0
        h = self.offset[None] if self.prior is None else self.prior(keep) + self.offset
        mean, log_scale = h.chunk(2, 1)
        return mean, log_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep, out = x[:, :x.shape[1] - self.n_out], x[:, x.shape[1] - self.n_out:]
        return keep, _gauss(out, *self._params(keep))

    def inverse(self, keep: torch.Tensor, generator: torch.Generator | None = None,
                temperature: float = 1.0) -> torch.Tensor:
        mean, log_scale = self._params(keep)
        eps = torch.randn((keep.shape[0], self.n_out, *keep.shape[2:]), generator=generator,
                          device=keep.device, dtype=keep.dtype)
        scale = log_scale.exp() if isinstance(log_scale, torch.Tensor) else 1.0
        return torch.cat([keep, mean + scale * eps * temperature], 1)


class Standardize(nn.Module):
    """``y = (x - loc) e^{-log_scale}`` per feature, fixed from the training data (buffers)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("loc", torch.zeros(n))
        self.register_buffer("log_scale", torch.zeros(n))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x - self.loc) * (-self.log_scale).exp(), (-self.log_scale.sum()).expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.log_scale.exp() + self.loc


class Flow(nn.Module):
    """A chain of the layers above on flat rows ``(n, D)``: ``shape`` is ``(C, H, W)`` for
    images (the first layer sees ``(n, C, H, W)``) or ``(D,)`` for vectors.

    Runs of Glow steps (ActNorm, InvConv1x1, channel-split sigmoid coupling with Glow's
    :func:`conv_net`) on images are
    evaluated together by :func:`unsup.flows._glow_steps.glow_run` (the same map in fewer
    operations) once their ActNorms are initialised; ``fuse_steps = False`` calls every
    layer in turn."""

    fuse_steps = True

    def __init__(self, shape: Sequence[int], layers: Sequence[nn.Module],
                 learned_top: bool = False) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.layers = nn.ModuleList(layers)
        z = list(self.shape)  # the shape of the last z, for sampling
        for m in self.layers:
            if isinstance(m, Squeeze):
                z = [4 * z[0], z[1] // 2, z[2] // 2]
            elif isinstance(m, Split):
                z[0] -= m.n_out
        self.z_shape = tuple(z)
        self.top: nn.Parameter | None = None
        if learned_top:  # Glow's learned top prior: a mean and log-scale per latent dimension
            self.top = nn.Parameter(torch.zeros(2, *self.z_shape))
        self.channels_last = len(self.shape) == 3
        if self.channels_last:  # mkldnn's convolutions are ~25% faster on NHWC on CPU
            self.to(memory_format=torch.channels_last)
        from ._glow_steps import glow_runs  # (imports this module's layers)

        self._runs = dict(glow_runs(list(self.layers))) if self.channels_last else {}

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], *self.shape)
        return h.contiguous(memory_format=torch.channels_last) if self.channels_last else h

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row log-density of flat rows ``x`` (nats), guarded against inf / NaN."""
        from ._glow_steps import glow_run

        h = self._image(x)
        total = x.new_zeros(x.shape[0])
        i, layers = 0, self.layers
        while i < len(layers):
            stop = self._runs.get(i) if self.fuse_steps else None
            if stop is not None and all(layers[j].ready for j in range(i, stop, 3)):
                h, a = glow_run(h, [tuple(layers[j:j + 3]) for j in range(i, stop, 3)])
                i = stop
            else:
                h, a = layers[i](h)
                i += 1
            total = total + a
        prior = _gauss(h) if self.top is None else _gauss(h, self.top[0], self.top[1])
        return guard(total + prior, "log-density (log-determinant or prior term)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_prob(x)

    def to_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det|)`` of an invertible chain without :class:`Split` layers."""
        h = self._image(x)
        total = x.new_zeros(x.shape[0])
        for m in self.layers:
            if isinstance(m, Split):
                raise ValueError("to_latent needs a flow without multi-scale splits")
            h, a = m(h)
            total = total + a
        return h.reshape(x.shape[0], -1), total

    def inverse(self, z: torch.Tensor, generator: torch.Generator | None = None,
                temperature: float = 1.0) -> torch.Tensor:
        """Flat rows from the last latent ``z`` (shape ``(n, *z_shape)``); every split draws its
        factored half with ``generator`` (its noise scaled by ``temperature``)."""
        h = z
        for m in reversed(self.layers):
            h = m.inverse(h, generator, temperature) if isinstance(m, Split) else m.inverse(h)
        return guard(h.reshape(h.shape[0], -1), "sample")

    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        p = next(self.parameters())
        t = float(temperature)
        z = torch.randn((int(n), *self.z_shape), generator=generator, device=p.device,
                        dtype=p.dtype) * t
        if self.top is not None:
            z = self.top[0] + self.top[1].exp() * z
        return self.inverse(z, generator, t)
