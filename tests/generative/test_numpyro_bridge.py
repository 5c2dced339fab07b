"""Tests for probkit.generative.numpyro_bridge: a learned prior inside NumPyro."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from helpers import float64

from probkit.generative import GaussianMixtureFields, InterpolantDistribution, one_sided

M, C = np.array([1.0, -0.5]), np.array([[0.5, 0.2], [0.2, 0.4]])


def _dist(**kw):
    it = one_sided("linear")
    return InterpolantDistribution(GaussianMixtureFields(it, np.ones(1), M[None], C[None]), 2, interpolant=it, **kw)


def test_log_prob_sample_and_numpyro_model(key):
    with float64():
        d = _dist(ode_kwargs={"solver": "tsit5", "n_steps": 20, "adaptive": False})
        assert isinstance(d, dist.Distribution) and d.event_shape == (2,)
        x = jnp.asarray(M + np.array([[0.3, 0.1], [-0.2, 0.4], [0.0, 0.0]]))
        exact = jax.scipy.stats.multivariate_normal.logpdf(x, M, C)
        np.testing.assert_allclose(d.log_prob(x), exact, atol=1e-3)
        assert d.log_prob(x.reshape(3, 1, 2)).shape == (3, 1)
        s = d.sample(key, (1500,))  # same solver settings as log_prob
        assert s.shape == (1500, 2)
        np.testing.assert_allclose(np.mean(s, 0), M, atol=4 * np.sqrt(0.5 / 1500))

        def model():
            numpyro.sample("theta", d)

        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace()
        site = tr["theta"]
        assert site["value"].shape == (2,)
        # evaluated in a batch of the shape above: the compiled ODE is reused
        lp = site["fn"].log_prob(x.at[0].set(site["value"]))[0]
        ref = jax.scipy.stats.multivariate_normal.logpdf(site["value"], M, C)
        assert float(lp) == pytest.approx(float(ref), abs=1e-3)


def test_sde_sampling(key):
    with float64():
        s = _dist(method="sde", eps=0.5, sde_kwargs={"n_steps": 100}).sample(key, (1500,))
        np.testing.assert_allclose(np.mean(s, 0), M, atol=4 * np.sqrt(0.5 / 1500) + 0.01)


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        _dist(method="mcmc")
    with pytest.raises(ValueError, match="dim"):
        InterpolantDistribution(lambda t, x: x, 0)
    with pytest.raises(TypeError, match="model"):
        InterpolantDistribution(None, 2)
    with pytest.raises(ValueError, match="interpolant"):
        InterpolantDistribution(lambda t, x: x, 2, method="sde")
    with pytest.raises(ValueError, match="trailing"):
        _dist().log_prob(jnp.zeros((3, 4)))
