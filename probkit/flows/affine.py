"""Elementwise affine bijection."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_positive
from ._base import AbstractBijection


class Affine(AbstractBijection):
    r"""Elementwise affine map :math:`y = \mu + \sigma \odot x` with :math:`\sigma = e^{s}`.

    :math:`\log|\det J| = \sum_i s_i`. Stored as ``(loc, log_scale)`` so that any
    unconstrained parameters give an invertible map.
    """

    loc: Float[Array, " D"]
    log_scale: Float[Array, " D"]

    def __init__(self, loc: ArrayLike, scale: ArrayLike = 1.0):
        check_positive("scale", scale)
        loc = jnp.atleast_1d(jnp.asarray(loc, dtype=jnp.result_type(loc, float)))
        self.loc = loc
        self.log_scale = jnp.broadcast_to(jnp.log(jnp.asarray(scale, dtype=loc.dtype)), loc.shape)

    def transform_and_log_det(self, x):
        return self.loc + jnp.exp(self.log_scale) * x, jnp.sum(self.log_scale)

    def inverse_and_log_det(self, y):
        return (y - self.loc) * jnp.exp(-self.log_scale), -jnp.sum(self.log_scale)
