"""Tests for probkit.generative.datasets."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative import datasets

N = 4000


@pytest.mark.parametrize("name", sorted(datasets.TWO_D))
def test_shapes_dtypes_and_determinism(key, name):
    sample = datasets.TWO_D[name]
    x = sample(key, N)
    assert x.shape == (N, 2) and x.dtype == jnp.float32
    np.testing.assert_array_equal(x, sample(key, N))
    assert bool(jnp.all(jnp.isfinite(x))) and float(jnp.abs(x).max()) < 4.0
    with float64():
        assert sample(key, 5).dtype == jnp.float64


def test_checkerboard_lies_on_the_dark_squares(key):
    x = np.asarray(datasets.checkerboard(key, N))
    assert np.all(np.abs(x) <= 2.0)
    parity = (np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2
    assert np.all(parity == 0)
    counts = np.histogram2d(x[:, 0], x[:, 1], bins=4, range=[[-2, 2], [-2, 2]])[0]
    assert np.count_nonzero(counts) == 8
    np.testing.assert_allclose(counts[counts > 0] / N, 1 / 8, atol=4 * np.sqrt(1 / 8 * 7 / 8 / N))


def test_eight_gaussians_moments(key):
    x = np.asarray(datasets.eight_gaussians(key, N))
    np.testing.assert_allclose(x.mean(0), 0.0, atol=4 * np.sqrt(2.0 / N))
    # E|x|^2 = radius^2 + 2 std^2
    assert np.mean(np.sum(x**2, 1)) == pytest.approx(4.0 + 2 * 0.04, rel=0.03)
    w, m, c = datasets.eight_gaussians_mixture()
    assert m.shape == (8, 2) and np.allclose(np.linalg.norm(m, axis=1), 2.0)


def test_rings_radii(key):
    x = np.asarray(datasets.rings(key, N))
    r = np.linalg.norm(x, axis=1)
    nearest = np.array([0.5, 1.0, 1.5, 2.0])[np.argmin(np.abs(r[:, None] - np.array([0.5, 1.0, 1.5, 2.0])), 1)]
    assert np.mean(np.abs(r - nearest)) < 0.1
    frac = np.array([np.mean(nearest == v) for v in (0.5, 1.0, 1.5, 2.0)])
    np.testing.assert_allclose(frac, np.arange(1, 5) / 10, atol=0.03)


def test_digits(key):
    pytest.importorskip("sklearn")
    x = datasets.digits(key, 100)
    assert x.shape == (100, 64) and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    y = datasets.digits(key, 100, dequantize=False)
    v = (np.asarray(y) + 1) * 17 / 2 - 0.5
    np.testing.assert_allclose(v, np.round(v), atol=1e-4)
    assert v.min() > -1e-4 and v.max() < 16 + 1e-4


def test_bad_arguments(key):
    with pytest.raises(ValueError, match="n must"):
        datasets.checkerboard(key, 0)
    with pytest.raises(ValueError, match="n must"):
        datasets.rings(key, 2.5)
