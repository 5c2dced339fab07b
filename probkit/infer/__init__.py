"""NumPyro glue: guides built on probkit flows, model log densities, samplers."""

from .logdensity import model_logdensity

__all__ = ["model_logdensity"]
