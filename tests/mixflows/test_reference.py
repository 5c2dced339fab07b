"""Mean-field Gaussian reference: exact log density and the ADVI fit on a Gaussian target."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64
from scipy import stats

from probkit.mixflows import GaussianReference, fit_gaussian_reference, laplace_reference


def test_log_prob_and_sample():
    with float64():
        ref = GaussianReference(jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0]))
        x = jnp.array([0.3, 1.7])
        expected = stats.norm(ref.mean, ref.scale).logpdf(x).sum()
        np.testing.assert_allclose(ref.log_prob(x), expected, rtol=1e-12)
        xs = jax.vmap(ref.sample)(jax.random.split(jax.random.PRNGKey(0), 4000))
        np.testing.assert_allclose(xs.mean(0), ref.mean, atol=4 * 3.0 / np.sqrt(4000))
        np.testing.assert_allclose(xs.std(0), ref.scale, rtol=0.06)


def test_bad_scale():
    with pytest.raises(ValueError, match="scale"):
        GaussianReference(jnp.zeros(2), -1.0)
    with pytest.raises(ValueError, match="mean"):
        GaussianReference(jnp.zeros((2, 2)))


def test_fit_recovers_gaussian_target():
    # for a diagonal Gaussian target the optimal mean-field Gaussian is the target itself
    mu, sd = jnp.array([1.0, -3.0]), jnp.array([0.5, 2.0])
    ref = fit_gaussian_reference(
        jax.random.PRNGKey(0), lambda x: -0.5 * jnp.sum(((x - mu) / sd) ** 2), jnp.zeros(2),
        steps=600, n_samples=32, progress_bar=False,
    )
    np.testing.assert_allclose(ref.mean, mu, atol=0.1)
    np.testing.assert_allclose(ref.scale, sd, rtol=0.1)


def test_laplace_reference_exact_on_correlated_gaussian():
    """For a Gaussian target the Laplace reference has the exact mean and marginal sds."""
    with float64():
        mu = jnp.array([3.0, -1.0])
        cov = jnp.array([[4.0, 1.9], [1.9, 1.0]])  # correlation 0.95
        prec = jnp.linalg.inv(cov)
        ref = laplace_reference(lambda x: -0.5 * (x - mu) @ prec @ (x - mu), jnp.zeros(2))
        np.testing.assert_allclose(ref.mean, mu, atol=1e-6)
        np.testing.assert_allclose(ref.scale, jnp.sqrt(jnp.diag(cov)), rtol=1e-6)
    with pytest.raises(ValueError, match="negative definite"):
        laplace_reference(lambda x: -x[0] ** 4 - x[1] ** 2, jnp.zeros(2))
