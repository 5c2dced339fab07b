"""save/load round-trip: the rebuilt PFN predicts identically."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit.pfn import PFN, load, save
from probkit.pfn.io import read_header


def test_round_trip(tmp_path):
    # the architecture of test_transformer.py (shared eager weight-initialisation compiles)
    borders = jnp.linspace(-3.0, 3.0, 21)
    pfn = PFN(jax.random.PRNGKey(4), 2, n_buckets=20, d_model=16, n_layers=2, n_heads=2,
              borders=borders, full_support=False)
    path = tmp_path / "m.eqx"
    save(path, pfn, metadata={"note": "x"})
    back = load(path)
    assert back.hyperparameters == pfn.hyperparameters
    assert read_header(path)["metadata"] == {"note": "x"}
    xt, yt, xs = jnp.ones((3, 2)) * 0.2, jnp.arange(3.0), jnp.ones((2, 2)) * 0.7
    np.testing.assert_array_equal(back(xt, yt, xs).logits, pfn(xt, yt, xs).logits)
    np.testing.assert_array_equal(back.borders, borders)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load(tmp_path / "none.eqx")
    bad = tmp_path / "bad.eqx"
    bad.write_bytes(b"not a pfn\n")
    with pytest.raises(ValueError, match="not a probkit PFN"):
        load(bad)
    with pytest.raises(TypeError, match="PFN"):
        save(tmp_path / "x.eqx", object())
