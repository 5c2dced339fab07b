r"""Graph random features (GRFs, Choromanski 2023) and their quasi-Monte-Carlo variant (q-GRFs).

Let :math:`W = D^{-1/2} A D^{-1/2}` be the normalised adjacency. Every kernel here is a
square :math:`K = F(W)^2` of a power series :math:`F(x) = \sum_k f_k x^k`:

* regularised Laplacian :math:`K_d = (I + \sigma^2\tilde L)^{-d} = (1+\sigma^2)^{-d}(I - sW)^{-d}`,
  :math:`s = \sigma^2/(1+\sigma^2)`, so :math:`F(x) = (1+\sigma^2)^{-d/2}(1 - s x)^{-d/2}` and
  :math:`f_k = (1+\sigma^2)^{-d/2}\binom{k + d/2 - 1}{k} s^k` (``d = 2``: :math:`f_k = s^k/(1+\sigma^2)`,
  the paper's :math:`\Phi\Phi'^\top/(1+\sigma^2)^2`);
* diffusion :math:`e^{-\beta\tilde L} = e^{-\beta}e^{\beta W}`, :math:`f_k = e^{-\beta/2}(\beta/2)^k/k!`;
* any :math:`K = \sum_k c_k W^k` with :math:`c_0 > 0`: :math:`f` is the square-root series found by
  deconvolution, :math:`f_0 = \sqrt{c_0}`, :math:`f_k = (c_k - \sum_{i=1}^{k-1} f_i f_{k-i})/(2 f_0)`
  (:class:`SquareRootSeries`).

Estimator of row :math:`i` of :math:`F(W)`: run :math:`m` walks from :math:`i`. A walk carries a
load, 1 at the start; at step :math:`k \ge 1` it halts with probability :math:`p` (or when its
node has no neighbour), else moves to a uniform neighbour :math:`j` of its node :math:`v` and
multiplies the load by :math:`W_{vj}\,\deg(v)/(1-p)`; after :math:`k` steps it adds
:math:`f_k \cdot \text{load}/m` to :math:`\phi_i[v_k]`. A path of length :math:`k` is taken with
probability :math:`(1-p)^k \prod 1/\deg(v_t)`, so :math:`E[\phi_i] = \sum_k f_k (W^k)_{i,:}` exactly.
Two independent walk sets give :math:`\Phi, \Phi'` and :math:`E[\Phi\Phi'^\top] = F(W)^2 = K`,
diagonal included.

**Choice of p_halt (variance).** For non-negative :math:`f_k` the second moment of one walk's
contribution to :math:`\phi_i` is at least :math:`\sum_k f_k^2\, E[\text{load}_k^2] = \sum_k f_k^2
(Q^k\mathbf 1)_i/(1-p)^k`, summed over the paths of length :math:`k` with probability
:math:`(1-p)^k\prod 1/\deg` and squared load :math:`\prod (W_{vj}\deg(v))^2/(1-p)^{2k}`, where
:math:`Q_{vj} = W_{vj}^2\deg(v)` (``deg`` = number of neighbours). Its spectral radius
:math:`\rho` is at most the largest column sum :math:`\max_j \sum_v W_{vj}^2 \deg(v)`, which is
exactly 1 for an unweighted graph, whatever its degrees (:math:`Q = A D^{-1}`); weighted graphs
can have :math:`\rho > 1`. With :math:`r = \limsup |f_k|^{1/k}` (``growth_rate``: :math:`s =
\sigma^2/(1+\sigma^2)` for the regularised Laplacian, 0 for diffusion and finite series) the
variance is finite iff

.. math:: p < 1 - \rho\, r^2 .

An explicit ``p_halt`` outside it raises ``ValueError``. The default minimises variance times
cost (expected walk length :math:`1/p`): for ``d = 2`` the variance is
:math:`\propto (1-p)/(1-p-\rho s^2)`, and :math:`(1-p)/(p(1-p-\rho s^2))` is smallest at

.. math:: p_\text{halt} = 1 - \sqrt\rho\, r \quad (= 1/(1+\sigma^2) \text{ on unweighted graphs}),

i.e. 0.5, 0.2, 0.059 for :math:`\sigma = 1, 2, 4`, with mean walk length :math:`1 + \sigma^2`.
The default is :math:`\min(0.5, 1 - \sqrt\rho\, r)`: for :math:`\sigma < 1` (and for diffusion and
finite series, :math:`r = 0`) walks are short anyway and 0.5 buys accuracy per walk.

One uniform :math:`u` per walk and step decides both: halt if :math:`u < p`, else move to
neighbour number :math:`\lfloor \deg(v)\,(u - p)/(1 - p) \rfloor` (given :math:`u \ge p`,
:math:`(u-p)/(1-p)` is uniform on :math:`[0, 1)`).

q-GRF (``variant="qgrf"``): walkers ``w`` and ``w + ceil(m/2)`` of a node share their uniforms
antithetically, :math:`r' = (r + 1/2) \bmod 1`. Each walker's law is unchanged, so the
estimator stays unbiased; for :math:`p = 1/2` the pair's lengths are anti-correlated, and when
both move their neighbour picks are spread apart.

Walk length: with ``max_walk_length=None`` dense features run the walks (``lax.while_loop``)
until every walk has halted — exactly unbiased. Sparse features need a static buffer: the
default cap is the smaller of the step after which the series tail
:math:`\sum_{k>L}|f_k| \le 10^{-7}\sum_k|f_k|` (bias below that relative size) and the step
:math:`L` with :math:`N m (1-p)^L \le 10^{-6}` (no walk is truncated with probability
:math:`\ge 1 - 10^{-6}`). An explicit cap :math:`L` estimates :math:`\sum_{k\le L} f_k W^k`.

Per-node randomness is ``fold_in(fold_in(key, node), step)``, so sharding the nodes over a
``mesh`` (``jax.shard_map``) gives the same features as the unsharded run.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import sparse as jsparse
from jax.scipy.special import gammaln
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._validate import check_choice, check_open_interval, check_positive, check_positive_int, is_concrete
from .graph import Graph, as_graph

__all__ = [
    "AbstractWalkSeries",
    "RegularizedLaplacianSeries",
    "DiffusionSeries",
    "SquareRootSeries",
    "graph_random_features",
]


class AbstractWalkSeries(eqx.Module):
    r"""Coefficients :math:`f_k` of :math:`F` with kernel :math:`K = F(W)^2`, :math:`W = D^{-1/2}AD^{-1/2}`."""

    @abc.abstractmethod
    def coefficient(self, k: Int[Array, "*shape"]) -> Float[Array, "*shape"]:
        """:math:`f_k` for integer step counts ``k >= 0``."""

    def growth_rate(self) -> Float[Array, ""] | None:
        r""":math:`\limsup_k |f_k|^{1/k}` (sets the admissible ``p_halt``), ``None`` if unknown."""
        return None


class RegularizedLaplacianSeries(AbstractWalkSeries):
    r""":math:`f_k = (1+\sigma^2)^{-d/2}\,\Gamma(k+d/2)/(\Gamma(d/2)\,k!)\,(\sigma^2/(1+\sigma^2))^k`."""

    sigma: Float[Array, ""] | float
    d: Float[Array, ""] | float = 2.0

    def coefficient(self, k):
        s2 = jnp.asarray(self.sigma) ** 2
        h = jnp.asarray(self.d) / 2
        k = jnp.asarray(k)
        log_f = (
            -h * jnp.log1p(s2)
            + gammaln(k + h) - gammaln(h) - gammaln(k + 1.0)
            + k * (jnp.log(s2) - jnp.log1p(s2))
        )
        return jnp.exp(log_f)

    def growth_rate(self):
        s2 = jnp.asarray(self.sigma) ** 2
        return s2 / (1.0 + s2)


class DiffusionSeries(AbstractWalkSeries):
    r""":math:`f_k = e^{-\beta/2} (\beta/2)^k / k!` (diffusion kernel :math:`e^{-\beta\tilde L}`)."""

    beta: Float[Array, ""] | float

    def coefficient(self, k):
        h = jnp.asarray(self.beta) / 2
        k = jnp.asarray(k)
        return jnp.exp(-h + k * jnp.log(h) - gammaln(k + 1.0))

    def growth_rate(self):
        return jnp.asarray(0.0)


class SquareRootSeries(AbstractWalkSeries):
    r"""Tabulated :math:`f_0..f_{L-1}` (zero beyond), usually from :meth:`from_kernel_coefficients`."""

    f: Float[Array, " L"]

    @classmethod
    def from_kernel_coefficients(cls, c: Float[Array, " L"]) -> "SquareRootSeries":
        r"""Square root of :math:`\sum_k c_k x^k` by deconvolution (needs :math:`c_0 > 0`)."""
        c = jnp.asarray(c)
        if not jnp.issubdtype(c.dtype, jnp.floating):
            c = c.astype(jnp.result_type(float))
        if c.ndim != 1 or c.shape[0] < 1:
            raise ValueError(f"c must be a non-empty 1-D coefficient array, got shape {c.shape}")
        if is_concrete(c) and not float(c[0]) > 0:
            raise ValueError(f"c[0] must be positive for a square root series, got {float(c[0])}")
        n = c.shape[0]
        f0 = jnp.sqrt(c[0])
        idx = jnp.arange(n)

        def step(f, k):
            mask = (idx >= 1) & (idx <= k - 1)
            conv = jnp.sum(jnp.where(mask, f * f[jnp.clip(k - idx, 0, n - 1)], 0.0))
            return f.at[k].set((c[k] - conv) / (2 * f0)), None

        f, _ = lax.scan(step, jnp.zeros_like(c).at[0].set(f0), jnp.arange(1, n))
        return cls(f=f)

    def coefficient(self, k):
        k = jnp.asarray(k)
        n = self.f.shape[0]
        return jnp.where(k < n, self.f[jnp.clip(k, 0, n - 1)], 0.0)

    def growth_rate(self):
        return jnp.asarray(0.0)


# ----------------------------------------------------------------------------- walks


def _uniforms(node_keys, t, m: int, antithetic: bool, dtype):
    """One uniform (B, m) for step ``t`` of every walk of each node (halting and neighbour)."""

    def one(k):
        u = jax.random.uniform(jax.random.fold_in(k, t), ((m + 1) // 2 if antithetic else m,), dtype)
        return jnp.concatenate([u, jnp.mod(u + 0.5, 1.0)])[:m] if antithetic else u

    return jax.vmap(one)(node_keys)


class _Walks(eqx.Module):
    """Everything one step of the walks needs (CSR arrays, normalised weights, settings)."""

    indptr: Int[Array, " n_plus_1"]
    indices: Int[Array, " nnz"]
    w: Float[Array, " nnz"]
    series: AbstractWalkSeries
    p_halt: Float[Array, ""]
    n_walks: int = eqx.field(static=True)
    antithetic: bool = eqx.field(static=True)

    def step(self, node_keys, t, cur, load, alive):
        """Advance every alive walk by one step; returns (cur, load, alive, value added)."""
        dtype = load.dtype
        u = _uniforms(node_keys, t, self.n_walks, self.antithetic, dtype)
        start = self.indptr[cur]
        nn = self.indptr[cur + 1] - start
        move = alive & (u >= self.p_halt) & (nn > 0)
        # Given u >= p, (u - p) / (1 - p) is again uniform on [0, 1): it picks the neighbour.
        u_nb = (u - self.p_halt) / (1 - self.p_halt)
        j = jnp.clip(jnp.floor(u_nb * nn).astype(jnp.int32), 0, jnp.maximum(nn - 1, 0))
        e = jnp.clip(start + j, 0, self.indices.shape[0] - 1)
        nxt = jnp.where(move, self.indices[e], cur)
        load = jnp.where(move, load * self.w[e] * nn.astype(dtype) / (1 - self.p_halt), 0.0)
        value = self.series.coefficient(t).astype(dtype) * load / self.n_walks
        return nxt, load, move, value


def _init(walks: _Walks, key, nodes, valid, dtype):
    node_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, nodes)
    b, m = nodes.shape[0], walks.n_walks
    cur = jnp.broadcast_to(nodes[:, None], (b, m))
    alive = jnp.broadcast_to(valid[:, None], (b, m))
    load = jnp.ones((b, m), dtype)
    f0 = walks.series.coefficient(0).astype(dtype) * valid.astype(dtype)
    return node_keys, cur, load, alive, f0


def _dense_rows(walks: _Walks, key, nodes, valid, n_nodes: int, max_len: int | None, dtype):
    """Rows ``nodes`` of the dense feature matrix, shape (B, N)."""
    node_keys, cur, load, alive, f0 = _init(walks, key, nodes, valid, dtype)
    b = nodes.shape[0]
    # A flat (B * N,) buffer: XLA's CPU scatter is about twice as fast in 1-D.
    offset = (jnp.arange(b) * n_nodes)[:, None]
    phi = jnp.zeros((b * n_nodes,), dtype).at[offset[:, 0] + nodes].add(f0)

    def cond(state):
        t, _, _, alive, _ = state
        more = jnp.any(alive)
        return more if max_len is None else more & (t < max_len)

    def body(state):
        t, cur, load, alive, phi = state
        t = t + 1
        cur, load, alive, value = walks.step(node_keys, t, cur, load, alive)
        idx = (offset + cur).reshape(-1)
        return t, cur, load, alive, phi.at[idx].add(value.reshape(-1), mode="promise_in_bounds")

    state = (jnp.asarray(0, jnp.int32), cur, load, alive, phi)
    return lax.while_loop(cond, body, state)[-1].reshape(b, n_nodes)


def _sparse_rows(walks: _Walks, key, nodes, valid, max_len: int, dtype):
    """(columns, values) of rows ``nodes``, each (max_len + 1, B, m) (step-major: no transpose)."""
    node_keys, cur, load, alive, f0 = _init(walks, key, nodes, valid, dtype)
    first = jnp.where(jnp.arange(walks.n_walks) == 0, f0[:, None], 0.0)

    def body(state, t):
        cur, load, alive = state
        cur, load, alive, value = walks.step(node_keys, t, cur, load, alive)
        return (cur, load, alive), (cur, value)

    _, (cols, vals) = lax.scan(body, (cur, load, alive), jnp.arange(1, max_len + 1, dtype=jnp.int32))
    return jnp.concatenate([cur[None], cols]), jnp.concatenate([first[None], vals])


def _default_max_len(series, p_halt, n_nodes: int, n_walks: int) -> int:
    """Static walk cap for sparse features (see the module docstring)."""
    if not all(is_concrete(x) for x in jax.tree_util.tree_leaves(series)):
        raise ValueError("max_walk_length must be given for sparse features under jit")
    if not is_concrete(p_halt):  # a default p_halt from a traced graph: the series tail decides
        p_halt = _P_MIN
    l_surv = math.ceil(math.log(1e-6 / (n_nodes * n_walks)) / math.log1p(-float(p_halt)))
    f = np.abs(np.asarray(series.coefficient(jnp.arange(max(l_surv, 1) + 1)), np.float64))
    tail = np.cumsum(f[::-1])[::-1]  # tail[k] = sum_{j >= k} |f_j|
    ok = np.nonzero(tail <= 1e-7 * tail[0])[0]
    l_tail = int(ok[0]) - 1 if ok.size else l_surv
    return max(1, min(l_surv, l_tail))


def _load_growth(graph: Graph) -> Array:
    r"""Upper bound :math:`\max_j \sum_v W_{vj}^2 \deg(v)` on the second-moment growth :math:`\rho(Q)`.

    Exactly 1 for an unweighted graph with an edge (0 without edges); see the module doc.
    """
    w = graph.normalized_weights()
    nn = graph.n_neighbors.astype(w.dtype)
    col = jax.ops.segment_sum(w * w * nn[graph.rows], graph.indices, num_segments=graph.n_nodes)
    return jnp.max(col, initial=0.0)


_P_MIN = 1e-4  # smallest default p_halt (mean walk length 1e4), reached for sigma ~ 100


def _default_p_halt(series: AbstractWalkSeries, rho):
    """``min(0.5, 1 - sqrt(rho) r)`` (module doc), 0.5 if r is unknown; concrete when possible."""
    r = series.growth_rate()
    if r is None:
        return 0.5
    r = jnp.asarray(r)
    p = jnp.minimum(1.0 - jnp.sqrt(rho) * r, 0.5)
    if is_concrete(p):
        if float(rho) * float(r) ** 2 >= 1.0:
            raise ValueError(
                f"no p_halt gives the GRF estimator a finite variance on this weighted graph: the "
                f"series grows like {float(r):.4g}^k and the walk loads' second moment like "
                f"{float(rho):.4g}^k per step (rho r^2 = {float(rho) * float(r) ** 2:.4g} >= 1); lower "
                f"sigma or rescale the edge weights"
            )
        return float(max(float(p), _P_MIN))
    return jnp.maximum(p, _P_MIN)


def _check_p_halt(series: AbstractWalkSeries, rho, p_halt) -> None:
    """``ValueError`` for an explicit ``p_halt >= 1 - rho r^2`` (infinite variance)."""
    r = series.growth_rate()
    if r is None or not (is_concrete(r) and is_concrete(rho) and is_concrete(p_halt)):
        return
    bound = 1.0 - float(rho) * float(r) ** 2
    if float(p_halt) >= bound:
        raise ValueError(
            f"p_halt = {float(p_halt):.4g} gives the GRF estimator infinite variance: with walk "
            f"series growth r = {float(r):.4g} (r = sigma^2/(1+sigma^2) for the regularised "
            f"Laplacian) and load growth rho = {float(rho):.4g}, p_halt must be < 1 - rho r^2 = "
            f"{bound:.4g}; the default p_halt=None picks 1 - sqrt(rho) r = {1 - float(rho) ** 0.5 * float(r):.4g}"
        )


_KERNELS = ("regularized_laplacian", "diffusion")
_VARIANTS = ("grf", "qgrf")


def graph_random_features(
    key: PRNGKeyArray,
    adjacency: Any,
    *,
    n_walks: int,
    p_halt: float | None = None,
    sigma: float = 1.0,
    kernel: str | AbstractWalkSeries = "regularized_laplacian",
    d: float = 2,
    beta: float = 1.0,
    variant: str = "grf",
    max_walk_length: int | None = None,
    dense: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    node_axis: str | None = None,
):
    r"""Graph random features :math:`(\Phi, \Phi')` with :math:`E[\Phi\Phi'^\top] = K`.

    Args:
        key: PRNG key.
        adjacency: symmetric non-negative adjacency (dense, BCOO, scipy.sparse, networkx
            or :class:`~probkit.kernels.graph.Graph`; convert once with ``as_graph`` to jit).
        n_walks: walks per node ``m``.
        p_halt: halting probability in (0, 1). Default ``min(0.5, 1 - sqrt(rho) r)``, i.e.
            ``min(0.5, 1 / (1 + sigma^2))`` for the regularised Laplacian on an unweighted
            graph, 0.5 for diffusion; an explicit value must satisfy ``p_halt < 1 - rho r^2`` (finite variance,
            module doc: ``1 - s^2``, ``s = sigma^2/(1+sigma^2)``, on unweighted graphs), else
            ``ValueError``.
        sigma, d: regularised Laplacian kernel :math:`(I + \sigma^2\tilde L)^{-d}`.
        kernel: ``"regularized_laplacian"``, ``"diffusion"`` (uses ``beta``) or an
            :class:`AbstractWalkSeries`.
        variant: ``"grf"`` (independent walks) or ``"qgrf"`` (antithetic termination).
        max_walk_length: optional cap on the number of steps (see module docstring).
        dense: dense ``(N, N)`` arrays, else :class:`jax.experimental.sparse.BCOO`.
        mesh, node_axis: shard the nodes over ``mesh`` axis ``node_axis`` (default: its first).

    Returns:
        ``(Phi, Phi2)``, each ``(N, N)``, from independent walk sets.
    """
    n_walks = check_positive_int("n_walks", n_walks)
    if p_halt is not None:
        check_open_interval("p_halt", p_halt, 0.0, 1.0)
    check_choice("variant", variant, _VARIANTS)
    if max_walk_length is not None:
        max_walk_length = check_positive_int("max_walk_length", max_walk_length)
    if isinstance(kernel, AbstractWalkSeries):
        series = kernel
    else:
        check_choice("kernel", kernel, _KERNELS)
        if kernel == "regularized_laplacian":
            check_positive("sigma", sigma)
            check_positive("d", d)
            series = RegularizedLaplacianSeries(sigma=sigma, d=d)
        else:
            check_positive("beta", beta)
            series = DiffusionSeries(beta=beta)
    graph = as_graph(adjacency)
    n = graph.n_nodes
    dtype = graph.weights.dtype
    rho = _load_growth(graph)
    if p_halt is None:
        p_halt = _default_p_halt(series, rho)
    else:
        _check_p_halt(series, rho, p_halt)
    indices, w = graph.indices, graph.normalized_weights()
    if indices.shape[0] == 0:
        # no edge at all (e.g. one node): every walk halts at once, phi = f_0 I exactly; one
        # dummy entry keeps the (never taken) neighbour gather in bounds
        indices, w = jnp.zeros((1,), indices.dtype), jnp.zeros((1,), w.dtype)
    walks = _Walks(
        indptr=graph.indptr,
        indices=indices,
        w=w,
        series=series,
        p_halt=jnp.asarray(p_halt, dtype),
        n_walks=n_walks,
        antithetic=variant == "qgrf",
    )
    if not dense and max_walk_length is None:
        max_walk_length = _default_max_len(series, p_halt, n, n_walks)

    if dense:
        def rows_fn(walks, key, nodes, valid):
            return _dense_rows(walks, key, nodes, valid, n, max_walk_length, dtype)
    else:
        def rows_fn(walks, key, nodes, valid):
            return _sparse_rows(walks, key, nodes, valid, max_walk_length, dtype)

    if mesh is None:
        n_pad = n
    else:
        axis = node_axis if node_axis is not None else mesh.axis_names[0]
        size = mesh.shape[axis]
        n_pad = -(-n // size) * size
        spec = P(axis)
        rows_fn = jax.shard_map(
            rows_fn, mesh=mesh, in_specs=(P(), P(), spec, spec),
            out_specs=spec if dense else P(None, axis), check_vma=False,
        )
    nodes = jnp.arange(n_pad, dtype=jnp.int32)
    valid = nodes < n
    nodes = jnp.minimum(nodes, n - 1)

    def one(k):
        out = rows_fn(walks, k, nodes, valid)
        if dense:
            return out[:n]
        cols, vals = out[0][:, :n], out[1][:, :n]
        rows = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[None, :, None], cols.shape)
        idx = jnp.stack([rows.reshape(-1), cols.reshape(-1)], axis=1)
        mat = jsparse.BCOO((vals.reshape(-1), idx), shape=(n, n))
        return mat.sum_duplicates() if is_concrete(vals) else mat

    k1, k2 = jax.random.split(key)
    return one(k1), one(k2)
