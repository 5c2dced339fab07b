"""Mixed variational flows (MixFlows) on uncorrected Hamiltonian dynamics (Xu, Chen, Campbell 2023)."""

from .hamiltonian import HamiltonianMap, zeta
from .mixflow import MixFlow
from .momentum import AbstractMomentum, GaussianMomentum, LaplaceMomentum
from .reference import AbstractReference, GaussianReference, fit_gaussian_reference, laplace_reference

__all__ = [
    "AbstractMomentum",
    "AbstractReference",
    "GaussianMomentum",
    "GaussianReference",
    "HamiltonianMap",
    "LaplaceMomentum",
    "MixFlow",
    "fit_gaussian_reference",
    "laplace_reference",
    "zeta",
]
