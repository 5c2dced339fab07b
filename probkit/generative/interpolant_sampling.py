r"""Sampling and likelihoods for interpolant (and any other) velocity fields.

The ``model`` is any callable ``(t, x) -> R^d`` for one point (a trained network, a
:class:`VelocityFromV`, or an exact field), so the samplers are generic:

- :func:`sample_ode`: :math:`dX = b(t, X)\,dt` from ``t0`` to ``t1``.
- :func:`sample_sde`: :math:`dX = (b + \epsilon(t)s)\,dt + \sqrt{2\epsilon(t)}\,dW` forward
  (``t0 < t1``) or :math:`dX = (b - \epsilon s)\,dt + \sqrt{2\epsilon}\,dW^B` backward
  (``t1 < t0``); every :math:`\epsilon \ge 0` has the marginals of the ODE.
  The reverse-time SDE of a score-based diffusion with forward
  :math:`dX = f\,dt + g\,dW` is the backward case with
  :math:`b = f - \tfrac12 g^2 s` (the probability-flow field) and :math:`\epsilon = g^2/2`.
- :func:`log_prob`: :math:`\log\rho_1(x)` by the probability-flow ODE back to the
  standard Gaussian at ``t = 0``.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, ScalarLike

from .._validate import check_finite, check_positive, check_positive_int, is_concrete
from .interpolant import Interpolant
from .sampling import Field, check_field, ode_log_prob, solve_ode, solve_sde

__all__ = ["sample_ode", "sample_sde", "log_prob", "standard_normal_log_prob", "noise_scaled_eps"]


def standard_normal_log_prob(x: Float[Array, " d"]) -> Float[Array, ""]:
    r""":math:`\log N(x; 0, I)` for one point."""
    return -0.5 * (jnp.sum(x**2) + x.shape[-1] * jnp.log(2 * jnp.pi))


def _initial_points(key, x0, dim) -> Array:
    if isinstance(x0, int) and not isinstance(x0, bool):
        n = check_positive_int("x0", x0)
        if dim is None:
            raise ValueError("dim is required when x0 is a number of points")
        dim = check_positive_int("dim", dim)
        return jax.random.normal(key, (n, dim))
    x0 = jnp.asarray(x0)
    if x0.ndim != 2:
        raise ValueError(f"x0 must be starting points of shape (n, d) or an int n, got shape {x0.shape}")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        x0 = x0.astype(jnp.result_type(float))
    check_finite("x0", x0)
    return x0


def _check_model(model) -> None:
    if not callable(model):
        raise TypeError(f"model must be a callable field (t, x) -> R^d, got {type(model).__name__}")


def sample_ode(
    key: PRNGKeyArray,
    model: Field,
    x0: Float[Array, "n d"] | int,
    *,
    dim: int | None = None,
    t0: ScalarLike = 0.0,
    t1: ScalarLike = 1.0,
    solver: str = "tsit5",
    n_steps: int = 100,
    adaptive: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    return_nfe: bool = False,
):
    r"""Push ``x0`` through :math:`\dot X = b(t, X)` from ``t0`` to ``t1``.

    Args:
        key: used only when ``x0`` is an int ``n``: then ``x0 ~ N(0, I_dim)``.
        model: the velocity field ``(t, x) -> R^d``.
        x0: starting points ``(n, d)`` (or ``n`` with ``dim``).
        t0, t1: start and end times (``t1 < t0`` runs backward, e.g. data → base).
        solver, n_steps, adaptive, rtol, atol: see :func:`~probkit.generative.sampling.solve_ode`.
        return_nfe: also return the field evaluations per point.

    Returns:
        samples ``(n, d)`` (and ``nfe``).
    """
    _check_model(model)
    x0 = _initial_points(key, x0, dim)
    check_field("model", model, x0, "x0")
    x1, nfe = solve_ode(model, x0, t0, t1, solver=solver, n_steps=n_steps, adaptive=adaptive, rtol=rtol, atol=atol)
    return (x1, nfe) if return_nfe else x1


def noise_scaled_eps(interpolant: Interpolant, eps: float, *, n_grid: int = 1001) -> Callable[[ScalarLike], Array]:
    r""":math:`\epsilon(t) = \epsilon\,c(t)/\max_u c(u)` with :math:`c` the noise coefficient
    (:math:`1-t` one-sided linear, :math:`\sqrt{t(1-t)}` two-sided ...).

    Then :math:`\epsilon(t)s = -\epsilon\,\eta/\max c` stays bounded where the score
    :math:`-\eta/c` is singular, so errors of a learned :math:`b` or :math:`\eta` are
    not amplified at the endpoints.
    """
    if not isinstance(interpolant, Interpolant):
        raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
    check_positive("eps", eps, allow_zero=True)
    c_max = float(jnp.max(jax.vmap(interpolant.noise_coefficient)(jnp.linspace(0.0, 1.0, n_grid))))
    return _NoiseScaledEps(interpolant, float(eps) / c_max)


class _NoiseScaledEps(eqx.Module):
    interpolant: Interpolant
    scale: float

    def __call__(self, t):
        return self.scale * self.interpolant.noise_coefficient(t)


class _ConstantEps(eqx.Module):
    value: float

    def __call__(self, t):
        return jnp.asarray(self.value)


_EPS_MESSAGE = "eps(t) must be finite and >= 0 (the diffusion is sqrt(2 eps(t)))"


def _eps_fn(eps, lo, hi) -> Callable[[ScalarLike], ScalarLike]:
    """``eps`` as a function of time; a callable is probed at 33 times in ``[lo, hi]``."""
    if not callable(eps):
        check_positive("eps", eps, allow_zero=True)
        return _ConstantEps(float(eps))
    if is_concrete(lo) and is_concrete(hi):
        ts = jnp.linspace(float(lo), float(hi), 33)
        values = np.broadcast_to(np.asarray(jax.vmap(eps)(ts), np.float64), ts.shape)
        bad = ~np.isfinite(values) | (values < 0)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(f"{_EPS_MESSAGE}; got eps({float(ts[i]):.4g}) = {values[i]:.4g}")
    return eps


def sample_sde(
    key: PRNGKeyArray,
    model: Field,
    x0: Float[Array, "n d"] | int,
    eps: float | Callable[[ScalarLike], ScalarLike],
    *,
    score: Field | None = None,
    interpolant: Interpolant | None = None,
    dim: int | None = None,
    t0: ScalarLike = 0.0,
    t1: ScalarLike = 1.0,
    t_clip: float = 1e-3,
    solver: str = "euler",
    n_steps: int = 500,
    return_nfe: bool = False,
):
    r"""Integrate the interpolant SDE with diffusion coefficient :math:`\epsilon(t) \ge 0`.

    Forward (``t0 < t1``): :math:`dX = (b + \epsilon s)\,dt + \sqrt{2\epsilon}\,dW`;
    backward (``t1 < t0``): :math:`dX = (b - \epsilon s)\,dt + \sqrt{2\epsilon}\,dW^B`.

    Args:
        key: PRNG key (Brownian path; and ``x0`` draws when ``x0`` is an int).
        model: the velocity :math:`b(t, x)`.
        x0: starting points ``(n, d)`` at ``t0`` (or ``n`` with ``dim``: ``N(0, I)``).
        eps: constant :math:`\epsilon \ge 0` or a function ``t -> eps(t) >= 0`` (checked at 33
            times before sampling, and by :func:`equinox.error_if` at every step); for a learned
            model prefer :func:`noise_scaled_eps`, which vanishes where the score is singular.
        score: :math:`s(t, x) = \nabla\log\rho_t(x)` (e.g.
            ``lambda t, x: interpolant.score_from_denoiser(t, eta(t, x))``). If ``None``,
            ``interpolant`` must be one-sided and :math:`s` comes from :math:`b`
            (:meth:`Interpolant.score_from_velocity`).
        t_clip: the fields are evaluated at times clipped to
            ``[min(t0,t1) + t_clip, max(t0,t1) - t_clip]``, avoiding the singular
            score (:math:`1/c(t)`) at the endpoints.
        solver: ``euler`` (Euler–Maruyama), ``heun`` or ``shark`` (higher order for
            this additive noise). n_steps: number of steps.
        return_nfe: also return the evaluations of ``model`` per point.

    Returns:
        samples ``(n, d)`` (and ``nfe``).
    """
    _check_model(model)
    if score is None:
        if interpolant is None or not interpolant.gaussian_base:
            raise ValueError(
                "sample_sde needs score=..., or a one-sided interpolant=... (gaussian_base=True) "
                "from which the score follows from the velocity"
            )
    elif not callable(score):
        raise TypeError(f"score must be a callable (t, x) -> R^d, got {type(score).__name__}")
    if not (isinstance(t_clip, (int, float)) and t_clip >= 0):
        raise ValueError(f"t_clip must be a non-negative float, got {t_clip!r}")
    k_x, k_w = jax.random.split(key)
    x0 = _initial_points(k_x, x0, dim)
    check_field("model", model, x0, "x0")
    if score is not None:
        check_field("score", score, x0, "x0")
    eps_t = _eps_fn(eps, jnp.minimum(t0, t1) + t_clip, jnp.maximum(t0, t1) - t_clip)
    x1, nfe = _sample_sde_core(k_w, model, score, interpolant, x0, eps_t, t0, t1, t_clip, solver, n_steps)
    return (x1, nfe) if return_nfe else x1


@eqx.filter_jit
def _sample_sde_core(k_w, model, score, interpolant, x0, eps_t, t0, t1, t_clip, solver, n_steps):
    if score is None:
        score = lambda t, x: interpolant.score_from_velocity(t, x, model(t, x))  # noqa: E731
    lo, hi = jnp.minimum(t0, t1) + t_clip, jnp.maximum(t0, t1) - t_clip
    sign = jnp.where(jnp.asarray(t1) >= jnp.asarray(t0), 1.0, -1.0)

    def drift(t, x):
        t = jnp.clip(t, lo, hi).astype(x.dtype)
        return model(t, x) + (sign * eps_t(t)).astype(x.dtype) * score(t, x)

    def diffusion(t):
        e = jnp.asarray(eps_t(jnp.clip(t, lo, hi)))
        return jnp.sqrt(2 * eqx.error_if(e, ~jnp.isfinite(e) | (e < 0), _EPS_MESSAGE))

    return solve_sde(k_w, drift, diffusion, x0, t0, t1, solver=solver, n_steps=n_steps)


def log_prob(
    model: Field,
    x: Float[Array, "n d"],
    *,
    t_data: ScalarLike = 1.0,
    t_base: ScalarLike = 0.0,
    base_log_prob: Callable[[Float[Array, " d"]], Float[Array, ""]] = standard_normal_log_prob,
    divergence_method: str = "auto",
    key: PRNGKeyArray | None = None,
    n_probes: int = 1,
    solver: str = "tsit5",
    n_steps: int = 100,
    adaptive: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    return_nfe: bool = False,
):
    r""":math:`\log\rho_{t_{data}}(x)` by the probability-flow ODE of ``model`` to the base
    (standard Gaussian at ``t_base`` by default — a one-sided interpolant):
    :math:`\log\rho_1(x) = \log\rho_0(X_0) - \int_0^1 \nabla\cdot b(t, X_t)\,dt`.

    ``divergence_method``: ``"exact"``, ``"hutchinson"`` (needs ``key``; ``n_probes``
    Rademacher probes per point) or ``"auto"`` (exact for ``d <= 16``). Other arguments
    as :func:`~probkit.generative.sampling.ode_log_prob`.

    Returns:
        log densities ``(n,)`` (and ``nfe``).
    """
    _check_model(model)
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be points of shape (n, d), got shape {x.shape}")
    check_finite("x", x)
    check_field("model", model, x, "x")
    lp, nfe = ode_log_prob(
        model,
        x,
        t_data,
        t_base,
        base_log_prob,
        divergence_method=divergence_method,
        key=key,
        n_probes=n_probes,
        solver=solver,
        n_steps=n_steps,
        adaptive=adaptive,
        rtol=rtol,
        atol=atol,
    )
    return (lp, nfe) if return_nfe else lp
