r"""Toy data sets as samplers ``sample(key, n) -> (n, d)`` (float32, or float64 under x64).

2-D: :func:`checkerboard`, :func:`eight_gaussians`, :func:`two_moons`, :func:`spirals`,
:func:`rings` — all roughly within :math:`[-3, 3]^2` with unit-order spread.
64-D: :func:`digits`, the 8×8 handwritten digits of scikit-learn (1797 images, needs
scikit-learn), dequantised and scaled to :math:`[-1, 1]`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_positive_int

__all__ = ["checkerboard", "eight_gaussians", "two_moons", "spirals", "rings", "digits", "TWO_D"]


def _float():
    return jnp.result_type(float)


def checkerboard(key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
    r"""Uniform on the 8 dark squares of a 4×4 checkerboard on :math:`[-2, 2]^2`."""
    n = check_positive_int("n", n)
    k1, k2, k3 = jax.random.split(key, 3)
    x1 = jax.random.uniform(k1, (n,), _float(), -2.0, 2.0)
    x2 = jax.random.uniform(k2, (n,), _float()) - 2.0 * jax.random.randint(k3, (n,), 0, 2)
    x2 = x2 + jnp.floor(x1) % 2  # (columns -2,0 take rows [-2,-1),[0,1); columns -1,1 take the others)
    return jnp.stack([x1, x2], axis=1)


def eight_gaussians(key: PRNGKeyArray, n: int, *, radius: float = 2.0, std: float = 0.2) -> Float[Array, "n 2"]:
    r"""Equal mixture of 8 isotropic Gaussians (sd ``std``) on a circle of ``radius``."""
    n = check_positive_int("n", n)
    k1, k2 = jax.random.split(key)
    angle = jax.random.randint(k1, (n,), 0, 8).astype(_float()) * (2 * jnp.pi / 8)
    centers = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    return centers + std * jax.random.normal(k2, (n, 2), _float())


def eight_gaussians_mixture(radius: float = 2.0, std: float = 0.2):
    """(weights, means, covs) of :func:`eight_gaussians`, for exact fields."""
    angle = np.arange(8) * 2 * np.pi / 8
    means = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    covs = np.broadcast_to(std**2 * np.eye(2), (8, 2, 2))
    return np.full(8, 1 / 8), means, covs


def two_moons(key: PRNGKeyArray, n: int, *, noise: float = 0.1) -> Float[Array, "n 2"]:
    r"""Two interleaved half circles (as scikit-learn's ``make_moons``), centred and scaled ×1.5."""
    n = check_positive_int("n", n)
    k1, k2, k3 = jax.random.split(key, 3)
    theta = jax.random.uniform(k1, (n,), _float(), 0.0, jnp.pi)
    upper = jax.random.bernoulli(k2, 0.5, (n,))
    x = jnp.where(upper, jnp.cos(theta), 1 - jnp.cos(theta))
    y = jnp.where(upper, jnp.sin(theta), 0.5 - jnp.sin(theta))
    pts = jnp.stack([x - 0.5, y - 0.25], axis=1) * 1.5
    return pts + noise * jax.random.normal(k3, (n, 2), _float())


def spirals(key: PRNGKeyArray, n: int, *, noise: float = 0.1) -> Float[Array, "n 2"]:
    r"""Two interleaved Archimedean spirals (radius up to 2.5)."""
    n = check_positive_int("n", n)
    k1, k2, k3 = jax.random.split(key, 3)
    u = jnp.sqrt(jax.random.uniform(k1, (n,), _float()))
    theta = u * 3 * jnp.pi
    r = u * 2.5
    arm = jnp.where(jax.random.bernoulli(k2, 0.5, (n,)), 1.0, -1.0)
    pts = arm[:, None] * jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=1)
    return pts + noise * jax.random.normal(k3, (n, 2), _float())


def rings(key: PRNGKeyArray, n: int, *, noise: float = 0.08) -> Float[Array, "n 2"]:
    r"""Four concentric circles of radii 0.5, 1, 1.5, 2, points split in proportion to length."""
    n = check_positive_int("n", n)
    k1, k2, k3 = jax.random.split(key, 3)
    radius = 0.5 * (1 + jax.random.categorical(k1, jnp.log(jnp.arange(1.0, 5.0)), shape=(n,))).astype(_float())
    theta = jax.random.uniform(k2, (n,), _float(), 0.0, 2 * jnp.pi)
    pts = radius[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    return pts + noise * jax.random.normal(k3, (n, 2), _float())


@functools.lru_cache(maxsize=1)
def _digits_array() -> np.ndarray:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("datasets.digits needs scikit-learn (pip install scikit-learn)") from err
    return np.asarray(load_digits().data, dtype=np.float64)  # (1797, 64), values 0..16


def digits(key: PRNGKeyArray, n: int, *, dequantize: bool = True) -> Float[Array, "n 64"]:
    r"""8×8 digit images, rows drawn with replacement; pixel :math:`v\in\{0..16\}` becomes
    :math:`2(v + u)/17 - 1` with :math:`u\sim U[0,1)` (``dequantize``) or :math:`u = 1/2`."""
    n = check_positive_int("n", n)
    data = jnp.asarray(_digits_array(), _float())
    k1, k2 = jax.random.split(key)
    rows = data[jax.random.randint(k1, (n,), 0, data.shape[0])]
    u = jax.random.uniform(k2, rows.shape, _float()) if dequantize else 0.5
    return 2 * (rows + u) / 17 - 1


TWO_D = {
    "checkerboard": checkerboard,
    "eight_gaussians": eight_gaussians,
    "two_moons": two_moons,
    "spirals": spirals,
    "rings": rings,
}
"""The 2-D samplers by name."""
