"""probkit: probabilistic inference and kernel methods in JAX.

Subpackages: :mod:`probkit.flows`, :mod:`probkit.mixflows`, :mod:`probkit.infer`,
:mod:`probkit.pfn`, :mod:`probkit.kernels`, :mod:`probkit.ot`,
:mod:`probkit.generative`, :mod:`probkit.bench`.
"""

from . import flows, generative, infer, kernels, mixflows, ot, pfn
from ._version import __version__

__all__ = [
    "__version__",
    "flows",
    "generative",
    "infer",
    "kernels",
    "mixflows",
    "ot",
    "pfn",
]
