"""Building blocks shared by the model families: MLP and conv stacks, masked layers for
autoregressive models, and output distributions with ``log_prob``/``sample``/``mean``.

See ``docs/nn.md``.
"""

from unsup.nn.conv import DCGANDiscriminator, DCGANGenerator
from unsup.nn.distributions import (
    Bernoulli,
    BernoulliHead,
    Categorical,
    CategoricalHead,
    DiscretizedLogistic,
    DiscretizedLogisticHead,
    Gaussian,
    GaussianHead,
)
from unsup.nn.masked import (
    GatedMaskedConv2d,
    MaskedConv2d,
    MaskedLinear,
    made_degrees,
    made_masks,
)
from unsup.nn.stacks import (
    ACTIVATIONS,
    MLP,
    ConvDecoder,
    ConvEncoder,
    activation,
    infer_image_shape,
)

__all__ = ["ACTIVATIONS", "activation", "MLP", "ConvEncoder", "ConvDecoder",
           "infer_image_shape", "DCGANGenerator", "DCGANDiscriminator", "MaskedLinear",
           "MaskedConv2d", "GatedMaskedConv2d", "made_degrees", "made_masks",
           "Bernoulli", "Gaussian", "Categorical", "DiscretizedLogistic", "BernoulliHead",
           "GaussianHead", "CategoricalHead", "DiscretizedLogisticHead"]
