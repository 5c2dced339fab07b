"""Monotone rational-quadratic splines (Durkan et al., 2019) with identity tails."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_positive, check_positive_int
from ._base import AbstractBijection
from ._utils import _SP1, check_dim, check_vector
from .transformer import AbstractTransformer


def _knots(params, n_bins: int, bound: float, min_size: float, min_derivative: float):
    """Knot positions ``(xk, yk)`` and derivatives ``dk`` (K+1 each) from unconstrained params."""
    uw, uh, ud = params[:n_bins], params[n_bins : 2 * n_bins], params[2 * n_bins :]

    def edges(u):
        size = jax.nn.softmax(u) * (1.0 - n_bins * min_size) + min_size
        cum = jnp.concatenate([jnp.zeros((1,), size.dtype), jnp.cumsum(size)])
        cum = cum.at[-1].set(1.0)
        return 2.0 * bound * cum - bound

    d = jax.nn.softplus(ud + _SP1) * (1.0 - min_derivative) + min_derivative
    one = jnp.ones((1,), d.dtype)
    return edges(uw), edges(uh), jnp.concatenate([one, d, one])


def _bin(knots, v):
    """Index of the bin of ``knots`` (K+1 edges) that holds ``v``."""
    return jnp.sum(v >= knots[1:-1])


def _slope(xi, s, d0, d1):
    """Derivative of the rational-quadratic segment at relative position ``xi``."""
    t = xi * (1.0 - xi)
    den = s + (d1 + d0 - 2.0 * s) * t
    return s * s * (d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) ** 2) / (den * den)


class SplineTransformer(AbstractTransformer):
    r"""Rational-quadratic spline on ``[-B, B]`` with ``K`` bins, identity outside.

    Bin ``k``: :math:`\xi = (x - x_k)/w_k`, :math:`s_k = h_k / w_k`,
    :math:`y = y_k + h_k\frac{s_k\xi^2 + d_k\xi(1-\xi)}{s_k + (d_{k+1} + d_k - 2s_k)\xi(1-\xi)}`;
    boundary derivatives are 1 so the map is C¹ with the identity tails. Inputs
    outside the interval never reach the spline formulas (double-``where``), so
    their gradients are finite.
    """

    n_bins: int = eqx.field(static=True, default=8)
    bound: float = eqx.field(static=True, default=3.0)
    min_size: float = eqx.field(static=True, default=1e-3)
    min_derivative: float = eqx.field(static=True, default=1e-3)

    def __check_init__(self):
        check_positive_int("n_bins", self.n_bins)
        check_positive("bound", self.bound)

    @property
    def num_params(self) -> int:
        return 3 * self.n_bins - 1

    def _parts(self, params):
        return _knots(params, self.n_bins, self.bound, self.min_size, self.min_derivative)

    def _bin(self, params, v, by_x: bool):
        """``(x_k, y_k, w_k, h_k, s_k, d_k, d_{k+1})`` of the bin holding ``v`` (an x or a y value)."""
        xk, yk, dk = self._parts(params)
        k = _bin(xk if by_x else yk, v)
        w, h = xk[k + 1] - xk[k], yk[k + 1] - yk[k]
        return xk[k], yk[k], w, h, h / w, dk[k], dk[k + 1]

    def transform_and_log_det(self, x, params):
        inside = jnp.abs(x) < self.bound
        xs = jnp.where(inside, x, 0.0)
        x0, y0, w, h, s, d0, d1 = self._bin(params, xs, by_x=True)
        xi = (xs - x0) / w
        t = xi * (1.0 - xi)
        y = y0 + h * (s * xi * xi + d0 * t) / (s + (d1 + d0 - 2.0 * s) * t)
        return jnp.where(inside, y, x), jnp.where(inside, jnp.log(_slope(xi, s, d0, d1)), 0.0)

    def inverse_and_log_det(self, y, params):
        inside = jnp.abs(y) < self.bound
        ys = jnp.where(inside, y, 0.0)
        x0, y0, w, h, s, d0, d1 = self._bin(params, ys, by_x=False)
        dy = ys - y0
        c2 = d1 + d0 - 2.0 * s
        a = h * (s - d0) + dy * c2
        b = h * d0 - dy * c2
        c = -s * dy
        disc = jnp.maximum(b * b - 4.0 * a * c, 0.0)
        xi = 2.0 * c / (-b - jnp.sqrt(disc))
        x = x0 + xi * w
        return jnp.where(inside, x, y), jnp.where(inside, -jnp.log(_slope(xi, s, d0, d1)), 0.0)


class RationalQuadraticSpline(AbstractBijection):
    """Elementwise rational-quadratic spline with its own (unconditional) parameters.

    ``params`` has shape ``(D, 3K − 1)``; zeros give the identity map.
    """

    params: Float[Array, "D P"]
    transformer: SplineTransformer

    def __init__(
        self,
        key: PRNGKeyArray,
        dim: int,
        *,
        n_bins: int = 8,
        bound: float = 3.0,
        init_scale: float = 0.0,
    ):
        dim = check_dim("dim", dim)
        self.transformer = SplineTransformer(n_bins=n_bins, bound=bound)
        self.params = init_scale * jax.random.normal(key, (dim, self.transformer.num_params))

    def transform_and_log_det(self, x):
        check_vector("x", x, self.params.shape[0])
        y, ld = jax.vmap(self.transformer.transform_and_log_det)(x, self.params)
        return y, jnp.sum(ld)

    def inverse_and_log_det(self, y):
        check_vector("y", y, self.params.shape[0])
        x, ld = jax.vmap(self.transformer.inverse_and_log_det)(y, self.params)
        return x, jnp.sum(ld)
