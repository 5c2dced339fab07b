import equinox as eqx
import jax
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


@pytest.mark.parametrize("n", [2, 4])
def test_permute_refuses_inputs_of_another_length(n):
    """Issue 27: a gather clamps out-of-range indices, so [2, 0, 1] on a 2-vector gave
    (x1, x0, x1) and on a 4-vector dropped x3, silently; eagerly, under jit and under vmap."""
    bij = Permute([2, 0, 1])
    x = jnp.arange(float(n))
    for fn, arg, name in [(bij.transform, x, "x"), (bij.inverse_and_log_det, x, "y"),
                          (eqx.filter_jit(bij.transform), x, "x"), (jax.vmap(bij.inverse), jnp.ones((5, n)), "y")]:
        with pytest.raises(ValueError, match=rf"{name} must be one vector of shape \(3,\).*got shape \({n},\)"):
            fn(arg)
