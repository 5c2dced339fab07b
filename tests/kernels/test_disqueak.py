"""DISQUEAK on 4 and 8 simulated devices, checked against exact references."""

import pytest

CODE = """
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from probkit.kernels import RBF, disqueak, nystrom, regularized_error
from probkit.kernels._datasets import clustered
assert len(jax.devices()) == {n}
X, _ = clustered(jax.random.PRNGKey(1), 256, 3, dtype=jnp.float64)
k = RBF(lengthscale=2.0)
d = disqueak(jax.random.PRNGKey(0), X, k, gamma=1.0, eps=0.25, max_dict_size=160, chunk_size=32)
err = float(regularized_error(k.gram(X), nystrom(X, d, k).gram(), 1.0))
print(int(d.size), err)
"""


@pytest.mark.slow
@pytest.mark.parametrize("n_devices", [4, 8])
def test_disqueak_accuracy(devices_runner, n_devices):
    size, err = devices_runner(CODE.format(n=n_devices), n_devices=n_devices).split()
    assert float(err) <= 0.5 and int(size) < 256


def test_bad_eps():
    import jax
    import jax.numpy as jnp

    from probkit.kernels import RBF, disqueak

    with pytest.raises(ValueError, match="eps"):
        disqueak(jax.random.PRNGKey(0), jnp.ones((8, 2)), RBF(), gamma=1.0, eps=0.6)
