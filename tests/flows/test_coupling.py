import jax
import pytest

from probkit.flows import AffineCoupling, Coupling, SplineTransformer


def test_affine_coupling(x64, check_bijection, randomize_params):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
    bij = randomize_params(AffineCoupling(k1, 5, width=8), k2)
    check_bijection(bij, jax.random.normal(k3, (4, 5)))


def test_spline_coupling(x64, check_bijection, randomize_params):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(4), 3)
    bij = randomize_params(Coupling(k1, 4, SplineTransformer(n_bins=5, bound=2.0), width=8), k2)
    check_bijection(bij, 1.5 * jax.random.normal(k3, (4, 4)))


def test_coupling_needs_two_dims(key):
    with pytest.raises(ValueError, match="dim"):
        AffineCoupling(key, 1)
