r"""Losses of score-based diffusion: denoising score matching and the Fokker–Planck residual.

**Denoising score matching.** With :math:`x_t = m(t)x_0 + \sigma(t)z`, the conditional
score is :math:`-z/\sigma(t)`, and

.. math:: L_{DSM} = E_{t, x_0, z}\big[\lambda(t)\,|s(t, x_t) + z/\sigma(t)|^2\big]

is minimised by the true score. Weightings :math:`\lambda`: ``"sigma2"``
(:math:`\sigma^2`, Song et al.'s default: the noise-prediction loss), ``"likelihood"``
(:math:`g^2`, the likelihood weighting) or ``"none"`` (1). Times: uniform on
:math:`[t_\epsilon, T]` or ``"stratified"`` (one draw in each of :math:`n` equal bins,
lower variance). A data point is reused with :math:`\pm z` (``antithetic``).

**Fokker–Planck residual.** :math:`\partial_t p = -\nabla\cdot(fp) + \tfrac12 g^2\Delta p`
with :math:`p = e^u` (:math:`\nabla p = p\nabla u`, :math:`\Delta p = p(\Delta u + |\nabla u|^2)`)
gives, for the log-density :math:`u = \log p_t`,

.. math:: R[u] = \partial_t u + \nabla\cdot f + f\cdot\nabla u - \tfrac12 g^2(\Delta u + |\nabla u|^2) = 0.

(For :math:`f = -x`, :math:`g = 1`: :math:`R = \partial_t u - d - x\cdot\nabla u - \tfrac12|\nabla u|^2 - \tfrac12\Delta u`.)
:math:`\Delta u` is the exact Hessian trace by nested autodiff (``"exact"``, :math:`d`
Hessian-vector products) or Hutchinson's :math:`v^\top\nabla^2u\,v` with Rademacher
probes (``"hutchinson"``, unbiased); ``"auto"`` is exact for :math:`d \le 16`. A
:math:`t`-dependent additive constant in :math:`u` shifts :math:`R` by its time
derivative, so a log-density model trained by DSM alone (which ignores that constant)
is regularised with :math:`E[R^2]` over collocation points drawn by
:func:`sample_collocation` on a box :math:`\times` time interval.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, ScalarLike

from .._validate import check_choice, check_positive_int
from .sde import AbstractSDE

__all__ = ["WEIGHTINGS", "dsm_loss", "sample_times", "fokker_planck_residual", "score_fokker_planck_residual",
           "sample_collocation"]

WEIGHTINGS = ("sigma2", "likelihood", "none")
TIME_SAMPLING = ("uniform", "stratified")


def _check_sde(sde):
    if not isinstance(sde, AbstractSDE):
        raise TypeError(f"sde must be an AbstractSDE (VPSDE, VESDE, SubVPSDE), got {type(sde).__name__}")


def _check_batch(name, x, ndim):
    x = jnp.asarray(x)
    if x.ndim != ndim:
        shape = "(n, d)" if ndim == 2 else "(n,)"
        raise ValueError(f"{name} must have shape {shape}, got shape {x.shape}")
    return x


def sample_times(key: PRNGKeyArray, n: int, t_min: ScalarLike, t_max: ScalarLike, *, method: str = "uniform",
                 dtype=None) -> Float[Array, " n"]:
    r""":math:`n` times in :math:`[t_{min}, t_{max}]`: i.i.d. uniform, or ``"stratified"``
    (:math:`t_i = t_{min} + (t_{max}-t_{min})(i + u_i)/n`, shuffled)."""
    check_choice("time_sampling", method, TIME_SAMPLING)
    dtype = jnp.result_type(float) if dtype is None else dtype
    k_u, k_p = jax.random.split(key)
    u = jax.random.uniform(k_u, (n,), dtype)
    if method == "stratified":
        u = jax.random.permutation(k_p, (jnp.arange(n, dtype=dtype) + u) / n)
    return t_min + (t_max - t_min) * u


def dsm_loss(
    score_fn: Callable[[ScalarLike, Float[Array, " d"]], Float[Array, " d"]],
    sde: AbstractSDE,
    t: Float[Array, " n"],
    x0: Float[Array, "n d"],
    z: Float[Array, "n d"],
    *,
    weighting: str = "sigma2",
    antithetic: bool = False,
) -> Float[Array, ""]:
    r"""Denoising score-matching loss on a batch (module docstring).

    Args:
        score_fn: :math:`s(t, x)` for one point (e.g. ``model.score``).
        sde: the forward SDE. t: times ``(n,)``. x0: data ``(n, d)``. z: standard normal ``(n, d)``.
        weighting: ``"sigma2"``, ``"likelihood"`` or ``"none"``.
        antithetic: average over :math:`z` and :math:`-z`.
    """
    _check_sde(sde)
    check_choice("weighting", weighting, WEIGHTINGS)
    x0 = _check_batch("x0", x0, 2)
    t = _check_batch("t", t, 1)
    if z.shape != x0.shape:
        raise ValueError(f"z must have the shape of x0 {x0.shape}, got {z.shape}")

    def one(t_i, x0_i, z_i):
        m, s = sde.marginal(t_i)
        lam = {"sigma2": s**2, "likelihood": sde.diffusion(t_i) ** 2, "none": 1.0}[weighting]

        def sq(zz):
            return jnp.sum((score_fn(t_i, m * x0_i + s * zz) + zz / s) ** 2)

        err = 0.5 * (sq(z_i) + sq(-z_i)) if antithetic else sq(z_i)
        return lam * err

    return jnp.mean(jax.vmap(one)(t.astype(x0.dtype), x0, z))


def _laplacian_and_grad(u, t, x, probes):
    grad_fn = lambda y: jax.grad(u, argnums=1)(t, y)  # noqa: E731
    if probes is None:
        # forward-over-reverse: one linearisation, d Hessian-vector products
        g, hvp = jax.linearize(grad_fn, x)
        return g, jnp.trace(jax.vmap(hvp)(jnp.eye(x.shape[0], dtype=x.dtype)))
    g, hv = jax.vmap(lambda v: jax.jvp(grad_fn, (x,), (v,)))(probes)
    return g[0], jnp.mean(jnp.sum(hv * probes, axis=-1))


def _residual_one(u, sde, t, x, probes):
    t = jnp.asarray(t, x.dtype)
    u_t = jax.grad(u, argnums=0)(t, x)
    g, lap = _laplacian_and_grad(u, t, x, probes)
    f = sde.drift(t, x)
    g2 = sde.diffusion(t) ** 2
    return u_t + sde.drift_divergence(t, x) + jnp.dot(f, g) - 0.5 * g2 * (lap + jnp.sum(g**2))


def _residual_inputs(u, sde, x, t, method, key, n_probes):
    _check_sde(sde)
    if not callable(u):
        raise TypeError(f"u must be a callable (t, x) -> scalar log-density, got {u!r}")
    x = _check_batch("x", x, 2)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    t = _check_batch("t", t, 1)
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"t must have one time per point, shape ({x.shape[0]},), got {t.shape}")
    check_choice("method", method, ("auto", "exact", "hutchinson"))
    n_probes = check_positive_int("n_probes", n_probes)
    n, d = x.shape
    method = ("exact" if d <= 16 else "hutchinson") if method == "auto" else method
    if method == "exact":
        return x, t.astype(x.dtype), None
    if key is None:
        raise ValueError("key is required for method='hutchinson'")
    return x, t.astype(x.dtype), jax.random.rademacher(key, (n, n_probes, d), dtype=x.dtype)


def fokker_planck_residual(
    u: Callable[[ScalarLike, Float[Array, " d"]], Float[Array, ""]],
    sde: AbstractSDE,
    x: Float[Array, "n d"],
    t: Float[Array, " n"],
    *,
    method: str = "auto",
    key: PRNGKeyArray | None = None,
    n_probes: int = 1,
) -> Float[Array, " n"]:
    r"""Log-density Fokker–Planck residual :math:`R[u](t_i, x_i)` (module docstring).

    Args:
        u: :math:`u(t, x)`, the log-density (up to a function of :math:`t`) of one point,
            e.g. a :class:`~probkit.generative.LogDensityNet`.
        sde: the forward SDE. x: points ``(n, d)``. t: times ``(n,)``.
        method: ``"exact"`` (Hessian trace by nested autodiff), ``"hutchinson"``
            (``n_probes`` Rademacher probes per point; needs ``key``) or ``"auto"``
            (exact for ``d <= 16``).

    Returns:
        the residuals ``(n,)``.
    """
    return _residuals(u, sde, *_residual_inputs(u, sde, x, t, method, key, n_probes), False)


def score_fokker_planck_residual(
    u: Callable[[ScalarLike, Float[Array, " d"]], Float[Array, ""]],
    sde: AbstractSDE,
    x: Float[Array, "n d"],
    t: Float[Array, " n"],
    *,
    method: str = "auto",
    key: PRNGKeyArray | None = None,
    n_probes: int = 1,
) -> Float[Array, "n d"]:
    r"""Score Fokker–Planck residual :math:`\nabla_x R[u](t_i, x_i)`.

    The score :math:`s = \nabla_x u` obeys
    :math:`\partial_t s = \nabla_x\big[-\nabla\cdot f - f\cdot s + \tfrac12 g^2(\nabla\cdot s + |s|^2)\big]`,
    whose residual is :math:`\nabla_x R[u]`: it is blind to a time-only constant in
    :math:`u` (which DSM cannot see and the samplers never use). With ``"hutchinson"``
    the probes are held fixed, so the estimate stays unbiased. Arguments as
    :func:`fokker_planck_residual`; returns ``(n, d)``.
    """
    return _residuals(u, sde, *_residual_inputs(u, sde, x, t, method, key, n_probes), True)


@eqx.filter_jit
def _residuals(u, sde, x, t, probes, gradient):
    def one(t_i, x_i, p_i):
        if gradient:
            return jax.grad(lambda y: _residual_one(u, sde, t_i, y, p_i))(x_i)
        return _residual_one(u, sde, t_i, x_i, p_i)

    if probes is None:
        return jax.vmap(lambda t_i, x_i: one(t_i, x_i, None))(t, x)
    return jax.vmap(one)(t, x, probes)


def sample_collocation(
    key: PRNGKeyArray,
    n: int,
    low: Float[Array, " d"],
    high: Float[Array, " d"],
    t_min: ScalarLike,
    t_max: ScalarLike,
) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    r"""Collocation points uniform on the box :math:`[low, high]` times :math:`[t_{min}, t_{max}]`
    (times stratified). Returns ``(x, t)``."""
    low, high = jnp.asarray(low), jnp.asarray(high, jnp.asarray(low).dtype)
    if low.ndim != 1 or high.shape != low.shape:
        raise ValueError(f"low and high must be 1-D of equal shape, got {low.shape} and {high.shape}")
    k_x, k_t = jax.random.split(key)
    x = jax.random.uniform(k_x, (n, low.shape[0]), low.dtype, low, high)
    return x, sample_times(k_t, n, t_min, t_max, method="stratified", dtype=low.dtype)
