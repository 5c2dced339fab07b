"""probkit.flows: bijections and normalizing-flow distributions (Rezende & Mohamed, 2015)."""

from ._base import AbstractBijection
from .affine import Affine
from .autoregressive import MADE, MaskedAutoregressive
from .chain import Chain, Scan
from .constructors import maf, neural_spline_flow, planar_flow, radial_flow, realnvp
from .coupling import AffineCoupling, Coupling
from .flow import AbstractBase, Flow, StandardNormal
from .numpyro import BijectionTransform, to_numpyro
from .permute import Permute
from .planar import Planar
from .radial import Radial
from .spline import RationalQuadraticSpline, SplineTransformer
from .transformer import AbstractTransformer, AffineTransformer, ChainTransformer

__all__ = [
    "AbstractBase",
    "AbstractBijection",
    "AbstractTransformer",
    "Affine",
    "AffineCoupling",
    "AffineTransformer",
    "BijectionTransform",
    "Chain",
    "ChainTransformer",
    "Coupling",
    "Flow",
    "MADE",
    "MaskedAutoregressive",
    "Permute",
    "Planar",
    "Radial",
    "RationalQuadraticSpline",
    "Scan",
    "SplineTransformer",
    "StandardNormal",
    "maf",
    "neural_spline_flow",
    "planar_flow",
    "radial_flow",
    "realnvp",
    "to_numpyro",
]
