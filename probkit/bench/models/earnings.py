"""posteriordb ``earnings-*`` (ARM ch. 4: earnings on height and sex; Stan: earn_height.stan, logearn_*.stan).

Each program has flat priors on ``beta`` and on ``sigma > 0``; the transformed
data (logs, the interaction, the standardised height) are computed as in Stan.
"""

import jax.numpy as jnp

from ._regression import as_real, flat_regression, sample_sd


def earn_height(earn, height, **unused_data):
    """earn ~ N(β₁ + β₂ height, σ)."""
    flat_regression("earn", earn, [height])


def logearn_height(earn, height, **unused_data):
    """log earn ~ N(β₁ + β₂ height, σ)."""
    flat_regression("log_earn", jnp.log(as_real(earn)), [height])


def logearn_height_male(earn, height, male, **unused_data):
    """log earn ~ N(β₁ + β₂ height + β₃ male, σ)."""
    flat_regression("log_earn", jnp.log(as_real(earn)), [height, male])


def logearn_interaction(earn, height, male, **unused_data):
    """log earn ~ N(β₁ + β₂ height + β₃ male + β₄ height·male, σ)."""
    height, male = as_real(height), as_real(male)
    flat_regression("log_earn", jnp.log(as_real(earn)), [height, male, height * male])


def logearn_interaction_z(earn, height, male, **unused_data):
    """log earn ~ N(β₁ + β₂ z + β₃ male + β₄ z·male, σ), z = (height − mean) / sd (sd with N − 1)."""
    height, male = as_real(height), as_real(male)
    z_height = (height - height.mean()) / sample_sd(height)
    flat_regression("log_earn", jnp.log(as_real(earn)), [z_height, male, z_height * male])


def logearn_logheight_male(earn, height, male, **unused_data):
    """log earn ~ N(β₁ + β₂ log height + β₃ male, σ)."""
    flat_regression("log_earn", jnp.log(as_real(earn)), [jnp.log(as_real(height)), male])
