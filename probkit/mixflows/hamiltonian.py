r"""The MixFlow map ``T`` on the augmented space ``(x, ρ, u)`` (Xu, Chen, Campbell 2023).

One step of ``T`` is

1. ``n_leapfrog`` *uncorrected* leapfrog steps with per-coordinate step size ``ε``::

       ρ ← ρ + ε/2 ∇log π(x);   x ← x − ε ∇log m(ρ);   ρ ← ρ + ε/2 ∇log π(x)

   (volume preserving, inverse = the same with ``−ε``);
2. the deterministic momentum refresh, per coordinate,
   ``ρ_i ← F⁻¹((F(ρ_i) + ζ(x_i, u)) mod 1)`` with
   ``ζ(x, u) = (sin(2x + u) + 1)/2``;
3. the pseudo-time shift ``u ← (u + ξ) mod 1`` with ``ξ = π/16``.

Why any fixed measurable ``ζ`` with values in ``[0, 1]`` is valid: for fixed
``(x, u)`` the refresh maps ``ρ_i ~ m`` to ``F(ρ_i) ~ Unif[0, 1)``, rotates the
circle ``[0, 1)`` by ``ζ`` (which preserves the uniform law) and maps back
through ``F⁻¹``, so it preserves ``m`` conditionally on ``(x, u)`` and hence
``π ⊗ m ⊗ Unif`` jointly; its inverse subtracts ``ζ`` instead. Making ``ζ``
depend on ``x`` and ``u`` couples the coordinates and, with the irrational shift
of ``u``, is what makes the map mix. Its Jacobian is triangular with diagonal
``∂ρ'_i/∂ρ_i = m(ρ_i)/m(ρ'_i)``, so ``log|det J| = Σ_i log m(ρ_i) − log m(ρ'_i)``;
the leapfrog and the shift have unit Jacobian.

With a :class:`~probkit.mixflows.Preconditioner` ``x = μ + L y`` the leapfrog uses the
dense inverse mass matrix ``L Lᵀ`` and the refresh ``ζ(L⁻¹(x − μ), u)``: the map is the
unpreconditioned map on the whitened position, conjugated by ``y ↦ μ + L y`` (see
:mod:`probkit.mixflows.preconditioner`); ``ε`` is then in whitened units.
"""

from __future__ import annotations

import math
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from .momentum import AbstractMomentum
from .preconditioner import Preconditioner

State = tuple[Float[Array, " d"], Float[Array, " d"], Float[Array, ""]]


def zeta(x: Float[Array, " d"], u: Float[Array, ""]) -> Float[Array, " d"]:
    r"""The refresh rotation ``ζ(x, u) = (sin(2x + u) + 1)/2 ∈ [0, 1]``."""
    return 0.5 * (jnp.sin(2.0 * x + u) + 1.0)


class HamiltonianMap(eqx.Module):
    r"""The invertible, volume-tracked MixFlow step ``T`` (see the module docstring).

    ``log_step_size`` holds ``log ε`` per coordinate (shape ``(d,)``) so that it can
    be tuned unconstrained; ``logdensity_fn`` is the (unnormalised) target
    ``log π`` on ``R^d``; ``preconditioner`` (default none: the identity) whitens the
    dynamics with a dense mass matrix.
    """

    logdensity_fn: Callable = eqx.field(static=True)
    momentum: AbstractMomentum
    log_step_size: Float[Array, " d"]
    n_leapfrog: int = eqx.field(static=True)
    shift: float = eqx.field(static=True, default=math.pi / 16)
    preconditioner: Preconditioner | None = None

    @property
    def step_size(self) -> Float[Array, " d"]:
        return jnp.exp(self.log_step_size)

    def leapfrog(self, x: Float[Array, " d"], rho: Float[Array, " d"], eps: Float[Array, " d"]):
        """``n_leapfrog`` leapfrog steps with (signed) step size ``eps``; ``n_leapfrog + 1`` gradients."""
        grad_fn = jax.grad(self.logdensity_fn)
        pre = self.preconditioner
        force = (lambda g: g) if pre is None else pre.scale_transpose  # noqa: E731
        velocity = (lambda v: v) if pre is None else pre.scale  # noqa: E731

        def body(carry, _):
            x, rho, g = carry
            rho = rho + 0.5 * eps * g
            x = x - velocity(eps * self.momentum.grad_log_prob(rho))
            g = force(grad_fn(x))
            rho = rho + 0.5 * eps * g
            return (x, rho, g), None

        (x, rho, _), _ = lax.scan(body, (x, rho, force(grad_fn(x))), None, length=self.n_leapfrog)
        return x, rho

    def refresh(self, x, rho, u, *, inverse: bool = False):
        """Deterministic momentum refresh (or its inverse) and its ``log|det J|``."""
        z = zeta(x if self.preconditioner is None else self.preconditioner.whiten(x), u)
        p = self.momentum.cdf(rho)
        p_new = jnp.mod(p - z if inverse else p + z, 1.0)
        rho_new = self.momentum.icdf(p_new)
        m = self.momentum
        logdet = jnp.sum(m.log_prob(rho) - m.log_prob(rho_new))
        return rho_new, logdet

    def forward(self, state: State) -> tuple[State, Float[Array, ""]]:
        """``T(x, ρ, u)`` and ``log|det J_T|``."""
        x, rho, u = state
        x, rho = self.leapfrog(x, rho, self.step_size)
        rho, logdet = self.refresh(x, rho, u)
        u = jnp.mod(u + self.shift, 1.0)
        return (x, rho, u), logdet

    def inverse(self, state: State) -> tuple[State, Float[Array, ""]]:
        """``T⁻¹(x, ρ, u)`` and ``log|det J_{T⁻¹}|``: undo the shift, the refresh, the leapfrog."""
        x, rho, u = state
        u = jnp.mod(u - self.shift, 1.0)
        rho, logdet = self.refresh(x, rho, u, inverse=True)
        x, rho = self.leapfrog(x, rho, -self.step_size)
        return (x, rho, u), logdet

    def iterate(self, state: State, n_steps: int, *, inverse: bool = False):
        """Apply ``T`` (or ``T⁻¹``) ``n_steps`` times; returns the final state and total log-det."""
        step = self.inverse if inverse else self.forward

        def body(carry, _):
            s, acc = carry
            s, ld = step(s)
            return (s, acc + ld), None

        zero = jnp.zeros((), state[0].dtype)
        (state, acc), _ = lax.scan(body, (state, zero), None, length=n_steps)
        return state, acc

    def trajectory(self, state: State, n_steps: int, *, inverse: bool = False):
        """The states ``T^k z`` (or ``T^{−k} z``), ``k = 1..n_steps``, stacked, and each step's log-det."""
        method = self.inverse if inverse else self.forward
        step = jax.checkpoint(lambda s: method(s))  # recompute leapfrogs in reverse mode

        def body(s, _):
            s, ld = step(s)
            return s, (s, ld)

        _, (states, logdets) = lax.scan(body, state, None, length=n_steps)
        return states, logdets
