"""Tests for probkit.ot.max_sliced against the exact maximum for affine-related clouds."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from helpers import float64

from probkit.ot import max_sliced_wasserstein, sliced_wasserstein


def test_reaches_exact_maximum_eigenvalue():
    """y = m2 + c (x - m1) with centred x: W_2^2(theta) = theta^T (dm dm^T + (1-c)^2 S) theta,
    so max-SW_2^2 is the top eigenvalue of that matrix."""
    with float64():
        rng = np.random.default_rng(0)
        d = 5
        z = rng.normal(size=(200, d)) @ np.diag([2.0, 1.0, 0.7, 0.4, 0.2])
        z -= z.mean(0)
        dm = np.array([0.3, -0.2, 0.1, 0.0, 0.25])
        x, y = z, dm + 0.4 * z  # dm here is m2 - m1 with m1 = 0
        m = np.outer(dm, dm) + 0.6**2 * (z.T @ z / 200)
        exact = np.sqrt(np.linalg.eigvalsh(m)[-1])
        val, theta = max_sliced_wasserstein(jax.random.PRNGKey(0), x, y, steps=150, return_direction=True)
        np.testing.assert_allclose(val, exact, rtol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(theta), 1.0, rtol=1e-12)
        # never below a random-projection SW, never above the exact max
        sw = sliced_wasserstein(jax.random.PRNGKey(1), x, y, n_projections=50)
        assert sw < val <= exact * (1 + 1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match="steps"):
        max_sliced_wasserstein(jax.random.PRNGKey(0), np.zeros((3, 2)), np.ones((3, 2)), steps=0)
    with pytest.raises(ValueError, match="same dimension"):
        max_sliced_wasserstein(jax.random.PRNGKey(0), np.zeros((3, 2)), np.ones((3, 3)))
