import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit.flows import RationalQuadraticSpline, SplineTransformer
from probkit.flows.spline import _knots


def test_spline_logdet_inverse_and_tails(x64, check_bijection, randomize_params):
    k1, k2 = jax.random.split(jax.random.PRNGKey(8))
    bij = randomize_params(RationalQuadraticSpline(k1, 4, n_bins=6, bound=2.0), k2, scale=1.0)
    xs = jnp.array([[-1.9, -0.5, 0.1, 1.99], [0.0, 1.0, -1.0, 0.7], [-3.0, 2.5, 0.2, -10.0]])
    check_bijection(bij, xs)
    # identity tails and the interval edges stay fixed
    y = bij.transform(jnp.array([-3.0, 2.5, -2.0, 10.0]))
    np.testing.assert_allclose(y, [-3.0, 2.5, -2.0, 10.0], atol=1e-12)


def test_spline_monotone_and_continuous(x64, randomize_params):
    t = SplineTransformer(n_bins=5, bound=1.0)
    params = jax.random.normal(jax.random.PRNGKey(3), (t.num_params,)) * 2
    fwd = jax.jit(jax.vmap(lambda x: t.transform_and_log_det(x, params)))
    ys = fwd(jnp.linspace(-1.5, 1.5, 3001))[0]
    assert jnp.all(jnp.diff(ys) > 0)
    # value and slope continuous across every knot (boundary knots meet the identity tails)
    xk = _knots(params, t.n_bins, t.bound, t.min_size, t.min_derivative)[0]
    lo, hi = fwd(xk - 1e-9), fwd(xk + 1e-9)
    np.testing.assert_allclose(lo[0], hi[0], atol=1e-7)
    np.testing.assert_allclose(lo[1], hi[1], atol=1e-5)


def test_spline_gradients_finite_outside(x64, randomize_params):
    bij = randomize_params(RationalQuadraticSpline(jax.random.PRNGKey(0), 2, bound=1.0), jax.random.PRNGKey(1))

    def loss(b, x):
        y, ld = b.transform_and_log_det(x)
        x2, ld2 = b.inverse_and_log_det(y)
        return jnp.sum(y) + ld + ld2 + jnp.sum(x2)

    xs = jnp.array([[5.0, -7.0], [1.0, -1.0], [0.2, 30.0]])
    gb, gx = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, 0)))(bij, xs)
    assert all(jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(gb))
    assert jnp.all(jnp.isfinite(gx))


def test_spline_bad_args(key):
    with pytest.raises(ValueError, match="n_bins"):
        SplineTransformer(n_bins=0)
    with pytest.raises(ValueError, match="bound"):
        SplineTransformer(bound=-1.0)
