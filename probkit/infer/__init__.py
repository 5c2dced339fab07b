"""NumPyro glue: guides built on probkit flows, model log densities, samplers."""

from .arviz import to_arviz
from .blackjax_kernel import BlackJAXKernel, BlackJAXState
from .autoflow import AutoFlow
from .automixflow import AutoMixFlow
from .fit import VIResult, fit_vi
from .logdensity import model_logdensity
from .psis import psis

__all__ = ["AutoFlow", "AutoMixFlow", "BlackJAXKernel", "BlackJAXState", "VIResult", "fit_vi", "psis", "to_arviz",
           "model_logdensity"]
