"""SQUEAK against exact references on a clustered set with tiny clusters (n = 300, float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.kernels import RBF, nystrom, regularized_error, squeak, uniform_dictionary
from probkit.kernels._datasets import clustered

N, GAMMA, EPS, SEEDS = 300, 1.0, 0.25, 6


@pytest.mark.slow
def test_accuracy_size_and_beats_uniform():
    with float64():
        X, _ = clustered(jax.random.PRNGKey(1), N, 3, dtype=jnp.float64)
        k = RBF(lengthscale=2.0)
        K = k.gram(X)
        keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
        for qbar in (None, 5):
            ds = jax.vmap(
                lambda kk: squeak(kk, X, k, gamma=GAMMA, eps=EPS, qbar=qbar, max_dict_size=200, chunk_size=100)
            )(keys)
            errs, uerrs, sizes = [], [], []
            for i in range(SEEDS):
                d = jax.tree.map(lambda a: a[i], ds)
                m = int(d.size)
                sizes.append(m)
                errs.append(float(regularized_error(K, nystrom(X, d, k).gram(), GAMMA)))
                u = uniform_dictionary(jax.random.PRNGKey(100 + i), X, m)
                uerrs.append(float(regularized_error(K, nystrom(X, u, k).gram(), GAMMA)))
            if qbar is None:
                assert sum(e <= 2 * EPS for e in errs) >= SEEDS - 1, errs
                assert max(sizes) < 0.8 * N, sizes
            assert np.mean(errs) < np.mean(uerrs), (errs, uerrs)


def test_bad_input():
    X = jnp.ones((10, 2))
    k = RBF()
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="gamma"):
        squeak(key, X, k, gamma=0.0, eps=0.2)
    with pytest.raises(ValueError, match="eps"):
        squeak(key, X, k, gamma=1.0, eps=1.0)
    with pytest.raises(ValueError, match="X must contain only finite"):
        squeak(key, X.at[0, 0].set(jnp.nan), k, gamma=1.0, eps=0.2)
    with pytest.raises(ValueError, match="X has 2 columns"):
        squeak(key, X, RBF(lengthscale=jnp.ones(3)), gamma=1.0, eps=0.2)


def test_overflow_asks_to_raise_capacity():
    X = jax.random.normal(jax.random.PRNGKey(0), (40, 2))
    with pytest.raises(ValueError, match="raise max_dict_size"):
        squeak(jax.random.PRNGKey(1), X, RBF(lengthscale=0.1), gamma=1e-3, eps=0.2, max_dict_size=4)
