import jax.numpy as jnp

from helpers import float64, run_with_devices


def test_float64_scope():
    with float64():
        assert jnp.ones(1).dtype == jnp.float64
    assert jnp.ones(1).dtype == jnp.float32


def test_simulated_devices():
    out = run_with_devices("import jax; print(jax.device_count())", n_devices=4)
    assert out.strip() == "4"
