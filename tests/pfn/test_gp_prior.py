"""GPPrior: sample covariance equals the exact kernel; predictive equals the dense formula."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from helpers import float64

from probkit.pfn import GPPrior
from probkit.pfn.gp_prior import gp_covariance


@pytest.mark.parametrize("kernel", ["rbf", "matern32", "matern52"])
def test_sample_covariance_matches_kernel(kernel):
    x_fixed = jnp.array([[0.0], [0.1], [0.35], [0.8]])
    prior = GPPrior(kernel, lengthscale=0.3, outputscale=1.7, noise=0.2, x_sampler=lambda k, n: x_fixed[:n])
    x, y = prior.sample(jax.random.PRNGKey(0), 20000, 4)
    assert x.shape == (20000, 4, 1) and y.shape == (20000, 4)
    emp = jnp.cov(y.T)
    r = jnp.abs(x_fixed - x_fixed.T) / 0.3
    corr = {"rbf": jnp.exp(-0.5 * r**2),
            "matern32": (1 + jnp.sqrt(3.0) * r) * jnp.exp(-jnp.sqrt(3.0) * r),
            "matern52": (1 + jnp.sqrt(5.0) * r + 5 * r**2 / 3) * jnp.exp(-jnp.sqrt(5.0) * r)}[kernel]
    exact = 1.7 * corr + 0.04 * jnp.eye(4)
    # sampling error of a covariance from 20000 draws: sd ~ 1.8 * sqrt(2 / 20000) ~ 0.025
    np.testing.assert_allclose(emp, exact, atol=0.08)


def test_hyperprior_draws_and_shapes():
    prior = GPPrior(hyperprior={"lengthscale": dist.LogNormal(-1.0, 0.3), "noise": dist.LogNormal(-2.0, 0.1)},
                    x_dim=3)
    x, y, theta = prior.sample_with_hyperparameters(jax.random.PRNGKey(1), 4000, 5)
    assert x.shape == (4000, 5, 3) and jnp.all((x >= 0) & (x <= 1))
    np.testing.assert_allclose(jnp.mean(jnp.log(theta["lengthscale"])), -1.0, atol=0.03)
    np.testing.assert_allclose(jnp.std(jnp.log(theta["noise"])), 0.1, atol=0.01)
    np.testing.assert_allclose(theta["outputscale"], 1.0)  # fixed value
    # marginal variance of y: outputscale + E[noise^2]
    np.testing.assert_allclose(jnp.var(y), 1.0 + jnp.mean(theta["noise"] ** 2), rtol=0.05)


def test_predictive_matches_dense_formula_and_mask():
    with float64():
        prior = GPPrior("matern52", lengthscale=0.25, outputscale=0.8, noise=0.3)
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
        xt, xs = jax.random.uniform(k1, (6, 1)), jax.random.uniform(k2, (4, 1))
        yt = jax.random.normal(k3, (6,))
        mean, var = prior.predictive(xt, yt, xs)
        K = gp_covariance("matern52", xt, xt, 0.25, 0.8) + (0.09 + prior.jitter) * jnp.eye(6)
        ks = gp_covariance("matern52", xs, xt, 0.25, 0.8)
        kss = gp_covariance("matern52", xs, xs, 0.25, 0.8) + 0.09 * jnp.eye(4)
        np.testing.assert_allclose(mean, ks @ jnp.linalg.solve(K, yt), rtol=1e-10)
        np.testing.assert_allclose(var, jnp.diag(kss - ks @ jnp.linalg.solve(K, ks.T)), rtol=1e-10)
        # padded points (mask False) are removed exactly
        xp = jnp.concatenate([xt, jnp.full((3, 1), 0.5)])
        yp = jnp.concatenate([yt, jnp.full(3, 9.0)])
        m2, v2 = prior.predictive(xp, yp, xs, train_mask=jnp.arange(9) < 6)
        np.testing.assert_allclose(m2, mean, rtol=1e-10)
        np.testing.assert_allclose(v2, var, rtol=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match="kernel"):
        GPPrior("cosine")
    with pytest.raises(ValueError, match="lengthscale"):
        GPPrior(lengthscale=-1.0)
    with pytest.raises(ValueError, match="hyperprior key"):
        GPPrior(hyperprior={"period": dist.LogNormal(0, 1)})
    with pytest.raises(TypeError, match="hyperprior"):
        GPPrior(hyperprior={"noise": 0.1})
    with pytest.raises(ValueError, match="batch_size"):
        GPPrior().sample(jax.random.PRNGKey(0), 0, 3)
    with pytest.raises(ValueError, match="x_sampler"):
        GPPrior(x_sampler=lambda k, n: jnp.zeros(n))
