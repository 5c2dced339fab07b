"""posteriordb ``eight_schools-eight_schools_noncentered`` (Stan: eight_schools_noncentered.stan)."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist


def eight_schools_noncentered(J, y, sigma, **unused_data):
    """Non-centred hierarchical model: θ = μ + τ θ̃, θ̃ ~ N(0, 1), y ~ N(θ, σ).

    Priors as in the Stan code: μ ~ N(0, 5), τ ~ Cauchy⁺(0, 5).
    """
    y, sigma = jnp.asarray(y, dtype=float), jnp.asarray(sigma, dtype=float)
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0).expand([int(J)]).to_event(1))
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta = numpyro.deterministic("theta", theta_trans * tau + mu)
    numpyro.sample("y", dist.Normal(theta, sigma).to_event(1), obs=y)
