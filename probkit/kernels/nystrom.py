r"""Nyström features and a low-rank GP, plus uniform and exact-RLS baseline dictionaries.

For a dictionary :math:`S` with weights :math:`w` let :math:`A = W^{1/2} K_{SS} W^{1/2} +
\delta I = L L^\top` (jitter :math:`\delta` = ``jitter`` times the mean diagonal of
:math:`A`; by default :math:`\delta = 10\,u\,\operatorname{tr} A` with :math:`u` the unit
roundoff of the dtype, see :func:`nystrom`). The features :math:`\Phi(X) = K_{XS} W^{1/2} L^{-\top}` give

.. math:: \tilde K = \Phi\Phi^\top = K_{XS} W^{1/2} (W^{1/2} K_{SS} W^{1/2} + \delta I)^{-1} W^{1/2} K_{SX},

the Nyström approximation :math:`K_{XS} K_{SS}^{+} K_{SX}` as :math:`\delta \to 0`. Unused
slots have :math:`w = 0` and give zero feature columns, so shapes stay static.

**Low-rank GP.** :math:`y \sim \mathcal N(\mu, \Phi\Phi^\top + \sigma^2 I)` by Woodbury in
:math:`O(n m^2)` (:mod:`probkit.kernels.lowrank_gp`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import _not_all_finite, as_matrix, check_positive, check_positive_int, check_value
from ._base import AbstractKernel
from .dictionary import Dictionary
from .leverage import ridge_leverage_scores
from .lowrank_gp import lowrank_distribution, lowrank_log_likelihood, lowrank_predict


class Nystrom(eqx.Module):
    """Nyström approximation of a kernel on training points ``X`` (module doc)."""

    X: Float[Array, "n d"]
    points: Float[Array, "m d"]
    kernel: AbstractKernel
    transform: Float[Array, "m m"]

    def features(self, Xnew: Float[Array, "k d"] | None = None) -> Float[Array, "k m"]:
        r"""Features :math:`\Phi(X_\text{new})` with :math:`\tilde k(x, y) = \Phi(x)^\top\Phi(y)`."""
        Xnew = self.X if Xnew is None else jnp.asarray(Xnew)
        return self.kernel.gram(Xnew, self.points) @ self.transform

    def gram(self) -> Float[Array, "n n"]:
        r"""The approximate gram matrix :math:`\tilde K = \Phi\Phi^\top` on the training points."""
        F = self.features()
        return F @ F.T

    def gp_log_likelihood(
        self, y: Float[Array, " n"], noise: float, mean: float | Array = 0.0
    ) -> Float[Array, ""]:
        r"""Log marginal likelihood of :math:`y \sim \mathcal N(\mu, \tilde K + \sigma^2 I)`, :math:`\sigma^2` = ``noise``."""
        return lowrank_log_likelihood(self.features(), y, noise, mean)

    def gp_predict(
        self, y: Float[Array, " n"], noise: float, Xnew: Float[Array, "k d"],
        mean: float | Array = 0.0,
    ) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
        """Posterior mean and variance of the latent ``f(Xnew)`` (add ``noise`` for ``y``)."""
        return lowrank_predict(self.features(), y, noise, self.features(Xnew), mean)

    def gp_distribution(
        self, noise: float | Array, loc: float | Array = 0.0
    ) -> dist.LowRankMultivariateNormal:
        r"""NumPyro :math:`\mathcal N(\text{loc}, \Phi\Phi^\top + \sigma^2 I)` for ``numpyro.sample(..., obs=y)``."""
        return lowrank_distribution(self.features(), noise, loc)


def nystrom(
    X: Float[Array, "n d"], dictionary: Dictionary, kernel: AbstractKernel, *,
    jitter: float | None = None,
) -> Nystrom:
    r"""Build the :class:`Nystrom` approximation of ``kernel`` on ``X`` from ``dictionary``.

    ``jitter`` is relative to the mean diagonal of the weighted ``K_SS`` (so it follows the
    kernel's scale). The default is :math:`10\,u\,m` for :math:`m` dictionary points in use and
    unit roundoff :math:`u` of the dtype, i.e. :math:`\delta = 10\,u\,\operatorname{tr} A \ge
    10\,u\,\lambda_\max(A)`: the Cholesky factorisation of a numerically rank-deficient
    :math:`A` (many close points, e.g. 1-D data) then succeeds in float32 and float64 at any
    kernel scale, at a relative approximation error of order :math:`\delta/\lambda_\max`
    (about :math:`10^{-6} m` in float32, :math:`10^{-14} m` in float64). A factorisation that
    still fails raises (``ValueError``, or ``EqxRuntimeError`` under ``jit``) instead of
    returning NaN features. Works under ``jit`` and ``grad`` (e.g. inside a NumPyro model whose
    kernel hyperparameters are sampled); float32 is fine up to at least ``n = 1e4``.

    Pass the compact dictionary (``dictionary.compact()``, what :func:`~probkit.kernels.squeak`
    returns by default): the cost is :math:`O(n m^2)` in the capacity ``m``, used or not.
    """
    X = as_matrix("X", X)
    if not isinstance(dictionary, Dictionary):
        raise TypeError(f"dictionary must be a probkit.kernels.Dictionary, got {type(dictionary).__name__}")
    if not isinstance(kernel, AbstractKernel):
        raise TypeError(f"kernel must be a probkit.kernels kernel, got {type(kernel).__name__}")
    kernel.check_input("X", X)
    if dictionary.points.shape[-1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} columns but the dictionary points have {dictionary.points.shape[-1]}"
        )
    dtype = X.dtype
    n_used = jnp.maximum(jnp.sum(dictionary.mask), 1)
    if jitter is None:
        jitter = 10.0 * jnp.finfo(dtype).eps * n_used
    else:
        check_positive("jitter", jitter)
    pts = dictionary.points.astype(dtype)
    s = jnp.sqrt(dictionary.weights.astype(dtype))
    A = s[:, None] * kernel.gram(pts) * s[None, :]
    delta = jitter * jnp.sum(jnp.diag(A)) / n_used
    # empty slots (s = 0) get delta on the diagonal too, so A + delta I stays positive definite
    L = jnp.linalg.cholesky(A + delta * jnp.eye(A.shape[0], dtype=dtype))
    transform = s[:, None] * solve_triangular(L, jnp.eye(A.shape[0], dtype=dtype), lower=True).T
    transform = check_value(
        "the Nystrom factorisation", transform, _not_all_finite,
        "be finite: the Cholesky factor of the weighted dictionary gram failed; raise `jitter` "
        "or use float64",
    )
    return Nystrom(X=X, points=pts, kernel=kernel, transform=transform)


def _from_counts(X, counts, probs, qbar, rls, m) -> Dictionary:
    """A capacity-m dictionary of the points with positive ``counts``."""
    _, order = jax.lax.top_k(counts, m)
    mask = counts[order] > 0
    return Dictionary(
        indices=jnp.where(mask, order, -1).astype(jnp.int32),
        points=X[order],
        probs=probs[order],
        counts=jnp.where(mask, counts[order], 0).astype(jnp.int32),
        rls=rls[order],
        mask=mask,
        qbar=qbar,
    )


def uniform_dictionary(
    key: PRNGKeyArray, X: Float[Array, "n d"], m: int | Array, *, capacity: int | None = None
) -> Dictionary:
    """Baseline: ``m`` distinct points drawn uniformly without replacement (weights ``n/m``).

    With a static ``capacity`` (at least ``m``), ``m`` may be a traced integer, so a batch of
    sizes (e.g. matching a batch of SQUEAK dictionaries) is drawn under ``vmap``.
    """
    X = as_matrix("X", X)
    n = X.shape[0]
    if capacity is None:
        m = check_positive_int("m", m)
        if m > n:
            raise ValueError(f"m must be at most the number of points {n}, got {m}")
        capacity = m
    capacity = check_positive_int("capacity", capacity)
    if capacity > n:
        raise ValueError(f"capacity must be at most the number of points {n}, got {capacity}")
    order = jax.random.permutation(key, n)[:capacity].astype(jnp.int32)
    mask = jnp.arange(capacity) < m
    return Dictionary(
        indices=jnp.where(mask, order, -1),
        points=X[order],
        probs=jnp.full((capacity,), 1.0, X.dtype) * m / n,
        counts=mask.astype(jnp.int32),
        rls=jnp.full((capacity,), jnp.nan, X.dtype),
        mask=mask,
        qbar=1,
    )


def exact_rls_dictionary(
    key: PRNGKeyArray, X: Float[Array, "n d"], kernel: AbstractKernel, gamma: float, m: int
) -> Dictionary:
    r"""Baseline: ``m`` i.i.d. draws with probability :math:`\tau_i/d_\text{eff}` from exact RLS.

    Forms the :math:`n \times n` gram matrix (:math:`O(n^3)`); repeated draws become
    multiplicities, so the dictionary holds at most ``m`` distinct points.
    """
    X = as_matrix("X", X)
    kernel.check_input("X", X)
    m = check_positive_int("m", m)
    n = X.shape[0]
    tau = ridge_leverage_scores(kernel.gram(X), gamma)
    probs = tau / jnp.sum(tau)
    draws = jax.random.choice(key, n, (m,), replace=True, p=probs)
    counts = jnp.zeros((n,), jnp.int32).at[draws].add(1)
    return _from_counts(X, counts, probs, m, tau, min(m, n))
