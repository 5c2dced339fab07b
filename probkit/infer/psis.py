r"""Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao & Gabry 2024).

Given log importance weights ``log w_s = log p(x_s) − log q(x_s)``, ``x_s ~ q``,
the ``M = ⌈min(S/5, 3 √(S/r_eff))⌉`` largest weights are modelled by a generalized
Pareto distribution ``GPD(u, σ, k)`` above the threshold ``u`` (the ``(M+1)``-th
largest weight), fitted by Zhang & Stephens' (2009) empirical-Bayes estimate with
the weakly informative prior of Vehtari et al. (``k`` shrunk towards 0.5 by 10 pseudo
draws); the tail weights are replaced by the GPD's expected order statistics
``u + F⁻¹((j − ½)/M)``, truncated at the largest raw weight, and all are normalised.

The shape ``k̂`` diagnoses the weights (Yao, Vehtari, Simpson & Gelman 2018, "Yes, but
did it work?"): for a variational ``q``, ``k̂ < 0.5`` means ``q`` is close to the
posterior; ``0.5 ≤ k̂ ≤ 0.7`` still gives usable importance-sampling estimates;
``k̂ > 0.7`` means the weights' variance is effectively infinite and ``q`` misses
mass of ``p`` (too narrow, wrong place or shape).

This is the algorithm of ``arviz.psislw`` (agreeing to rounding in float64), in JAX
with a static tail length, so it runs under ``jit``/``vmap``. Two corner cases that
have probability zero for continuous weights differ: ties at the threshold count as
tail draws, and a threshold below ``log(tiny)`` gives ``k̂ = inf`` without smoothing.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float

PRIOR_BS = 3.0
PRIOR_K = 10.0
#: Yao et al. (2018): above this ``k̂`` the importance weights (and the fit) are unreliable.
K_THRESHOLD = 0.7


def tail_length(n_samples: int, reff: float = 1.0) -> int:
    """``M = ⌈min(S/5, 3 √(S/r_eff))⌉``, the number of weights in the fitted tail."""
    return int(math.ceil(min(n_samples / 5.0, 3 * (n_samples / reff) ** 0.5)))


def gpd_fit(x: Float[Array, " n"]) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""``(k̂, σ̂)`` of a generalized Pareto distribution (location 0) fitted to sorted ``x > 0``.

    Zhang & Stephens' estimate: with ``θ = −k/σ``, the profile log likelihood is
    ``ℓ(θ) = n (log(θ/k(θ)) − k(θ) − 1)``, ``k(θ) = −mean log(1 − θ x)``; ``θ̂`` is its
    posterior mean over ``m = 30 + ⌊√n⌋`` grid points ``θ_j = 1/x_(n) + (1 − √(m/(j − ½))) /
    (3 x_(⌊n/4 + ½⌋))``, and ``k̂`` is then shrunk: ``(n k̂ + 5)/(n + 10)``.
    """
    n = x.shape[0]
    eps = jnp.finfo(x.dtype).eps
    m = 30 + int(n**0.5)
    b = 1 - jnp.sqrt(m / (jnp.arange(1, m + 1, dtype=x.dtype) - 0.5))
    b = b / (PRIOR_BS * x[int(n / 4 + 0.5) - 1]) + 1 / x[-1]
    k = jnp.mean(jnp.log1p(-b[:, None] * x), axis=1)
    len_scale = n * (jnp.log(-(b / k)) - k - 1)
    weights = 1 / jnp.sum(jnp.exp(len_scale - len_scale[:, None]), axis=1)
    weights = jnp.where(weights >= 10 * eps, weights, 0.0)  # negligible weights dropped
    weights = weights / jnp.sum(weights)
    b_post = jnp.sum(b * weights)
    k_post = jnp.mean(jnp.log1p(-b_post * x))
    sigma = -k_post / b_post
    return (n * k_post + PRIOR_K * 0.5) / (n + PRIOR_K), sigma


def _gpd_quantile(p, k, sigma):
    """Quantile function of ``GPD(0, σ, k)`` (NaN when ``σ ≤ 0``)."""
    eps = jnp.finfo(p.dtype).eps
    small = jnp.abs(k) < eps
    safe_k = jnp.where(small, 1.0, k)
    q = jnp.where(small, -jnp.log1p(-p), jnp.expm1(-safe_k * jnp.log1p(-p)) / safe_k)
    return jnp.where(sigma > 0, q * sigma, jnp.nan)


def psis(log_weights: Float[Array, " S"], reff: float = 1.0) -> tuple[Float[Array, " S"], Float[Array, ""]]:
    """Pareto-smoothed, normalised log weights and the Pareto shape ``k̂`` (see the module docstring).

    ``log_weights``: a 1-D array of ``S`` log importance ratios (``−inf`` allowed);
    ``reff``: relative efficiency of the draws (1 for independent draws). ``k̂ = inf``
    when the tail has 4 draws or fewer (``S < 25``).
    """
    x = jnp.asarray(log_weights)
    if x.ndim != 1:
        raise ValueError(f"log_weights must be a 1-D array of draws, got shape {x.shape}")
    if not np.isfinite(reff) or reff <= 0:
        raise ValueError(f"reff must be a positive number, got {reff!r}")
    x = x.astype(jnp.result_type(x.dtype, float))
    s = x.shape[0]
    m = tail_length(s, reff) if s else 0
    x = x - jnp.max(x)
    if m <= 4 or m >= s:
        return x - logsumexp(x), jnp.asarray(jnp.inf, x.dtype)
    order = jnp.argsort(x)
    xs = x[order]
    cutoff = xs[s - m - 1]
    tail = jnp.exp(xs[s - m:]) - jnp.exp(cutoff)
    k, sigma = gpd_fit(tail)
    too_low = cutoff < np.log(np.finfo(np.float64).tiny)
    k = jnp.where(too_low, jnp.inf, k)
    p = (jnp.arange(m, dtype=x.dtype) + 0.5) / m
    smoothed = jnp.minimum(jnp.log(_gpd_quantile(p, k, sigma) + jnp.exp(cutoff)), 0.0)
    smoothed_x = x.at[order[s - m:]].set(smoothed)
    x = jnp.where(jnp.isfinite(k), smoothed_x, x)
    return x - logsumexp(x), k


__all__ = ["K_THRESHOLD", "gpd_fit", "psis", "tail_length"]
