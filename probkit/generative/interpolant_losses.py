r"""Quadratic losses for stochastic interpolants (unique minimisers = the exact fields).

For one sample :math:`(t, x_0, x_1, z)` with :math:`x_t` the interpolant and
:math:`\xi` its Gaussian noise (:math:`z`, or :math:`x_0` when one-sided) with
coefficient :math:`c(t)`:

- ``"velocity"``: :math:`\tfrac12|b(x_t)|^2 - (\dot\alpha x_0 + \dot\beta x_1 + \dot\gamma z)\cdot b(x_t)`,
  minimised by :math:`b = E[\dot x_t \mid x_t]`;
- ``"denoiser"``: :math:`\tfrac12|\eta(x_t)|^2 - \xi\cdot\eta(x_t)`, minimised by
  :math:`\eta = E[\xi\mid x_t]`;
- ``"score"``: :math:`\tfrac12|s(x_t)|^2 + c^{-1}\xi\cdot s(x_t)`, minimised by
  :math:`s = -\eta/c = \nabla\log\rho_t`;
- ``"v"`` (v-parameterisation): the network predicts :math:`v = b/\kappa(t)` with
  :math:`\kappa = (\dot\alpha^2 + \dot\beta^2 + \dot\gamma^2)^{1/2}`, loss
  :math:`\tfrac12|v|^2 - (\dot x_t/\kappa)\cdot v`; the regression target has bounded
  size even where :math:`\dot\gamma` blows up. Recover :math:`b` with :class:`VelocityFromV`.
  (For the one-sided trig interpolant this is the v of Salimans & Ho up to sign.)
- ``"velocity+denoiser"``: a pair ``(b_net, eta_net)`` trained on the same draws.

*Antithetic* sampling averages the loss at :math:`\xi` and :math:`-\xi` (same
:math:`t, x_0, x_1`); this cancels the :math:`O(\dot\gamma)` noise term of the velocity
loss to first order. ``time_weight(t)`` multiplies the per-sample loss; :math:`t` is
uniform on :math:`[t_{min}, 1 - t_{min}]`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, ScalarLike

from .._validate import check_choice, check_finite, check_real_dtype
from .interpolant import Interpolant

__all__ = [
    "TARGETS", "interpolant_loss", "make_interpolant_loss", "VelocityFromV", "as_sampler", "sample_shape", "v_scale",
]

TARGETS = ("velocity", "denoiser", "score", "v", "velocity+denoiser")


def v_scale(interpolant: Interpolant, t: ScalarLike) -> Float[Array, ""]:
    r""":math:`\kappa(t) = (\dot\alpha^2 + \dot\beta^2 + \dot\gamma^2)^{1/2}` (finite only where
    :math:`\dot\gamma` is; sample :math:`t` away from the endpoints for :math:`\gamma=\sqrt{t(1-t)}`)."""
    return jnp.sqrt(interpolant.alpha_dot(t) ** 2 + interpolant.beta_dot(t) ** 2 + interpolant.gamma_dot(t) ** 2)


class VelocityFromV(eqx.Module):
    r"""The velocity :math:`b(t, x) = \kappa(t)\,v(t, x)` of a v-parameterised network."""

    model: Callable
    interpolant: Interpolant

    def __call__(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        return v_scale(self.interpolant, t) * self.model(t, x)


def _pointwise(model, interpolant: Interpolant, target: str, t, x0, x1, noise_sign, z):
    """Per-sample loss for one sign of the noise."""
    it = interpolant
    if it.gaussian_base:
        x0 = noise_sign * x0
    else:
        z = noise_sign * z
    xt = it(t, x0, x1, z)
    if target == "velocity":
        b = model(t, xt)
        return 0.5 * jnp.sum(b**2) - jnp.dot(it.velocity_target(t, x0, x1, z), b)
    if target == "v":
        v = model(t, xt)
        return 0.5 * jnp.sum(v**2) - jnp.dot(it.velocity_target(t, x0, x1, z) / v_scale(it, t), v)
    if target == "denoiser":
        eta = model(t, xt)
        return 0.5 * jnp.sum(eta**2) - jnp.dot(it.noise(x0, z), eta)
    if target == "score":
        s = model(t, xt)
        return 0.5 * jnp.sum(s**2) + jnp.dot(it.noise(x0, z), s) / it.noise_coefficient(t)
    b_net, eta_net = model
    return _pointwise(b_net, it, "velocity", t, x0, x1, 1.0, z) + _pointwise(eta_net, it, "denoiser", t, x0, x1, 1.0, z)


def interpolant_loss(
    model,
    interpolant: Interpolant,
    t: Float[Array, " n"],
    x0: Float[Array, "n d"],
    x1: Float[Array, "n d"],
    z: Float[Array, "n d"],
    *,
    target: str = "velocity",
    antithetic: bool = True,
    time_weight: Callable[[ScalarLike], ScalarLike] | None = None,
) -> Float[Array, ""]:
    r"""Monte-Carlo estimate of the loss on a batch (see module docstring).

    ``model`` is a field ``(t, x) -> R^d`` for one point (a pair ``(b, eta)`` for
    ``"velocity+denoiser"``); ``x0`` is the Gaussian base draw for one-sided interpolants
    and ``z`` is then unused.
    """
    check_choice("target", target, TARGETS)

    def one(t_i, x0_i, x1_i, z_i):
        loss = _pointwise(model, interpolant, target, t_i, x0_i, x1_i, 1.0, z_i)
        if antithetic:
            loss = 0.5 * (loss + _pointwise(model, interpolant, target, t_i, x0_i, x1_i, -1.0, z_i))
        if time_weight is not None:
            loss = time_weight(t_i) * loss
        return loss

    return jnp.mean(jax.vmap(one)(t, x0, x1, z))


def as_sampler(name: str, source) -> Callable[[PRNGKeyArray, int], Float[Array, "n d"]]:
    """A ``(key, n) -> (n, d)`` sampler: ``source`` itself if callable, else draws with
    replacement from the rows of the data array ``source`` of shape ``(N, d)``."""
    if callable(source):
        return source
    data = jnp.asarray(source)
    check_real_dtype(name, data)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"{name} must be a sampler (key, n) -> (n, d) or a data array (N, d), got shape {data.shape}")
    if not jnp.issubdtype(data.dtype, jnp.floating):
        data = data.astype(jnp.result_type(float))
    check_finite(name, data)

    def sample(key, n):
        return data[jax.random.randint(key, (n,), 0, data.shape[0])]

    return sample


def sample_shape(name: str, sampler) -> jax.ShapeDtypeStruct:
    """The shape and dtype of ``sampler(key, 2)``, which must be ``(2, d)`` (traced, not drawn)."""
    try:
        out = jax.eval_shape(lambda key: sampler(key, 2), jax.random.PRNGKey(0))
    except Exception as err:  # noqa: BLE001 - whatever the user's sampler raises
        raise ValueError(f"{name}(key, n) failed for n=2: {type(err).__name__}: {err}") from err
    if getattr(out, "ndim", None) != 2 or out.shape[0] != 2:
        raise ValueError(f"{name}(key, n) must return shape (n, d), got {getattr(out, 'shape', out)} for n=2")
    return out


def make_interpolant_loss(
    interpolant: Interpolant,
    sample_x0,
    sample_x1,
    *,
    target: str = "velocity",
    antithetic: bool = True,
    time_weight: Callable[[ScalarLike], ScalarLike] | None = None,
    t_min: float = 1e-3,
) -> Callable:
    r"""``loss_fn(model, key, batch_size)`` for :func:`probkit.generative.training.fit`.

    Args:
        interpolant: the interpolant.
        sample_x0: sampler ``(key, n) -> (n, d)`` or data array for :math:`\rho_0`; ``None``
            for a one-sided interpolant (standard normal).
        sample_x1: sampler or data array for :math:`\rho_1`.
        target, antithetic, time_weight: see :func:`interpolant_loss`.
        t_min: :math:`t \sim U[t_{min}, 1-t_{min}]`.
    """
    if not isinstance(interpolant, Interpolant):
        raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
    check_choice("target", target, TARGETS)
    if not (isinstance(t_min, (int, float)) and 0 <= t_min < 0.5):
        raise ValueError(f"t_min must be a float in [0, 0.5), got {t_min!r}")
    if sample_x0 is None and not interpolant.gaussian_base:
        raise ValueError("sample_x0 is required for a two-sided interpolant (gaussian_base=False)")
    if sample_x0 is not None and interpolant.gaussian_base:
        raise ValueError("a one-sided interpolant draws x0 ~ N(0, I): pass sample_x0=None")
    draw_x1 = as_sampler("sample_x1", sample_x1)
    draw_x0 = None if sample_x0 is None else as_sampler("sample_x0", sample_x0)
    d1 = sample_shape("sample_x1", draw_x1).shape[1]
    d0 = d1 if draw_x0 is None else sample_shape("sample_x0", draw_x0).shape[1]
    if d0 != d1:
        raise ValueError(f"sample_x0 and sample_x1 must have the same dimension, got {d0} and {d1}")

    def loss_fn(model, key, batch_size):
        k_t, k0, k1, kz = jax.random.split(key, 4)
        x1 = draw_x1(k1, batch_size)
        x0 = jax.random.normal(k0, x1.shape, x1.dtype) if draw_x0 is None else draw_x0(k0, batch_size).astype(x1.dtype)
        z = jax.random.normal(kz, x1.shape, x1.dtype)
        t = jax.random.uniform(k_t, (batch_size,), x1.dtype, t_min, 1 - t_min)
        return interpolant_loss(model, interpolant, t, x0, x1, z, target=target, antithetic=antithetic, time_weight=time_weight)

    return loss_fn
