"""The bijection interface."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Float


class AbstractBijection(eqx.Module):
    r"""An invertible map :math:`f: \mathbb{R}^D \to \mathbb{R}^D` acting on one vector.

    Subclasses define :meth:`transform_and_log_det` (``x ↦ (f(x), log|det J_f(x)|)``)
    and, where the inverse is available in closed form or by a stable root solve,
    :meth:`inverse_and_log_det` (``y ↦ (f⁻¹(y), log|det J_{f⁻¹}(y)|)``).
    Inputs are single vectors of shape ``(D,)``; batch with :func:`jax.vmap`.
    """

    @abc.abstractmethod
    def transform_and_log_det(self, x: Float[Array, " D"]) -> tuple[Float[Array, " D"], Float[Array, ""]]:
        """Return ``(f(x), log|det ∂f/∂x|)``."""

    @abc.abstractmethod
    def inverse_and_log_det(self, y: Float[Array, " D"]) -> tuple[Float[Array, " D"], Float[Array, ""]]:
        """Return ``(f⁻¹(y), log|det ∂f⁻¹/∂y|)``."""

    def transform(self, x: Float[Array, " D"]) -> Float[Array, " D"]:
        """Return ``f(x)``."""
        return self.transform_and_log_det(x)[0]

    def inverse(self, y: Float[Array, " D"]) -> Float[Array, " D"]:
        """Return ``f⁻¹(y)``."""
        return self.inverse_and_log_det(y)[0]
