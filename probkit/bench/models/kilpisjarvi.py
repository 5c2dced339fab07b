"""posteriordb ``kilpisjarvi_mod-kilpisjarvi`` (Stan: kilpisjarvi.stan, a linear trend with data-given priors)."""

import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from ._regression import as_real


def kilpisjarvi(x, y, pmualpha, psalpha, pmubeta, psbeta, **unused_data):
    """y ~ N(α + β x, σ); α ~ N(pmualpha, psalpha), β ~ N(pmubeta, psbeta), σ flat on (0, ∞)."""
    x, y = as_real(x), as_real(y)
    alpha = numpyro.sample("alpha", dist.Normal(as_real(pmualpha), as_real(psalpha)))
    beta = numpyro.sample("beta", dist.Normal(as_real(pmubeta), as_real(psbeta)))
    sigma = numpyro.sample("sigma", dist.ImproperUniform(constraints.positive, (), ()))
    numpyro.sample("y", dist.Normal(alpha + beta * x, sigma).to_event(1), obs=y)
