"""probkit.pfn: prior-data fitted networks (Müller et al., 2022).

Priors over regression tasks (:class:`GPPrior`, :class:`BNNPrior`, :class:`NumPyroPrior`),
the bar-distribution head, the :class:`PFN` transformer, :func:`train_pfn`, ``save``/``load``
and the shipped :func:`pretrained` models.
"""

from .bar_distribution import (
    AbstractBarDistribution,
    BarDistribution,
    FullSupportBarDistribution,
    borders_from_samples,
    normal_borders,
)
from .bnn_prior import BNNPrior
from .gp_prior import GPPrior
from .io import load, save
from .numpyro_prior import NumPyroPrior
from .pretrained import pretrained, pretrained_prior
from .prior import AbstractPrior, UniformX
from .train import default_optimizer, train_pfn
from .transformer import PFN

__all__ = [
    "AbstractBarDistribution",
    "AbstractPrior",
    "BNNPrior",
    "BarDistribution",
    "FullSupportBarDistribution",
    "GPPrior",
    "NumPyroPrior",
    "PFN",
    "UniformX",
    "borders_from_samples",
    "default_optimizer",
    "load",
    "normal_borders",
    "pretrained",
    "pretrained_prior",
    "save",
    "train_pfn",
]
