"""Private numerical helpers shared by the bijections."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._validate import check_positive_int, check_real_dtype

#: ``softplus(x + _SP1) = 1`` at ``x = 0``: parameters initialised at zero give unit scales.
_SP1 = float(np.log(np.expm1(1.0)))


def inv_softplus(y):
    """Inverse of :func:`jax.nn.softplus` for ``y > 0``."""
    y = jnp.asarray(y)
    return y + jnp.log(-jnp.expm1(-y))


def safe_norm(x):
    """Euclidean norm whose gradient at ``x = 0`` is 0 rather than NaN (double-where)."""
    sq = jnp.sum(x * x)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def solve_increasing(g: Callable, lo, hi, n_iter: int = 100):
    r"""Root of a strictly increasing scalar function ``g`` bracketed by ``[lo, hi]``.

    Bisection (``n_iter`` halvings, run in a ``fori_loop``) followed by one Newton
    step from the stopped-gradient bisection root, so that the result carries the
    implicit-function gradient :math:`\partial r = -\partial g / g'(r)`.
    """

    def body(_, bounds):
        a, b = bounds
        m = 0.5 * (a + b)
        up = g(m) > 0
        return jnp.where(up, a, m), jnp.where(up, m, b)

    a, b = lax.fori_loop(0, n_iter, body, (lo, hi))
    r0 = lax.stop_gradient(0.5 * (a + b))
    val, slope = jax.jvp(g, (r0,), (jnp.ones_like(r0),))
    return r0 - val / lax.stop_gradient(slope)


def mlp(key, in_size: int, out_size: int, width: int, depth: int, activation=jax.nn.tanh):
    """An :class:`equinox.nn.MLP` whose last layer is zero (so a conditioner starts at identity)."""
    net = eqx.nn.MLP(in_size, out_size, width, depth, activation=activation, key=key)
    last = net.layers[-1]
    return eqx.tree_at(
        lambda n: (n.layers[-1].weight, n.layers[-1].bias),
        net,
        (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
    )


def check_dim(name: str, dim, minimum: int = 1) -> int:
    """Validate a dimension argument."""
    return check_positive_int(name, dim, minimum=minimum)


def check_vector(name: str, x, dim: int) -> None:
    """Require one real vector of shape ``(dim,)``: a bijection acts on single vectors of its own dimension.

    Shape and dtype are static, so this also holds under ``jit``/``vmap`` (where a wrong
    length would otherwise be broadcast or have its gather indices clamped).
    """
    check_real_dtype(name, x)
    if jnp.shape(x) != (dim,):
        raise ValueError(
            f"{name} must be one vector of shape ({dim},) (the bijection's dimension; batch with jax.vmap), "
            f"got shape {jnp.shape(x)}"
        )
