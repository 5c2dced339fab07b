r"""Stationary kernels :math:`k(x, y) = \sigma^2 \rho(\lVert (x - y) / \ell \rVert)`.

``lengthscale`` is a scalar or one value per input dimension (ARD); ``variance``
is :math:`\sigma^2`. :meth:`gram` works on row blocks of ``X`` (``block_size``), so a
cross-gram of ``n x m`` never allocates more than one ``block_size x m`` block of
temporaries and never an ``n x n`` matrix.

**Squared distances.** The scaled points are first centred by a common shift
:math:`c = (\bar x + \bar y)/2` (distances are translation invariant), then

.. math:: \lVert x - y\rVert^2 = [x - c,\ \lVert x - c\rVert^2,\ 1] \cdot
    [-2(y - c),\ 1,\ \lVert y - c\rVert^2]

is one matrix product (``precision=HIGHEST``). Centring keeps the cancellation error at
:math:`O(u\,\lVert x - c\rVert^2)` instead of :math:`O(u\,\lVert x\rVert^2)` (``X + 1e3`` in
float32 lost the kernel entirely), and the single product avoids the broadcast
``|x|^2 + |y|^2 - 2 x.y`` that XLA:CPU mis-fused under ``jit`` for cross-grams past
~2^15 entries with a traced vector lengthscale (wrong rows, error up to 1).

Valid for float32 and float64 inputs at any offset; the relative accuracy of
:math:`r^2` is about :math:`u\,(\text{spread}/\ell)^2 / r^2` with :math:`u` the unit
roundoff, so only distances far below the data's spread lose digits.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._validate import check_positive, check_real_dtype, checked_finite
from ._base import AbstractKernel


def _augment_left(X: Array) -> Array:
    """Rows ``[x, |x|^2, 1]`` (``X`` already centred)."""
    x2 = jnp.sum(X * X, axis=-1, keepdims=True)
    return jnp.concatenate([X, x2, jnp.ones_like(x2)], axis=-1)


def _augment_right(Y: Array) -> Array:
    """Rows ``[-2 y, 1, |y|^2]`` (``Y`` already centred)."""
    y2 = jnp.sum(Y * Y, axis=-1, keepdims=True)
    return jnp.concatenate([-2.0 * Y, jnp.ones_like(y2), y2], axis=-1)


def _sqdist_augmented(Xa: Array, Ya: Array) -> Array:
    """Squared distances from augmented rows: one matmul, clipped at zero (module doc)."""
    return jnp.maximum(jnp.matmul(Xa, Ya.T, precision=jax.lax.Precision.HIGHEST), 0.0)


def _safe_sqrt(r2: Array) -> Array:
    """sqrt with a finite (zero) derivative at 0."""
    pos = r2 > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, r2, 1.0)), 0.0)


class AbstractStationaryKernel(AbstractKernel):
    r"""Base of :class:`RBF`, :class:`Matern32`, :class:`Matern52`.

    Subclasses define :meth:`profile`, :math:`\rho(r^2)` of the scaled squared
    distance :math:`r^2 = \lVert (x - y)/\ell \rVert^2`, with :math:`\rho(0) = 1`.
    """

    lengthscale: Float[Array, "*d"] = eqx.field(converter=jnp.asarray, default=1.0)
    variance: Float[Array, ""] = eqx.field(converter=jnp.asarray, default=1.0)
    block_size: int = eqx.field(static=True, default=2048)

    def __check_init__(self):
        if jnp.ndim(self.lengthscale) > 1:
            raise ValueError(
                f"lengthscale must be a scalar or a vector (one per dimension), "
                f"got shape {jnp.shape(self.lengthscale)}"
            )
        check_positive("lengthscale", self.lengthscale)
        check_positive("variance", self.variance)
        if not (isinstance(self.block_size, int) and self.block_size >= 1):
            raise ValueError(f"block_size must be a positive integer, got {self.block_size!r}")

    @abc.abstractmethod
    def profile(self, r2: Float[Array, "..."]) -> Float[Array, "..."]:
        """Correlation as a function of the scaled squared distance ``r2``."""

    def check_input(self, name: str, X: Array) -> None:
        ls_dim = jnp.size(self.lengthscale) if jnp.ndim(self.lengthscale) == 1 else None
        check_real_dtype(name, X)
        if jnp.ndim(X) != 2:
            raise ValueError(f"{name} must be a 2-D array (n, d), got shape {jnp.shape(X)}")
        if ls_dim is not None and ls_dim != jnp.shape(X)[1]:
            raise ValueError(
                f"{name} has {jnp.shape(X)[1]} columns but the kernel's lengthscale has "
                f"{ls_dim} entries (one per dimension expected)"
            )

    def gram(
        self, X: Float[Array, "n d"], Y: Float[Array, "m d"] | None = None
    ) -> Float[Array, "n m"]:
        X = jnp.asarray(X)
        Y = X if Y is None else jnp.asarray(Y)
        self.check_input("X", X)
        self.check_input("Y", Y)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"X and Y must have the same number of columns, got {X.shape}, {Y.shape}")
        same = Y is X
        X = checked_finite("X", X)
        Y = X if same else checked_finite("Y", Y)
        dtype = jnp.result_type(X.dtype, Y.dtype, self.lengthscale.dtype)
        ls = self.lengthscale.astype(dtype)
        Xs, Ys = X.astype(dtype) / ls, Y.astype(dtype) / ls
        if X.shape[0] and Y.shape[0]:
            c = 0.5 * (jnp.mean(Xs, axis=0) + jnp.mean(Ys, axis=0))
            Xs, Ys = Xs - c, Ys - c
        Xs, Ya = _augment_left(Xs), _augment_right(Ys)
        var = self.variance.astype(dtype)

        def block(xb):
            return var * self.profile(_sqdist_augmented(xb, Ya))

        n, b = Xs.shape[0], self.block_size
        if n <= b:
            return block(Xs)
        n_blocks = -(-n // b)
        pad = n_blocks * b - n
        Xp = jnp.pad(Xs, ((0, pad), (0, 0))).reshape(n_blocks, b, -1)
        out = jax.lax.map(block, Xp).reshape(n_blocks * b, Ya.shape[0])
        return out[:n]

    def diag(self, X: Float[Array, "n d"]) -> Float[Array, " n"]:
        X = jnp.asarray(X)
        dtype = jnp.result_type(X.dtype, self.variance.dtype)
        return jnp.full((X.shape[0],), self.variance, dtype=dtype)


class RBF(AbstractStationaryKernel):
    r"""Squared-exponential kernel :math:`\sigma^2 \exp(-r^2/2)`."""

    def profile(self, r2):
        return jnp.exp(-0.5 * r2)


class Matern32(AbstractStationaryKernel):
    r"""Matérn 3/2 kernel :math:`\sigma^2 (1 + \sqrt3 r) e^{-\sqrt3 r}`."""

    def profile(self, r2):
        s = np.sqrt(3.0) * _safe_sqrt(r2)
        return (1.0 + s) * jnp.exp(-s)


class Matern52(AbstractStationaryKernel):
    r"""Matérn 5/2 kernel :math:`\sigma^2 (1 + \sqrt5 r + 5r^2/3) e^{-\sqrt5 r}`."""

    def profile(self, r2):
        s = np.sqrt(5.0) * _safe_sqrt(r2)
        return (1.0 + s + (5.0 / 3.0) * r2) * jnp.exp(-s)


__all__ = ["AbstractStationaryKernel", "RBF", "Matern32", "Matern52"]
