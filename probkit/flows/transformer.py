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


class ChainTransformer(AbstractTransformer):
    r"""Composition :math:`\tau = \tau_K \circ \dots \circ \tau_1` (``transformers[0]`` first).

    The parameter vector is the concatenation of the parts' parameters (in order);
    log-derivatives add. E.g. ``ChainTransformer((SplineTransformer(), AffineTransformer()))``
    is a bounded spline followed by a conditional shift and scale, so a layer can both
    reshape and move/rescale a coordinate by any amount.
    """

    transformers: tuple[AbstractTransformer, ...]

    def __init__(self, transformers):
        transformers = tuple(transformers)
        if not transformers or not all(isinstance(t, AbstractTransformer) for t in transformers):
            raise TypeError("transformers must be a non-empty sequence of AbstractTransformer")
        self.transformers = transformers

    @property
    def num_params(self) -> int:
        return sum(t.num_params for t in self.transformers)

    def _split(self, params):
        out, i = [], 0
        for t in self.transformers:
            out.append(params[i : i + t.num_params])
            i += t.num_params
        return out

    def transform_and_log_det(self, x, params):
        total = jnp.zeros((), jnp.result_type(x, params))
        for t, p in zip(self.transformers, self._split(params)):
            x, ld = t.transform_and_log_det(x, p)
            total = total + ld
        return x, total

    def inverse_and_log_det(self, y, params):
        total = jnp.zeros((), jnp.result_type(y, params))
        for t, p in reversed(list(zip(self.transformers, self._split(params)))):
            y, ld = t.inverse_and_log_det(y, p)
            total = total + ld
        return y, total
