"""The prior interface: anything that draws batches of regression datasets."""

from __future__ import annotations

import abc
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_positive_int

XSampler = Callable[[PRNGKeyArray, int], Float[Array, "n x_dim"]]


class AbstractPrior(eqx.Module):
    """A prior over supervised regression tasks.

    ``sample(key, batch_size, n_points)`` returns ``x`` of shape
    ``(batch_size, n_points, x_dim)`` and ``y`` of shape ``(batch_size, n_points)``:
    ``batch_size`` independent datasets, each a function drawn from the prior and
    evaluated (with noise) at ``n_points`` inputs.
    """

    x_dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def sample_one(self, key: PRNGKeyArray, n_points: int) -> tuple[Array, Array]:
        """One dataset ``(x (n_points, x_dim), y (n_points,))``."""

    def sample(
        self, key: PRNGKeyArray, batch_size: int, n_points: int
    ) -> tuple[Float[Array, "batch n x_dim"], Float[Array, "batch n"]]:
        """``batch_size`` independent datasets, vectorised with ``vmap``."""
        batch_size = check_positive_int("batch_size", batch_size)
        n_points = check_positive_int("n_points", n_points)
        keys = jax.random.split(key, batch_size)
        return jax.vmap(lambda k: self.sample_one(k, n_points))(keys)


class UniformX(eqx.Module):
    """x ~ U[low, high]^x_dim, the default input sampler."""

    x_dim: int = eqx.field(static=True, default=1)
    low: float = eqx.field(static=True, default=0.0)
    high: float = eqx.field(static=True, default=1.0)

    def __call__(self, key: PRNGKeyArray, n_points: int) -> Float[Array, "n x_dim"]:
        return jax.random.uniform(
            key, (n_points, self.x_dim), minval=self.low, maxval=self.high, dtype=jnp.result_type(float)
        )


def resolve_x_sampler(x_sampler, x_dim: int) -> tuple[Callable, int]:
    """``(sampler, x_dim)``: the default U[0,1]^x_dim or the user's sampler (its x_dim probed)."""
    x_dim = check_positive_int("x_dim", x_dim)
    if x_sampler is None:
        return UniformX(x_dim), x_dim
    if not callable(x_sampler):
        raise TypeError(f"x_sampler must be a callable (key, n_points) -> x, got {x_sampler!r}")
    shape = jax.eval_shape(lambda k: x_sampler(k, 2), jax.random.PRNGKey(0)).shape
    if len(shape) != 2 or shape[0] != 2:
        raise ValueError(f"x_sampler(key, n) must return shape (n, x_dim), got {shape} for n=2")
    return x_sampler, int(shape[1])
