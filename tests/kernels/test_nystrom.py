"""Nyström features, Woodbury GP and NumPyro distribution against the exact GP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64
from jax.scipy.stats import multivariate_normal

from probkit.kernels import RBF, exact_rls_dictionary, nystrom, uniform_dictionary


def test_full_dictionary_recovers_exact_gp():
    with float64():
        rng = np.random.default_rng(0)
        X = jnp.asarray(rng.uniform(-3, 3, size=(80, 1)))
        y = jnp.sin(X[:, 0]) + 0.1 * jnp.asarray(rng.normal(size=80))
        k, noise = RBF(lengthscale=1.0), 0.01
        K = k.gram(X)
        ny = nystrom(X, uniform_dictionary(jax.random.PRNGKey(0), X, 80), k)
        np.testing.assert_allclose(ny.gram(), K, atol=1e-6)
        exact = multivariate_normal.logpdf(y, jnp.zeros(80), K + noise * jnp.eye(80))
        ll = ny.gp_log_likelihood(y, noise)
        assert abs(float(ll - exact)) < 0.01 * abs(float(exact))
        np.testing.assert_allclose(ny.gp_distribution(noise).log_prob(y), ll, rtol=1e-8)
        Xs = jnp.linspace(-2, 2, 5)[:, None]
        mean, var = ny.gp_predict(y, noise, Xs)
        Ks = k.gram(Xs, X)
        A = jnp.linalg.solve(K + noise * jnp.eye(80), Ks.T)
        np.testing.assert_allclose(mean, Ks @ jnp.linalg.solve(K + noise * jnp.eye(80), y), atol=1e-4)
        np.testing.assert_allclose(var, 1.0 - jnp.sum(Ks * A.T, 1), atol=1e-4)
        # gradient through the features (NumPyro models sample the lengthscale)
        g = jax.grad(lambda ls: nystrom(X, uniform_dictionary(jax.random.PRNGKey(0), X, 20), RBF(lengthscale=ls)).gp_log_likelihood(y, noise))(1.0)
        assert np.isfinite(g)


def test_exact_rls_dictionary_weights_unbiased():
    with float64():
        X = jnp.asarray(np.random.default_rng(1).normal(size=(50, 2)))
        d = exact_rls_dictionary(jax.random.PRNGKey(0), X, RBF(), 1.0, 30)
        assert int(jnp.sum(d.counts)) == 30 and int(d.size) <= 30


def test_bad_input():
    X = jnp.ones((5, 2))
    d = uniform_dictionary(jax.random.PRNGKey(0), X, 3)
    with pytest.raises(ValueError, match="X has 2 columns"):
        nystrom(X, d, RBF(lengthscale=jnp.ones(3)))
    with pytest.raises(ValueError, match="m must be at most"):
        uniform_dictionary(jax.random.PRNGKey(0), X, 6)


@pytest.mark.parametrize("n", [2000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_float32_default_jitter(n):
    """Regression (issue 24.3): dense 1-D data in float32 gave an all-NaN Nystrom gram (n = 1500).

    n points on [0, 10], RBF(0.5), 300 uniform dictionary points: the default jitter
    (10 eps tr A) factorises; the approximation is accurate to ~1e-4 on a block of K. An
    explicit jitter far below float32's resolution fails the factorisation and raises.
    """
    X = jnp.linspace(0.0, 10.0, n, dtype=jnp.float32)[:, None]
    k = RBF(lengthscale=0.5)
    dic = uniform_dictionary(jax.random.PRNGKey(0), X, 300)
    ny = nystrom(X, dic, k)
    F = ny.features(X[:: n // 200])
    assert np.all(np.isfinite(np.asarray(ny.transform)))
    np.testing.assert_allclose(F @ F.T, k.gram(X[:: n // 200]), atol=2e-3)
    y = jnp.sin(X[:, 0])
    assert np.isfinite(float(ny.gp_log_likelihood(y, 0.01)))
    with pytest.raises(ValueError, match="Nystrom factorisation must be finite"):
        nystrom(X, dic, k, jitter=1e-15)
