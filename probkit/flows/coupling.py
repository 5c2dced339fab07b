"""Coupling layers (Dinh et al., RealNVP)."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ._base import AbstractBijection
from ._utils import check_dim, check_vector, mlp
from .transformer import AbstractTransformer, AffineTransformer


class Coupling(AbstractBijection):
    r"""Coupling layer: :math:`y_{1:d} = x_{1:d}`, :math:`y_{d+1:D} = \tau(x_{d+1:D}; \theta(x_{1:d}))`.

    ``θ`` is an MLP conditioner (last layer zero, so the layer starts as the identity);
    :math:`\log|\det J| = \sum_{i>d} \log|\partial\tau/\partial x_i|` and the inverse is
    elementwise given the untouched half.
    """

    conditioner: eqx.nn.MLP
    transformer: AbstractTransformer
    split: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        dim: int,
        transformer: AbstractTransformer | None = None,
        *,
        width: int = 32,
        depth: int = 2,
        activation: Callable = jax.nn.tanh,
    ):
        self.dim = check_dim("dim", dim, minimum=2)
        self.split = self.dim // 2
        self.transformer = AffineTransformer() if transformer is None else transformer
        n_out = (self.dim - self.split) * self.transformer.num_params
        self.conditioner = mlp(key, self.split, n_out, width, depth, activation)

    def _params(self, x_cond):
        return self.conditioner(x_cond).reshape(self.dim - self.split, self.transformer.num_params)

    def transform_and_log_det(self, x):
        check_vector("x", x, self.dim)
        x1, x2 = x[: self.split], x[self.split :]
        y2, ld = jax.vmap(self.transformer.transform_and_log_det)(x2, self._params(x1))
        return jnp.concatenate([x1, y2]), jnp.sum(ld)

    def inverse_and_log_det(self, y):
        check_vector("y", y, self.dim)
        y1, y2 = y[: self.split], y[self.split :]
        x2, ld = jax.vmap(self.transformer.inverse_and_log_det)(y2, self._params(y1))
        return jnp.concatenate([y1, x2]), jnp.sum(ld)


class AffineCoupling(Coupling):
    """RealNVP affine coupling: :class:`Coupling` with an :class:`AffineTransformer`."""

    def __init__(self, key: PRNGKeyArray, dim: int, *, width: int = 32, depth: int = 2, **kwargs):
        super().__init__(key, dim, AffineTransformer(), width=width, depth=depth, **kwargs)
