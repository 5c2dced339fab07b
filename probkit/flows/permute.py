"""Fixed permutation of coordinates."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Int

from ._base import AbstractBijection
from ._utils import check_vector


class Permute(AbstractBijection):
    """``y = x[permutation]``; volume preserving (``log|det J| = 0``).

    Inputs must have length ``D = len(permutation)`` (a gather would clamp other lengths' indices).
    """

    permutation: Int[Array, " D"]
    inverse_permutation: Int[Array, " D"]

    def __init__(self, permutation: ArrayLike):
        perm = np.asarray(permutation)
        if perm.ndim != 1 or not np.array_equal(np.sort(perm), np.arange(perm.size)):
            raise ValueError(f"permutation must be a permutation of 0..D-1, got {permutation!r}")
        self.permutation = jnp.asarray(perm, dtype=jnp.int32)
        self.inverse_permutation = jnp.asarray(np.argsort(perm), dtype=jnp.int32)

    def transform_and_log_det(self, x):
        check_vector("x", x, self.permutation.shape[0])
        return x[self.permutation], jnp.zeros((), x.dtype)

    def inverse_and_log_det(self, y):
        check_vector("y", y, self.permutation.shape[0])
        return y[self.inverse_permutation], jnp.zeros((), y.dtype)
