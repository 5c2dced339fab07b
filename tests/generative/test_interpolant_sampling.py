"""Acceptance: exact Gaussian b, eta, s plugged into the samplers reproduce the target;
log_prob matches the Gaussian log density to 1e-3."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative import GaussianMixtureFields, linear, log_prob, one_sided, sample_ode, sample_sde

M0, C0 = np.array([1.0, -1.0]), np.array([[1.0, 0.3], [0.3, 0.5]])
M1, C1 = np.array([-2.0, 0.5]), np.array([[0.4, -0.1], [-0.1, 0.8]])
N = 3000


def _check_moments(x, m, c, n_se=4.0):
    """Mean and covariance within n_se Monte-Carlo standard errors (+1% for discretisation)."""
    sd = np.sqrt(np.diag(c))
    assert np.all(np.abs(np.mean(x, 0) - m) < n_se * sd / np.sqrt(len(x)) + 0.01)
    se_cov = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / len(x))
    assert np.all(np.abs(np.cov(np.asarray(x).T) - c) < n_se * se_cov + 0.01 * np.abs(c).max())


def _x0(key, n=N):
    return M0 + jax.random.normal(key, (n, 2), jnp.float64) @ np.linalg.cholesky(C0).T


@pytest.mark.slow
def test_two_sided_ode_and_sde_forward_and_backward(key):
    with float64():
        fields = GaussianMixtureFields(linear(), np.ones(1), M1[None], C1[None], x0_mean=M0, x0_cov=C0)
        x0 = _x0(key)
        x1, nfe = sample_ode(key, fields, x0, adaptive=True, rtol=1e-9, atol=1e-9, return_nfe=True)
        _check_moments(x1, M1, C1)
        assert int(nfe) > 0
        # the ODE map is deterministic: running it back recovers the start
        back = sample_ode(key, fields, x1, t0=1.0, t1=0.0, adaptive=True, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(back, x0, atol=1e-5)
        xs = sample_sde(jax.random.PRNGKey(1), fields, x0, 1.0, score=fields.score, n_steps=300)
        _check_moments(xs, M1, C1)
        xb = sample_sde(jax.random.PRNGKey(2), fields, xs, lambda t: 0.5 + t, score=fields.score, t0=1.0, t1=0.0,
                        n_steps=300)
        _check_moments(xb, M0, C0)


@pytest.mark.parametrize("solver", ["euler", pytest.param("shark", marks=pytest.mark.slow)])
def test_one_sided_sde_with_score_from_velocity(key, solver):
    with float64():
        it = one_sided("trig")
        fields = GaussianMixtureFields(it, np.ones(1), M1[None], C1[None])
        x0 = jax.random.normal(key, (N, 2), jnp.float64)
        xs, nfe = sample_sde(jax.random.PRNGKey(3), fields, x0, 1.0, interpolant=it, solver=solver, n_steps=200,
                             return_nfe=True)
        _check_moments(xs, M1, C1)
        assert int(nfe) == 200 * (1 if solver == "euler" else 2)


def test_log_prob_matches_the_gaussian(key):
    with float64():
        fields = GaussianMixtureFields(one_sided("linear"), np.ones(1), M1[None], C1[None])
        x = M1 + jax.random.normal(key, (20, 2), jnp.float64)
        exact = jax.scipy.stats.multivariate_normal.logpdf(x, M1, C1)
        lp, nfe = log_prob(fields, x, return_nfe=True)
        assert float(jnp.max(jnp.abs(lp - exact))) < 1e-3
        assert int(nfe) > 0


@pytest.mark.slow
def test_log_prob_hutchinson_is_unbiased(key):
    with float64():
        fields = GaussianMixtureFields(one_sided("linear"), np.ones(1), M1[None], C1[None])
        x = jnp.tile(jnp.asarray(M1 + 0.5)[None], (400, 1))  # one point, 400 independent probes
        exact = jax.scipy.stats.multivariate_normal.logpdf(x[0], M1, C1)
        lp = log_prob(fields, x, divergence_method="hutchinson", key=key, adaptive=False, solver="heun", n_steps=40)
        se = float(jnp.std(lp)) / np.sqrt(len(lp))
        assert abs(float(jnp.mean(lp)) - float(exact)) < 3 * se + 2e-3
        assert se > 0


def test_bad_arguments(key):
    fields = GaussianMixtureFields(one_sided("linear"), np.ones(1), M1[None], C1[None])
    x = jnp.zeros((4, 2))
    with pytest.raises(TypeError, match="model"):
        sample_ode(key, "b", x)
    with pytest.raises(ValueError, match="x0"):
        sample_ode(key, fields, jnp.zeros(3))
    with pytest.raises(ValueError, match="dim"):
        sample_ode(key, fields, 5)
    with pytest.raises(ValueError, match="eps"):
        sample_sde(key, fields, x, -1.0, interpolant=one_sided())
    with pytest.raises(ValueError, match="score"):
        sample_sde(key, fields, x, 1.0, interpolant=linear())
    with pytest.raises(ValueError, match="t_clip"):
        sample_sde(key, fields, x, 1.0, interpolant=one_sided(), t_clip=-0.1)
    with pytest.raises(ValueError, match="x0"):
        sample_sde(key, fields, x.at[0, 0].set(jnp.nan), 1.0, interpolant=one_sided())
    with pytest.raises(ValueError, match="x must"):
        log_prob(fields, jnp.zeros(2))
    assert sample_ode(key, fields, 7, dim=2, n_steps=5, solver="euler").shape == (7, 2)
