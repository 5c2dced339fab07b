"""posteriordb ``arK-arK`` (Stan: arK.stan)."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist


def arK(K, T, y, **unused_data):
    """AR(K): y_t ~ N(α + Σ_k β_k y_{t−k}, σ) for t > K; α, β ~ N(0, 10), σ ~ Cauchy⁺(0, 2.5)."""
    K, T = int(K), int(T)
    y = jnp.asarray(y, dtype=float)
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([K]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    # lagged design: column k holds y_{t-k-1} for t = K..T-1 (0-based)
    lags = jnp.stack([y[K - k - 1 : T - k - 1] for k in range(K)], axis=1)
    mu = alpha + lags @ beta
    numpyro.sample("y", dist.Normal(mu, sigma).to_event(1), obs=y[K:])
