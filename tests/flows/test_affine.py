import jax
import jax.numpy as jnp
import pytest

from probkit.flows import Affine


def test_affine(x64, check_bijection):
    bij = Affine(jnp.array([1.0, -2.0, 0.5]), jnp.array([0.5, 2.0, 3.0]))
    xs = jax.random.normal(jax.random.PRNGKey(0), (3, 3))
    check_bijection(bij, xs)
    assert jnp.allclose(bij.transform(jnp.zeros(3)), bij.loc)


def test_affine_bad_scale():
    with pytest.raises(ValueError, match="scale"):
        Affine(jnp.zeros(2), jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="scale"):
        Affine(jnp.zeros(2), jnp.nan)
