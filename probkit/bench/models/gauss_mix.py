"""posteriordb ``low_dim_gauss_mix-low_dim_gauss_mix`` (Stan: low_dim_gauss_mix.stan)."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints


def low_dim_gauss_mix(y, **unused_data):
    """Two-component normal mixture with ordered means.

    μ (ordered) ~ N(0, 2), σ ~ N⁺(0, 2), θ ~ Beta(5, 5),
    y_n ~ θ N(μ₁, σ₁) + (1 − θ) N(μ₂, σ₂).
    """
    y = jnp.asarray(y, dtype=float)
    mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    numpyro.factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum())
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    theta = numpyro.sample("theta", dist.Beta(5.0, 5.0))
    mix = dist.MixtureSameFamily(
        dist.Categorical(probs=jnp.stack([theta, 1.0 - theta])), dist.Normal(mu, sigma)
    )
    numpyro.sample("y", mix.expand([y.shape[0]]).to_event(1), obs=y)
