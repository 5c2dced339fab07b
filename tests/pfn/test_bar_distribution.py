"""Bar distributions against exact quadrature and their own cdf (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from helpers import float64

from probkit.pfn import BarDistribution, FullSupportBarDistribution, GPPrior, borders_from_samples, normal_borders

CLASSES = [BarDistribution, FullSupportBarDistribution]


def _dist(cls, batch=(3,)):
    borders = jnp.array([-2.0, -1.0, -0.3, 0.0, 0.5, 1.5, 3.0])
    logits = jax.random.normal(jax.random.PRNGKey(1), (*batch, 6))
    return cls(borders, logits)


def _grid():
    return jnp.linspace(-30.0, 30.0, 300_001)


@pytest.mark.parametrize("cls", CLASSES)
def test_density_integrates_to_one_and_moments(cls):
    with float64():
        d = _dist(cls)
        y = _grid()
        p = jnp.exp(d.log_prob(y[:, None]))  # (G, 3)
        dy = y[1] - y[0]
        total = jnp.sum(p, axis=0) * dy
        # Riemann sums over a grid of step 2e-4 with jumps at the borders: error <~ 1e-3
        np.testing.assert_allclose(total, 1.0, atol=1e-3)
        mean = jnp.sum(p * y[:, None], axis=0) * dy
        np.testing.assert_allclose(d.mean(), mean, atol=1e-3)
        var = jnp.sum(p * (y[:, None] - mean) ** 2, axis=0) * dy
        np.testing.assert_allclose(d.variance(), var, atol=3e-3)
        plogp = jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)
        np.testing.assert_allclose(d.entropy(), -jnp.sum(plogp, axis=0) * dy, atol=3e-3)
        # cdf equals the integral of the density
        cum = jnp.cumsum(p, axis=0) * dy
        for yv in (-2.5, -1.5, 0.2, 2.0, 3.7):
            i = int(jnp.searchsorted(y, yv))
            np.testing.assert_allclose(d.cdf(yv), cum[i], atol=1e-3)


@pytest.mark.parametrize("cls", CLASSES)
def test_quantile_inverts_cdf(cls):
    with float64():
        d = _dist(cls)
        lo, hi = (-6.0, 8.0) if cls is FullSupportBarDistribution else (-2.0, 3.0)
        y = jnp.linspace(lo, hi, 97)[:, None]
        np.testing.assert_allclose(d.quantile(d.cdf(y)), jnp.broadcast_to(y, (97, 3)), atol=1e-8)
        q = jnp.linspace(0.01, 0.99, 51)[:, None]
        np.testing.assert_allclose(d.cdf(d.quantile(q)), jnp.broadcast_to(q, (51, 3)), atol=1e-10)
        np.testing.assert_allclose(d.median(), d.quantile(0.5))


@pytest.mark.parametrize("cls", CLASSES)
def test_samples_match_cdf_ks(cls):
    d = _dist(cls, batch=())
    s = np.asarray(d.sample(jax.random.PRNGKey(2), (4000,)))
    res = scipy.stats.kstest(s, lambda v: np.asarray(d.cdf(jnp.asarray(v, jnp.float32))))
    assert res.pvalue > 0.01, res
    # a wrong distribution is rejected by the same test (the test can fail)
    shifted = _dist(cls, batch=())
    shifted = cls(shifted.borders, shifted.logits.at[0].add(2.0))
    bad = scipy.stats.kstest(s, lambda v: np.asarray(shifted.cdf(jnp.asarray(v, jnp.float32))))
    assert bad.pvalue < 1e-3


def test_safe_outside_borders_and_tails():
    bar, full = _dist(BarDistribution), _dist(FullSupportBarDistribution)
    y = jnp.array([-1e6, -5.0, 10.0, 1e6])[:, None]
    assert jnp.all(bar.log_prob(y) == -jnp.inf)
    np.testing.assert_array_equal(bar.cdf(y), jnp.array([0.0, 0.0, 1.0, 1.0])[:, None] * jnp.ones(3))
    lp = full.log_prob(y)
    assert jnp.all(jnp.isfinite(lp[1:3])) and not jnp.any(jnp.isnan(lp))
    # half-normal tail: half the tail mass lies within the outer bucket width
    d = full
    w0 = d.borders[1] - d.borders[0]
    p0 = d.probs[..., 0]
    np.testing.assert_allclose(d.cdf(d.borders[1]) - d.cdf(d.borders[1] - w0), 0.5 * p0, rtol=1e-5)
    g = jax.grad(lambda lg: FullSupportBarDistribution(d.borders, lg).log_prob(50.0).sum())(d.logits)
    assert jnp.all(jnp.isfinite(g))


def test_from_prior_equal_mass_and_borders():
    prior = GPPrior("rbf", lengthscale=0.3, outputscale=1.0, noise=0.1)
    d = BarDistribution.from_prior(jax.random.PRNGKey(0), prior, 20, n_datasets=4000, n_points=4)
    assert d.borders.shape == (21,) and jnp.all(jnp.diff(d.borders) > 0)
    # fresh prior draws fall in each bucket with probability about 1/20
    _, y = prior.sample(jax.random.PRNGKey(5), 5000, 4)
    counts = np.histogram(np.asarray(y).ravel(), bins=np.asarray(d.borders))[0] / y.size
    np.testing.assert_allclose(counts, 1 / 20, atol=0.012)
    np.testing.assert_allclose(d.probs, 1 / 20, rtol=1e-6)
    # standard-normal default borders have equal N(0,1) mass inside
    b = normal_borders(10)
    mass = np.diff(scipy.stats.norm.cdf(np.asarray(b)))[1:-1]
    np.testing.assert_allclose(mass, 0.1, atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="n_buckets"):
        borders_from_samples(jnp.arange(10.0), 1)
    with pytest.raises(ValueError, match="y must contain only finite"):
        borders_from_samples(jnp.array([0.0, jnp.nan, 1.0]), 2)
    with pytest.raises(ValueError, match="borders"):
        FullSupportBarDistribution(jnp.array([0.0, 1.0]), jnp.zeros(1))


def test_jit_vmap_dtype():
    d = _dist(FullSupportBarDistribution)
    f = jax.jit(lambda d, y: d.log_prob(y))
    np.testing.assert_allclose(f(d, 0.3), d.log_prob(0.3), rtol=1e-6)
    assert d.log_prob(0.3).dtype == jnp.float32
    assert d[0].logits.shape == (6,)
