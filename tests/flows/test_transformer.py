import jax
import jax.numpy as jnp
import numpy as np

from probkit.flows import AffineTransformer, SplineTransformer


def test_transformers_identity_at_zero_and_derivative(x64):
    for t in (AffineTransformer(), SplineTransformer(n_bins=4, bound=2.0)):
        zero = jnp.zeros(t.num_params)
        y, ld = jax.vmap(lambda x: t.transform_and_log_det(x, zero))(jnp.array([-3.0, -0.5, 1.2]))
        np.testing.assert_allclose(y, [-3.0, -0.5, 1.2], atol=1e-12)
        np.testing.assert_allclose(ld, 0.0, atol=1e-12)
        p = jax.random.normal(jax.random.PRNGKey(0), (t.num_params,))
        xs = jnp.array([-2.5, -1.0, 0.3, 1.9])
        ld = jax.vmap(lambda x: t.transform_and_log_det(x, p)[1])(xs)
        dy = jax.vmap(jax.grad(lambda x: t.transform_and_log_det(x, p)[0]))(xs)
        np.testing.assert_allclose(ld, jnp.log(dy), rtol=1e-10)
        ys = jax.vmap(lambda x: t.transform_and_log_det(x, p)[0])(xs)
        np.testing.assert_allclose(jax.vmap(lambda y: t.inverse_and_log_det(y, p)[0])(ys), xs, atol=1e-9)
