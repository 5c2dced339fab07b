import jax
import jax.numpy as jnp
import numpy as np

from probkit.flows import MADE, AffineTransformer, MaskedAutoregressive, SplineTransformer


def test_made_is_autoregressive(x64, randomize_params):
    made = randomize_params(MADE(jax.random.PRNGKey(0), 4, 3, width=7), jax.random.PRNGKey(1))
    jac = jax.jacfwd(made)(jnp.ones(4))  # (D, P, D)
    dep = np.asarray(jnp.any(jac != 0, axis=1))
    assert not np.any(np.triu(dep))  # output i depends only on x_<i
    assert np.all(dep[np.tril_indices(4, -1)])  # ... and on all of them


def test_maf_affine(x64, check_bijection, randomize_params):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(5), 3)
    bij = randomize_params(MaskedAutoregressive(k1, 4, AffineTransformer(), width=8), k2)
    check_bijection(bij, jax.random.normal(k3, (4, 4)))


def test_maf_spline(x64, check_bijection, randomize_params):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(6), 3)
    bij = randomize_params(MaskedAutoregressive(k1, 3, SplineTransformer(n_bins=6, bound=2.5), width=8), k2)
    check_bijection(bij, 2.0 * jax.random.normal(k3, (4, 3)))


def test_maf_one_dim(x64, check_bijection, randomize_params):
    k1, k2 = jax.random.split(jax.random.PRNGKey(7))
    bij = randomize_params(MaskedAutoregressive(k1, 1, SplineTransformer(), width=4), k2)
    check_bijection(bij, jnp.array([[0.3], [-5.0]]))
