"""DCGAN stacks (Radford, Metz & Chintala 2016): a transposed-convolution generator and a strided
convolution discriminator, on flat rows like every other ``unsup.nn`` stack.

Both halve / double the image size with 4×4 kernels, stride 2, padding 1 (``h → ⌊h/2⌋``); the
generator's ``output_padding`` lands exactly on every size of the discriminator, so any image
size works (28 → 14 → 7 and back for MNIST) as long as it survives the halvings. Design choices
of the DCGAN paper: no pooling, ReLU + batch norm in the generator, LeakyReLU(0.2) in the
discriminator, tanh output. The discriminator has *no* batch norm: gradient penalties
(WGAN-GP, DRAGAN) are per-row and batch norm would couple the rows of a batch.

Use::

    G = DCGANGenerator(64, (1, 28, 28), channels=(32, 64))     # (n, 64) -> (n, 784) in [-1, 1]
    D = DCGANDiscriminator((1, 28, 28), channels=(32, 64))      # (n, 784) -> (n, 1)
    AE = nn.Sequential(DCGANDiscriminator(shape, ch, out=16),    # BEGAN's autoencoder
                       DCGANGenerator(16, shape, ch, batch_norm=False))

``channels`` lists the discriminator's widths from the image inward; the generator mirrors them
(widest at the bottom).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from unsup.nn.stacks import activation

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "conv_sizes"]


def conv_sizes(image_shape: Sequence[int], n: int) -> list[tuple[int, int]]:
    """Spatial sizes ``[(H, W), (⌊H/2⌋, ⌊W/2⌋), …]`` after ``n`` stride-2 4×4 convolutions.

    Raises ValueError when an image is too small for ``n`` halvings.
    """
    _, h, w = (int(s) for s in image_shape)
    sizes = [(h, w)]
    for _ in range(n):
        h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"an image of shape {tuple(image_shape)} is too small for {n} "
                             "stride-2 convolutions: use fewer conv_channels")
        sizes.append((h, w))
    return sizes


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)  # its 0-d batch counter is saved 0-d (tests/test_io.py)


def _check(image_shape: Sequence[int], channels: Sequence[int]) -> tuple[int, list[int]]:
    shape = [int(s) for s in image_shape]
    chans = [int(c) for c in channels]
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
    if not chans or min(chans) < 1:
        raise ValueError(f"a convolutional stack needs positive channel counts, got {chans}")
    return shape[0], chans


class DCGANDiscriminator(nn.Sequential):
    """Flat images ``(n, C·H·W)`` → 4×4 stride-2 convolutions with LeakyReLU(0.2) → a linear
    output ``(n, out)`` (a logit, a critic value, or a code for an autoencoder).

    Parameters
    ----------
    image_shape : (C, H, W)
    channels : sequence of int
        Widths of the convolutions, image side first.
    out : int, default=1
        Width of the linear output.
    slope : float, default=0.2
        Negative slope of the LeakyReLUs.
    """

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int], out: int = 1,
                 slope: float = 0.2) -> None:
        c, chans = _check(image_shape, channels)
        h, w = conv_sizes(image_shape, len(chans))[-1]
        layers: list[nn.Module] = [nn.Unflatten(1, tuple(int(s) for s in image_shape))]
        cin = c
        for ch in chans:
            layers += [nn.Conv2d(cin, ch, 4, stride=2, padding=1), nn.LeakyReLU(slope)]
            cin = ch
        layers += [nn.Flatten(), nn.Linear(cin * h * w, int(out))]
        super().__init__(*layers)


class DCGANGenerator(nn.Sequential):
    """A code ``(n, n_latent)`` → linear projection to the smallest feature map → 4×4 stride-2
    transposed convolutions → flat images ``(n, C·H·W)``.

    Parameters
    ----------
    n_latent : int
        Width of the input code.
    image_shape : (C, H, W)
    channels : sequence of int
        The discriminator's widths (image side first); the generator runs them backwards.
    batch_norm : bool, default=True
        Batch norm after the projection and every hidden transposed convolution (DCGAN).
    act : str, default="relu"
        Hidden non-linearity.
    last_act : str, default="tanh"
        Output non-linearity (``"linear"``: none).
    """

    def __init__(self, n_latent: int, image_shape: Sequence[int], channels: Sequence[int],
                 batch_norm: bool = True, act: str = "relu", last_act: str = "tanh") -> None:
        c, chans = _check(image_shape, channels)
        sizes = conv_sizes(image_shape, len(chans))
        h, w = sizes[-1]
        top = chans[-1]
        layers: list[nn.Module] = [nn.Linear(int(n_latent), top * h * w),
                                   nn.Unflatten(1, (top, h, w))]
        if batch_norm:
            layers.append(_batch_norm(top))
        layers.append(activation(act))
        outs = [*chans[:-1][::-1], c]
        cin = top
        for i, ch in enumerate(outs):
            (th, tw), (ch_, cw) = sizes[-2 - i], sizes[-1 - i]
            pad = (th - 2 * ch_, tw - 2 * cw)  # 0 or 1: lands on the discriminator's size
            layers.append(nn.ConvTranspose2d(cin, ch, 4, stride=2, padding=1,
                                             output_padding=pad))
            if i < len(outs) - 1:
                if batch_norm:
                    layers.append(_batch_norm(ch))
                layers.append(activation(act))
            cin = ch
        if last_act not in ("linear", "identity"):
            layers.append(activation(last_act))
        layers.append(nn.Flatten())
        super().__init__(*layers)
