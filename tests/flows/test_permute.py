import jax.numpy as jnp
import pytest

from probkit.flows import Permute


def test_permute(x64, check_bijection):
    bij = Permute([2, 0, 1])
    x = jnp.array([[1.0, 2.0, 3.0]])
    check_bijection(bij, x)
    assert jnp.array_equal(bij.transform(x[0]), jnp.array([3.0, 1.0, 2.0]))


def test_permute_bad():
    with pytest.raises(ValueError, match="permutation"):
        Permute([0, 0, 1])
