r"""Gaussian-fit control variates for sliced Wasserstein (Nguyen & Ho, ICLR 2024).

Project both measures on :math:`\theta` and fit 1-D Gaussians
:math:`N(\theta^\top m_1, \theta^\top\Sigma_1\theta)`, :math:`N(\theta^\top m_2, \theta^\top\Sigma_2\theta)`
(weighted means and covariances of the samples). Their :math:`W_2^2` is
:math:`(\theta^\top \Delta m)^2 + (\sigma_1(\theta) - \sigma_2(\theta))^2`, bounded by

- lower: :math:`G(\theta) = (\theta^\top \Delta m)^2`, :math:`\mathbb{E}_\theta G = \lVert\Delta m\rVert^2 / d`;
- upper: :math:`G(\theta) = (\theta^\top \Delta m)^2 + \theta^\top\Sigma_1\theta + \theta^\top\Sigma_2\theta`,
  :math:`\mathbb{E}_\theta G = (\lVert\Delta m\rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2)/d`,

using :math:`\mathbb{E}[\theta\theta^\top] = I/d` for :math:`\theta \sim \mathrm{Unif}(S^{d-1})`.
The controlled estimate is :math:`\hat Z = \bar W - \hat\alpha(\bar G - \mathbb{E}G)` with the
regression coefficient :math:`\hat\alpha = \widehat{\mathrm{Cov}}(W, G)/\widehat{\mathrm{Var}}(G)`
from the same slices.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class AbstractControlVariate(eqx.Module):
    """A per-slice control variate ``G(theta)`` with a closed-form mean over the sphere."""

    needs_variance: ClassVar[bool]

    @abc.abstractmethod
    def values(
        self, proj_mean_diff: Float[Array, " L"], proj_var_sum: Float[Array, " L"] | None
    ) -> Float[Array, " L"]:
        """``G(theta_l)`` from ``theta_l^T (m1 - m2)`` and ``theta_l^T (S1 + S2) theta_l``."""

    @abc.abstractmethod
    def expectation(
        self, mean_diff_sq: Float[Array, ""], trace_sum: Float[Array, ""] | None, dim: int
    ) -> Float[Array, ""]:
        """``E_theta[G(theta)]`` from ``||m1 - m2||^2`` and ``tr S1 + tr S2``."""


class LowerBoundCV(AbstractControlVariate):
    r""":math:`G(\theta) = (\theta^\top(m_1 - m_2))^2`."""

    needs_variance: ClassVar[bool] = False

    def values(self, proj_mean_diff, proj_var_sum):
        return jnp.square(proj_mean_diff)

    def expectation(self, mean_diff_sq, trace_sum, dim):
        return mean_diff_sq / dim


class UpperBoundCV(AbstractControlVariate):
    r""":math:`G(\theta) = (\theta^\top(m_1 - m_2))^2 + \theta^\top\Sigma_1\theta + \theta^\top\Sigma_2\theta`."""

    needs_variance: ClassVar[bool] = True

    def values(self, proj_mean_diff, proj_var_sum):
        return jnp.square(proj_mean_diff) + proj_var_sum

    def expectation(self, mean_diff_sq, trace_sum, dim):
        return (mean_diff_sq + trace_sum) / dim


CONTROL_VARIATES: dict[str, AbstractControlVariate] = {
    "cv_lower": LowerBoundCV(),
    "cv_upper": UpperBoundCV(),
}


def mc_estimate(w: Float[Array, " L"]) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""Plain Monte Carlo :math:`\bar W` and its variance :math:`s_W^2 / L`."""
    n = w.shape[0]
    var = jnp.var(w, ddof=1) / n if n > 1 else jnp.full((), jnp.nan, w.dtype)
    return jnp.mean(w), var


def cv_estimate(
    w: Float[Array, " L"],
    g: Float[Array, " L"],
    g_mean: Float[Array, ""],
    *,
    detach_coefficient: bool = False,
    coefficient: float | None = None,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""Control-variate estimate :math:`\hat Z` and its estimated variance.

    :math:`\hat Z` is the least-squares fit of :math:`W` on :math:`G` evaluated at
    :math:`G = \mathbb{E}G`, so its variance is the regression prediction variance
    :math:`s_e^2 \,(1/L + (\bar G - \mathbb{E}G)^2 / S_{GG})`, with
    :math:`s_e^2 = \sum_l e_l^2 / (L - 2)` the residual variance. This accounts for
    :math:`\hat\alpha` being estimated from the same slices. When :math:`G` is
    (numerically) constant :math:`\hat\alpha = 0` and this is plain Monte Carlo.

    ``detach_coefficient=True`` holds :math:`\hat\alpha` constant under differentiation
    (same value): :math:`\nabla\hat Z = \nabla\bar W - \hat\alpha\,\nabla(\bar G - \mathbb{E}G)`, the
    control-variate estimate of :math:`\nabla SW_2^2` with control :math:`\nabla G`, without the
    term :math:`-(\bar G - \mathbb{E}G)\nabla\hat\alpha`.

    A fixed ``coefficient`` :math:`\alpha` gives :math:`\bar W - \alpha(\bar G - \mathbb{E}G)`, unbiased
    for any :math:`\alpha`, with variance :math:`s^2_{W - \alpha G}/L`.
    """
    n = w.shape[0]
    if coefficient is not None:
        return mc_estimate(w - coefficient * (g - g_mean))
    w_bar = jnp.mean(w)
    g_bar = jnp.mean(g)
    gc = g - g_bar
    wc = w - w_bar
    s_gg = jnp.sum(gc * gc)
    scale = jnp.sum(g * g)
    ok = s_gg > 1e3 * jnp.finfo(w.dtype).eps * scale
    alpha = jnp.where(ok, jnp.sum(gc * wc) / jnp.where(ok, s_gg, 1.0), 0.0)
    if detach_coefficient:
        alpha = jax.lax.stop_gradient(alpha)
    z = w_bar - alpha * (g_bar - g_mean)
    if n < 3:
        return z, jnp.full((), jnp.nan, w.dtype)
    resid = wc - alpha * gc
    dof = jnp.where(ok, n - 2, n - 1)
    s_e2 = jnp.sum(resid * resid) / dof
    extra = jnp.where(ok, jnp.square(g_bar - g_mean) / jnp.where(ok, s_gg, 1.0), 0.0)
    return z, s_e2 * (1.0 / n + extra)
