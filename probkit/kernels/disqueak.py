r"""DISQUEAK: distributed SQUEAK over a balanced binary merge tree (Calandriello et al., 2017).

The data are split into one shard per device (``jax.sharding.Mesh`` + ``jax.shard_map``).
Each device runs SQUEAK on its shard (chunks merged exactly, constant :math:`1-\varepsilon`).
Then :math:`\lceil\log_2 D\rceil` rounds merge the fixed-size dictionaries up a balanced
binary tree: in round :math:`r` device :math:`i + 2^r` sends its dictionary to device
:math:`i` (:math:`i \equiv 0 \bmod 2^{r+1}`) with ``lax.ppermute``, and the receiver
re-estimates the RLS on the union and shrinks it. Device 0 ends with the dictionary.

**Constant.** The union of two :math:`\varepsilon`-accurate dictionaries (each with respect to
its own data) satisfies :math:`-\varepsilon(C + 2\gamma I) \preceq \tilde C - C \preceq
\varepsilon(C + 2\gamma I)`, i.e. it is :math:`2\varepsilon`-accurate, so the merge estimate uses
:math:`c = 1 - 2\varepsilon`, which gives :math:`\tau_i(1-2\varepsilon)/(1+2\varepsilon) \le
\tilde\tau_i \le \tau_i` and requires **eps in (0, 1/2)**.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import AbstractKernel
from .dictionary import Dictionary
from .squeak import _chunk, _concat, _finish, _merge_shrink, _squeak_scan, _validate


def _default_mesh() -> Mesh:
    return Mesh(jax.devices(), ("data",))


def disqueak(
    key: PRNGKeyArray,
    X: Float[Array, "n d"],
    kernel: AbstractKernel,
    *,
    gamma: float,
    eps: float,
    mesh: Mesh | None = None,
    qbar: int | None = None,
    chunk_size: int | None = None,
    max_dict_size: int | None = None,
    compact: bool = True,
) -> Dictionary:
    r"""Distributed ridge-leverage Nyström sampling; the same result type as :func:`squeak`.

    Args:
        key: PRNG key.
        X: data ``(n, d)``; padded and split evenly over the mesh's first axis.
        kernel: a kernel module.
        gamma: ridge :math:`\gamma > 0`.
        eps: accuracy in (0, 1/2) (merge constant :math:`1 - 2\varepsilon`, module doc).
        mesh: a 1-D ``jax.sharding.Mesh`` (default: all devices on axis ``"data"``).
        qbar, chunk_size, max_dict_size: as in :func:`squeak` (``max_dict_size`` is the
            capacity of every per-device and merged dictionary), ``compact`` (drop the
            unused slots, default).
    """
    mesh = _default_mesh() if mesh is None else mesh
    if not isinstance(mesh, Mesh) or len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be a 1-D jax.sharding.Mesh, got {mesh!r}")
    axis = mesh.axis_names[0]
    n_dev = mesh.devices.size
    X, qbar, chunk_size, capacity = _validate(
        X, kernel, gamma, eps, 0.5, qbar, chunk_size, max_dict_size, n_parts=n_dev
    )
    chunks, idx, mask = _chunk(X, chunk_size, n_parts=n_dev)
    n_rounds = math.ceil(math.log2(n_dev)) if n_dev > 1 else 0

    def local(key, chunks, idx, mask, kernel):
        me = jax.lax.axis_index(axis)
        k_local, k_merge = jax.random.split(jax.random.fold_in(key, me))
        dic, flag = _squeak_scan(
            jax.random.split(k_local, chunks.shape[0]), chunks, idx, mask, kernel,
            gamma=gamma, const=1.0 - eps, qbar=qbar, capacity=capacity,
        )
        for r in range(n_rounds):  # static tree depth, log2(D) rounds
            stride = 2**r
            perm = [(i + stride, i) for i in range(0, n_dev, 2 * stride) if i + stride < n_dev]
            other = jax.tree.map(lambda a: jax.lax.ppermute(a, axis, perm), dic)
            receiver = (me % (2 * stride) == 0) & (me + stride < n_dev)
            other = eqx.tree_at(lambda t: t.mask, other, other.mask & receiver)
            union = _concat(dic, other)
            order = jnp.argsort(~union.mask, stable=True)  # compact: the estimate's cost follows the size
            merged, over = _merge_shrink(
                jax.random.fold_in(k_merge, r), kernel, jax.tree.map(lambda a: a[order], union), capacity,
                gamma, 1.0 - 2.0 * eps, compact=2 * capacity,
            )
            dic = jax.tree.map(lambda a, b: jnp.where(receiver, a, b), merged, dic)
            flag = flag | (over & receiver)
        flag = jax.lax.pmax(flag.astype(jnp.int32), axis) > 0
        return jax.tree.map(lambda a: a[None], dic), flag

    fn = jax.jit(
        jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(P(), P(axis), P(axis), P(axis), P()),
            out_specs=(P(axis), P()),
            check_vma=False,
        )
    )
    stacked, overflow = fn(key, chunks, idx, mask, kernel)
    dic = jax.tree.map(lambda a: a[0], stacked)
    return _finish(dic, overflow, compact)

