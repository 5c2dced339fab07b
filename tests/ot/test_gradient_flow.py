"""Tests for probkit.ot.gradient_flow: the exact 1-D step and descent in d dimensions."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from helpers import float64

from probkit.ot import sw_gradient_flow, wasserstein_1d


def test_one_step_in_1d_is_the_exact_wasserstein_step():
    """In 1-D, SW_2 = W_2 and grad_x W_2 = (x_i - y_sigma(i)) / (n W_2)."""
    with float64():
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(16, 1)), rng.normal(size=(16, 1)) + 2.0
        traj = sw_gradient_flow(jax.random.PRNGKey(0), x, y, steps=1, lr=0.1, n_projections=3)
        w = wasserstein_1d(x[:, 0], y[:, 0])
        matched = np.sort(y[:, 0])[np.argsort(np.argsort(x[:, 0]))]
        expected = x[:, 0] - 0.1 * (x[:, 0] - matched) / w
        assert traj.shape == (2, 16, 1)
        np.testing.assert_allclose(traj[1, :, 0], expected, rtol=1e-12)


@pytest.mark.parametrize(
    "estimator, detach, coef", [("mc", False, None), ("cv_lower", False, None), ("cv_lower", True, None),
                                ("cv_lower", False, 1.0)]
)
def test_flow_decreases_sliced_distance(estimator, detach, coef):
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(64, 3)).astype(np.float32)
    y = (rng.normal(size=(64, 3)) * 0.5 + np.array([3.0, -1.0, 0.5])).astype(np.float32)
    traj = sw_gradient_flow(
        jax.random.PRNGKey(2), x0, y, steps=40, lr=0.2, n_projections=16, estimator=estimator, save_every=20,
        detach_coefficient=detach, cv_coefficient=coef,
    )
    assert traj.shape == (3, 64, 3)
    gap = [np.linalg.norm(t.mean(0) - y.mean(0)) for t in np.asarray(traj)]
    assert gap[2] < 0.2 * gap[0], gap


def test_bad_input():
    with pytest.raises(ValueError, match="steps"):
        sw_gradient_flow(jax.random.PRNGKey(0), np.zeros((3, 2)), np.ones((3, 2)), steps=0, lr=0.1, n_projections=2)
    with pytest.raises(ValueError, match="lr"):
        sw_gradient_flow(jax.random.PRNGKey(0), np.zeros((3, 2)), np.ones((3, 2)), steps=1, lr=-1.0, n_projections=2)
