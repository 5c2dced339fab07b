"""Shared checks for the bijection tests (fixtures, since test dirs are not packages)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest


def randomize(module, key, scale=0.5):
    """Add N(0, scale²) noise to every float leaf (so zero-initialised layers are not the identity)."""
    params, static = eqx.partition(module, eqx.is_inexact_array)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
    return eqx.combine(jax.tree.unflatten(tree, leaves), static)


@eqx.filter_jit
def _evaluate(bij, xs):
    def one(x):
        y, ld = bij.transform_and_log_det(x)
        sign, ref = jnp.linalg.slogdet(jax.jacfwd(bij.transform)(x))
        x_back, ild = bij.inverse_and_log_det(y)
        return ld, sign, ref, x_back, ild

    return jax.vmap(one)(xs)


def assert_bijection(bij, xs, *, ld_rtol=1e-8, inv_tol=1e-6):
    """log|det J| vs autodiff (relative ``ld_rtol``), inverse round trip (``inv_tol``), inverse log-det.

    One compiled call, vmapped over the rows of ``xs``.
    """
    ld, sign, ref, x_back, ild = _evaluate(bij, jnp.asarray(xs))
    assert np.all(np.asarray(sign) != 0)
    np.testing.assert_allclose(ld, ref, rtol=ld_rtol, atol=ld_rtol)
    np.testing.assert_allclose(x_back, xs, atol=inv_tol, rtol=0)
    np.testing.assert_allclose(ild, -ld, rtol=1e-8, atol=1e-8)


@pytest.fixture(autouse=True)
def fast_compile():
    """Compile with XLA's optimisation passes off: these tests run tiny programs once,
    so compile time dominates (about 40 % less CPU); the numbers are unaffected."""
    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture
def check_bijection():
    return assert_bijection


@pytest.fixture
def randomize_params():
    return randomize
