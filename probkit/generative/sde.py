r"""Forward SDEs of score-based diffusion (Song et al., 2021).

:math:`dX = f(t, X)\,dt + g(t)\,dW` on :math:`t\in[0, T]` with a drift linear in
:math:`x`, so that started from :math:`x_0` the marginal is Gaussian,
:math:`X_t \mid x_0 \sim N(m(t)\,x_0,\ \sigma(t)^2 I)` (:meth:`AbstractSDE.marginal`
returns :math:`(m, \sigma)`), and the density :math:`p_t` obeys the Fokker–Planck equation
:math:`\partial_t p = -\nabla\cdot(f p) + \tfrac12 g^2\Delta p`.

- :class:`VPSDE`: :math:`f = -\tfrac12\beta(t)x`, :math:`g = \sqrt{\beta(t)}`,
  :math:`\beta(t) = \beta_{min} + t(\beta_{max} - \beta_{min})`;
  :math:`m = e^{-\frac12 B(t)}`, :math:`\sigma^2 = 1 - e^{-B(t)}`, :math:`B = \int_0^t\beta`.
  Constant :math:`\beta` (:meth:`VPSDE.ou`) is the Ornstein–Uhlenbeck process
  :math:`dX = -\tfrac\beta2 X\,dt + \sqrt\beta\,dW` with stationary law :math:`N(0, I)`.
- :class:`VESDE`: :math:`f = 0`, :math:`\sigma_*(t) = \sigma_{min}(\sigma_{max}/\sigma_{min})^t`,
  :math:`g = \sigma_*(t)\sqrt{2\log(\sigma_{max}/\sigma_{min})}`; :math:`m = 1`,
  :math:`\sigma^2 = \sigma_*(t)^2 - \sigma_{min}^2` (exact, so :math:`\sigma(0) = 0`).
- :class:`SubVPSDE`: :math:`f = -\tfrac12\beta x`, :math:`g = \sqrt{\beta(1 - e^{-2B})}`;
  :math:`m = e^{-\frac12 B}`, :math:`\sigma = 1 - e^{-B}`.

Gaussian data :math:`N(\mu, \Sigma)` stays Gaussian, :math:`p_t = N(m\mu, m^2\Sigma + \sigma^2 I)`
(:meth:`AbstractSDE.gaussian_log_prob`, :meth:`AbstractSDE.gaussian_score`): the exact
reference of the tests.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, ScalarLike

from .._validate import check_positive

__all__ = ["AbstractSDE", "VPSDE", "VESDE", "SubVPSDE"]


def _time(t, like=None):
    dtype = jnp.result_type(float) if like is None else like.dtype
    return jnp.asarray(t, dtype)


class AbstractSDE(eqx.Module):
    r"""A forward SDE :math:`dX = f(t,X)\,dt + g(t)\,dW` with Gaussian transition kernels.

    Subclasses define :meth:`drift`, :meth:`diffusion`, :meth:`marginal`, :attr:`T`
    (the end time), :attr:`t_eps` (the default smallest time used in training and
    sampling) and :meth:`prior_std` (:math:`p_T \approx N(0, \text{prior\_std}^2 I)`).
    """

    T: eqx.AbstractVar[float]
    t_eps: eqx.AbstractVar[float]

    @abc.abstractmethod
    def drift(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        r""":math:`f(t, x)` for one point."""

    @abc.abstractmethod
    def diffusion(self, t: ScalarLike) -> Float[Array, ""]:
        r""":math:`g(t)`."""

    @abc.abstractmethod
    def marginal(self, t: ScalarLike) -> tuple[Float[Array, ""], Float[Array, ""]]:
        r""":math:`(m(t), \sigma(t))` with :math:`X_t = m(t)x_0 + \sigma(t)z`."""

    @abc.abstractmethod
    def prior_std(self) -> float:
        r"""Standard deviation of the prior :math:`N(0, \text{prior\_std}^2 I)` at :math:`T`."""

    def drift_divergence(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, ""]:
        r""":math:`\nabla\cdot f(t, x)` (exact Jacobian trace; closed form in subclasses)."""
        return jnp.trace(jax.jacfwd(self.drift, argnums=1)(t, x))

    def perturb(self, t: ScalarLike, x0: Float[Array, " d"], z: Float[Array, " d"]) -> Float[Array, " d"]:
        r""":math:`x_t = m(t)x_0 + \sigma(t)z`."""
        m, s = self.marginal(_time(t, x0))
        return m * x0 + s * z

    def prior_sample(self, key: PRNGKeyArray, shape: tuple[int, ...], dtype=None) -> Array:
        r"""Draws of shape ``shape`` (e.g. ``(n, d)``) from the prior."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        return self.prior_std() * jax.random.normal(key, shape, dtype)

    def prior_log_prob(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        r""":math:`\log N(x; 0, \text{prior\_std}^2 I)` for one point."""
        v = self.prior_std() ** 2
        return -0.5 * (jnp.sum(x**2) / v + x.shape[-1] * jnp.log(2 * jnp.pi * v))

    def _gaussian(self, t, mean, cov):
        mean = jnp.asarray(mean)
        m, s = self.marginal(_time(t, mean))
        return m * mean, m**2 * jnp.asarray(cov, mean.dtype) + s**2 * jnp.eye(mean.shape[-1], dtype=mean.dtype)

    def gaussian_log_prob(self, t: ScalarLike, x: Float[Array, " d"], mean: Float[Array, " d"],
                          cov: Float[Array, "d d"]) -> Float[Array, ""]:
        r""":math:`\log p_t(x)` for data :math:`N(\mu, \Sigma)`: :math:`N(x; m\mu, m^2\Sigma + \sigma^2 I)`."""
        mu, c = self._gaussian(t, mean, cov)
        return jax.scipy.stats.multivariate_normal.logpdf(x, mu, c)

    def gaussian_score(self, t: ScalarLike, x: Float[Array, " d"], mean: Float[Array, " d"],
                       cov: Float[Array, "d d"]) -> Float[Array, " d"]:
        r""":math:`\nabla\log p_t(x) = -(m^2\Sigma + \sigma^2 I)^{-1}(x - m\mu)` for data :math:`N(\mu, \Sigma)`."""
        mu, c = self._gaussian(t, mean, cov)
        return -jnp.linalg.solve(c, x - mu)


def _check_time_args(T, t_eps):
    check_positive("T", T)
    check_positive("t_eps", t_eps)
    if not float(t_eps) < float(T):
        raise ValueError(f"t_eps must be smaller than T = {T}, got {t_eps!r}")


class _BetaSchedule(AbstractSDE):
    """Shared linear β(t) = β_min + t(β_max − β_min), its integral B(t), fields and checks."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0
    t_eps: float = 1e-3

    def __check_init__(self):
        _check_betas(self.beta_min, self.beta_max)
        _check_time_args(self.T, self.t_eps)

    def beta(self, t: ScalarLike) -> Float[Array, ""]:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integrated_beta(self, t: ScalarLike) -> Float[Array, ""]:
        r""":math:`B(t) = \int_0^t\beta = \beta_{min}t + \tfrac12(\beta_{max}-\beta_{min})t^2`."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def drift(self, t, x):
        return -0.5 * self.beta(_time(t, x)) * x

    def drift_divergence(self, t, x):
        return -0.5 * self.beta(_time(t, x)) * x.shape[-1]

    def prior_std(self) -> float:
        return 1.0


def _check_betas(beta_min, beta_max):
    check_positive("beta_min", beta_min)
    check_positive("beta_max", beta_max)
    if float(beta_max) < float(beta_min):
        raise ValueError(f"beta_max must be >= beta_min = {beta_min}, got {beta_max!r}")


class VPSDE(_BetaSchedule):
    r"""Variance-preserving SDE :math:`dX = -\tfrac12\beta(t)X\,dt + \sqrt{\beta(t)}\,dW`.

    Args:
        beta_min, beta_max: the linear schedule (defaults 0.1, 20 as in Song et al.);
            ``beta_min == beta_max`` is the Ornstein–Uhlenbeck process (:meth:`ou`).
        T: end time. t_eps: default smallest time for training and sampling.
    """

    @classmethod
    def ou(cls, beta: float = 2.0, T: float = 5.0, t_eps: float = 1e-3) -> VPSDE:
        r"""Ornstein–Uhlenbeck :math:`dX = -\tfrac\beta2 X\,dt + \sqrt\beta\,dW` (``beta = 2``:
        :math:`dX = -X\,dt + \sqrt2\,dW`), i.e. a VP SDE with constant :math:`\beta`."""
        return cls(beta_min=beta, beta_max=beta, T=T, t_eps=t_eps)

    def diffusion(self, t):
        return jnp.sqrt(self.beta(_time(t)))

    def marginal(self, t):
        b = self.integrated_beta(_time(t))
        return jnp.exp(-0.5 * b), jnp.sqrt(-jnp.expm1(-b))


class SubVPSDE(_BetaSchedule):
    r"""Sub-VP SDE :math:`dX = -\tfrac12\beta X\,dt + \sqrt{\beta(1 - e^{-2B(t)})}\,dW`
    (marginal std :math:`1 - e^{-B}` below the VP one). Arguments as :class:`VPSDE`."""

    def diffusion(self, t):
        t = _time(t)
        return jnp.sqrt(self.beta(t) * -jnp.expm1(-2 * self.integrated_beta(t)))

    def marginal(self, t):
        b = self.integrated_beta(_time(t))
        return jnp.exp(-0.5 * b), -jnp.expm1(-b)


class VESDE(AbstractSDE):
    r"""Variance-exploding SDE :math:`dX = \sigma_*(t)\sqrt{2\log(\sigma_{max}/\sigma_{min})}\,dW`,
    :math:`\sigma_*(t) = \sigma_{min}(\sigma_{max}/\sigma_{min})^{t/T}`.

    Args:
        sigma_min, sigma_max: noise scales (defaults 0.01, 50); the prior is
            :math:`N(0, \sigma_{max}^2 I)`.
        T: end time. t_eps: default smallest time (1e-5).
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    T: float = 1.0
    t_eps: float = 1e-5

    def __check_init__(self):
        check_positive("sigma_min", self.sigma_min)
        check_positive("sigma_max", self.sigma_max)
        if not float(self.sigma_max) > float(self.sigma_min):
            raise ValueError(f"sigma_max must exceed sigma_min = {self.sigma_min}, got {self.sigma_max!r}")
        _check_time_args(self.T, self.t_eps)

    def sigma(self, t: ScalarLike) -> Float[Array, ""]:
        r""":math:`\sigma_*(t)`."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** (t / self.T)

    def drift(self, t, x):
        return jnp.zeros_like(x)

    def drift_divergence(self, t, x):
        return jnp.zeros((), x.dtype)

    def diffusion(self, t):
        log_ratio = jnp.log(self.sigma_max / self.sigma_min)
        return self.sigma(_time(t)) * jnp.sqrt(2 * log_ratio / self.T)

    def marginal(self, t):
        t = _time(t)
        # σ*(t)² − σ_min² = σ_min² (r^{2t/T} − 1), computed without cancellation
        var = self.sigma_min**2 * jnp.expm1(2 * (t / self.T) * jnp.log(self.sigma_max / self.sigma_min))
        return jnp.ones_like(t), jnp.sqrt(var)

    def prior_std(self) -> float:
        return float(self.sigma_max)
