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


def _numpy_gram(name, X, Y, ls, var=1.0):
    X, Y, ls = (np.asarray(a, np.float64) for a in (X, Y, ls))
    r = np.sqrt((((X[:, None] - Y[None]) / ls) ** 2).sum(-1))
    return var * _reference(name, r)


# (n, m, d, block_size, kernel): one block and blocked with a ragged last block, cross-grams
# past 2^15 entries (where XLA:CPU mis-fused the old |x|^2 + |y|^2 - 2x.y broadcast under jit)
_CASES = [(442, 188, 10, 2048, "rbf"), (1000, 257, 4, 333, "m52")]
_CLASSES = {"rbf": RBF, "m52": Matern52}


@pytest.mark.parametrize("n,m,d,block,name", _CASES)
def test_gram_jit_matches_eager_and_numpy(n, m, d, block, name):
    """Regression (issue 24.1): jit with a traced vector lengthscale and closed-over data."""
    cls = _CLASSES[name]
    rng = np.random.default_rng(n + m)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = rng.normal(size=(m, d)).astype(np.float32)
    ls = (0.5 * rng.uniform(0.5, 2.0, size=d)).astype(np.float32)
    ref = _numpy_gram(name, X, Y, ls)
    jitted = jax.jit(lambda l: cls(lengthscale=l, block_size=block).gram(X, Y))(jnp.asarray(ls))
    eager = cls(lengthscale=jnp.asarray(ls), block_size=block).gram(X, Y)
    np.testing.assert_allclose(jitted, ref, atol=2e-5)
    np.testing.assert_allclose(eager, ref, atol=2e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gram_translation_invariant(dtype):
    """Regression (issue 24.2): the gram of X + offset equals the gram of X, offsets 1e2..1e4."""
    with float64():
        rng = np.random.default_rng(1)
        X = rng.normal(size=(200, 3)).astype(dtype)
        Y = rng.normal(size=(150, 3)).astype(dtype)
        ls = np.array([0.8, 0.5, 1.3], dtype)
        k = RBF(lengthscale=ls, block_size=64)
        u = np.finfo(dtype).eps
        for offset in (1e2, 1e3, 1e4) if dtype == "float32" else (1e4,):
            Xo, Yo = X + np.asarray(offset, dtype), Y + np.asarray(offset, dtype)
            # the shifted inputs themselves are rounded by ~offset * u (relative to ls = 0.5)
            atol = 1e-5 + 8 * u * offset / 0.5
            np.testing.assert_allclose(k.gram(Xo, Yo), _numpy_gram("rbf", Xo, Yo, ls), atol=atol)
            np.testing.assert_allclose(k.gram(Xo), _numpy_gram("rbf", Xo, Xo, ls), atol=atol)
