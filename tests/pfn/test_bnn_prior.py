"""BNNPrior: with a linear activation the output variance has a closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from probkit.pfn import BNNPrior


def test_variance_closed_form_linear_network():
    x0 = jnp.array([[0.3, -0.5]])
    sw, sb, sn = 1.3, 0.4, 0.2
    prior = BNNPrior((8,), weight_std=sw, bias_std=sb, noise=sn, activation=lambda h: h,
                     x_sampler=lambda k, n: jnp.broadcast_to(x0, (n, 2)))
    x, y = prior.sample(jax.random.PRNGKey(0), 40000, 1)
    assert x.shape == (40000, 1, 2) and y.shape == (40000, 1)
    # hidden var = sw^2 |x|^2 / F + sb^2; output var = sw^2 * hidden var + sb^2 + sn^2
    hidden = sw**2 * float(jnp.sum(x0**2)) / 2 + sb**2
    exact = sw**2 * hidden + sb**2 + sn**2
    np.testing.assert_allclose(jnp.var(y), exact, rtol=0.04)
    np.testing.assert_allclose(jnp.mean(y), 0.0, atol=0.03)


def test_functions_differ_and_noise_prior():
    prior = BNNPrior((16, 16), noise_prior=dist.HalfNormal(0.1))
    x, y = prior.sample(jax.random.PRNGKey(1), 3, 30)
    assert x.shape == (3, 30, 1) and jnp.all(jnp.isfinite(y))
    assert not np.allclose(y[0], y[1])
    # smooth random functions: neighbouring sorted points are strongly correlated
    prior0 = BNNPrior((16,), noise=0.0)
    x, y = prior0.sample(jax.random.PRNGKey(2), 1, 200)
    order = jnp.argsort(x[0, :, 0])
    ys = y[0][order]
    assert jnp.corrcoef(ys[:-1], ys[1:])[0, 1] > 0.95


def test_bad_input():
    with pytest.raises(ValueError, match="hidden"):
        BNNPrior(())
    with pytest.raises(ValueError, match="weight_std"):
        BNNPrior(weight_std=0.0)
    with pytest.raises(TypeError, match="noise_prior"):
        BNNPrior(noise_prior=0.3)
