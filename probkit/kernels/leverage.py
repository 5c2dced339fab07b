r"""Exact ridge leverage scores and effective dimension (references for small n).

With :math:`K = V \Lambda V^\top`,

.. math::
    \tau_i(\gamma) = [K (K + \gamma I)^{-1}]_{ii} = \sum_k V_{ik}^2 \frac{\lambda_k}{\lambda_k + \gamma},
    \qquad d_\text{eff}(\gamma) = \sum_i \tau_i(\gamma) = \sum_k \frac{\lambda_k}{\lambda_k + \gamma}.

The eigen-form has no cancellation (unlike :math:`1 - \gamma [(K+\gamma I)^{-1}]_{ii}`),
so small scores keep their relative accuracy. Cost :math:`O(n^3)`, memory :math:`O(n^2)`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._validate import check_ndim, check_positive, check_real_dtype, check_value, checked_finite


def _check_gram(K: Array) -> Array:
    K = jnp.asarray(K)
    check_real_dtype("K", K)
    if not jnp.issubdtype(K.dtype, jnp.floating):
        K = K.astype(jnp.result_type(float))
    check_ndim("K", K, 2)
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square matrix, got shape {K.shape}")
    K = checked_finite("K", K)
    return check_value("K", K, _not_symmetric, "be symmetric (a kernel gram matrix)")


def _not_symmetric(xp, K):
    """Asymmetric beyond sqrt(eps) max|K| (the rounding of a computed gram passes)."""
    K = xp.where(xp.isfinite(K), K, 0)
    tol = float(np.sqrt(np.finfo(K.dtype).eps)) * (xp.max(xp.abs(K)) if K.size else 0)
    return xp.any(xp.abs(K - K.T) > tol)


def _shrink_ratios(K: Array, gamma) -> tuple[Array, Array]:
    """Eigenvectors of K and lambda / (lambda + gamma) (eigenvalues clipped at 0)."""
    lam, V = jnp.linalg.eigh(0.5 * (K + K.T))
    lam = jnp.maximum(lam, 0.0)
    return V, lam / (lam + gamma)


def ridge_leverage_scores(K: Float[Array, "n n"], gamma: float) -> Float[Array, " n"]:
    r"""Exact ridge leverage scores :math:`\tau_i(\gamma) = [K(K+\gamma I)^{-1}]_{ii}`."""
    K = _check_gram(K)
    check_positive("gamma", gamma)
    V, r = _shrink_ratios(K, gamma)
    return (V * V) @ r


def effective_dimension(K: Float[Array, "n n"], gamma: float) -> Float[Array, ""]:
    r"""Effective dimension :math:`d_\text{eff}(\gamma) = \operatorname{tr} K(K+\gamma I)^{-1}`."""
    K = _check_gram(K)
    check_positive("gamma", gamma)
    _, r = _shrink_ratios(K, gamma)
    return jnp.sum(r)


def regularized_error(
    K: Float[Array, "n n"], K_approx: Float[Array, "n n"], gamma: float
) -> Float[Array, ""]:
    r"""Exact :math:`\lVert (K+\gamma I)^{-1/2}(K - \tilde K)(K+\gamma I)^{-1/2}\rVert_2` (small n)."""
    K = _check_gram(K)
    check_positive("gamma", gamma)
    lam, V = jnp.linalg.eigh(0.5 * (K + K.T))
    R = (V / jnp.sqrt(jnp.maximum(lam, 0.0) + gamma)) @ V.T
    E = R @ (K - jnp.asarray(K_approx, K.dtype)) @ R
    return jnp.max(jnp.abs(jnp.linalg.eigvalsh(0.5 * (E + E.T))))
