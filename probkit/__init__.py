"""probkit: probabilistic inference and kernel methods in JAX.

Subpackages (imported on first use): :mod:`probkit.flows`, :mod:`probkit.mixflows`,
:mod:`probkit.infer`, :mod:`probkit.pfn`, :mod:`probkit.kernels`, :mod:`probkit.ot`,
:mod:`probkit.generative`, :mod:`probkit.bench`.
"""

import importlib

from ._version import __version__

_SUBPACKAGES = ("bench", "flows", "generative", "infer", "kernels", "mixflows", "ot", "pfn")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBPACKAGES))


__all__ = ["__version__", *_SUBPACKAGES]
