r"""A dense preconditioner for the Hamiltonian MixFlow map: the whitening ``x = μ + L y``.

Running the map's dynamics on the whitened position ``y = L⁻¹(x − μ)`` with target
``π_y(y) ∝ π(μ + L y)`` and mapping back is, written on ``x``, the leapfrog with the
dense inverse mass matrix ``M⁻¹ = L Lᵀ``::

    ρ ← ρ + ε/2 ⊙ Lᵀ∇log π(x);   x ← x − L (ε ⊙ ∇log m(ρ));   ρ ← ρ + ε/2 ⊙ Lᵀ∇log π(x)

(each update is a shear, so volume is preserved and the inverse is the same with
``−ε``); the refresh rotation uses the whitened position, ``ζ(y, u)``. The whole map is
then conjugate to the map on ``y`` by the affine ``y ↦ μ + L y``: with ``L Lᵀ = Σ`` a
Gaussian ``N(μ, Σ)`` behaves exactly as ``N(0, I)`` does with ``L = I`` (same mixing,
same step size), however ill-conditioned ``Σ`` is. ``ε`` is in whitened units (0.3
means 0.3 of the whitened posterior's scale when ``Σ`` is the posterior covariance).

``μ`` and ``L`` are held fixed (gradients are stopped), so :meth:`MixFlow.fit` tunes
only the step size and the reference. Cost per leapfrog step: two ``d × d`` matrix-vector
products; per refresh one triangular solve.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, Float

from ._checks import check_loc_scale_tril


class Preconditioner(eqx.Module):
    r"""The affine whitening ``x = loc + scale_tril · y`` (``scale_tril`` lower triangular, ``Σ = L Lᵀ``)."""

    loc: Float[Array, " d"]
    scale_tril: Float[Array, "d d"]

    def __init__(self, loc, scale_tril):
        self.loc, self.scale_tril = check_loc_scale_tril("loc", loc, scale_tril)

    @classmethod
    def from_reference(cls, reference) -> "Preconditioner":
        """The reference's own whitening: ``(mean, scale_tril)`` of a full-rank Gaussian, ``(mean, diag σ)`` of a mean-field one."""
        from .reference import FullRankGaussianReference, GaussianReference

        if isinstance(reference, FullRankGaussianReference):
            return cls(reference.mean, reference.scale_tril)
        if isinstance(reference, GaussianReference):
            return cls(reference.mean, jnp.diag(reference.scale))
        raise TypeError(
            "preconditioner='reference' needs a GaussianReference or FullRankGaussianReference, "
            f"got {type(reference).__name__}; pass a Preconditioner(loc, scale_tril) instead"
        )

    def _fixed(self):
        return lax.stop_gradient(self.loc), jnp.tril(lax.stop_gradient(self.scale_tril))

    def whiten(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """``y = L⁻¹(x − μ)``."""
        loc, chol = self._fixed()
        return solve_triangular(chol, x - loc, lower=True)

    def scale(self, v: Float[Array, " d"]) -> Float[Array, " d"]:
        """``L v``: a whitened displacement on ``x``."""
        return self._fixed()[1] @ v

    def scale_transpose(self, g: Float[Array, " d"]) -> Float[Array, " d"]:
        """``Lᵀ g``: a gradient on ``x`` as a gradient on ``y``."""
        return self._fixed()[1].T @ g
