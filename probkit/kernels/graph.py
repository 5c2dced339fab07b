r"""Graphs as compact CSR neighbour tables, the normalised Laplacian and exact graph kernels.

A weighted, undirected graph with symmetric non-negative adjacency :math:`A` and
weighted degrees :math:`D = \operatorname{diag}(A\mathbf 1)` has normalised Laplacian

.. math:: \tilde L = I - D^{-1/2} A D^{-1/2},

with :math:`D^{-1/2}_{ii} = 0` for an isolated node (so :math:`\tilde L_{ii} = 1` there).
The exact kernels, computed from an eigendecomposition :math:`\tilde L = V \Lambda V^\top`
(:math:`O(N^3)`, for references and small graphs), are

* regularised Laplacian :math:`K_d = (I + \sigma^2 \tilde L)^{-d} = V (1 + \sigma^2\Lambda)^{-d} V^\top`,
* diffusion :math:`K = \exp(-\beta \tilde L) = V e^{-\beta\Lambda} V^\top`.

Inputs may be dense arrays, :class:`jax.experimental.sparse.BCOO`, ``scipy.sparse``
matrices or arrays, ``networkx`` graphs (edge attribute ``weight``, default 1), or an
already converted :class:`Graph`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, Int

from .._validate import check_positive, check_real_dtype, check_value, is_concrete

__all__ = [
    "Graph",
    "as_graph",
    "laplacian",
    "regularized_laplacian_kernel",
    "diffusion_kernel",
]


class Graph(eqx.Module):
    r"""Compact CSR neighbour table of a weighted undirected graph.

    Neighbours of node ``v`` are ``indices[indptr[v]:indptr[v+1]]`` with edge weights
    ``weights[...]``; ``degree[v] = sum_j A[v, j]`` is the weighted degree and
    ``n_neighbors[v] = indptr[v+1] - indptr[v]`` the number of neighbours.
    """

    indptr: Int[Array, " n_plus_1"]
    indices: Int[Array, " nnz"]
    weights: Float[Array, " nnz"]
    degree: Float[Array, " n"]
    n_nodes: int = eqx.field(static=True)

    @property
    def n_neighbors(self) -> Int[Array, " n"]:
        return self.indptr[1:] - self.indptr[:-1]

    @property
    def rows(self) -> Int[Array, " nnz"]:
        """Source node of every stored edge."""
        return jnp.repeat(
            jnp.arange(self.n_nodes), self.n_neighbors, total_repeat_length=self.indices.shape[0]
        )

    def normalized_weights(self) -> Float[Array, " nnz"]:
        r"""Edge weights of :math:`D^{-1/2} A D^{-1/2}` in CSR order."""
        dinv = _inv_sqrt(self.degree)
        return self.weights * dinv[self.rows] * dinv[self.indices]

    def to_dense(self) -> Float[Array, "n n"]:
        """The dense adjacency matrix."""
        a = jnp.zeros((self.n_nodes, self.n_nodes), self.weights.dtype)
        return a.at[self.rows, self.indices].add(self.weights)


def _inv_sqrt(deg: Array) -> Array:
    safe = jnp.where(deg > 0, deg, 1.0)
    return jnp.where(deg > 0, 1.0 / jnp.sqrt(safe), 0.0)


def _float_dtype(dtype: Any) -> Any:
    """float64 stays float64 (when x64 is enabled); everything else becomes the default float."""
    if np.dtype(dtype) == np.float64:
        return jax.dtypes.canonicalize_dtype(np.float64)
    if np.issubdtype(dtype, np.floating):
        return jax.dtypes.canonicalize_dtype(dtype)
    return jnp.result_type(float)


def _coo_of(adjacency: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, Any]:
    """(rows, cols, values, n, dtype) of any supported concrete input; checks squareness."""
    if isinstance(adjacency, Graph):
        g = adjacency
        return (np.asarray(g.rows), np.asarray(g.indices), np.asarray(g.weights), g.n_nodes,
                g.weights.dtype)
    mod = type(adjacency).__module__ or ""
    if mod.startswith("networkx"):
        import networkx as nx

        nodes = list(adjacency.nodes())
        a = nx.to_scipy_sparse_array(adjacency, nodelist=nodes, weight="weight", format="coo")
        if adjacency.is_directed():
            raise ValueError("adjacency must be an undirected graph, got a directed networkx graph")
        return _coo_of(a)
    if isinstance(adjacency, jsparse.BCOO):
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1] or adjacency.n_batch:
            raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {adjacency.shape}")
        a = adjacency.sum_duplicates() if is_concrete(adjacency.data) else adjacency
        idx = np.asarray(a.indices)
        return idx[:, 0], idx[:, 1], np.asarray(a.data), a.shape[0], a.dtype
    if hasattr(adjacency, "tocoo") and mod.startswith("scipy"):
        a = adjacency.tocoo()
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {a.shape}")
        a.sum_duplicates()
        return np.asarray(a.row), np.asarray(a.col), np.asarray(a.data), a.shape[0], a.dtype
    a = np.asarray(adjacency)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {a.shape}")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"adjacency must be numeric, got dtype {a.dtype}")
    r, c = np.nonzero(a)
    return r, c, a[r, c], a.shape[0], a.dtype


def as_graph(adjacency: Any) -> Graph:
    """Convert an adjacency (dense / BCOO / scipy.sparse / networkx / Graph) to a :class:`Graph`.

    Runs once, outside ``jit``, on concrete values. Raises ``ValueError`` for a
    non-square, non-finite, negative or non-symmetric adjacency.
    """
    if isinstance(adjacency, Graph):
        return adjacency
    if not is_concrete(adjacency) or (
        isinstance(adjacency, jsparse.BCOO) and not is_concrete(adjacency.data)
    ):
        raise TypeError("as_graph needs a concrete adjacency; convert it outside jit and pass the Graph")
    rows, cols, vals, n, dtype = _coo_of(adjacency)
    check_real_dtype("adjacency", np.asarray(vals))
    vals = np.asarray(vals, dtype=np.float64)
    if not np.all(np.isfinite(vals)):
        raise ValueError("adjacency must contain only finite weights (found NaN or inf)")
    if np.any(vals < 0):
        raise ValueError("adjacency must have non-negative weights, found a negative entry")
    keep = vals != 0
    rows, cols, vals = rows[keep].astype(np.int64), cols[keep].astype(np.int64), vals[keep]
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    # symmetry: the transposed edge list, sorted the same way, must be identical
    t_order = np.lexsort((rows, cols))
    if not (
        np.array_equal(cols[t_order], rows)
        and np.array_equal(rows[t_order], cols)
        and np.allclose(vals[t_order], vals, rtol=1e-6, atol=0)
    ):
        raise ValueError("adjacency must be symmetric (an undirected graph)")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    degree = np.bincount(rows, weights=vals, minlength=n)
    fdt = _float_dtype(dtype)
    return Graph(
        indptr=jnp.asarray(indptr, jnp.int32),
        indices=jnp.asarray(cols, jnp.int32),
        weights=jnp.asarray(vals, fdt),
        degree=jnp.asarray(degree, fdt),
        n_nodes=int(n),
    )


def _bad_adjacency(xp, a):
    """Non-finite, negative or asymmetric (relative 1e-6, as :func:`as_graph`)."""
    finite = xp.all(xp.isfinite(a))
    a = xp.where(finite, a, 0)
    return ~finite | xp.any(a < 0) | xp.any(xp.abs(a - a.T) > 1e-6 * xp.abs(a))


def _dense_adjacency(adjacency: Any) -> Float[Array, "n n"]:
    """Dense float adjacency; a dense jax array under jit is used as is (no value checks)."""
    if isinstance(adjacency, (jax.Array, np.ndarray)) and not isinstance(adjacency, jsparse.BCOO):
        a = jnp.asarray(adjacency)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {a.shape}")
        check_real_dtype("adjacency", a)
        if is_concrete(a):
            as_graph(a)  # value checks only
        if not jnp.issubdtype(a.dtype, jnp.floating):
            a = a.astype(jnp.result_type(float))
        return check_value(
            "adjacency", a, _bad_adjacency, "be a finite, non-negative, symmetric matrix (an undirected graph)"
        )
    return as_graph(adjacency).to_dense()


def laplacian(adjacency: Any, normalized: bool = True) -> Float[Array, "n n"]:
    r"""Graph Laplacian: :math:`I - D^{-1/2} A D^{-1/2}` (normalised) or :math:`D - A`."""
    a = _dense_adjacency(adjacency)
    deg = a.sum(axis=1)
    if not normalized:
        return jnp.diag(deg) - a
    dinv = _inv_sqrt(deg)
    return jnp.eye(a.shape[0], dtype=a.dtype) - dinv[:, None] * a * dinv[None, :]


def _spectral(adjacency: Any, fn) -> Float[Array, "n n"]:
    lam, v = jnp.linalg.eigh(laplacian(adjacency, normalized=True))
    return (v * fn(lam)[None, :]) @ v.T


def regularized_laplacian_kernel(adjacency: Any, sigma: float, d: float = 2) -> Float[Array, "n n"]:
    r"""Exact regularised Laplacian kernel :math:`(I + \sigma^2 \tilde L)^{-d}` (:math:`O(N^3)`)."""
    check_positive("sigma", sigma)
    check_positive("d", d)
    return _spectral(adjacency, lambda lam: (1.0 + sigma**2 * lam) ** (-d))


def diffusion_kernel(adjacency: Any, beta: float) -> Float[Array, "n n"]:
    r"""Exact diffusion (heat) kernel :math:`\exp(-\beta \tilde L)` (:math:`O(N^3)`)."""
    check_positive("beta", beta)
    return _spectral(adjacency, lambda lam: jnp.exp(-beta * lam))
