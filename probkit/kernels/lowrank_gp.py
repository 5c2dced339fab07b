r"""Gaussian-process regression with a low-rank covariance :math:`\Phi\Phi^\top + \sigma^2 I` (Woodbury).

Shared by :class:`~probkit.kernels.Nystrom` and :class:`~probkit.kernels.GraphGP`. For
:math:`y \sim \mathcal N(\mu, \Phi\Phi^\top + \sigma^2 I)`, :math:`\Phi` of shape ``(n, m)``,
and :math:`C = \sigma^2 I_m + \Phi^\top\Phi = R R^\top` (cost :math:`O(n m^2)`):

.. math::
    \log p(y) = -\tfrac12\big[\sigma^{-2}(r^\top r - \lVert R^{-1}\Phi^\top r\rVert^2)
    + (n - m)\log\sigma^2 + 2\log|R| + n\log 2\pi\big],\qquad r = y - \mu,

and the predictive of the latent :math:`f_* = \Phi_* w` has mean :math:`\Phi_* C^{-1}\Phi^\top r
+ \mu` and variance :math:`\sigma^2 \operatorname{diag}(\Phi_* C^{-1}\Phi_*^\top)`.

Checks (``ValueError`` on concrete values, :func:`equinox.error_if` under ``jit``): ``noise``
finite and positive, ``y`` finite of length ``n``, features finite, and a Cholesky factor of
:math:`C` that did not fail — a NaN likelihood never reaches the optimiser or sampler.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, Float

from .._validate import _not_all_finite, check_real_dtype, check_value, checked_finite


def _bad_noise(xp, x):
    return ~xp.all(xp.isfinite(x) & (x > 0))


def _check_noise(noise):
    return check_value("noise", noise, _bad_noise, "be finite and positive (a variance)")


def _check_y(y, n: int):
    y = jnp.asarray(y)
    check_real_dtype("y", y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must be a 1-D vector of length {n} (one value per observed point), got shape {y.shape}")
    return checked_finite("y", y)


def _solve(F, y, noise, mean):
    y = _check_y(y, F.shape[0])
    noise = _check_noise(noise)
    F = checked_finite("the low-rank features", F)
    r = y - mean
    C = noise * jnp.eye(F.shape[1], dtype=F.dtype) + F.T @ F
    R = check_value(
        "the Cholesky factor of noise * I + F^T F", jnp.linalg.cholesky(C), _not_all_finite,
        "be finite (the factorisation failed; raise noise or use float64)",
    )
    b = solve_triangular(R, F.T @ r, lower=True)
    return r, R, b, noise


def lowrank_log_likelihood(
    F: Float[Array, "n m"], y: Float[Array, " n"], noise, mean=0.0
) -> Float[Array, ""]:
    r"""Log marginal likelihood of :math:`y \sim \mathcal N(\mu, FF^\top + \sigma^2 I)`, :math:`\sigma^2` = ``noise``."""
    r, R, b, noise = _solve(F, y, noise, mean)
    n, m = F.shape
    quad = (r @ r - b @ b) / noise
    logdet = (n - m) * jnp.log(noise) + 2.0 * jnp.sum(jnp.log(jnp.diag(R)))
    return -0.5 * (quad + logdet + n * math.log(2.0 * math.pi))


def lowrank_predict(
    F: Float[Array, "n m"], y: Float[Array, " n"], noise, F_new: Float[Array, "k m"], mean=0.0
) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
    """Posterior mean and variance of the latent ``f`` at rows ``F_new`` (add ``noise`` for ``y``)."""
    _, R, b, noise = _solve(F, y, noise, mean)
    G = solve_triangular(R, F_new.T, lower=True)  # R^{-1} Phi_*^T
    return G.T @ b + mean, noise * jnp.sum(G * G, axis=0)


def lowrank_distribution(F: Float[Array, "n m"], noise, loc=0.0) -> dist.LowRankMultivariateNormal:
    r"""NumPyro :math:`\mathcal N(\text{loc}, FF^\top + \sigma^2 I)` for ``numpyro.sample(..., obs=y)``."""
    n = F.shape[0]
    noise = _check_noise(noise)
    loc = jnp.broadcast_to(jnp.asarray(loc, F.dtype), (n,))
    cov_diag = jnp.broadcast_to(jnp.asarray(noise, F.dtype), (n,))
    return dist.LowRankMultivariateNormal(loc, F, cov_diag)
