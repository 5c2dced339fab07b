"""Stationary kernels against closed forms; blocking; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.kernels import RBF, Matern32, Matern52


def _reference(name, r):
    if name == "rbf":
        return np.exp(-0.5 * r**2)
    if name == "m32":
        return (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r)
    return (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)


@pytest.mark.parametrize("name,cls", [("rbf", RBF), ("m32", Matern32), ("m52", Matern52)])
def test_gram_matches_closed_form(name, cls):
    with float64():
        rng = np.random.default_rng(0)
        X, Y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
        ls = np.array([0.5, 1.0, 2.0])
        k = cls(lengthscale=ls, variance=1.7)
        r = np.sqrt((((X[:, None] - Y[None]) / ls) ** 2).sum(-1))
        np.testing.assert_allclose(k.gram(X, Y), 1.7 * _reference(name, r), rtol=1e-12)
        np.testing.assert_allclose(k(X[0], Y[1]), 1.7 * _reference(name, r[0, 1]), rtol=1e-12)
        np.testing.assert_allclose(k.diag(X), 1.7 * np.ones(7))
        # blocked gram (block_size < n) equals the one-block gram
        kb = cls(lengthscale=ls, variance=1.7, block_size=3)
        np.testing.assert_allclose(kb.gram(X, Y), k.gram(X, Y), rtol=1e-12)
        # finite gradient at zero distance (Matérn sqrt)
        g = jax.grad(lambda x: k(x, X[0]))(jnp.asarray(X[0]))
        assert np.all(np.isfinite(g))


def test_dtype_follows_input():
    X = np.ones((4, 2), np.float32)
    assert RBF().gram(X).dtype == jnp.float32


def test_bad_input():
    with pytest.raises(ValueError, match="lengthscale"):
        RBF(lengthscale=-1.0)
    with pytest.raises(ValueError, match="variance"):
        Matern32(variance=0.0)
    with pytest.raises(ValueError, match="X has 2 columns"):
        RBF(lengthscale=jnp.ones(3)).gram(jnp.ones((4, 2)))
