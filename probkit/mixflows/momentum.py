r"""Momentum distributions ``m`` for the Hamiltonian MixFlow map.

Each momentum is a product of independent, identical one-dimensional
distributions. The map needs, per coordinate, the log density ``log m(ρ)``, the
gradient of the log density (the leapfrog position update is
``x ← x − ε ∇log m(ρ)``), the CDF ``F`` and its inverse ``F⁻¹`` (the
deterministic refresh ``ρ ← F⁻¹((F(ρ) + ζ) mod 1)``).
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri
from jaxtyping import Array, Float, PRNGKeyArray


def _clip_unit(p: Array) -> Array:
    """Clip a probability into the open interval (0, 1) so that ``F⁻¹`` stays finite."""
    finfo = jnp.finfo(p.dtype)
    return jnp.clip(p, finfo.tiny, 1.0 - finfo.epsneg)


class AbstractMomentum(eqx.Module):
    """A product of i.i.d. one-dimensional momentum distributions (elementwise methods)."""

    @abc.abstractmethod
    def log_prob(self, rho: Float[Array, "..."]) -> Float[Array, "..."]:
        """Elementwise ``log m(ρ_i)``."""

    @abc.abstractmethod
    def grad_log_prob(self, rho: Float[Array, "..."]) -> Float[Array, "..."]:
        """Elementwise ``d log m(ρ_i) / dρ_i`` (minus the kinetic-energy gradient)."""

    @abc.abstractmethod
    def cdf(self, rho: Float[Array, "..."]) -> Float[Array, "..."]:
        """Elementwise CDF ``F(ρ_i)``."""

    @abc.abstractmethod
    def icdf(self, p: Float[Array, "..."]) -> Float[Array, "..."]:
        """Elementwise inverse CDF ``F⁻¹(p_i)``, ``p_i ∈ (0, 1)``."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...], dtype=None) -> Array:
        """Draw i.i.d. momenta of the given shape."""


class LaplaceMomentum(AbstractMomentum):
    r"""Standard Laplace momentum ``m(ρ) = ½ e^{−|ρ|}`` (the paper's default).

    ``F(ρ) = ½ e^{ρ}`` for ``ρ < 0`` and ``1 − ½ e^{−ρ}`` otherwise;
    ``F⁻¹(p) = log 2p`` for ``p < ½`` and ``−log 2(1 − p)`` otherwise (``1 − p`` is
    exact for ``p ≥ ½``). The kinetic gradient is ``sign(ρ)``, so the position
    moves by exactly ``±ε`` per leapfrog step.
    """

    def log_prob(self, rho):
        return -jnp.abs(rho) - math.log(2.0)

    def grad_log_prob(self, rho):
        return -jnp.sign(rho)

    def cdf(self, rho):
        neg = rho < 0
        tail = 0.5 * jnp.exp(-jnp.abs(rho))
        return jnp.where(neg, tail, 1.0 - tail)

    def icdf(self, p):
        p = _clip_unit(p)
        low = p < 0.5
        # 1 - p is exact for p >= 1/2 (Sterbenz); keep both branches finite for grads
        lo = jnp.log(2.0 * jnp.where(low, p, 0.25))
        hi = -jnp.log(2.0 * jnp.where(low, 0.25, 1.0 - p))
        return jnp.where(low, lo, hi)

    def sample(self, key, shape, dtype=None):
        return jax.random.laplace(key, shape, dtype=dtype or jnp.result_type(float))


class GaussianMomentum(AbstractMomentum):
    r"""Standard Gaussian momentum ``m(ρ) = N(ρ; 0, 1)`` with ``F = Φ`` (``ndtr``/``ndtri``).

    The upper tail is evaluated by symmetry, ``Φ(ρ) = 1 − Φ(−ρ)``, so that
    ``F⁻¹`` reads ``−Φ⁻¹(1 − p)`` for ``p ≥ ½`` where ``1 − p`` is exact.
    """

    def log_prob(self, rho):
        return -0.5 * rho**2 - 0.5 * math.log(2.0 * math.pi)

    def grad_log_prob(self, rho):
        return -rho

    def cdf(self, rho):
        return jnp.where(rho < 0, ndtr(rho), 1.0 - ndtr(-rho))

    def icdf(self, p):
        p = _clip_unit(p)
        low = p < 0.5
        lo = ndtri(jnp.where(low, p, 0.25))
        hi = -ndtri(jnp.where(low, 0.25, 1.0 - p))
        return jnp.where(low, lo, hi)

    def sample(self, key, shape, dtype=None):
        return jax.random.normal(key, shape, dtype=dtype or jnp.result_type(float))


MOMENTA: dict[str, type[AbstractMomentum]] = {
    "laplace": LaplaceMomentum,
    "gaussian": GaussianMomentum,
}


def as_momentum(momentum) -> AbstractMomentum:
    """``momentum`` as an :class:`AbstractMomentum`: an instance, or one of the names in ``MOMENTA``."""
    if isinstance(momentum, AbstractMomentum):
        return momentum
    if not isinstance(momentum, str):
        raise TypeError(f"momentum must be a string or an AbstractMomentum, got {type(momentum).__name__}")
    if momentum not in MOMENTA:
        raise ValueError(f"unknown momentum {momentum!r}; expected one of {sorted(MOMENTA)} or an AbstractMomentum")
    return MOMENTA[momentum]()
