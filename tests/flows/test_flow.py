import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit.flows import Affine, Chain, Flow, MaskedAutoregressive, Planar, Radial, SplineTransformer, StandardNormal


def _flow(randomize):
    k = jax.random.split(jax.random.PRNGKey(0), 6)
    bij = Chain(
        [
            randomize(MaskedAutoregressive(k[0], 2, SplineTransformer(n_bins=6, bound=3.0), width=8), k[1], 0.7),
            randomize(Planar(k[2], 2), k[3], 1.0),
            randomize(Radial(k[4], 2), k[5], 0.5),
            Affine(jnp.array([0.3, -0.2]), jnp.array([1.2, 0.8])),
        ]
    )
    return Flow(StandardNormal(2), bij)


def test_log_prob_integrates_to_one(x64, randomize_params):
    flow = _flow(randomize_params)
    g = jnp.linspace(-9.0, 9.0, 451)
    grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1)
    dens = jnp.exp(eqx.filter_jit(flow.log_prob)(grid))
    total = jnp.trapezoid(jnp.trapezoid(dens, g, axis=1), g)
    assert abs(float(total) - 1.0) < 1e-3


def test_sample_and_log_prob_consistent(x64, randomize_params):
    flow = _flow(randomize_params)
    x, lp = eqx.filter_jit(flow.sample_and_log_prob)(jax.random.PRNGKey(1), (3, 4))
    assert x.shape == (3, 4, 2) and lp.shape == (3, 4)
    np.testing.assert_allclose(eqx.filter_jit(flow.log_prob)(x), lp, rtol=1e-8, atol=1e-8)
    assert flow.sample(jax.random.PRNGKey(1), (3, 4)).shape == (3, 4, 2)


def test_base_standard_normal(x64):
    base = StandardNormal(3)
    x = jnp.array([0.1, -2.0, 0.5])
    ref = jax.scipy.stats.norm.logpdf(x).sum()
    np.testing.assert_allclose(base.log_prob(x), ref, rtol=1e-12)


def test_float32_default():
    flow = Flow(StandardNormal(2), Planar(jax.random.PRNGKey(0), 2))
    x, lp = flow.sample_and_log_prob(jax.random.PRNGKey(1), (2,))
    assert x.dtype == jnp.float32 and lp.dtype == jnp.float32


def test_bad_input(key):
    flow = Flow(StandardNormal(2), Planar(key, 2))
    with pytest.raises(ValueError, match="last axis of size 2"):
        flow.log_prob(jnp.zeros((4, 3)))
    with pytest.raises(TypeError, match="bijection"):
        Flow(StandardNormal(2), lambda x: x)
    with pytest.raises(TypeError, match="base"):
        Flow(None, Planar(key, 2))
    with pytest.raises(ValueError, match="dim"):
        StandardNormal(0)
