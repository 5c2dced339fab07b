"""Graph conversion, Laplacians and exact graph kernels against networkx / scipy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
from helpers import float64
from jax.experimental import sparse as jsparse

from probkit.kernels.graph import (
    as_graph,
    diffusion_kernel,
    laplacian,
    regularized_laplacian_kernel,
)


def _weighted_graph():
    g = nx.gnp_random_graph(12, 0.3, seed=1)
    rng = np.random.default_rng(0)
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.uniform(0.5, 2.0))
    g.add_node(12)  # isolated
    return g


def test_all_input_types_agree():
    g = _weighted_graph()
    a = nx.to_numpy_array(g)
    ref = as_graph(a)
    for x in (jnp.asarray(a), jsparse.BCOO.fromdense(jnp.asarray(a)), scipy.sparse.csr_matrix(a), g):
        h = as_graph(x)
        assert h.n_nodes == 13
        np.testing.assert_array_equal(h.indptr, ref.indptr)
        np.testing.assert_array_equal(h.indices, ref.indices)
        np.testing.assert_allclose(h.weights, ref.weights, rtol=1e-6)
    np.testing.assert_allclose(ref.to_dense(), a, rtol=1e-6)
    assert int(ref.n_neighbors[12]) == 0 and float(ref.degree[12]) == 0.0


def test_laplacians_match_networkx():
    g = _weighted_graph()
    with float64():
        a = nx.to_numpy_array(g)
        ln = nx.normalized_laplacian_matrix(g).toarray()
        ln[12, 12] = 1.0  # convention here: I - D^-1/2 A D^-1/2 with D^-1/2 = 0 when isolated
        np.testing.assert_allclose(laplacian(a), ln, atol=1e-12)
        np.testing.assert_allclose(laplacian(g, normalized=False), nx.laplacian_matrix(g).toarray(), atol=1e-12)


def test_exact_kernels_match_dense_references():
    g = nx.karate_club_graph()
    with float64():
        lap = np.asarray(laplacian(g))
        eye = np.eye(34)
        inv = np.linalg.inv(eye + 0.7**2 * lap)
        np.testing.assert_allclose(regularized_laplacian_kernel(g, 0.7, 2), inv @ inv, atol=1e-12)
        np.testing.assert_allclose(regularized_laplacian_kernel(g, 0.7, 3), inv @ inv @ inv, atol=1e-12)
        np.testing.assert_allclose(diffusion_kernel(g, 1.3), scipy.linalg.expm(-1.3 * lap), atol=1e-12)


def test_kernel_jit_and_grad_in_sigma():
    with float64():
        a = jnp.asarray(nx.to_numpy_array(nx.ladder_graph(4)))
        f = jax.jit(lambda s: regularized_laplacian_kernel(a, s, 2).sum())
        g = jax.grad(f)(0.8)
        fd = (f(0.8 + 1e-6) - f(0.8 - 1e-6)) / 2e-6
        np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_dtypes():
    a = nx.to_numpy_array(nx.path_graph(4))
    assert as_graph(a).weights.dtype == jnp.float32
    assert regularized_laplacian_kernel(a.astype(np.float32), 1.0).dtype == jnp.float32
    with float64():
        assert as_graph(a).weights.dtype == jnp.float64


@pytest.mark.parametrize(
    "adjacency,match",
    [
        (np.ones((2, 3)), "square"),
        (np.array([[0.0, -1.0], [-1.0, 0.0]]), "non-negative"),
        (np.array([[0.0, 1.0], [0.0, 0.0]]), "symmetric"),
        (np.array([[0.0, np.nan], [np.nan, 0.0]]), "finite"),
        (nx.DiGraph([(0, 1)]), "undirected"),
    ],
)
def test_bad_adjacency(adjacency, match):
    with pytest.raises(ValueError, match=match):
        as_graph(adjacency)


def test_bad_kernel_parameters():
    a = np.ones((3, 3)) - np.eye(3)
    with pytest.raises(ValueError, match="sigma"):
        regularized_laplacian_kernel(a, 0.0)
    with pytest.raises(ValueError, match="beta"):
        diffusion_kernel(a, -1.0)
