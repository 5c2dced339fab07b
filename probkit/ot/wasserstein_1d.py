r"""Exact Wasserstein-:math:`p` distance between two 1-D empirical measures.

For :math:`\mu = \sum_i a_i \delta_{u_i}` and :math:`\nu = \sum_j b_j \delta_{v_j}`,

.. math::
    W_p^p(\mu, \nu) = \int_0^1 \lvert F_\mu^{-1}(t) - F_\nu^{-1}(t) \rvert^p \, dt .

Both quantile functions are step functions whose jumps sit at the cumulative
weights :math:`c^u_k = \sum_{i \le k} a_{(i)}` and :math:`c^v_k`; merging the two
sorted lists :math:`q_1 \le \dots \le q_{n+m}` makes both constant on every
:math:`(q_{k-1}, q_k]`, so the integral is the finite sum
:math:`\sum_k (q_k - q_{k-1}) \lvert u_{(i_k)} - v_{(j_k)} \rvert^p` with
:math:`i_k = \#\{c^u < q_k\}`, :math:`j_k = \#\{c^v < q_k\}`. Cost
:math:`O((n + m) \log(n + m))`, fixed shapes, differentiable in values and weights.
With uniform weights the breakpoints :math:`k/n`, :math:`l/m` do not depend on the
data, so the merge is computed once (statically) and only the two samples are
sorted; equal sizes reduce to :math:`\frac1n \sum_i \lvert u_{(i)} - v_{(i)} \rvert^p`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from probkit.ot._checks import check_p, check_points_1d, check_weights, float_dtype
from probkit.ot._sort import sort


def _abs_pow(diff: Array, p: float) -> Array:
    return jnp.square(diff) if p == 2.0 else jnp.abs(diff) ** p


def wpp_sorted(u: Float[Array, " n"], v: Float[Array, " n"], p: float) -> Float[Array, ""]:
    """:math:`W_p^p` for equal-size, uniformly weighted samples (sorted coupling)."""
    return jnp.mean(_abs_pow(sort(u) - sort(v), p))


@functools.lru_cache(maxsize=64)
def _uniform_merge(n: int, m: int):
    """Static merge of the breakpoints ``k/n`` and ``l/m`` (exact integer comparison)."""
    frac = np.concatenate([np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n])
    order = np.argsort(frac, kind="stable")
    from_u = (order < n).astype(np.int64)
    iu = np.cumsum(from_u) - from_u
    iv = np.arange(n + m) - iu
    q = frac[order] / float(n * m)
    delta = np.diff(q, prepend=0.0)
    keep = delta > 0  # zero-length intervals contribute nothing
    return np.minimum(iu, n - 1)[keep], np.minimum(iv, m - 1)[keep], delta[keep]


def wpp_uniform(u: Float[Array, " n"], v: Float[Array, " m"], p: float) -> Float[Array, ""]:
    """:math:`W_p^p` for uniformly weighted samples of any sizes (two sorts, static merge)."""
    if u.shape[0] == v.shape[0]:
        return wpp_sorted(u, v, p)
    iu, iv, delta = _uniform_merge(u.shape[0], v.shape[0])
    # int32 indices whatever the x64 setting (NumPy int64 ones break a float64 trace after a float32 one)
    iu, iv = jnp.asarray(iu, jnp.int32), jnp.asarray(iv, jnp.int32)
    return jnp.sum(jnp.asarray(delta, u.dtype) * _abs_pow(sort(u)[iu] - sort(v)[iv], p))


def wpp_quantile(
    u: Float[Array, " n"],
    v: Float[Array, " m"],
    a: Float[Array, " n"],
    b: Float[Array, " m"],
    p: float,
) -> Float[Array, ""]:
    """:math:`W_p^p` for weighted samples by merging the two CDFs (see module docstring)."""
    n = u.shape[0]
    su = jnp.argsort(u)
    sv = jnp.argsort(v)
    us, vs = u[su], v[sv]
    cu = jnp.cumsum(a[su] / jnp.sum(a))
    cv = jnp.cumsum(b[sv] / jnp.sum(b))
    c = jnp.concatenate([cu, cv])
    # stable sort: on ties the u-breakpoint comes first; any position whose index
    # would be affected by a tie has a zero-length interval, so the sum is exact.
    order = jnp.argsort(c, stable=True)
    q = c[order]
    from_u = (order < n).astype(jnp.int32)
    iu = jnp.cumsum(from_u) - from_u
    iv = jnp.arange(q.shape[0]) - iu
    iu = jnp.minimum(iu, n - 1)
    iv = jnp.minimum(iv, v.shape[0] - 1)
    delta = jnp.diff(q, prepend=jnp.zeros((1,), q.dtype))
    return jnp.sum(delta * _abs_pow(us[iu] - vs[iv], p))


def safe_root(z: Array, p: float) -> Array:
    """:math:`z^{1/p}` for ``z >= 0`` with a finite (zero) gradient at ``z = 0``."""
    pos = z > 0
    zs = jnp.where(pos, z, 1.0)
    return jnp.where(pos, jnp.sqrt(zs) if p == 2.0 else zs ** (1.0 / p), 0.0)


def power_of_two_scale(*arrays: Array) -> Array:
    r"""A power of two :math:`s` with :math:`\max_i |a_i| / s \in [1, 2)` over ``arrays`` (1 if all are 0).

    :math:`W_p` is 1-homogeneous, so it is computed on ``a / s`` and multiplied by
    :math:`s` (:math:`W_p^p` by :math:`s^p`): squares of data near the ends of the
    float range (float32: below ~1e-19 or above ~1e19) neither underflow nor overflow, and
    division by a power of two is exact, so data at ordinary scales give the same bits.
    No gradient flows through :math:`s` (the value is homogeneous in it).
    """
    m = jax.lax.stop_gradient(functools.reduce(jnp.maximum, [jnp.max(jnp.abs(a)) for a in arrays]))
    _, e = jnp.frexp(m)  # m = f 2^e, f in [1/2, 1)
    return jnp.where(m > 0, jnp.ldexp(jnp.ones((), m.dtype), e - 1), jnp.ones((), m.dtype))


def wasserstein_1d(
    u: Float[Array, " n"],
    v: Float[Array, " m"],
    u_weights: Float[Array, " n"] | None = None,
    v_weights: Float[Array, " m"] | None = None,
    *,
    p: float = 2,
    root: bool = True,
) -> Float[Array, ""]:
    r"""Exact :math:`W_p` between two weighted 1-D empirical measures.

    Args:
        u, v: sample locations, shapes ``(n,)`` and ``(m,)``.
        u_weights, v_weights: probability vectors (non-negative, summing to 1);
            ``None`` means uniform.
        p: order, ``p >= 1``.
        root: return :math:`W_p` (default); ``False`` returns :math:`W_p^p`.

    Equal sizes with no weights use the sorted coupling; everything else the
    exact quantile-function integral. The data are rescaled by a power of two
    (:func:`power_of_two_scale`), so any finite scale of the dtype works.
    jit / vmap / grad compatible; value checks (finite, weights) hold under jit
    through :func:`equinox.error_if`.
    """
    p = check_p(p)
    u, v = check_points_1d("u", u), check_points_1d("v", v)
    dtype = float_dtype(u, v)
    u, v = u.astype(dtype), v.astype(dtype)
    a = check_weights("u_weights", u_weights, u.shape[0], dtype)
    b = check_weights("v_weights", v_weights, v.shape[0], dtype)
    return _wasserstein_1d(u, v, a, b, p=p, root=bool(root))


@functools.partial(jax.jit, static_argnames=("p", "root"))
def _wasserstein_1d(u, v, a, b, *, p, root):
    s = power_of_two_scale(u, v)
    u, v = u / s, v / s
    if a is None and b is None:
        wpp = wpp_uniform(u, v, p)
    else:
        a = jnp.full(u.shape, 1.0 / u.shape[0], u.dtype) if a is None else a
        b = jnp.full(v.shape, 1.0 / v.shape[0], u.dtype) if b is None else b
        wpp = wpp_quantile(u, v, a, b, p)
    return s * safe_root(wpp, p) if root else s**p * wpp


__all__ = ["wasserstein_1d"]

