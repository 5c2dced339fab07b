"""Abstract base class for positive-definite kernels."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class AbstractKernel(eqx.Module):
    r"""A positive-definite kernel :math:`k(x, y)` on :math:`\mathbb{R}^d`.

    Subclasses define :meth:`gram` (the cross-gram of two point sets); ``__call__``
    and :meth:`diag` follow from it but may be overridden.
    """

    @abc.abstractmethod
    def gram(
        self, X: Float[Array, "n d"], Y: Float[Array, "m d"] | None = None
    ) -> Float[Array, "n m"]:
        """Cross-gram matrix ``K[i, j] = k(X[i], Y[j])`` (``Y = X`` when omitted)."""

    def __call__(self, x: Float[Array, " d"], y: Float[Array, " d"]) -> Float[Array, ""]:
        """The kernel value ``k(x, y)`` of two points."""
        return self.gram(jnp.atleast_1d(x)[None], jnp.atleast_1d(y)[None])[0, 0]

    def diag(self, X: Float[Array, "n d"]) -> Float[Array, " n"]:
        """The diagonal ``k(X[i], X[i])`` without forming the gram matrix."""
        return jax.vmap(self)(X, X)

    def check_input(self, name: str, X: Array) -> None:
        """Raise ``ValueError`` naming ``name`` if ``X`` does not fit this kernel."""
        del name, X
