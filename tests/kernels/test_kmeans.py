"""Kernel k-means: exact-kernel clustering of a planted partition, GRF features, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from probkit.kernels.graph import regularized_laplacian_kernel
from probkit.kernels.kmeans import kernel_kmeans


def _accuracy(truth, labels, k):
    c = np.zeros((k, k))
    np.add.at(c, (truth, np.asarray(labels)), 1)
    r, col = linear_sum_assignment(-c)
    return c[r, col].sum() / len(truth)


def test_points_in_feature_space_is_ordinary_kmeans():
    """With Phi = X, kernel k-means is ordinary k-means: well separated blobs are recovered."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    truth = np.repeat(np.arange(3), 30)
    x = centres[truth] + rng.normal(size=(90, 2))
    res = kernel_kmeans(jax.random.PRNGKey(0), jnp.asarray(x, jnp.float32), 3, n_init=4)
    assert _accuracy(truth, res.labels, 3) == 1.0
    # objective is the within-cluster sum of squares
    lab = np.asarray(res.labels)
    wss = sum(((x[lab == c] - x[lab == c].mean(0)) ** 2).sum() for c in range(3))
    np.testing.assert_allclose(res.objective, wss, rtol=1e-4)


def test_planted_partition_with_exact_kernel_pair():
    g = nx.planted_partition_graph(3, 20, 0.5, 0.02, seed=0)
    truth = np.repeat(np.arange(3), 20)
    k = regularized_laplacian_kernel(g, 3.0, 2)
    res = kernel_kmeans(jax.random.PRNGKey(1), (k, jnp.eye(60)), 3, n_init=4)
    assert _accuracy(truth, res.labels, 3) >= 0.95


def test_bad_input():
    x = jnp.ones((5, 2))
    with pytest.raises(ValueError, match="k"):
        kernel_kmeans(jax.random.PRNGKey(0), x, 0)
    with pytest.raises(ValueError, match="k"):
        kernel_kmeans(jax.random.PRNGKey(0), x, 6)
    with pytest.raises(ValueError, match="features"):
        kernel_kmeans(jax.random.PRNGKey(0), jnp.ones(5), 2)
    with pytest.raises(ValueError, match="features"):
        kernel_kmeans(jax.random.PRNGKey(0), (x, jnp.ones((5, 3))), 2)
