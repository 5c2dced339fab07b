"""Second derivatives that work on every log density probkit accepts."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def hessian(fn: Callable[[Array], Array], x: Float[Array, " d"]) -> Float[Array, "d d"]:
    r"""``∇²fn(x)``: exact (forward-over-reverse ``jax.hessian``) where autodiff allows it,
    else central differences of the reverse-mode gradient.

    Forward-over-reverse fails on log densities whose gradient is a ``custom_vjp``
    (diffrax's adjoints for ODE models, :func:`~probkit.infer.logdensity.forward_mode_grad`)
    and reverse-over-reverse on ``lax.while_loop`` solvers. Then
    ``H_{:,i} = (∇fn(x + h_i e_i) − ∇fn(x − h_i e_i)) / 2h_i`` with
    ``h_i = ε^{1/3} max(1, |x_i|)`` (relative error ``O(ε^{2/3})``: ~1e-11 in float64,
    ~2e-5 in float32), symmetrised. Traceable; costs ``2d`` gradients.
    """
    try:
        return jax.hessian(fn)(x)
    except (TypeError, ValueError) as exact_error:
        # TypeError: jvp of a custom_vjp; ValueError: reverse-mode through while_loop
        grad = jax.grad(fn)
        try:
            jax.eval_shape(grad, x)
        except Exception:
            raise exact_error from None
    h = jnp.finfo(x.dtype).eps ** (1 / 3) * jnp.maximum(1.0, jnp.abs(x))
    steps = jnp.diag(h)
    cols = jax.vmap(lambda e, hi: (grad(x + e) - grad(x - e)) / (2 * hi))(steps, h)  # row i = H[:, i]
    return 0.5 * (cols + cols.T)
