"""The Gaussian linear regression shared by the ARM-book posteriordb programs."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints


def as_real(x):
    """Stan ``vector`` data: a float array (ints from the JSON data become reals)."""
    return jnp.asarray(x, dtype=float)


def sample_sd(x):
    """Stan's ``sd``: the sample standard deviation, divisor N − 1."""
    return jnp.std(x, ddof=1)


def flat_regression(obs_name, y, predictors, *, sigma_prior=None):
    r"""``y ~ normal(β₁ + Σ_k β_{k+1} x_k, σ)`` with ``vector[K+1] beta; real<lower=0> sigma``.

    ``predictors`` are the columns :math:`x_1..x_K` in the Stan program's order;
    β has Stan's implicit flat prior on ℝ^{K+1}; σ is flat on (0, ∞) unless
    ``sigma_prior`` (a distribution on σ > 0, e.g. ``HalfCauchy(2.5)`` for Stan's
    ``sigma ~ cauchy(0, 2.5)``, equal up to the constant log 2) is given.
    The vectorised ``normal`` sums over the N observations.
    """
    y = as_real(y)
    X = jnp.stack([as_real(x) for x in predictors], axis=-1)
    beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real, (), (X.shape[1] + 1,)))
    if sigma_prior is None:
        sigma_prior = dist.ImproperUniform(constraints.positive, (), ())
    sigma = numpyro.sample("sigma", sigma_prior)
    mu = beta[0] + X @ beta[1:]
    numpyro.sample(obs_name, dist.Normal(mu, sigma).to_event(1), obs=y)
