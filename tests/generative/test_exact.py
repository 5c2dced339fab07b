"""Tests for probkit.generative.exact: the closed-form fields satisfy their defining identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative import GaussianMixtureFields, encoder_decoder, linear, one_sided, trig

WEIGHTS = np.array([0.3, 0.7])
MEANS = np.array([[1.0, 0.0], [-1.0, 2.0]])
COVS = np.stack([0.5 * np.eye(2), np.array([[1.0, 0.3], [0.3, 0.5]])])


def _fields(name):
    if name == "one_sided":
        return GaussianMixtureFields(one_sided("trig"), WEIGHTS, MEANS, COVS)
    it = {"linear": linear(), "trig": trig(), "encoder_decoder": encoder_decoder()}[name]
    return GaussianMixtureFields(it, WEIGHTS, MEANS, COVS, x0_mean=np.array([0.0, 1.0]), x0_cov=2 * np.eye(2))


@pytest.mark.parametrize("name", ["linear", "trig", "encoder_decoder", "one_sided"])
def test_continuity_equation_and_score(name):
    r""":math:`\partial_t\log\rho + \nabla\cdot b + b\cdot\nabla\log\rho = 0`, :math:`s = \nabla\log\rho`."""
    with float64():
        f = _fields(name)
        x = jnp.array([0.3, -0.2])

        @jax.jit
        def check(t):
            dt_log = jax.grad(f.log_prob, 0)(t, x)
            div = jnp.trace(jax.jacfwd(f.velocity, 1)(t, x))
            residual = dt_log + div + f.velocity(t, x) @ f.score(t, x)
            return residual, f.score(t, x) - jax.grad(f.log_prob, 1)(t, x)

        residual, score_err = jax.vmap(check)(jnp.array([0.2, 0.45, 0.8]))
        assert float(jnp.abs(residual).max()) < 1e-10
        assert float(jnp.abs(score_err).max()) < 1e-10


def test_endpoint_densities():
    with float64():
        f = _fields("linear")
        x = jnp.array([0.3, -0.2])
        mix = jax.scipy.special.logsumexp(jnp.log(WEIGHTS) + jax.vmap(
            lambda m, c: jax.scipy.stats.multivariate_normal.logpdf(x, m, c))(MEANS, COVS))
        assert float(f.log_prob(1.0, x)) == pytest.approx(float(mix), rel=1e-12)
        base = jax.scipy.stats.multivariate_normal.logpdf(x, jnp.array([0.0, 1.0]), 2 * jnp.eye(2))
        assert float(f.log_prob(0.0, x)) == pytest.approx(float(base), rel=1e-12)
        assert bool(jnp.all(jnp.isfinite(f.velocity(0.0, x)))) and bool(jnp.all(jnp.isfinite(f.velocity(1.0, x))))


def test_bad_arguments():
    with pytest.raises(ValueError, match="means"):
        GaussianMixtureFields(linear(), WEIGHTS, jnp.zeros(2), COVS)
    with pytest.raises(ValueError, match="covs"):
        GaussianMixtureFields(linear(), WEIGHTS, MEANS, COVS[0])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixtureFields(linear(), jnp.ones(3), MEANS, COVS)
    with pytest.raises(ValueError, match="one-sided"):
        GaussianMixtureFields(one_sided(), WEIGHTS, MEANS, COVS, x0_mean=jnp.zeros(2))
