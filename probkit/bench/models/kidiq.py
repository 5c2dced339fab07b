"""posteriordb ``kidiq-kidscore_momiq`` (Stan: kidscore_momiq.stan)."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints


def kidscore_momiq(kid_score, mom_iq, **unused_data):
    """Linear regression kid_score ~ N(β₁ + β₂ mom_iq, σ); flat β, σ ~ Cauchy⁺(0, 2.5)."""
    kid_score = jnp.asarray(kid_score, dtype=float)
    mom_iq = jnp.asarray(mom_iq, dtype=float)
    beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real, (), (2,)))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * mom_iq, sigma).to_event(1), obs=kid_score)
