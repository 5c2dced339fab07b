"""NumPyroPrior: draws equal numpyro.infer.Predictive in distribution (KS per coordinate)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.stats
from numpyro.infer import Predictive

from probkit.pfn import NumPyroPrior

X = jnp.array([[0.1], [0.5], [0.9]])


def model(x, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0))
    b = numpyro.sample("b", dist.Normal(0.0, 0.5))
    s = numpyro.sample("s", dist.HalfNormal(0.5))
    numpyro.sample("obs", dist.StudentT(4.0, w * jnp.sin(3 * x[:, 0]) + b, s), obs=y)


def test_equal_in_distribution_to_predictive():
    prior = NumPyroPrior(model, x_sampler=lambda k, n: X[:n])
    assert prior.obs_site == "obs" and prior.x_dim == 1
    x, y = prior.sample(jax.random.PRNGKey(0), 3000, 3)
    ref = Predictive(model, num_samples=3000)(jax.random.PRNGKey(1), X)["obs"]
    for j in range(3):
        assert scipy.stats.ks_2samp(np.asarray(y[:, j]), np.asarray(ref[:, j])).pvalue > 0.01
    # joint structure: rank correlation between coordinates agrees too (robust to t tails)
    rho = scipy.stats.spearmanr(np.asarray(y)).statistic
    rho_ref = scipy.stats.spearmanr(np.asarray(ref)).statistic
    np.testing.assert_allclose(rho, rho_ref, atol=0.06)
    # a different model is detected by the same test (the check can fail)
    other = NumPyroPrior(lambda x, y=None: model(x * 2, y), x_sampler=lambda k, n: X[:n])
    _, y2 = other.sample(jax.random.PRNGKey(0), 3000, 3)
    assert scipy.stats.ks_2samp(np.asarray(y2[:, 2]), np.asarray(ref[:, 2])).pvalue < 1e-3


def test_default_x_sampler_and_jit():
    prior = NumPyroPrior(model)
    x, y = jax.jit(lambda k: prior.sample(k, 4, 7))(jax.random.PRNGKey(3))
    assert x.shape == (4, 7, 1) and y.shape == (4, 7)
    assert jnp.all((x >= 0) & (x <= 1))


def test_bad_input():
    def no_obs(x, y=None):
        numpyro.sample("w", dist.Normal(0, 1))

    with pytest.raises(ValueError, match="observed site"):
        NumPyroPrior(no_obs)
    with pytest.raises(ValueError, match="obs_site"):
        NumPyroPrior(model, obs_site="nope")
    with pytest.raises(TypeError, match="model"):
        NumPyroPrior(3)
