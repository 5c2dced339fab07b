"""Momentum distributions: log density, gradient, CDF and inverse CDF against exact references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64
from scipy import stats

from probkit.mixflows import GaussianMomentum, LaplaceMomentum

CASES = [(LaplaceMomentum(), stats.laplace), (GaussianMomentum(), stats.norm)]


# the round trip F^-1(F(rho)) = rho to 1e-9 needs the tail mass 1 - F(rho) to carry
# enough digits in float64: |rho| <= 12 for Laplace, |rho| <= 5 for the Gaussian
@pytest.mark.parametrize("mom,ref,r", [CASES[0] + (12.0,), CASES[1] + (5.0,)])
def test_against_scipy_and_autodiff(mom, ref, r):
    with float64():
        rho = jnp.linspace(-r, r, 241)
        np.testing.assert_allclose(mom.log_prob(rho), ref.logpdf(rho), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mom.cdf(rho), ref.cdf(rho), rtol=1e-12, atol=1e-300)
        grad = jax.vmap(jax.grad(lambda r: mom.log_prob(r)))(rho + 1e-3)  # avoid the Laplace kink
        np.testing.assert_allclose(mom.grad_log_prob(rho + 1e-3), grad, atol=1e-12)
        # d F / d rho = m(rho)
        dens = jax.vmap(jax.grad(lambda r: mom.cdf(r)))(rho + 1e-3)
        np.testing.assert_allclose(dens, jnp.exp(mom.log_prob(rho + 1e-3)), rtol=1e-10)
        # inverse CDF: round trip to 1e-9 over |rho| <= 12, both tails
        np.testing.assert_allclose(mom.icdf(mom.cdf(rho)), rho, atol=1e-9)
        p = jnp.array([1e-300, 1e-20, 0.3, 0.5, 0.7, 1 - 1e-12])
        np.testing.assert_allclose(mom.icdf(p), ref.ppf(np.asarray(p)), rtol=1e-6)
        assert np.all(np.isfinite(mom.icdf(jnp.array([0.0, 1.0]))))


@pytest.mark.parametrize("mom,ref", CASES)
def test_sample_matches_distribution(mom, ref):
    x = mom.sample(jax.random.PRNGKey(3), (4000,))
    assert x.dtype == jnp.float32
    assert stats.kstest(np.asarray(x), ref.cdf).pvalue > 0.01
