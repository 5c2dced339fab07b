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
from .gp import accel_gp, gp_regr
from .hmm import hmm_drive_0, hmm_drive_1
from .kidiq import kidscore_momiq
from .ode import lotka_volterra, one_comp_mm_elim_abs

MODELS: dict[str, Callable] = {
    "arK-arK": arK,
    "bball_drive_event_0-hmm_drive_0": hmm_drive_0,
    "bball_drive_event_1-hmm_drive_1": hmm_drive_1,
    "diamonds-diamonds": diamonds,
    "eight_schools-eight_schools_noncentered": eight_schools_noncentered,
    "garch-garch11": garch11,
    "gp_pois_regr-gp_regr": gp_regr,
    "hudson_lynx_hare-lotka_volterra": lotka_volterra,
    "kidiq-kidscore_momiq": kidscore_momiq,
    "low_dim_gauss_mix-low_dim_gauss_mix": low_dim_gauss_mix,
    "mcycle_gp-accel_gp": accel_gp,
    "one_comp_mm_elim_abs-one_comp_mm_elim_abs": one_comp_mm_elim_abs,
}


def get_model(name: str) -> Callable:
    """The NumPyro model registered for posteriordb posterior ``name``."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"no NumPyro model registered for {name!r}; available: {sorted(MODELS)}") from None


__all__ = ["MODELS", "get_model"]
