r"""A Nyström dictionary: selected points with inclusion probabilities and multiplicities.

Arrays have a fixed capacity ``m`` (static shapes under ``jit``); ``mask`` marks the
slots in use. Slot ``i`` holds data index ``indices[i]``, its inclusion probability
:math:`p_i`, its multiplicity :math:`q_i` out of :math:`\bar q` copies and the RLS
estimate used at its last update. Its Nyström weight is
:math:`w_i = q_i / (p_i \bar q)`, the unbiased reweighting of

.. math:: \tilde C = \sum_{i \in S} w_i \varphi(x_i)\varphi(x_i)^\top \approx \sum_{i=1}^n \varphi(x_i)\varphi(x_i)^\top.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int


class Dictionary(eqx.Module):
    """Selected indices, points, probabilities, multiplicities and weights (see module doc)."""

    indices: Int[Array, " m"]
    points: Float[Array, "m d"]
    probs: Float[Array, " m"]
    counts: Int[Array, " m"]
    rls: Float[Array, " m"]
    mask: Bool[Array, " m"]
    qbar: int = eqx.field(static=True)

    @property
    def weights(self) -> Float[Array, " m"]:
        r"""Nyström weights :math:`w_i = q_i / (p_i \bar q)` (zero in unused slots)."""
        p = jnp.where(self.mask, self.probs, 1.0)
        return jnp.where(self.mask, self.counts.astype(p.dtype) / (p * self.qbar), 0.0)

    @property
    def size(self) -> Int[Array, "*batch"]:
        """Number of distinct points held (slots in use)."""
        return jnp.sum(self.mask, axis=-1)

    @property
    def capacity(self) -> int:
        """Number of slots (static)."""
        return self.mask.shape[-1]

    def compact(self) -> Dictionary:
        """Drop the unused slots (outside ``jit``: the result's shape depends on ``mask``)."""
        keep = np.flatnonzero(np.asarray(self.mask))
        return Dictionary(
            indices=self.indices[keep],
            points=self.points[keep],
            probs=self.probs[keep],
            counts=self.counts[keep],
            rls=self.rls[keep],
            mask=self.mask[keep],
            qbar=self.qbar,
        )
