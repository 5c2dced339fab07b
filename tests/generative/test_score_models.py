"""Score models: shapes, score = grad u, sigma scaling, the exact Gaussian reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative import VPSDE, GaussianScore, LogDensityNet, ScoreNet
from probkit.generative.score_models import as_score_fn


def test_score_net_scaling(key):
    sde = VPSDE()
    plain = ScoreNet(key, 3, width=16, depth=2)
    scaled = ScoreNet(key, 3, sde=sde, width=16, depth=2)
    x = jnp.array([0.1, -0.2, 0.3])
    assert plain.score(0.4, x).shape == (3,)
    np.testing.assert_allclose(scaled(0.4, x), plain(0.4, x) / sde.marginal(0.4)[1], rtol=1e-6)
    assert as_score_fn(plain) == plain.score


def test_log_density_net_score_is_its_gradient(key):
    with float64():
        sde = VPSDE()
        u = LogDensityNet(key, 2, sde=sde, width=16, depth=2)
        x = jnp.array([0.7, -0.4], jnp.float64)
        assert u(0.3, x).shape == ()
        h = 1e-6
        fd = jnp.array([(u(0.3, x + h * e) - u(0.3, x - h * e)) / (2 * h) for e in jnp.eye(2)])
        np.testing.assert_allclose(u.score(0.3, x), fd, rtol=1e-6)
        # batched under vmap and jit
        xs = jax.random.normal(key, (5, 2), jnp.float64)
        s = jax.jit(jax.vmap(u.score, (None, 0)))(0.3, xs)
        assert s.shape == (5, 2)


def test_gaussian_score_matches_closed_form():
    with float64():
        sde = VPSDE()
        mu, c = jnp.array([1.0, -1.0]), jnp.array([[1.0, 0.3], [0.3, 0.5]])
        g = GaussianScore(sde, mu, c)
        m, s = sde.marginal(0.2)
        cov_t = m**2 * c + s**2 * jnp.eye(2)
        x = jnp.array([0.3, 0.2])
        np.testing.assert_allclose(g.score(0.2, x), -jnp.linalg.solve(cov_t, x - m * mu), rtol=1e-12)
        np.testing.assert_allclose(g.score(0.2, x), jax.grad(g, 1)(0.2, x), rtol=1e-12)


def test_bad_input(key):
    with pytest.raises(TypeError, match="sde"):
        ScoreNet(key, 2, sde="vp")
    with pytest.raises(ValueError, match="cov"):
        GaussianScore(VPSDE(), jnp.zeros(2), jnp.eye(3))
    with pytest.raises(TypeError, match="model"):
        as_score_fn(3.0)
