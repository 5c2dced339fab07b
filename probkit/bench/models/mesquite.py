"""posteriordb ``mesquite-*`` (ARM ch. 4: mesquite bush weights; Stan: mesquite.stan, logmesquite_*.stan).

Flat priors on ``beta`` and on ``sigma > 0``; the logged canopy volume, area
and shape are the programs' transformed data.
"""

import jax.numpy as jnp

from ._regression import as_real, flat_regression


def _log_features(diam1, diam2, canopy_height):
    diam1, diam2, canopy_height = as_real(diam1), as_real(diam2), as_real(canopy_height)
    log_volume = jnp.log(diam1 * diam2 * canopy_height)
    log_area = jnp.log(diam1 * diam2)
    log_shape = jnp.log(diam1 / diam2)
    return log_volume, log_area, log_shape


def mesquite(weight, diam1, diam2, canopy_height, total_height, density, group, **unused_data):
    """weight ~ N(β₁ + β₂ diam1 + β₃ diam2 + β₄ canopy_height + β₅ total_height + β₆ density + β₇ group, σ)."""
    flat_regression("weight", weight, [diam1, diam2, canopy_height, total_height, density, group])


def logmesquite_logvolume(weight, diam1, diam2, canopy_height, **unused_data):
    """log weight ~ N(β₁ + β₂ log(diam1 diam2 canopy_height), σ)."""
    log_volume, _, _ = _log_features(diam1, diam2, canopy_height)
    flat_regression("log_weight", jnp.log(as_real(weight)), [log_volume])


def logmesquite_logva(weight, diam1, diam2, canopy_height, group, **unused_data):
    """log weight ~ N(β₁ + β₂ log volume + β₃ log area + β₄ group, σ)."""
    log_volume, log_area, _ = _log_features(diam1, diam2, canopy_height)
    flat_regression("log_weight", jnp.log(as_real(weight)), [log_volume, log_area, group])


def logmesquite_logvash(weight, diam1, diam2, canopy_height, total_height, group, **unused_data):
    """log weight ~ N(β₁ + β₂ log volume + β₃ log area + β₄ log shape + β₅ log total_height + β₆ group, σ)."""
    log_volume, log_area, log_shape = _log_features(diam1, diam2, canopy_height)
    predictors = [log_volume, log_area, log_shape, jnp.log(as_real(total_height)), group]
    flat_regression("log_weight", jnp.log(as_real(weight)), predictors)


def logmesquite_logvas(weight, diam1, diam2, canopy_height, total_height, density, group, **unused_data):
    """As :func:`logmesquite_logvash` with β₆ log density before β₇ group."""
    log_volume, log_area, log_shape = _log_features(diam1, diam2, canopy_height)
    predictors = [log_volume, log_area, log_shape, jnp.log(as_real(total_height)), jnp.log(as_real(density)), group]
    flat_regression("log_weight", jnp.log(as_real(weight)), predictors)
