"""Mixed variational flows (MixFlows) on uncorrected Hamiltonian dynamics (Xu, Chen, Campbell 2023)."""

from .hamiltonian import HamiltonianMap, zeta
from .mixflow import ROUND_TRIP_TOL, MixFlow
from .momentum import AbstractMomentum, GaussianMomentum, LaplaceMomentum
from .preconditioner import Preconditioner
from .reference import (
    AbstractReference,
    FullRankGaussianReference,
    GaussianReference,
    fit_gaussian_reference,
    laplace_reference,
    reference_elbo,
)

__all__ = [
    "AbstractMomentum",
    "AbstractReference",
    "FullRankGaussianReference",
    "GaussianMomentum",
    "GaussianReference",
    "HamiltonianMap",
    "LaplaceMomentum",
    "MixFlow",
    "Preconditioner",
    "ROUND_TRIP_TOL",
    "fit_gaussian_reference",
    "laplace_reference",
    "reference_elbo",
    "zeta",
]
