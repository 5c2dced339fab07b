r"""Stochastic interpolants (Albergo, Boffi & Vanden-Eijnden, 2023).

:math:`x_t = \alpha(t)\,x_0 + \beta(t)\,x_1 + \gamma(t)\,z`, :math:`z \sim N(0, I)`,
with :math:`\alpha(0)=\beta(1)=1`, :math:`\alpha(1)=\beta(0)=0`,
:math:`\gamma(0)=\gamma(1)=0`. Time derivatives come from autodiff.

Two kinds:

- *two-sided* (``gaussian_base=False``): any :math:`\rho_0, \rho_1`; the Gaussian
  noise is :math:`z` with coefficient :math:`\gamma`;
- *one-sided* (``gaussian_base=True``, :func:`one_sided`): :math:`x_0 \sim N(0, I)`,
  :math:`\gamma = 0`; the Gaussian noise is :math:`x_0` with coefficient :math:`\alpha`.

In both cases the *denoiser* is :math:`\eta(t,x) = E[\text{noise} \mid x_t = x]` and the
score :math:`s = \nabla\log\rho_t = -\eta / c(t)` with :math:`c` the noise coefficient
(:meth:`Interpolant.noise_coefficient`). For one-sided interpolants the score also
follows from the velocity alone (:meth:`Interpolant.score_from_velocity`).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, ScalarLike

from .._validate import check_positive

__all__ = [
    "Interpolant",
    "linear",
    "trig",
    "encoder_decoder",
    "one_sided",
    "gamma_sqrt",
    "gamma_quadratic",
    "gamma_zero",
]

Schedule = Callable[[ScalarLike], ScalarLike]


def _deriv(f: Schedule, t: ScalarLike) -> Float[Array, ""]:
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.result_type(float))
    return jax.grad(lambda s: jnp.asarray(f(s), s.dtype))(t)


def gamma_zero(t: ScalarLike) -> Float[Array, ""]:
    r""":math:`\gamma(t) = 0` (deterministic interpolant / flow matching)."""
    return jnp.zeros_like(jnp.asarray(t, jnp.result_type(t, float)))


class gamma_sqrt(eqx.Module):
    r""":math:`\gamma(t) = \sqrt{a\,t(1-t)}` (infinite slope at the endpoints)."""

    a: float = 1.0

    def __check_init__(self):
        check_positive("a", self.a)

    def __call__(self, t: ScalarLike) -> Float[Array, ""]:
        t = jnp.asarray(t, jnp.result_type(t, float))
        return jnp.sqrt(self.squared(t))

    def squared(self, t: ScalarLike) -> Float[Array, ""]:
        r""":math:`\gamma(t)^2 = a\,t(1-t)` (smooth, for :math:`\gamma\dot\gamma`)."""
        t = jnp.asarray(t, jnp.result_type(t, float))
        return self.a * jnp.clip(t * (1 - t), 0.0)


class gamma_quadratic(eqx.Module):
    r""":math:`\gamma(t) = a\,t(1-t)`."""

    a: float = 1.0

    def __check_init__(self):
        check_positive("a", self.a)

    def __call__(self, t: ScalarLike) -> Float[Array, ""]:
        t = jnp.asarray(t, jnp.result_type(t, float))
        return self.a * t * (1 - t)


class Interpolant(eqx.Module):
    r"""The interpolant :math:`x_t = \alpha(t)x_0 + \beta(t)x_1 + \gamma(t)z`.

    Args:
        alpha, beta, gamma: scalar schedules ``t -> float`` (differentiable).
        gaussian_base: ``True`` for a one-sided interpolant with :math:`x_0\sim N(0,I)`
            (then ``gamma`` must be zero and ``x0`` is the noise).
    """

    alpha: Schedule
    beta: Schedule
    gamma: Schedule = gamma_zero
    gaussian_base: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        for name in ("alpha", "beta", "gamma"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be a callable schedule t -> float")
        if self.gaussian_base and self.gamma is not gamma_zero:
            raise ValueError("a one-sided interpolant (gaussian_base=True) needs gamma=gamma_zero")

    # -- schedules and their derivatives ---------------------------------------------
    def alpha_dot(self, t: ScalarLike) -> Float[Array, ""]:
        return _deriv(self.alpha, t)

    def beta_dot(self, t: ScalarLike) -> Float[Array, ""]:
        return _deriv(self.beta, t)

    def gamma_dot(self, t: ScalarLike) -> Float[Array, ""]:
        return _deriv(self.gamma, t)

    def gamma_gamma_dot(self, t: ScalarLike) -> Float[Array, ""]:
        r""":math:`\gamma\dot\gamma = \tfrac12\,d\gamma^2/dt`, through the schedule's
        ``squared`` method when it has one (finite where :math:`\dot\gamma` is not)."""
        squared = getattr(self.gamma, "squared", None)
        if squared is None:
            return self.gamma(t) * self.gamma_dot(t)
        return 0.5 * _deriv(squared, t)

    def noise_coefficient(self, t: ScalarLike) -> Float[Array, ""]:
        r"""Coefficient of the Gaussian noise: :math:`\alpha(t)` if one-sided else :math:`\gamma(t)`."""
        return self.alpha(t) if self.gaussian_base else self.gamma(t)

    # -- the interpolant ------------------------------------------------------------
    def __call__(self, t, x0, x1, z) -> Float[Array, " d"]:
        r""":math:`x_t` for one sample (``z`` ignored when one-sided)."""
        return self.alpha(t) * x0 + self.beta(t) * x1 + self.gamma(t) * z

    def velocity_target(self, t, x0, x1, z) -> Float[Array, " d"]:
        r""":math:`\partial_t x_t = \dot\alpha x_0 + \dot\beta x_1 + \dot\gamma z`, whose
        conditional mean given :math:`x_t` is the velocity :math:`b`."""
        return self.alpha_dot(t) * x0 + self.beta_dot(t) * x1 + self.gamma_dot(t) * z

    def noise(self, x0, z) -> Float[Array, " d"]:
        """The Gaussian noise variable whose conditional mean is the denoiser."""
        return x0 if self.gaussian_base else z

    # -- conversions between fields -----------------------------------------------------
    def score_from_denoiser(self, t: ScalarLike, eta: Float[Array, " d"]) -> Float[Array, " d"]:
        r""":math:`s = -\eta / c(t)`."""
        return -eta / self.noise_coefficient(t)

    def score_from_velocity(self, t: ScalarLike, x: Float[Array, " d"], b: Float[Array, " d"]) -> Float[Array, " d"]:
        r"""Score from the velocity, one-sided only. With :math:`m_0 = E[x_0|x_t=x]`,
        :math:`x = \alpha m_0 + \beta m_1` and :math:`b = \dot\alpha m_0 + \dot\beta m_1`, so
        :math:`m_0 = (\beta b - \dot\beta x)/(\dot\alpha\beta - \dot\beta\alpha)` and
        :math:`s = -m_0/\alpha`."""
        if not self.gaussian_base:
            raise ValueError(
                "score_from_velocity needs a one-sided interpolant (gaussian_base=True); "
                "for two-sided interpolants learn the denoiser eta and use score_from_denoiser"
            )
        a, bt = self.alpha(t), self.beta(t)
        ad, bd = self.alpha_dot(t), self.beta_dot(t)
        m0 = (bt * b - bd * x) / (ad * bt - bd * a)
        return -m0 / a


def _linear_alpha(t):
    return 1 - t


def _linear_beta(t):
    return t


def _trig_alpha(t):
    return jnp.cos(0.5 * jnp.pi * t)


def _trig_beta(t):
    return jnp.sin(0.5 * jnp.pi * t)


def _ed_alpha(t):
    return jnp.where(t < 0.5, jnp.cos(jnp.pi * t) ** 2, 0.0)


def _ed_beta(t):
    return jnp.where(t >= 0.5, jnp.cos(jnp.pi * t) ** 2, 0.0)


def _ed_gamma(t):
    return jnp.sin(jnp.pi * t) ** 2


def linear(gamma: Schedule | None = None) -> Interpolant:
    r"""Two-sided :math:`\alpha = 1-t`, :math:`\beta = t`, with ``gamma`` (default
    :math:`\sqrt{t(1-t)}`; pass :func:`gamma_zero` for a deterministic interpolant)."""
    return Interpolant(_linear_alpha, _linear_beta, gamma_sqrt() if gamma is None else gamma)


def trig(gamma: Schedule | None = None) -> Interpolant:
    r"""Two-sided :math:`\alpha = \cos\frac{\pi t}{2}`, :math:`\beta = \sin\frac{\pi t}{2}`."""
    return Interpolant(_trig_alpha, _trig_beta, gamma_sqrt() if gamma is None else gamma)


def encoder_decoder() -> Interpolant:
    r"""Encoder-decoder: :math:`x_t = \cos^2(\pi t)(1_{t<1/2}x_0 + 1_{t\ge1/2}x_1) + \sin^2(\pi t) z`
    (data → pure noise at :math:`t=1/2` → data)."""
    return Interpolant(_ed_alpha, _ed_beta, _ed_gamma)


def one_sided(schedule: str = "linear") -> Interpolant:
    r"""One-sided interpolant from :math:`x_0 \sim N(0,I)`: ``"linear"``
    (:math:`x_t = (1-t)x_0 + t x_1`, flow matching) or ``"trig"``
    (:math:`\cos\frac{\pi t}{2}x_0 + \sin\frac{\pi t}{2}x_1`, variance preserving)."""
    if schedule == "linear":
        return Interpolant(_linear_alpha, _linear_beta, gamma_zero, gaussian_base=True)
    if schedule == "trig":
        return Interpolant(_trig_alpha, _trig_beta, gamma_zero, gaussian_base=True)
    raise ValueError(f"unknown schedule {schedule!r}; expected one of ['linear', 'trig']")
