"""NumPyro implementations of the bundled posteriordb posteriors.

Each model takes its posteriordb data fields as keyword arguments (extra
fields are ignored, as Stan ignores unused data) and names its latent sites as
the Stan program names its parameters, so reference draws such as
``theta[1]`` match the model's sites by name (see :func:`probkit.bench.names.flatten_sites`).
"""

from __future__ import annotations

from typing import Callable

from .ark import arK
from .diamonds import diamonds
from .eight_schools import eight_schools_noncentered
from .garch import garch11
from .gauss_mix import low_dim_gauss_mix
from .kidiq import kidscore_momiq

MODELS: dict[str, Callable] = {
    "arK-arK": arK,
    "diamonds-diamonds": diamonds,
    "eight_schools-eight_schools_noncentered": eight_schools_noncentered,
    "garch-garch11": garch11,
    "kidiq-kidscore_momiq": kidscore_momiq,
    "low_dim_gauss_mix-low_dim_gauss_mix": low_dim_gauss_mix,
}


def get_model(name: str) -> Callable:
    """The NumPyro model registered for posteriordb posterior ``name``."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"no NumPyro model registered for {name!r}; available: {sorted(MODELS)}") from None


__all__ = ["MODELS", "get_model"]
