"""probkit.kernels"""

from .graph_gp import GraphGP, graph_gp
from .graph import Graph, as_graph, diffusion_kernel, laplacian, regularized_laplacian_kernel
from .graph_random_features import (
    AbstractWalkSeries,
    DiffusionSeries,
    RegularizedLaplacianSeries,
    SquareRootSeries,
    graph_random_features,
)
from .kmeans import KMeansResult, kernel_kmeans
from ._base import AbstractKernel
from .dictionary import Dictionary
from .disqueak import disqueak
from .leverage import effective_dimension, regularized_error, ridge_leverage_scores
from .nystrom import Nystrom, exact_rls_dictionary, nystrom, uniform_dictionary
from .squeak import default_qbar, squeak
from .stationary import RBF, AbstractStationaryKernel, Matern32, Matern52

__all__: list[str] = [
    # kernels, leverage scores, SQUEAK / DISQUEAK, Nystrom (issue 6)
    "AbstractKernel",
    "AbstractStationaryKernel",
    "RBF",
    "Matern32",
    "Matern52",
    "ridge_leverage_scores",
    "effective_dimension",
    "regularized_error",
    "Dictionary",
    "squeak",
    "default_qbar",
    "disqueak",
    "Nystrom",
    "nystrom",
    "uniform_dictionary",
    "exact_rls_dictionary",
    # graphs (issue 7)
    "Graph",
    "as_graph",
    "laplacian",
    "regularized_laplacian_kernel",
    "diffusion_kernel",
    "AbstractWalkSeries",
    "RegularizedLaplacianSeries",
    "DiffusionSeries",
    "SquareRootSeries",
    "graph_random_features",
    "GraphGP",
    "graph_gp",
    "KMeansResult",
    "kernel_kmeans",
]
