"""probkit.pfn: prior-data fitted networks (Müller et al., 2022).

Priors over regression tasks (:class:`GPPrior`, :class:`BNNPrior`, :class:`NumPyroPrior`),
the bar-distribution head, the :class:`PFN` transformer, :func:`train_pfn`, ``save``/``load``
the shipped :func:`pretrained` models and
:func:`rebucket` (finer buckets for a trained model, its predictive unchanged).
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
from .rebucket import rebucket, refine_borders
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
    "rebucket",
    "refine_borders",
    "save",
    "train_pfn",
]
