"""PFN transformer: the attention mask's invariances, padding, shapes and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probkit.pfn import PFN, FullSupportBarDistribution


# the architecture of test_io.py and test_train.py (same shapes: the eagerly run weight
# initialisation compiles once per process); two layers, so that a leak from the queries
# into the train tokens would reach the queries' outputs
ARCH = dict(n_buckets=20, d_model=16, n_layers=2, n_heads=2)


@pytest.fixture(scope="module")
def setup():
    pfn = PFN(jax.random.PRNGKey(0), 2, **ARCH)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    x_train = jax.random.uniform(k1, (7, 2))
    y_train = jax.random.normal(k2, (7,))
    x_test = jax.random.uniform(k3, (5, 2))
    return pfn, x_train, y_train, x_test


def _logits(pfn, x_train, y_train, x_test, **kw):
    """Eager call: the forward pass is compiled once per input shape (``_query_logits``)."""
    return pfn(x_train, y_train, x_test, **kw).logits


def test_queries_do_not_see_each_other_and_train_permutation(setup):
    pfn, x_train, y_train, x_test = setup
    call = _logits
    base = call(pfn, x_train, y_train, x_test)
    assert base.shape == (5, 20)
    # change one query: every other query's prediction is unchanged
    moved = x_test.at[2].set(jnp.array([10.0, -3.0]))
    out = call(pfn, x_train, y_train, moved)
    keep = np.array([0, 1, 3, 4])
    np.testing.assert_allclose(out[keep], base[keep], atol=1e-5)
    assert not np.allclose(out[2], base[2], atol=1e-3)  # the changed query itself does change
    # permute the train points: all predictions unchanged
    perm = jnp.array([3, 0, 6, 1, 5, 2, 4])
    np.testing.assert_allclose(call(pfn, x_train[perm], y_train[perm], x_test), base, atol=1e-5)
    # the train labels matter
    assert not np.allclose(call(pfn, x_train, y_train + 1.0, x_test), base, atol=1e-3)


def test_padding_mask_and_batch(setup):
    pfn, x_train, y_train, x_test = setup
    single = pfn(x_train[:4], y_train[:4], x_test).logits
    # pad to 7 train points with junk; the mask removes them exactly
    xp = x_train.at[4:].set(5.0)
    yp = y_train.at[4:].set(-7.0)
    mask = jnp.arange(7) < 4
    padded = pfn(xp, yp, x_test, train_mask=mask).logits
    np.testing.assert_allclose(padded, single, atol=1e-5)
    batched = pfn(jnp.stack([xp, x_train]), jnp.stack([yp, y_train]), jnp.stack([x_test, x_test]),
                  train_mask=jnp.stack([mask, jnp.ones(7, bool)]))
    assert isinstance(batched, FullSupportBarDistribution)
    assert batched.batch_shape == (2, 5)
    np.testing.assert_allclose(batched.logits[0], single, atol=1e-5)
    np.testing.assert_allclose(batched.logits[1], pfn(x_train, y_train, x_test).logits, atol=1e-5)
    # predictive methods work on the batched output
    assert batched.mean().shape == (2, 5) and batched.quantile(0.9).shape == (2, 5)
    assert batched.sample(jax.random.PRNGKey(0), (3,)).shape == (3, 2, 5)
    assert jnp.all(jnp.isfinite(batched.log_prob(jnp.zeros((2, 5)))))


def test_zero_train_points(setup):
    # (finite gradients through the PFN are checked by test_train.py::test_loss_falls)
    pfn, _, _, x_test = setup
    d = pfn(jnp.zeros((0, 2)), jnp.zeros((0,)), x_test)
    assert jnp.all(jnp.isfinite(d.logits))


def test_bad_input(setup):
    pfn, x_train, y_train, x_test = setup
    with pytest.raises(ValueError, match="y_train"):
        pfn(x_train, y_train[:5], x_test)
    with pytest.raises(ValueError, match="x_train.*features"):
        pfn(x_train[:, :1], y_train, x_test)
    with pytest.raises(ValueError, match="x_test"):
        pfn(x_train, y_train, x_test[:, :1])
    with pytest.raises(ValueError, match="y_train must contain only finite"):
        pfn(x_train, y_train.at[0].set(jnp.nan), x_test)
    with pytest.raises(ValueError, match="x_test must contain only finite"):
        pfn(x_train, y_train, x_test.at[0, 0].set(jnp.inf))
    with pytest.raises(ValueError, match="train_mask"):
        pfn(x_train, y_train, x_test, train_mask=jnp.ones(3, bool))
    with pytest.raises(ValueError, match="divisible"):
        PFN(jax.random.PRNGKey(0), 1, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="borders"):
        PFN(jax.random.PRNGKey(0), 1, n_buckets=4, borders=jnp.array([0.0, 2.0, 1.0, 3.0, 4.0]))
    # inside jit a non-finite input raises through eqx.error_if instead of a silent NaN
    with pytest.raises(Exception, match="finite"):
        eqx.filter_jit(lambda m, y: m(x_train, y, x_test).logits)(pfn, y_train.at[0].set(jnp.nan))
