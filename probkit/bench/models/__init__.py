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
from .earnings import (
    earn_height,
    logearn_height,
    logearn_height_male,
    logearn_interaction,
    logearn_interaction_z,
    logearn_logheight_male,
)
from .eight_schools import eight_schools_noncentered
from .garch import garch11
from .gauss_mix import low_dim_gauss_mix
from .gp import accel_gp, gp_regr
from .hmm import hmm_drive_0, hmm_drive_1
from .kidiq import kidscore_interaction, kidscore_momhs, kidscore_momhsiq, kidscore_momiq
from .kidiq_with_mom_work import (
    kidscore_interaction_c,
    kidscore_interaction_c2,
    kidscore_interaction_z,
    kidscore_mom_work,
)
from .kilpisjarvi import kilpisjarvi
from .mesquite import (
    logmesquite_logva,
    logmesquite_logvas,
    logmesquite_logvash,
    logmesquite_logvolume,
    mesquite,
)
from .nes import nes
from .ode import lotka_volterra, one_comp_mm_elim_abs
from .sblri import blr


MODELS: dict[str, Callable] = {
    "arK-arK": arK,
    "bball_drive_event_0-hmm_drive_0": hmm_drive_0,
    "bball_drive_event_1-hmm_drive_1": hmm_drive_1,
    "diamonds-diamonds": diamonds,
    "earnings-earn_height": earn_height,
    "earnings-logearn_height": logearn_height,
    "earnings-logearn_height_male": logearn_height_male,
    "earnings-logearn_interaction": logearn_interaction,
    "earnings-logearn_interaction_z": logearn_interaction_z,
    "earnings-logearn_logheight_male": logearn_logheight_male,
    "eight_schools-eight_schools_noncentered": eight_schools_noncentered,
    "garch-garch11": garch11,
    "kidiq-kidscore_interaction": kidscore_interaction,
    "kidiq-kidscore_momhs": kidscore_momhs,
    "kidiq-kidscore_momhsiq": kidscore_momhsiq,
    "gp_pois_regr-gp_regr": gp_regr,
    "hudson_lynx_hare-lotka_volterra": lotka_volterra,
    "kidiq-kidscore_momiq": kidscore_momiq,
    "kidiq_with_mom_work-kidscore_interaction_c": kidscore_interaction_c,
    "kidiq_with_mom_work-kidscore_interaction_c2": kidscore_interaction_c2,
    "kidiq_with_mom_work-kidscore_interaction_z": kidscore_interaction_z,
    "kidiq_with_mom_work-kidscore_mom_work": kidscore_mom_work,
    "kilpisjarvi_mod-kilpisjarvi": kilpisjarvi,
    "low_dim_gauss_mix-low_dim_gauss_mix": low_dim_gauss_mix,
    "mesquite-logmesquite_logva": logmesquite_logva,
    "mesquite-logmesquite_logvas": logmesquite_logvas,
    "mesquite-logmesquite_logvash": logmesquite_logvash,
    "mesquite-logmesquite_logvolume": logmesquite_logvolume,
    "mesquite-mesquite": mesquite,
    "nes1976-nes": nes,
    "nes1980-nes": nes,
    "nes1984-nes": nes,
    "nes1988-nes": nes,
    "nes1992-nes": nes,
    "nes1996-nes": nes,
    "nes2000-nes": nes,
    "sblri-blr": blr,
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
