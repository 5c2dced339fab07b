r"""Gaussian-process prior over regression tasks, with optional hyperpriors.

Each dataset: hyperparameters :math:`\theta = (\ell, \sigma_f^2, \sigma_n)` fixed or drawn
from their hyperpriors, :math:`x_i \sim` the x-sampler (default :math:`U[0,1]^F`), and

.. math:: y \sim \mathcal N\big(0,\ \sigma_f^2\, k(\lVert x_i - x_j\rVert / \ell) + \sigma_n^2 I\big)

with :math:`k` the RBF :math:`e^{-r^2/2}`, Matérn-3/2 :math:`(1+\sqrt3 r)e^{-\sqrt3 r}` or
Matérn-5/2 :math:`(1+\sqrt5 r+5r^2/3)e^{-\sqrt5 r}` correlation. ``outputscale`` is the
signal variance :math:`\sigma_f^2`; ``noise`` is the noise standard deviation :math:`\sigma_n`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import as_matrix, check_choice, check_positive, check_positive_int
from .prior import AbstractPrior, resolve_x_sampler

_HYPERS = ("lengthscale", "outputscale", "noise")


def _correlation(kernel: str, r: Array) -> Array:
    if kernel == "rbf":
        return jnp.exp(-0.5 * r**2)
    if kernel == "matern32":
        s = math.sqrt(3.0) * r
        return (1.0 + s) * jnp.exp(-s)
    s = math.sqrt(5.0) * r
    return (1.0 + s + s**2 / 3.0) * jnp.exp(-s)


def _distance(x1: Array, x2: Array) -> Array:
    d2 = jnp.sum((x1[:, None, :] - x2[None, :, :]) ** 2, axis=-1)
    # safe sqrt: zero distance has zero (sub)gradient instead of NaN
    pos = d2 > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, d2, 1.0)), 0.0)


def gp_covariance(kernel: str, x1: Array, x2: Array, lengthscale, outputscale) -> Array:
    """Signal covariance ``σ_f² k(|x1 - x2| / ℓ)`` between the rows of ``x1`` and ``x2``."""
    return outputscale * _correlation(kernel, _distance(x1, x2) / lengthscale)


class GPPrior(AbstractPrior):
    """GP regression prior; see the module docstring for the model.

    ``hyperprior`` maps any of ``"lengthscale"``, ``"outputscale"``, ``"noise"`` to a
    NumPyro distribution (e.g. ``dist.LogNormal(-1.5, 0.5)``) that replaces the fixed value.
    """

    kernel: str = eqx.field(static=True)
    lengthscale: float
    outputscale: float
    noise: float
    hyperprior: dict[str, Any]
    x_sampler: Any
    x_dim: int = eqx.field(static=True)
    jitter: float = eqx.field(static=True)

    def __init__(
        self,
        kernel: str = "rbf",
        lengthscale: float = 0.2,
        outputscale: float = 1.0,
        noise: float = 0.1,
        hyperprior: Mapping[str, Any] | None = None,
        *,
        x_dim: int = 1,
        x_sampler=None,
        jitter: float = 1e-6,
    ):
        check_choice("kernel", kernel, ("rbf", "matern32", "matern52"))
        check_positive("lengthscale", lengthscale)
        check_positive("outputscale", outputscale)
        check_positive("noise", noise, allow_zero=True)
        check_positive("jitter", jitter, allow_zero=True)
        hyperprior = dict(hyperprior or {})
        if noise == 0 and jitter == 0 and "noise" not in hyperprior:
            raise ValueError(
                "noise=0 with jitter=0 makes the covariance singular (repeated or close inputs; "
                "Cholesky gives NaN): set jitter > 0 (default 1e-6) or noise > 0"
            )
        for name, d in hyperprior.items():
            check_choice("hyperprior key", name, _HYPERS)
            if not hasattr(d, "sample"):
                raise TypeError(f"hyperprior[{name!r}] must be a NumPyro distribution, got {d!r}")
        self.kernel = kernel
        self.lengthscale = float(lengthscale)
        self.outputscale = float(outputscale)
        self.noise = float(noise)
        self.hyperprior = hyperprior
        self.x_sampler, self.x_dim = resolve_x_sampler(x_sampler, x_dim)
        self.jitter = float(jitter)

    def sample_hyperparameters(self, key: PRNGKeyArray) -> dict[str, Array]:
        """One draw of ``{lengthscale, outputscale, noise}`` (fixed values where no hyperprior)."""
        dtype = jnp.result_type(float)
        keys = dict(zip(_HYPERS, jax.random.split(key, 3)))
        out = {}
        for name in _HYPERS:
            if name in self.hyperprior:
                out[name] = jnp.asarray(self.hyperprior[name].sample(keys[name]), dtype)
            else:
                out[name] = jnp.asarray(getattr(self, name), dtype)
        return out

    def sample_one_with_hyperparameters(self, key: PRNGKeyArray, n_points: int):
        """One dataset ``(x, y, hyperparameters)``."""
        k_theta, k_x, k_y = jax.random.split(key, 3)
        theta = self.sample_hyperparameters(k_theta)
        x = self.x_sampler(k_x, n_points)
        cov = gp_covariance(self.kernel, x, x, theta["lengthscale"], theta["outputscale"])
        cov = cov + (theta["noise"] ** 2 + self.jitter) * jnp.eye(n_points, dtype=cov.dtype)
        chol = jnp.linalg.cholesky(cov)
        y = chol @ jax.random.normal(k_y, (n_points,), dtype=cov.dtype)
        y = eqx.error_if(
            y, ~jnp.all(jnp.isfinite(y)),
            "GPPrior: a dataset's covariance is not positive definite at this precision (Cholesky failed); "
            "increase jitter or noise",
        )
        return x, y, theta

    def sample_one(self, key: PRNGKeyArray, n_points: int):
        x, y, _ = self.sample_one_with_hyperparameters(key, n_points)
        return x, y

    def sample_with_hyperparameters(self, key: PRNGKeyArray, batch_size: int, n_points: int):
        """Like :meth:`sample` but also returns each dataset's hyperparameters (batched dict)."""
        batch_size = check_positive_int("batch_size", batch_size)
        n_points = check_positive_int("n_points", n_points)
        keys = jax.random.split(key, batch_size)
        return jax.vmap(lambda k: self.sample_one_with_hyperparameters(k, n_points))(keys)

    def predictive(
        self,
        x_train,
        y_train,
        x_test,
        *,
        lengthscale=None,
        outputscale=None,
        noise=None,
        train_mask=None,
    ) -> tuple[Float[Array, " m"], Float[Array, " m"]]:
        """Exact posterior predictive mean and variance of noisy ``y`` at ``x_test``.

        Hyperparameters default to the fixed values. ``train_mask`` (bool, ``(n,)``) drops
        padded train points exactly (they get unit prior variance and no correlation).
        """
        x_train = as_matrix("x_train", x_train, finite=False)
        x_test = as_matrix("x_test", x_test, finite=False)
        y_train = jnp.asarray(y_train, x_train.dtype)
        ls = self.lengthscale if lengthscale is None else lengthscale
        os_ = self.outputscale if outputscale is None else outputscale
        sn = self.noise if noise is None else noise
        n = x_train.shape[0]
        mask = jnp.ones(n, bool) if train_mask is None else jnp.asarray(train_mask, bool)
        both = mask[:, None] & mask[None, :]
        k_tt = gp_covariance(self.kernel, x_train, x_train, ls, os_)
        k_tt = jnp.where(both, k_tt, 0.0) + jnp.diag(jnp.where(mask, sn**2 + self.jitter, 1.0))
        k_st = jnp.where(mask[None, :], gp_covariance(self.kernel, x_test, x_train, ls, os_), 0.0)
        chol = jnp.linalg.cholesky(k_tt)
        alpha = jax.scipy.linalg.cho_solve((chol, True), jnp.where(mask, y_train, 0.0))
        v = jax.scipy.linalg.solve_triangular(chol, k_st.T, lower=True)
        mean = k_st @ alpha
        var = os_ + sn**2 - jnp.sum(v**2, axis=0)
        return mean, var
