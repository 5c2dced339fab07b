"""Composition of bijections: a heterogeneous :class:`Chain` and a scanned :class:`Scan` stack."""

from __future__ import annotations

from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import PRNGKeyArray

from .._validate import check_positive_int
from ._base import AbstractBijection


class Chain(AbstractBijection):
    r"""``f = f_K ∘ … ∘ f_1`` (``bijections[0]`` applied first); log-dets add."""

    bijections: tuple[AbstractBijection, ...]

    def __init__(self, bijections: Sequence[AbstractBijection]):
        bijections = tuple(bijections)
        if not bijections or not all(isinstance(b, AbstractBijection) for b in bijections):
            raise TypeError("bijections must be a non-empty sequence of AbstractBijection")
        self.bijections = bijections

    def transform_and_log_det(self, x):
        total = jnp.zeros((), x.dtype)
        for b in self.bijections:
            x, ld = b.transform_and_log_det(x)
            total = total + ld
        return x, total

    def inverse_and_log_det(self, y):
        total = jnp.zeros((), y.dtype)
        for b in reversed(self.bijections):
            y, ld = b.inverse_and_log_det(y)
            total = total + ld
        return y, total


class Scan(AbstractBijection):
    """``n`` identical-structure layers stored stacked (leading axis) and applied with ``lax.scan``.

    Build with :meth:`from_fn`, which vmaps a layer constructor over keys
    (``eqx.filter_vmap``). Each loop iteration applies ``unroll`` layers (default 4): XLA's
    per-iteration cost (slicing the stacked parameters, stacking residuals for the
    gradient) is a noticeable share of a small layer's work — four affine MAF layers of
    width 32 train 10-25 % faster unrolled — while the compiled program stops growing
    beyond ``unroll`` layers, so compile time stays flat in the depth.
    """

    layers: AbstractBijection
    unroll: int = eqx.field(static=True, default=4)

    @classmethod
    def from_fn(
        cls, key: PRNGKeyArray, n_layers: int, make: Callable[[PRNGKeyArray], AbstractBijection], *, unroll: int = 4
    ) -> "Scan":
        """Stack ``make(k)`` for ``n_layers`` independent keys; ``unroll`` layers per loop iteration."""
        n_layers = check_positive_int("n_layers", n_layers)
        unroll = check_positive_int("unroll", unroll)
        return cls(eqx.filter_jit(eqx.filter_vmap(make))(jax.random.split(key, n_layers)), unroll)

    def _run(self, x, inverse: bool):
        params, static = eqx.partition(self.layers, eqx.is_array)
        dtype = jnp.result_type(x, *jax.tree.leaves(eqx.filter(params, eqx.is_inexact_array)))
        x = x.astype(dtype)

        def step(carry, p):
            v, total = carry
            layer = eqx.combine(p, static)
            v, ld = layer.inverse_and_log_det(v) if inverse else layer.transform_and_log_det(v)
            return (v.astype(dtype), total + ld.astype(dtype)), None

        (x, total), _ = lax.scan(step, (x, jnp.zeros((), dtype)), params, reverse=inverse, unroll=self.unroll)
        return x, total

    def transform_and_log_det(self, x):
        return self._run(x, inverse=False)

    def inverse_and_log_det(self, y):
        return self._run(y, inverse=True)
