import jax
import jax.numpy as jnp

from probkit.flows import Radial


def test_radial_logdet_and_inverse(x64, check_bijection, randomize_params):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
    bij = randomize_params(Radial(k1, 3), k2, scale=1.0)
    xs = bij.z0 + jax.random.normal(k3, (5, 3))
    check_bijection(bij, xs)


def test_radial_contracting_constraint_and_centre_gradient(x64):
    # β' very negative: β → −α from above, the map stays invertible
    b = Radial(jax.random.PRNGKey(0), 2)
    b = jax.tree.map(lambda x: x, b)
    import equinox as eqx

    b = eqx.tree_at(lambda m: (m.alpha_raw, m.beta_raw), b, (jnp.asarray(0.7), jnp.asarray(-8.0)))
    alpha, beta = b.alpha_beta()
    assert beta > -alpha
    x = b.z0 + jnp.array([0.3, -0.2])
    y, ld = b.transform_and_log_det(x)
    assert jnp.isfinite(ld)
    assert jnp.allclose(b.inverse(y), x, atol=1e-6)
    # finite gradient exactly at the centre z0 (safe norm)
    g = jax.grad(lambda z: b.transform_and_log_det(z)[1])(b.z0)
    assert jnp.all(jnp.isfinite(g))
