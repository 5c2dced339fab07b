"""Elementwise parametrised monotone maps used inside coupling and autoregressive layers."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._utils import _SP1


class AbstractTransformer(eqx.Module):
    """A scalar bijection ``τ(x; θ)`` with ``θ`` of length :attr:`num_params`.

    All-zero parameters give the identity, so conditioners with a zeroed last
    layer start at the identity map.
    """

    @property
    @abc.abstractmethod
    def num_params(self) -> int:
        """Length of the parameter vector ``θ``."""

    @abc.abstractmethod
    def transform_and_log_det(self, x: Float[Array, ""], params: Float[Array, " P"]):
        """Return ``(τ(x; θ), log|∂τ/∂x|)`` for a scalar ``x``."""

    @abc.abstractmethod
    def inverse_and_log_det(self, y: Float[Array, ""], params: Float[Array, " P"]):
        """Return ``(τ⁻¹(y; θ), log|∂τ⁻¹/∂y|)`` for a scalar ``y``."""


class AffineTransformer(AbstractTransformer):
    r"""``τ(x; m, s) = m + σ x`` with :math:`\sigma = \mathrm{softplus}(s + \log(e-1)) + \sigma_{min}`."""

    min_scale: float = eqx.field(static=True, default=1e-4)

    @property
    def num_params(self) -> int:
        return 2

    def _scale(self, params):
        return jax.nn.softplus(params[1] + _SP1) * (1.0 - self.min_scale) + self.min_scale

    def transform_and_log_det(self, x, params):
        scale = self._scale(params)
        return params[0] + scale * x, jnp.log(scale)

    def inverse_and_log_det(self, y, params):
        scale = self._scale(params)
        return (y - params[0]) / scale, -jnp.log(scale)
