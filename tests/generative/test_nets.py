"""Tests for probkit.generative.nets."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative.nets import FourierTimeEmbedding, ScalarTimeMLP, TimeMLP


def test_embedding_formula():
    emb = FourierTimeEmbedding(n_frequencies=3, max_frequency=4.0)
    t = 0.3
    freqs = np.array([1.0, 2.0, 4.0])
    expected = np.concatenate([[t], np.sin(2 * np.pi * freqs * t), np.cos(2 * np.pi * freqs * t)])
    np.testing.assert_allclose(emb(t), expected, rtol=1e-5, atol=1e-6)
    assert emb.size == 7


def test_time_mlp_shapes_vmap_jit_and_stacked_layers(key):
    net = TimeMLP(key, 3, 5, width=16, depth=4)
    assert net.trunk.hidden.weight.shape == (3, 16, 16)  # 3 stacked hidden layers
    ts = jnp.linspace(0, 1, 7)
    xs = jax.random.normal(key, (7, 3))

    @eqx.filter_jit  # one compile for the whole check
    def outputs(net, ts, xs):
        # the scanned stack against an explicit loop over the layers
        t, x = ts[2], xs[2]
        h = jax.nn.silu(net.trunk.first(jnp.concatenate([x, net.trunk.embedding(t)])))
        for i in range(3):
            layer = jax.tree_util.tree_map(lambda a: a[i], net.trunk.hidden)
            h = jax.nn.silu(layer(h))
        return net(t, x), jax.vmap(net)(ts, xs), net.trunk.last(h)

    out, batched, looped = outputs(net, ts, xs)
    assert out.shape == (5,) and out.dtype == jnp.float32 and batched.shape == (7, 5)
    np.testing.assert_allclose(batched[2], out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(looped, out, rtol=1e-5, atol=1e-6)


def test_depth_one_has_no_hidden_stack(key):
    net = TimeMLP(key, 2, width=8, depth=1)
    assert net.trunk.hidden is None
    assert net(0.1, jnp.zeros(2)).shape == (2,)


def test_frequencies_are_not_trained(key):
    net = TimeMLP(key, 2, width=8, depth=2)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(0.3, jnp.ones(2)) ** 2))(net)
    assert float(jnp.abs(grads.trunk.embedding.frequencies).max()) == 0.0
    assert float(jnp.abs(grads.trunk.first.weight).max()) > 0.0


def test_scalar_mlp_score_matches_finite_differences(key):
    with float64():
        net = ScalarTimeMLP(key, 3, width=16, depth=2)
        x = jnp.array([0.3, -0.2, 0.7])
        h = 1e-6
        shifts = h * jnp.eye(3)

        @eqx.filter_jit  # one compile for the whole check
        def check(net, x):
            u = jax.vmap(net, (None, 0))
            return net(0.4, x), (u(0.4, x + shifts) - u(0.4, x - shifts)) / (2 * h), net.score(0.4, x)

        value, fd, score = check(net, x)
        assert value.shape == () and value.dtype == jnp.float64
        np.testing.assert_allclose(score, fd, rtol=1e-6, atol=1e-8)


def test_bad_arguments(key):
    with pytest.raises(ValueError, match="width"):
        TimeMLP(key, 2, width=0)
    with pytest.raises(ValueError, match="depth"):
        TimeMLP(key, 2, depth=1.5)
    with pytest.raises(ValueError, match="in_size"):
        ScalarTimeMLP(key, 0)
    with pytest.raises(TypeError, match="activation"):
        TimeMLP(key, 2, activation="relu")
    with pytest.raises(ValueError, match="max_frequency"):
        FourierTimeEmbedding(4, max_frequency=-1.0)
