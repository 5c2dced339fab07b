"""posteriordb ``sblri-blr`` (Stan: blr.stan, Bayesian linear regression without intercept)."""

import numpyro
import numpyro.distributions as dist

from ._regression import as_real


def blr(X, y, **unused_data):
    """y ~ N(X β, σ); β ~ N(0, 10) elementwise, σ ~ N⁺(0, 10) (Stan's normal on σ > 0: half-normal up to log 2)."""
    X, y = as_real(X), as_real(y)
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([X.shape[1]]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(10.0))
    numpyro.sample("y", dist.Normal(X @ beta, sigma).to_event(1), obs=y)
