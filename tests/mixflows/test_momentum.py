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
        p = jnp.array([1e-300, 1e-20, 0.3, 0.5, 0.7, 1 - 1e-12])

        @jax.jit  # one compile for every quantity below
        def quantities(rho, p):
            shifted = rho + 1e-3  # avoid the Laplace kink
            return dict(
                log_prob=mom.log_prob(rho), cdf=mom.cdf(rho),
                grad=jax.vmap(jax.grad(mom.log_prob))(shifted), grad_log_prob=mom.grad_log_prob(shifted),
                dcdf=jax.vmap(jax.grad(mom.cdf))(shifted), density=jnp.exp(mom.log_prob(shifted)),
                round_trip=mom.icdf(mom.cdf(rho)), icdf=mom.icdf(p), icdf_ends=mom.icdf(jnp.array([0.0, 1.0])),
            )

        q = quantities(rho, p)
        np.testing.assert_allclose(q["log_prob"], ref.logpdf(rho), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(q["cdf"], ref.cdf(rho), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(q["grad_log_prob"], q["grad"], atol=1e-12)
        # d F / d rho = m(rho)
        np.testing.assert_allclose(q["dcdf"], q["density"], rtol=1e-10)
        # inverse CDF: round trip to 1e-9 over |rho| <= r, both tails
        np.testing.assert_allclose(q["round_trip"], rho, atol=1e-9)
        np.testing.assert_allclose(q["icdf"], ref.ppf(np.asarray(p)), rtol=1e-6)
        assert np.all(np.isfinite(q["icdf_ends"]))


@pytest.mark.parametrize("mom,ref", CASES)
def test_sample_matches_distribution(mom, ref):
    x = mom.sample(jax.random.PRNGKey(3), (4000,))
    assert x.dtype == jnp.float32
    assert stats.kstest(np.asarray(x), ref.cdf).pvalue > 0.01
