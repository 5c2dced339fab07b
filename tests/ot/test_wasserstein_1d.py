"""Tests for probkit.ot.wasserstein_1d against scipy/POT and closed forms."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.stats
from helpers import float64

from probkit.ot import wasserstein_1d


def test_w1_matches_scipy_weighted_unequal():
    with float64():
        rng = np.random.default_rng(0)
        u, v = rng.normal(size=37), rng.normal(size=23) + 0.5
        a, b = rng.random(37), rng.random(23)
        a, b = a / a.sum(), b / b.sum()
        ref = scipy.stats.wasserstein_distance(u, v, a, b)
        np.testing.assert_allclose(wasserstein_1d(u, v, a, b, p=1), ref, rtol=1e-12)
        ref = scipy.stats.wasserstein_distance(u, v)
        np.testing.assert_allclose(wasserstein_1d(u, v, p=1), ref, rtol=1e-12)


def test_wp_matches_pot_and_sorted_path():
    ot = pytest.importorskip("ot")
    with float64():
        rng = np.random.default_rng(1)
        u, v = rng.normal(size=50), rng.exponential(size=50)
        for p in (1.5, 2.0):
            ref = ot.wasserstein_1d(u, v, p=p) ** (1 / p)
            np.testing.assert_allclose(wasserstein_1d(u, v, p=p), ref, rtol=1e-12)
            # the same measure given through explicit uniform weights takes the quantile path
            w = np.full(50, 1 / 50)
            np.testing.assert_allclose(wasserstein_1d(u, v, w, w, p=p), ref, rtol=1e-12)
            ref = ot.wasserstein_1d(u, v[:31], p=p) ** (1 / p)
            np.testing.assert_allclose(wasserstein_1d(u, v[:31], p=p), ref, rtol=1e-12)


def test_translation_and_zero_weights_and_grad():
    with float64():
        rng = np.random.default_rng(2)
        u = rng.normal(size=20)
        # W_p(mu, mu + c) = |c| for every p
        np.testing.assert_allclose(wasserstein_1d(u, u + 0.3, p=3, root=True), 0.3, rtol=1e-12)
        # zero-weight atoms do not matter
        a = np.r_[np.full(20, 1 / 20), 0.0]
        np.testing.assert_allclose(
            wasserstein_1d(np.r_[u, 100.0], u[:15] + 1, a), wasserstein_1d(u, u[:15] + 1), rtol=1e-12
        )
        # gradient of W_2^2 with equal sizes: 2/n (u_i - v_{sigma(i)})
        v = rng.normal(size=20)
        g = jax.grad(lambda u_: wasserstein_1d(u_, v, root=False))(u)
        matched = np.sort(v)[np.argsort(np.argsort(u))]
        np.testing.assert_allclose(g, 2 / 20 * (u - matched), rtol=1e-12)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros((3, 2)), np.zeros(3)), {}, "u must have 1 dimensions"),
        ((np.zeros(3), np.array([0.0, np.inf])), {}, "v must contain only finite"),
        ((np.zeros(3), np.zeros(2), np.array([0.5, 0.5, 0.5])), {}, "u_weights must sum to 1"),
        ((np.zeros(3), np.zeros(2), None, np.array([-1.0, 2.0])), {}, "v_weights must be non-negative"),
        ((np.zeros(3), np.zeros(2)), {"p": 0}, "p must be"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        wasserstein_1d(*args, **kwargs)
