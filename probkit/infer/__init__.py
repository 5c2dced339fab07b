"""NumPyro glue: guides built on probkit flows, model log densities, samplers."""

from .arviz import to_arviz
from .blackjax_kernel import BlackJAXKernel, BlackJAXState
from .autoflow import AutoFlow
from .automixflow import AutoMixFlow
from .fit import fit_vi
from .logdensity import model_logdensity

__all__ = ["AutoFlow", "AutoMixFlow", "BlackJAXKernel", "BlackJAXState", "fit_vi", "to_arviz", "model_logdensity"]
