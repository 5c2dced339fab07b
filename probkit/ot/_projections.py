r"""Random projection directions :math:`\theta_1, \dots, \theta_L \in S^{d-1}`.

Every sampler here gives directions whose *marginal* law is uniform on the
sphere, so a Monte Carlo average over them is unbiased for
:math:`\mathbb{E}_{\theta \sim \mathrm{Unif}(S^{d-1})}[f(\theta)]`; they differ in
how the :math:`L` directions are coupled (independent, orthogonal blocks, or a
randomly shifted low-discrepancy sequence).
"""

from __future__ import annotations

import abc
import functools
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def _normalize(z: Float[Array, "L d"]) -> Float[Array, "L d"]:
    return z / jnp.linalg.norm(z, axis=-1, keepdims=True)


class AbstractDirections(eqx.Module):
    """A sampler of ``n`` unit directions in ``R^dim``, each marginally uniform on the sphere."""

    @abc.abstractmethod
    def __call__(
        self, key: PRNGKeyArray, n: int, dim: int, dtype=jnp.float32
    ) -> Float[Array, "n dim"]:
        """Return ``(n, dim)`` unit vectors (rows)."""


class UniformDirections(AbstractDirections):
    r"""Independent :math:`\theta_l = z_l / \lVert z_l \rVert`, :math:`z_l \sim N(0, I_d)`."""

    def __call__(self, key, n, dim, dtype=jnp.float32):
        return _normalize(jax.random.normal(key, (n, dim), dtype))


class OrthogonalDirections(AbstractDirections):
    r"""Blocks of :math:`k = \min(d, n)` mutually orthogonal directions.

    Each block is the ``Q`` factor (sign-corrected, hence Haar distributed) of a
    ``(d, k)`` Gaussian matrix; blocks are independent. Each row is uniform on the
    sphere, and within a block :math:`\sum_l \theta_l \theta_l^\top` is a projector,
    which removes the variance of quadratic integrands when ``n`` is a multiple of ``d``.
    """

    def __call__(self, key, n, dim, dtype=jnp.float32):
        k = min(dim, n)
        n_blocks = -(-n // k)

        def block(bkey):
            z = jax.random.normal(bkey, (dim, k), dtype)
            q, r = jnp.linalg.qr(z)
            sign = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(dtype)
            return (q * sign).T

        blocks = jax.vmap(block)(jax.random.split(key, n_blocks))
        return blocks.reshape(n_blocks * k, dim)[:n]


@functools.lru_cache(maxsize=32)
def _sobol_points(n: int, dim: int) -> np.ndarray:
    from scipy.stats import qmc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balance warning when n is not a power of 2
        return qmc.Sobol(dim, scramble=False).random(n)


class QMCDirections(AbstractDirections):
    r"""Randomised quasi-Monte Carlo directions.

    :math:`u_l` are the first ``n`` points of the (unscrambled) Sobol sequence in
    :math:`[0, 1)^d`; a Cranley–Patterson random shift :math:`v \sim U[0,1)^d` makes
    each :math:`(u_l + v) \bmod 1` uniform on the cube, then
    :math:`\theta_l = \Phi^{-1}(\cdot)/\lVert\Phi^{-1}(\cdot)\rVert` is uniform on the
    sphere. Requires ``dim <= 21201`` (scipy's Sobol table).
    """

    def __call__(self, key, n, dim, dtype=jnp.float32):
        if dim > 21201:
            raise ValueError(f"projections='qmc' supports dimensions <= 21201, got {dim}")
        u = jnp.asarray(_sobol_points(n, dim), dtype)
        shift = jax.random.uniform(key, (dim,), dtype)
        u = jnp.mod(u + shift, 1.0)
        tiny = jnp.finfo(dtype).eps
        u = jnp.clip(u, tiny, 1.0 - tiny)
        return _normalize(jax.scipy.special.ndtri(u))


DIRECTIONS: dict[str, AbstractDirections] = {
    "uniform": UniformDirections(),
    "orthogonal": OrthogonalDirections(),
    "qmc": QMCDirections(),
}
