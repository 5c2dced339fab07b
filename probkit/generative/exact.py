r"""Exact interpolant fields when :math:`\rho_0` is Gaussian and :math:`\rho_1` a Gaussian mixture.

With :math:`x_0 \sim N(m_0, C_0)`, :math:`x_1 \mid k \sim N(m_k, C_k)` (weights
:math:`\pi_k`) and :math:`z \sim N(0, I)` independent, :math:`(x_t, \dot x_t)` is
jointly Gaussian given :math:`k`:

.. math::
    \mu_k = \alpha m_0 + \beta m_k,\quad
    \Sigma_k = \alpha^2 C_0 + \beta^2 C_k + \gamma^2 I,\quad
    K_k = \operatorname{Cov}(\dot x_t, x_t \mid k) = \alpha\dot\alpha C_0 + \beta\dot\beta C_k + \gamma\dot\gamma I,

so with responsibilities :math:`r_k(x) \propto \pi_k N(x; \mu_k, \Sigma_k)`:

- velocity :math:`b = \sum_k r_k\,[\dot\alpha m_0 + \dot\beta m_k + K_k\Sigma_k^{-1}(x-\mu_k)]`;
- score :math:`s = -\sum_k r_k\,\Sigma_k^{-1}(x-\mu_k)`;
- denoiser :math:`\eta = E[\text{noise}\mid x] = -c(t)\,s` (:math:`c = \gamma`, or
  :math:`\alpha` for a one-sided interpolant whose base is :math:`N(0, I)`);
- :math:`\log\rho_t(x) = \log\sum_k \pi_k N(x; \mu_k, \Sigma_k)`.

:math:`\gamma\dot\gamma` comes from :meth:`Interpolant.gamma_gamma_dot`, finite even for
:math:`\gamma = \sqrt{t(1-t)}` at the endpoints. Used as references in tests and
benchmarks, and pluggable into every sampler.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, ScalarLike

from .._validate import as_float_array, check_positive_definite, check_real_dtype, check_value, checked_finite
from .interpolant import Interpolant

__all__ = ["GaussianMixtureFields"]


class GaussianMixtureFields(eqx.Module):
    r"""Exact :math:`b`, :math:`\eta`, :math:`s` and :math:`\log\rho_t` (see module docstring).

    Args:
        interpolant: the :class:`~probkit.generative.Interpolant`.
        weights: ``(K,)`` mixture weights of :math:`\rho_1`, non-negative (normalised here).
        means: ``(K, d)``. covs: ``(K, d, d)`` symmetric positive definite (checked:
            ``ValueError``, or :func:`equinox.error_if` under jit).
        x0_mean, x0_cov: the Gaussian :math:`\rho_0` (default :math:`N(0, I)`; must be
            the default for a one-sided interpolant).
    """

    interpolant: Interpolant
    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    covs: Float[Array, "k d d"]
    x0_mean: Float[Array, " d"]
    x0_cov: Float[Array, "d d"]

    def __init__(self, interpolant, weights, means, covs, x0_mean=None, x0_cov=None):
        if not isinstance(interpolant, Interpolant):
            raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
        means = as_float_array("means", means, 2, "an array of shape (K, d)")
        k, d = means.shape
        covs = jnp.asarray(covs)
        check_real_dtype("covs", covs)
        if covs.shape != (k, d, d):
            raise ValueError(f"covs must have shape {(k, d, d)}, got {covs.shape}")
        weights = jnp.asarray(weights)
        check_real_dtype("weights", weights)
        if weights.shape != (k,):
            raise ValueError(f"weights must have shape {(k,)}, got {weights.shape}")
        if interpolant.gaussian_base and (x0_mean is not None or x0_cov is not None):
            raise ValueError("a one-sided interpolant has x0 ~ N(0, I): leave x0_mean and x0_cov unset")
        x0_mean = jnp.zeros(d, means.dtype) if x0_mean is None else jnp.asarray(x0_mean)
        x0_cov = jnp.eye(d, dtype=means.dtype) if x0_cov is None else jnp.asarray(x0_cov)
        for name, a, shape in (("x0_mean", x0_mean, (d,)), ("x0_cov", x0_cov, (d, d))):
            check_real_dtype(name, a)
            if a.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (d from means), got {a.shape}")
        weights = check_value(
            "weights", weights.astype(means.dtype),
            lambda xp, w: ~(xp.all(xp.isfinite(w)) & xp.all(w >= 0) & (xp.sum(w) > 0)),
            "be finite, non-negative and not all zero",
        )
        self.interpolant = interpolant
        self.weights = weights / jnp.sum(weights)
        self.means = checked_finite("means", means)
        self.covs = check_positive_definite("covs", covs.astype(means.dtype))
        self.x0_mean = checked_finite("x0_mean", x0_mean.astype(means.dtype))
        self.x0_cov = check_positive_definite("x0_cov", x0_cov.astype(means.dtype))

    def _components(self, t):
        it = self.interpolant
        t = jnp.asarray(t, self.means.dtype)
        a, b, g2 = it.alpha(t), it.beta(t), it.gamma(t) ** 2
        ad, bd = it.alpha_dot(t), it.beta_dot(t)
        gg = it.gamma_gamma_dot(t)
        eye = jnp.eye(self.means.shape[1], dtype=self.means.dtype)
        mu = a * self.x0_mean + b * self.means
        sigma = a**2 * self.x0_cov + b**2 * self.covs + g2 * eye
        cross = a * ad * self.x0_cov + b * bd * self.covs + gg * eye
        mean_dot = ad * self.x0_mean + bd * self.means
        return mu, sigma, cross, mean_dot

    def _solve(self, t, x):
        mu, sigma, cross, mean_dot = self._components(t)
        chol = jnp.linalg.cholesky(sigma)
        diff = x - mu
        w = jax.vmap(lambda c, r: jax.scipy.linalg.cho_solve((c, True), r))(chol, diff)  # Σ_k^{-1}(x-μ_k)
        logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
        d = x.shape[-1]
        logn = -0.5 * (jnp.sum(diff * w, -1) + logdet + d * jnp.log(2 * jnp.pi))
        logw = jnp.log(self.weights) + logn
        return w, cross, mean_dot, logw

    def log_prob(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, ""]:
        r""":math:`\log\rho_t(x)`."""
        return jax.scipy.special.logsumexp(self._solve(t, x)[3])

    def velocity(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        r"""The exact velocity :math:`b(t, x)`."""
        w, cross, mean_dot, logw = self._solve(t, x)
        r = jax.nn.softmax(logw)
        return jnp.einsum("k,kd->d", r, mean_dot + jnp.einsum("kij,kj->ki", cross, w))

    def score(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        r"""The exact score :math:`\nabla\log\rho_t(x)`."""
        w, _, _, logw = self._solve(t, x)
        return -jnp.einsum("k,kd->d", jax.nn.softmax(logw), w)

    def denoiser(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        r"""The exact denoiser :math:`\eta = -c(t)\,s`."""
        return -self.interpolant.noise_coefficient(jnp.asarray(t, self.means.dtype)) * self.score(t, x)

    def __call__(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """The velocity (so the object itself is a field for the samplers)."""
        return self.velocity(t, x)
