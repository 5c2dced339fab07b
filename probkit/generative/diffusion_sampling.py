r"""Sampling and likelihoods for score-based diffusion, on the shared diffrax helpers.

For a forward SDE :math:`dX = f\,dt + g\,dW` and a score model :math:`s \approx \nabla\log p_t`:

- :func:`reverse_sde`: the reverse-time SDE
  :math:`dX = (f - g^2 s)\,dt + g\,d\bar W` from :math:`T` to :math:`t_\epsilon`, by
  Euler–Maruyama (``method="euler"``, or ``"heun"``/``"shark"`` via diffrax), or
  ``method="pc"``: predictor–corrector (Song et al., 2021), an Euler–Maruyama
  predictor step followed by ``n_corrector`` Langevin steps
  :math:`x \leftarrow x + \epsilon s + \sqrt{2\epsilon}\,z` with
  :math:`\epsilon = 2(r\,|z|/|s|)^2` (``snr`` :math:`= r`, norms averaged over the batch).
  ``denoise=True`` ends with the noise-free step :math:`x + \sigma(t_\epsilon)^2 s`
  (Tweedie's mean; off by default).
- :func:`probability_flow_ode`: :math:`\dot X = f - \tfrac12 g^2 s` from :math:`T` to
  :math:`t_\epsilon`, fixed or adaptive steps (same marginals as the SDE when :math:`s`
  is exact).
- :func:`diffusion_log_prob`: :math:`\log p_{t_\epsilon}(x)` by the probability-flow ODE
  to :math:`T` and the prior (instantaneous change of variables).

Each can return the number of score evaluations per point (``return_nfe``).

The names differ from the interpolant samplers :func:`~probkit.generative.sample_ode` /
:func:`~probkit.generative.sample_sde` (which take a velocity field), so both stay
unambiguous.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, ScalarLike

from .._validate import check_choice, check_finite, check_positive, check_positive_int
from .diffusion_losses import _check_sde
from .score_models import as_score_fn
from .sampling import check_field, ode_log_prob, solve_ode, solve_sde
from .sde import AbstractSDE

__all__ = ["ProbabilityFlow", "ReverseDrift", "reverse_sde", "probability_flow_ode", "diffusion_log_prob"]


class ProbabilityFlow(eqx.Module):
    r"""The probability-flow field :math:`f(t, x) - \tfrac12 g(t)^2 s(t, x)`."""

    score: Callable
    sde: AbstractSDE

    def __call__(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        t = jnp.asarray(t, x.dtype)
        return self.sde.drift(t, x) - 0.5 * self.sde.diffusion(t) ** 2 * self.score(t, x)


class ReverseDrift(eqx.Module):
    r"""The reverse-time SDE drift :math:`f(t, x) - g(t)^2 s(t, x)`."""

    score: Callable
    sde: AbstractSDE

    def __call__(self, t, x):
        t = jnp.asarray(t, x.dtype)
        return self.sde.drift(t, x) - self.sde.diffusion(t) ** 2 * self.score(t, x)


def _start(key, sde, x_T, dim):
    if isinstance(x_T, int) and not isinstance(x_T, bool):
        n = check_positive_int("x_T", x_T)
        if dim is None:
            raise ValueError("dim is required when x_T is a number of points")
        return sde.prior_sample(key, (n, check_positive_int("dim", dim)))
    x_T = jnp.asarray(x_T)
    if x_T.ndim != 2:
        raise ValueError(f"x_T must be starting points of shape (n, d) or an int n, got shape {x_T.shape}")
    if not jnp.issubdtype(x_T.dtype, jnp.floating):
        x_T = x_T.astype(jnp.result_type(float))
    check_finite("x_T", x_T)
    return x_T


def _t_eps(sde, t_eps):
    t_eps = sde.t_eps if t_eps is None else t_eps
    if not (isinstance(t_eps, (int, float)) and 0 <= t_eps < sde.T):
        raise ValueError(f"t_eps must be a float in [0, T = {sde.T}), got {t_eps!r}")
    return float(t_eps)


def _tweedie(score, sde, t, x):
    s = sde.marginal(jnp.asarray(t, x.dtype))[1]
    return x + s**2 * jax.vmap(score, (None, 0))(jnp.asarray(t, x.dtype), x)


def reverse_sde(
    key: PRNGKeyArray,
    model,
    sde: AbstractSDE,
    x_T: Float[Array, "n d"] | int,
    *,
    dim: int | None = None,
    method: str = "euler",
    n_steps: int = 500,
    t_eps: float | None = None,
    snr: float = 0.16,
    n_corrector: int = 1,
    denoise: bool = False,
    return_nfe: bool = False,
):
    r"""Sample by the reverse-time SDE from :math:`T` to :math:`t_\epsilon` (module docstring).

    Args:
        key: PRNG key (prior draws when ``x_T`` is an int, Brownian path, Langevin noise).
        model: an :class:`~probkit.generative.AbstractScoreModel` or a score field ``(t, x) -> R^d``.
        sde: the forward SDE.
        x_T: starting points ``(n, d)`` at :math:`T`, or ``n`` (with ``dim``): prior draws.
        method: ``"euler"`` (Euler–Maruyama), ``"heun"``, ``"shark"`` or ``"pc"``
            (predictor–corrector with a Langevin corrector).
        n_steps: predictor steps. t_eps: final time (default ``sde.t_eps``).
        snr, n_corrector: the Langevin corrector (``"pc"`` only).
        denoise: finish with :math:`x + \sigma(t_\epsilon)^2 s(t_\epsilon, x)`.
        return_nfe: also return the score evaluations per point.

    Returns:
        samples ``(n, d)`` (and ``nfe``).
    """
    _check_sde(sde)
    score = as_score_fn(model)
    check_choice("method", method, ("euler", "heun", "shark", "pc"))
    n_steps = check_positive_int("n_steps", n_steps)
    n_corrector = check_positive_int("n_corrector", n_corrector, minimum=0)
    check_positive("snr", snr)
    t_eps = _t_eps(sde, t_eps)
    k_x, k_w = jax.random.split(key)
    x = _start(k_x, sde, x_T, dim)
    check_field("model", score, x, "x_T")
    if method == "pc":
        x, nfe = _predictor_corrector(k_w, score, sde, x, t_eps, n_steps, n_corrector, snr)
    else:
        drift = ReverseDrift(score, sde)
        x, nfe = solve_sde(k_w, drift, sde.diffusion, x, sde.T, t_eps, solver=method, n_steps=n_steps)
    if denoise:
        x, nfe = _tweedie(score, sde, t_eps, x), nfe + 1
    return (x, nfe) if return_nfe else x


@eqx.filter_jit
def _predictor_corrector(key, score, sde, x, t_eps, n_steps, n_corrector, snr):
    dtype = x.dtype
    times = jnp.linspace(sde.T, t_eps, n_steps + 1, dtype=dtype)
    batched = jax.vmap(score, (None, 0))

    def langevin(x, k, t):
        s = batched(t, x)
        z = jax.random.normal(k, x.shape, dtype)
        s_norm = jnp.mean(jnp.linalg.norm(s, axis=-1))
        z_norm = jnp.mean(jnp.linalg.norm(z, axis=-1))
        eps = 2 * (snr * z_norm / s_norm) ** 2
        return x + eps * s + jnp.sqrt(2 * eps) * z

    def step(x, inp):
        t, t_next, k = inp
        dt = t_next - t  # negative
        k_p, k_c = jax.random.split(k)
        g = sde.diffusion(t)
        drift = jax.vmap(sde.drift, (None, 0))(t, x) - g**2 * batched(t, x)
        x = x + drift * dt + g * jnp.sqrt(-dt) * jax.random.normal(k_p, x.shape, dtype)
        for k_i in jax.random.split(k_c, n_corrector) if n_corrector else ():
            x = langevin(x, k_i, t_next)
        return x, None

    keys = jax.random.split(key, n_steps)
    x, _ = jax.lax.scan(step, x, (times[:-1], times[1:], keys))
    return x, jnp.asarray(n_steps * (1 + n_corrector))


def probability_flow_ode(
    key: PRNGKeyArray | None,
    model,
    sde: AbstractSDE,
    x_T: Float[Array, "n d"] | int,
    *,
    dim: int | None = None,
    solver: str | diffrax.AbstractSolver = "tsit5",
    n_steps: int = 100,
    adaptive: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    t_eps: float | None = None,
    denoise: bool = False,
    return_nfe: bool = False,
):
    r"""Sample by the probability-flow ODE :math:`\dot X = f - \tfrac12 g^2 s` from :math:`T` to
    :math:`t_\epsilon`.

    Args:
        key: prior draws when ``x_T`` is an int (unused otherwise; may be ``None`` then).
        model, sde, x_T, dim, t_eps, denoise, return_nfe: as :func:`reverse_sde`.
        solver, n_steps, adaptive, rtol, atol: see :func:`~probkit.generative.solve_ode`.

    Returns:
        samples ``(n, d)`` (and ``nfe``).
    """
    _check_sde(sde)
    score = as_score_fn(model)
    t_eps = _t_eps(sde, t_eps)
    x = _start(key, sde, x_T, dim)
    check_field("model", score, x, "x_T")
    x, nfe = solve_ode(ProbabilityFlow(score, sde), x, sde.T, t_eps, solver=solver, n_steps=n_steps,
                       adaptive=adaptive, rtol=rtol, atol=atol)
    if denoise:
        x, nfe = _tweedie(score, sde, t_eps, x), nfe + 1
    return (x, nfe) if return_nfe else x


def diffusion_log_prob(
    model,
    sde: AbstractSDE,
    x: Float[Array, "n d"],
    *,
    t_eps: float | None = None,
    prior_log_prob: Callable[[Float[Array, " d"]], Float[Array, ""]] | None = None,
    divergence_method: str = "auto",
    key: PRNGKeyArray | None = None,
    n_probes: int = 1,
    solver: str | diffrax.AbstractSolver = "tsit5",
    n_steps: int = 100,
    adaptive: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    return_nfe: bool = False,
) -> Float[Array, " n"] | tuple[Float[Array, " n"], Int[Array, ""]]:
    r""":math:`\log p_{t_\epsilon}(x)` by the probability-flow ODE:
    :math:`\log p_{t_\epsilon}(x) = \log p_T(X_T) + \int_{t_\epsilon}^T \nabla\cdot(f - \tfrac12 g^2 s)\,dt`.

    Args:
        model, sde: as :func:`reverse_sde`. x: points ``(n, d)``.
        t_eps: the time of ``x`` (default ``sde.t_eps``).
        prior_log_prob: :math:`\log p_T` of one point (default ``sde.prior_log_prob``).
        divergence_method, key, n_probes, solver, n_steps, adaptive, rtol, atol: see
            :func:`~probkit.generative.ode_log_prob`.

    Returns:
        log densities ``(n,)`` (and ``nfe``).
    """
    _check_sde(sde)
    score = as_score_fn(model)
    t_eps = _t_eps(sde, t_eps)
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be points of shape (n, d), got shape {x.shape}")
    check_finite("x", x)
    check_field("model", score, x, "x")
    base = sde.prior_log_prob if prior_log_prob is None else prior_log_prob
    if not callable(base):
        raise TypeError(f"prior_log_prob must be callable x -> scalar, got {base!r}")
    lp, nfe = ode_log_prob(ProbabilityFlow(score, sde), x, t_eps, sde.T, base, divergence_method=divergence_method,
                           key=key, n_probes=n_probes, solver=solver, n_steps=n_steps, adaptive=adaptive, rtol=rtol,
                           atol=atol)
    return (lp, nfe) if return_nfe else lp
