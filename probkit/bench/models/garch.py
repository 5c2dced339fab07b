"""posteriordb ``garch-garch11`` (Stan: garch11.stan)."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import lax
from numpyro.distributions import constraints


def garch11(T, y, sigma1, **unused_data):
    """GARCH(1,1): σ_t² = α₀ + α₁ (y_{t−1} − μ)² + β₁ σ_{t−1}², y_t ~ N(μ, σ_t).

    Flat priors on the declared supports, as in the Stan code: μ ∈ ℝ, α₀ > 0,
    α₁ ∈ (0, 1), β₁ ∈ (0, 1 − α₁).
    """
    y = jnp.asarray(y, dtype=float)
    mu = numpyro.sample("mu", dist.ImproperUniform(constraints.real, (), ()))
    alpha0 = numpyro.sample("alpha0", dist.ImproperUniform(constraints.positive, (), ()))
    alpha1 = numpyro.sample("alpha1", dist.ImproperUniform(constraints.unit_interval, (), ()))
    # β₁ has a support that depends on α₁; NumPyro's dependent-support handling
    # does not keep β₁ inside it, so write β₁ = (1 − α₁) β̃₁ with β̃₁ ∈ (0, 1) and add
    # the Jacobian log(1 − α₁): the same flat density on β₁ as the Stan program.
    beta1_raw = numpyro.sample("beta1_raw", dist.ImproperUniform(constraints.unit_interval, (), ()))
    numpyro.factor("beta1_jacobian", jnp.log1p(-alpha1))
    beta1 = numpyro.deterministic("beta1", (1.0 - alpha1) * beta1_raw)

    def step(sigma_prev, y_prev):
        sigma_t = jnp.sqrt(alpha0 + alpha1 * (y_prev - mu) ** 2 + beta1 * sigma_prev**2)
        return sigma_t, sigma_t

    sigma_first = jnp.asarray(sigma1, dtype=y.dtype)
    _, sigmas = lax.scan(step, sigma_first, y[:-1])
    sigma = jnp.concatenate([sigma_first[None], sigmas])
    numpyro.sample("y", dist.Normal(mu, sigma).to_event(1), obs=y)
