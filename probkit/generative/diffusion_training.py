r"""Training a score model: denoising score matching plus :math:`w_R` times a Fokker–Planck
penalty at collocation points (Deveney et al., 2023), on the shared
:func:`~probkit.generative.training.fit` loop.

Per step: a data batch :math:`x_0` (``batch_size``), times :math:`t` in
:math:`[t_\epsilon, T]`, :math:`z \sim N(0, I)`, and (when ``fp_weight > 0``)
``n_collocation`` points :math:`(t_j, x_j)` uniform on a box :math:`\times\,[t_{FP}, T]`
(or perturbed data, or half of each):

.. math:: L = L_{DSM} + w_R\,\tfrac1{n_c}\textstyle\sum_j \lambda(t_j)^2\,|\rho_j|^2,

with :math:`\rho = \sigma\nabla_x R[u]` (``fp_residual="score"``, the default: the score
Fokker–Planck equation, blind to the time-only constant in :math:`u` that DSM cannot fix)
or :math:`\rho = R[u]` (``"log_density"``), and :math:`\lambda = \sigma(t)^2/g(t)^2`
(``fp_normalize=True``) or 1. The normalisation makes the penalty dimensionless on the
scale of :math:`\sigma^2`-weighted DSM: a score error :math:`\delta s` moves :math:`R` by
about :math:`g^2\sigma^{-2}\,|\sigma\delta s|`, so :math:`\lambda R` is of the order of the
noise-prediction error at every time. Without it the penalty is dominated by small
times and the box's far corners, and short runs collapse the score to the flat solution
:math:`u = c(t)` of the log-density equation (``benchmarks/results/fokker_planck.md``).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_choice, check_positive, check_positive_int
from .diffusion_losses import (
    TIME_SAMPLING,
    WEIGHTINGS,
    _check_sde,
    dsm_loss,
    fokker_planck_residual,
    sample_collocation,
    sample_times,
    score_fokker_planck_residual,
)
from .interpolant_losses import as_sampler, sample_shape
from .sampling import check_field
from .score_models import AbstractLogDensityModel, AbstractScoreModel
from .sde import AbstractSDE
from .training import fit

__all__ = ["train_score_model", "make_score_loss", "default_collocation_box"]

COLLOCATION = ("box", "data", "mixed")
FP_RESIDUALS = ("score", "log_density")


def default_collocation_box(key: PRNGKeyArray, sde: AbstractSDE, sample_data, *, n: int = 4096,
                            margin: float = 0.1) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
    r"""A box holding the data and the prior's bulk: per coordinate
    :math:`[\min(\text{data}_{min}, -3\sigma_T), \max(\text{data}_{max}, 3\sigma_T)]`
    (data range from ``n`` draws), widened by ``margin`` of its width on each side."""
    x = as_sampler("sample_data", sample_data)(key, n)
    r = 3 * sde.prior_std()
    lo = jnp.minimum(jnp.min(x, 0), -r)
    hi = jnp.maximum(jnp.max(x, 0), r)
    w = hi - lo
    return lo - margin * w, hi + margin * w


def _fp_scale(sde, t, residual, normalize):
    r""":math:`\lambda(t)` (times :math:`\sigma(t)` for the score residual), see the module docstring."""
    std = sde.marginal(t)[1]
    lam = std**2 / sde.diffusion(t) ** 2 if normalize else jnp.ones_like(std)
    return lam * std if residual == "score" else lam


def _collocation(key, kind, n, sde, draw, lo, hi, t_min, dtype):
    """Collocation ``(x, t)``: uniform on the box, perturbed data, or half of each (``"mixed"``)."""
    if kind == "mixed":
        k_b, k_d = jax.random.split(key)
        n_box = n // 2
        xb, tb = _collocation(k_b, "box", n_box, sde, draw, lo, hi, t_min, dtype)
        xd, td = _collocation(k_d, "data", n - n_box, sde, draw, lo, hi, t_min, dtype)
        return jnp.concatenate([xb, xd]), jnp.concatenate([tb, td])
    if kind == "box":
        return sample_collocation(key, n, lo.astype(dtype), hi.astype(dtype), t_min, sde.T)
    k_x, k_t, k_z = jax.random.split(key, 3)
    t = sample_times(k_t, n, t_min, sde.T, method="stratified", dtype=dtype)
    x0 = draw(k_x, n).astype(dtype)  # perturbed data: x_t = m(t) x_0 + σ(t) z
    return jax.vmap(sde.perturb)(t, x0, jax.random.normal(k_z, x0.shape, dtype)), t


def make_score_loss(
    sde: AbstractSDE,
    sample_data,
    *,
    fp_weight: float = 0.0,
    n_collocation: int = 256,
    collocation_box: tuple | None = None,
    weighting: str = "sigma2",
    time_sampling: str = "stratified",
    antithetic: bool = False,
    t_eps: float | None = None,
    fp_method: str = "auto",
    collocation: str = "box",
    fp_residual: str = "score",
    fp_normalize: bool = True,
    fp_t_min: float | None = None,
    key: PRNGKeyArray | None = None,
):
    r"""``loss_fn(model, key, batch_size)`` for :func:`~probkit.generative.training.fit`
    (arguments as :func:`train_score_model`)."""
    _check_sde(sde)
    check_choice("weighting", weighting, WEIGHTINGS)
    check_choice("time_sampling", time_sampling, TIME_SAMPLING)
    check_choice("fp_method", fp_method, ("auto", "exact", "hutchinson"))
    check_choice("collocation", collocation, COLLOCATION)
    check_choice("fp_residual", fp_residual, FP_RESIDUALS)
    check_positive("fp_weight", fp_weight, allow_zero=True)
    n_collocation = check_positive_int("n_collocation", n_collocation)
    if not isinstance(fp_normalize, bool):
        raise TypeError(f"fp_normalize must be a bool, got {fp_normalize!r}")
    t_eps = sde.t_eps if t_eps is None else t_eps
    if not (isinstance(t_eps, (int, float)) and 0 < t_eps < sde.T):
        raise ValueError(f"t_eps must be a float in (0, T = {sde.T}), got {t_eps!r}")
    fp_t_min = t_eps if fp_t_min is None else fp_t_min
    if not (isinstance(fp_t_min, (int, float)) and 0 < fp_t_min < sde.T):
        raise ValueError(f"fp_t_min must be a float in (0, T = {sde.T}), got {fp_t_min!r}")
    draw = as_sampler("sample_data", sample_data)
    if fp_weight > 0 and collocation != "data" and collocation_box is None:
        collocation_box = default_collocation_box(jax.random.PRNGKey(0) if key is None else key, sde, draw)
    lo = hi = None
    if collocation_box is not None:
        lo, hi = (jnp.asarray(b) for b in collocation_box)
        if lo.ndim != 1 or lo.shape != hi.shape or not bool(jnp.all(hi > lo)):
            raise ValueError("collocation_box must be (low, high), 1-D arrays of length d with high > low")

    def loss_fn(model, key, batch_size):
        k_x, k_t, k_z, k_c, k_h = jax.random.split(key, 5)
        x0 = draw(k_x, batch_size)
        t = sample_times(k_t, batch_size, t_eps, sde.T, method=time_sampling, dtype=x0.dtype)
        z = jax.random.normal(k_z, x0.shape, x0.dtype)
        loss = dsm_loss(model.score, sde, t, x0, z, weighting=weighting, antithetic=antithetic)
        if fp_weight > 0:
            xc, tc = _collocation(k_c, collocation, n_collocation, sde, draw, lo, hi, fp_t_min, x0.dtype)
            residual = score_fokker_planck_residual if fp_residual == "score" else fokker_planck_residual
            r = residual(model, sde, xc, tc, method=fp_method, key=k_h).reshape(n_collocation, -1)
            scale = jax.vmap(lambda ti: _fp_scale(sde, ti, fp_residual, fp_normalize))(tc)
            r = r * scale[:, None]
            loss = loss + fp_weight * jnp.mean(jnp.sum(r**2, axis=1))
        return loss

    return loss_fn


def train_score_model(
    key: PRNGKeyArray,
    model: AbstractScoreModel,
    sde: AbstractSDE,
    sample_data,
    *,
    steps: int,
    batch_size: int,
    fp_weight: float = 0.0,
    n_collocation: int = 256,
    collocation_box: tuple | None = None,
    optimizer: optax.GradientTransformation | None = None,
    progress_bar: bool = True,
    weighting: str = "sigma2",
    time_sampling: str = "stratified",
    antithetic: bool = False,
    t_eps: float | None = None,
    fp_method: str = "auto",
    collocation: str = "box",
    fp_residual: str = "score",
    fp_normalize: bool = True,
    fp_t_min: float | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
) -> tuple[AbstractScoreModel, Float[Array, " steps"]]:
    r"""Fit a score model by DSM (+ ``fp_weight`` × mean squared Fokker–Planck residual).

    Args:
        key: PRNG key (step ``i`` uses ``fold_in(key, i)``).
        model: an :class:`AbstractScoreModel`; with ``fp_weight > 0`` an
            :class:`AbstractLogDensityModel` (e.g. :class:`LogDensityNet`).
        sde: the forward SDE.
        sample_data: sampler ``(key, n) -> (n, d)`` or a data array ``(N, d)``.
        steps, batch_size: optimiser steps and data points per step.
        fp_weight: :math:`w_R \ge 0`. n_collocation: collocation points per step.
        collocation: where the penalty is evaluated: ``"box"`` (uniform on
            ``collocation_box`` × :math:`[t_{FP}, T]`, the paper's choice), ``"data"``
            (perturbed data :math:`x_t = m x_0 + \sigma z`, the DSM distribution) or
            ``"mixed"`` (half of each).
        collocation_box: ``(low, high)`` of the collocation box (default
            :func:`default_collocation_box`).
        fp_residual: ``"score"`` (default; :math:`\sigma\nabla_x R`, see
            :func:`~probkit.generative.score_fokker_planck_residual`) or ``"log_density"``
            (:math:`R` itself, which also penalises the time-only constant of :math:`u`).
        fp_normalize: scale the residual by :math:`\sigma(t)^2/g(t)^2` (module docstring).
        fp_t_min: collocation times are drawn from :math:`[t_{FP}, T]` (default ``t_eps``).
        optimizer: optax transformation (default Adam 1e-3). progress_bar: tqdm bar.
        weighting: DSM weighting ``"sigma2"``/``"likelihood"``/``"none"``.
        time_sampling: ``"stratified"`` or ``"uniform"`` on :math:`[t_\epsilon, T]`.
        antithetic: DSM with :math:`\pm z`. t_eps: smallest time (default ``sde.t_eps``).
        fp_method: Laplacian in the residual: ``"auto"``, ``"exact"`` or ``"hutchinson"``.
        checkpoint_path, checkpoint_every: see :func:`~probkit.generative.training.fit`.

    Returns:
        ``(trained_model, losses)``.
    """
    if not isinstance(model, AbstractScoreModel):
        raise TypeError(f"model must be an AbstractScoreModel (ScoreNet, LogDensityNet), got {type(model).__name__}")
    check_positive("fp_weight", fp_weight, allow_zero=True)
    if fp_weight > 0 and not isinstance(model, AbstractLogDensityModel):
        raise TypeError(
            "fp_weight > 0 needs a log-density model u(t, x) (an AbstractLogDensityModel such as LogDensityNet), "
            f"got {type(model).__name__}"
        )
    check_field("model.score", model.score, sample_shape("sample_data", as_sampler("sample_data", sample_data)),
                "sample_data")
    k_box, k_fit = jax.random.split(key)
    loss_fn = make_score_loss(
        sde, sample_data, fp_weight=fp_weight, n_collocation=n_collocation, collocation_box=collocation_box,
        weighting=weighting, time_sampling=time_sampling, antithetic=antithetic, t_eps=t_eps, fp_method=fp_method,
        collocation=collocation, fp_residual=fp_residual, fp_normalize=fp_normalize, fp_t_min=fp_t_min,
        key=k_box,
    )
    return fit(k_fit, model, loss_fn, steps=steps, batch_size=batch_size, optimizer=optimizer,
               progress_bar=progress_bar, checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every)
