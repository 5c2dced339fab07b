"""Radial flow layer (Rezende & Mohamed, 2015)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import AbstractBijection
from ._utils import check_dim, check_vector, safe_norm, solve_increasing


class Radial(AbstractBijection):
    r"""Radial layer :math:`f(z) = z + \beta h(\alpha, r)(z - z_0)`, :math:`r = \|z - z_0\|`, :math:`h = 1/(\alpha + r)`.

    :math:`\log|\det J| = (D-1)\log(1 + \beta h) + \log(1 + \beta h + \beta h' r)`, :math:`h' = -h^2`.
    Constraints for any unconstrained parameters: :math:`\alpha = \mathrm{softplus}(\alpha') > 0`,
    :math:`\beta = -\alpha + \mathrm{softplus}(\beta') > -\alpha`. The inverse solves
    :math:`\|y - z_0\| = r + \beta r / (\alpha + r)` (increasing in ``r``) by bisection.
    """

    z0: Float[Array, " D"]
    alpha_raw: Float[Array, ""]
    beta_raw: Float[Array, ""]

    def __init__(self, key: PRNGKeyArray, dim: int, *, scale: float = 0.1):
        dim = check_dim("dim", dim)
        kz, ka, kb = jax.random.split(key, 3)
        self.z0 = scale * jax.random.normal(kz, (dim,))
        self.alpha_raw = scale * jax.random.normal(ka, ())
        self.beta_raw = scale * jax.random.normal(kb, ())

    def alpha_beta(self):
        """The constrained ``(α, β)``."""
        alpha = jax.nn.softplus(self.alpha_raw)
        return alpha, -alpha + jax.nn.softplus(self.beta_raw)

    def _log_det(self, r, alpha, beta):
        h = 1.0 / (alpha + r)
        d = self.z0.shape[0]
        return (d - 1) * jnp.log1p(beta * h) + jnp.log1p(beta * h - beta * h * h * r)

    def transform_and_log_det(self, x):
        check_vector("x", x, self.z0.shape[0])
        alpha, beta = self.alpha_beta()
        diff = x - self.z0
        r = safe_norm(diff)
        y = x + beta / (alpha + r) * diff
        return y, self._log_det(r, alpha, beta)

    def inverse_and_log_det(self, y):
        check_vector("y", y, self.z0.shape[0])
        alpha, beta = self.alpha_beta()
        diff = y - self.z0
        ry = safe_norm(diff)
        spread = jnp.abs(beta) + 1.0
        r = solve_increasing(
            lambda s: s + beta * s / (alpha + s) - ry, jnp.maximum(ry - spread, 0.0), ry + spread
        )
        x = self.z0 + diff / (1.0 + beta / (alpha + r))
        return x, -self._log_det(r, alpha, beta)
