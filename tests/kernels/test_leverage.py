"""Exact ridge leverage scores against the direct formula."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.kernels import RBF, effective_dimension, regularized_error, ridge_leverage_scores


def test_rls_and_deff_match_direct_formula():
    with float64():
        X = np.random.default_rng(0).normal(size=(60, 2))
        K = np.asarray(RBF(lengthscale=0.7).gram(X))
        gamma = 0.3
        direct = np.diag(K @ np.linalg.inv(K + gamma * np.eye(60)))
        np.testing.assert_allclose(ridge_leverage_scores(K, gamma), direct, rtol=1e-9)
        np.testing.assert_allclose(effective_dimension(K, gamma), direct.sum(), rtol=1e-9)
        # regularized error: zero for K itself, lambda_max/(lambda_max+gamma) for K~ = 0
        assert float(regularized_error(K, K, gamma)) < 1e-10
        lmax = np.linalg.eigvalsh(K).max()
        np.testing.assert_allclose(regularized_error(K, 0 * K, gamma), lmax / (lmax + gamma), rtol=1e-9)


def test_bad_input():
    K = jnp.eye(3)
    with pytest.raises(ValueError, match="gamma"):
        ridge_leverage_scores(K, 0.0)
    with pytest.raises(ValueError, match="square"):
        effective_dimension(jnp.ones((2, 3)), 1.0)
    with pytest.raises(ValueError, match="K must contain only finite"):
        ridge_leverage_scores(K.at[0, 0].set(jnp.nan), 1.0)
