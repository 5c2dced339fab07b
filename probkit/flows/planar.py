"""Planar flow layer (Rezende & Mohamed, 2015)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import AbstractBijection
from ._utils import check_dim, check_vector, solve_increasing

#: Margin δ in m(x) = −1 + softplus(x) + δ.
_MARGIN = 1e-4


class Planar(AbstractBijection):
    r"""Planar layer :math:`f(z) = z + \hat u \tanh(w^\top z + b)`.

    :math:`\log|\det J| = \log|1 + (1 - \tanh^2(w^\top z + b))\, w^\top \hat u|`.
    Invertibility (:math:`w^\top \hat u > -1`) holds for any unconstrained ``u`` through
    :math:`\hat u = u + (m(w^\top u) - w^\top u)\, w / \|w\|^2`, :math:`m(x) = -1 + \mathrm{softplus}(x) + \delta`;
    the margin :math:`\delta = 10^{-4}` keeps :math:`w^\top \hat u > -1` in floating point, where
    the cancellation in :math:`w^\top \hat u` for :math:`w^\top u \ll -1` would otherwise round it to −1.
    The inverse solves the monotone scalar equation
    :math:`w^\top y = a + w^\top \hat u \tanh(a + b)` for :math:`a = w^\top z` by bisection.
    """

    u: Float[Array, " D"]
    w: Float[Array, " D"]
    b: Float[Array, ""]

    def __init__(self, key: PRNGKeyArray, dim: int, *, scale: float = 0.1):
        dim = check_dim("dim", dim)
        ku, kw = jax.random.split(key)
        self.u = scale * jax.random.normal(ku, (dim,))
        self.w = scale * jax.random.normal(kw, (dim,))
        self.b = jnp.zeros(())

    def u_hat(self) -> Float[Array, " D"]:
        """The constrained ``û`` with ``wᵀû > −1``."""
        wu = self.w @ self.u
        return self.u + (jax.nn.softplus(wu) - 1.0 + _MARGIN - wu) * self.w / (self.w @ self.w)

    def _log_det(self, a, wu):
        t = jnp.tanh(a + self.b)
        return jnp.log(jnp.abs(1.0 + (1.0 - t * t) * wu))

    def transform_and_log_det(self, x):
        check_vector("x", x, self.w.shape[0])
        u = self.u_hat()
        a = self.w @ x
        return x + u * jnp.tanh(a + self.b), self._log_det(a, self.w @ u)

    def inverse_and_log_det(self, y):
        check_vector("y", y, self.w.shape[0])
        u = self.u_hat()
        wu = self.w @ u
        wy = self.w @ y
        spread = jnp.abs(wu) + 1.0
        a = solve_increasing(lambda s: s + wu * jnp.tanh(s + self.b) - wy, wy - spread, wy + spread)
        x = y - u * jnp.tanh(a + self.b)
        return x, -self._log_det(a, wu)
