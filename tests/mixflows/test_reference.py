"""Gaussian references: exact log densities, the ADVI and Laplace fits on Gaussian targets, the ELBO."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64
from scipy import stats

from probkit.mixflows import (
    FullRankGaussianReference,
    GaussianReference,
    fit_gaussian_reference,
    laplace_reference,
    reference_elbo,
)


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


def test_full_rank_reference_log_prob_and_sample():
    with float64():
        mean, cov = jnp.array([1.0, -2.0, 0.5]), jnp.array([[2.0, 0.9, 0.1], [0.9, 1.0, -0.3], [0.1, -0.3, 0.5]])
        ref = FullRankGaussianReference.from_covariance(mean, cov)
        x = jnp.array([0.3, 1.7, -0.2])
        expected = stats.multivariate_normal(mean, cov).logpdf(x)
        np.testing.assert_allclose(ref.log_prob(x), expected, rtol=1e-12)
        np.testing.assert_allclose(ref.scale, jnp.sqrt(jnp.diag(cov)), rtol=1e-12)
        xs = jax.vmap(ref.sample)(jax.random.split(jax.random.PRNGKey(0), 20000))
        np.testing.assert_allclose(xs.mean(0), mean, atol=4 * np.sqrt(2.0 / 20000))
        np.testing.assert_allclose(np.cov(np.asarray(xs).T), cov, atol=0.05)
        # only the lower triangle counts, so an optimiser may touch the upper one freely
        upper = FullRankGaussianReference(mean, ref.scale_tril + jnp.triu(jnp.ones((3, 3)), 1))
        np.testing.assert_allclose(upper.log_prob(x), expected, rtol=1e-12)


def test_full_rank_reference_bad_input():
    with pytest.raises(ValueError, match="scale_tril"):
        FullRankGaussianReference(jnp.zeros(2), jnp.eye(3))
    with pytest.raises(ValueError, match="scale_tril"):
        FullRankGaussianReference(jnp.zeros(2), jnp.array([[1.0, 0.0], [0.5, 0.0]]))
    with pytest.raises(ValueError, match="mean"):
        FullRankGaussianReference(jnp.zeros((2, 2)), jnp.eye(2))
    with pytest.raises(ValueError, match="covariance"):
        FullRankGaussianReference.from_covariance(jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]))


def test_laplace_reference_full_covariance():
    """covariance="full": the exact mean and covariance of a correlated Gaussian target."""
    with float64():
        mu = jnp.array([3.0, -1.0])
        cov = jnp.array([[4.0, 1.9], [1.9, 1.0]])
        prec = jnp.linalg.inv(cov)
        ref = laplace_reference(lambda x: -0.5 * (x - mu) @ prec @ (x - mu), jnp.zeros(2), covariance="full")
        assert isinstance(ref, FullRankGaussianReference)
        np.testing.assert_allclose(ref.mean, mu, atol=1e-6)
        np.testing.assert_allclose(ref.scale_tril @ ref.scale_tril.T, cov, rtol=1e-6)
    with pytest.raises(ValueError, match="covariance"):
        laplace_reference(lambda x: -jnp.sum(x**2), jnp.zeros(2), covariance="dense")


def test_reference_elbo_is_minus_kl():
    """For a normalised Gaussian target, the ELBO is −KL(q0 ‖ π), zero when q0 = π."""
    with float64():
        mu, cov = jnp.array([1.0, -1.0]), jnp.array([[1.0, 0.8], [0.8, 1.0]])
        target = FullRankGaussianReference.from_covariance(mu, cov)
        key = jax.random.PRNGKey(0)
        np.testing.assert_allclose(reference_elbo(key, target, target.log_prob, 50), 0.0, atol=1e-12)
        q = GaussianReference(jnp.zeros(2), jnp.array([0.5, 0.7]))
        prec = jnp.linalg.inv(cov)
        s = jnp.diag(q.scale**2)
        kl = 0.5 * (jnp.trace(prec @ s) + (mu - q.mean) @ prec @ (mu - q.mean) - 2
                    + jnp.linalg.slogdet(cov)[1] - jnp.linalg.slogdet(s)[1])
        n = 20000
        xs = jax.vmap(q.sample)(jax.random.split(key, n))
        se = float(jnp.std(jax.vmap(target.log_prob)(xs) - jax.vmap(q.log_prob)(xs))) / np.sqrt(n)
        got = reference_elbo(key, q, target.log_prob, n)
        print(f"reference ELBO {float(got):.4f}, -KL {float(-kl):.4f}, s.e. {se:.4f}")
        assert abs(float(got) + float(kl)) < 4 * se
        assert reference_elbo(key, q, lambda x: jnp.nan * x[0], 10) == -jnp.inf
