"""Elementwise affine bijection."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_real_dtype, check_value, checked_finite
from ._base import AbstractBijection
from ._utils import check_vector


def _not_positive(xp, s):
    return ~xp.all(xp.isfinite(s) & (s > 0))


class Affine(AbstractBijection):
    r"""Elementwise affine map :math:`y = \mu + \sigma \odot x` with :math:`\sigma = e^{s}`.

    :math:`\log|\det J| = \sum_i s_i`. Stored as ``(loc, log_scale)`` so that any
    unconstrained parameters give an invertible map. ``loc`` and ``scale`` are scalars or
    vectors of one length ``D`` (a scalar is repeated); ``loc`` must be finite and ``scale``
    finite and positive (checked eagerly, or by :func:`equinox.error_if` when traced).
    """

    loc: Float[Array, " D"]
    log_scale: Float[Array, " D"]

    def __init__(self, loc: ArrayLike, scale: ArrayLike = 1.0):
        check_real_dtype("loc", loc)
        check_real_dtype("scale", scale)
        loc = jnp.asarray(loc, dtype=jnp.result_type(loc, float))
        scale = jnp.asarray(scale, dtype=loc.dtype)
        lengths = {a.shape[0] for a in (loc, scale) if a.ndim == 1}
        if loc.ndim > 1 or scale.ndim > 1 or len(lengths) > 1:
            raise ValueError(
                f"loc and scale must be scalars or vectors of one length D, got shapes {loc.shape} and {scale.shape}"
            )
        shape = (lengths.pop() if lengths else 1,)
        loc = checked_finite("loc", loc)
        scale = check_value("scale", scale, _not_positive, "be finite and positive")
        self.loc = jnp.broadcast_to(loc, shape)
        self.log_scale = jnp.broadcast_to(jnp.log(scale), shape)

    def transform_and_log_det(self, x):
        check_vector("x", x, self.loc.shape[0])
        return self.loc + jnp.exp(self.log_scale) * x, jnp.sum(self.log_scale)

    def inverse_and_log_det(self, y):
        check_vector("y", y, self.loc.shape[0])
        return (y - self.loc) * jnp.exp(-self.log_scale), -jnp.sum(self.log_scale)
