"""DISQUEAK on 4 and 8 simulated devices (one 8-device subprocess), against exact references."""

import pytest

CODE = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh
jax.config.update("jax_enable_x64", True)
from probkit.kernels import RBF, disqueak, nystrom, regularized_error
from probkit.kernels._datasets import clustered
assert len(jax.devices()) == 8
X, _ = clustered(jax.random.PRNGKey(1), 256, 3, dtype=jnp.float64)
k = RBF(lengthscale=2.0)
K = k.gram(X)
for n_dev in (4, 8):
    mesh = Mesh(np.array(jax.devices()[:n_dev]), ("data",))
    d = disqueak(jax.random.PRNGKey(0), X, k, gamma=1.0, eps=0.25, mesh=mesh, max_dict_size=160, chunk_size=32)
    err = float(regularized_error(K, nystrom(X, d, k).gram(), 1.0))
    print(n_dev, int(d.size), err)
"""


@pytest.mark.slow
def test_disqueak_accuracy_on_4_and_8_devices(devices_runner):
    """The 2 eps = 0.5 regularised-error bound of the SQUEAK test, with a dictionary < n = 256."""
    lines = devices_runner(CODE, n_devices=8).strip().splitlines()[-2:]
    for line, n_dev in zip(lines, (4, 8)):
        dev, size, err = line.split()
        assert int(dev) == n_dev
        assert float(err) <= 0.5 and int(size) < 256, line


def test_bad_eps():
    import jax
    import jax.numpy as jnp

    from probkit.kernels import RBF, disqueak

    with pytest.raises(ValueError, match="eps"):
        disqueak(jax.random.PRNGKey(0), jnp.ones((8, 2)), RBF(), gamma=1.0, eps=0.6)
