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
            randomize(MaskedAutoregressive(k[0], 2, SplineTransformer(n_bins=6, bound=3.0), width=8), k[1], 0.4),
            randomize(Planar(k[2], 2), k[3], 0.5),
            randomize(Radial(k[4], 2), k[5], 0.3),
            Affine(jnp.array([0.3, -0.2]), jnp.array([1.2, 0.8])),
        ]
    )
    return Flow(StandardNormal(2), bij)


def test_log_prob_integrates_to_one_and_matches_sampling(x64, randomize_params):
    flow = _flow(randomize_params)
    # the radial map's density has a kink at its centre and the spline is C¹, so the
    # trapezoid rule converges as O(h²): h = 0.013 gives |error| ≈ 7e-4 (h = 0.027: 5e-3)
    g = jnp.linspace(-12.0, 12.0, 1801)
    grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    x, lp = eqx.filter_jit(flow.sample_and_log_prob)(jax.random.PRNGKey(1), (3, 4))
    assert x.shape == (3, 4, 2) and lp.shape == (3, 4)
    # one log_prob call for the grid and the draws
    jax.config.update("jax_disable_most_optimizations", False)  # a 3.2M-point evaluation: optimise it
    lp_all = eqx.filter_jit(flow.log_prob)(jnp.concatenate([grid, x.reshape(-1, 2)]))
    dens = jnp.exp(lp_all[: grid.shape[0]]).reshape(g.size, g.size)
    total = jnp.trapezoid(jnp.trapezoid(dens, g, axis=1), g)
    assert abs(float(total) - 1.0) < 1e-3
    np.testing.assert_allclose(lp_all[grid.shape[0] :].reshape(3, 4), lp, rtol=1e-8, atol=1e-8)


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
