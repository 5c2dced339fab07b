import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from probkit.flows import Planar


def test_planar_logdet_and_inverse(x64, check_bijection, randomize_params):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    bij = randomize_params(Planar(k1, 4), k2, scale=1.5)
    xs = 2.0 * jax.random.normal(k3, (5, 4))
    check_bijection(bij, xs)


def test_planar_constraint_any_params(x64, check_bijection):
    # raw wᵀu ≪ −1 (u against w): û still satisfies wᵀû > −1 and the map inverts
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    w = 3.0 * jax.random.normal(k1, (3,))
    b = eqx.tree_at(lambda m: (m.w, m.u, m.b), Planar(k1, 3), (w, -5.0 * w, jnp.asarray(0.3)))
    assert b.w @ b.u < -1
    assert b.w @ b.u_hat() > -1
    check_bijection(b, jax.random.normal(k2, (6, 3)))


def test_planar_bad_dim(key):
    with pytest.raises(ValueError, match="dim"):
        Planar(key, 0)
