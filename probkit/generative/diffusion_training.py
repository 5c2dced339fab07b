r"""Training a score model: denoising score matching plus :math:`w_R\,E[R^2]`, the
Fokker–Planck residual at collocation points (Deveney et al., 2023), on the shared
:func:`~probkit.generative.training.fit` loop.

Per step: a data batch :math:`x_0` (``batch_size``), times :math:`t` in
:math:`[t_\epsilon, T]`, :math:`z \sim N(0, I)`, and (when ``fp_weight > 0``)
``n_collocation`` points uniform on a box :math:`\times\,[t_\epsilon, T]` (or perturbed
data points, ``collocation="data"``):

.. math:: L = L_{DSM} + w_R\,\tfrac1{n_c}\textstyle\sum_j R[u](t_j, x_j)^2.

Caveat: :math:`u = c(t)` with :math:`c' = -\nabla\cdot f` (a flat, improper density)
solves the equation exactly, so only DSM separates the true :math:`u` from it. In short
CPU runs (``benchmarks/results/fokker_planck.md``) a large :math:`w_R` pulled the score
towards that flat branch and the samplers diverged; check the score error, not only the
residual, when tuning :math:`w_R`.
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
)
from .interpolant_losses import as_sampler
from .score_models import AbstractLogDensityModel, AbstractScoreModel
from .sde import AbstractSDE
from .training import fit

__all__ = ["train_score_model", "make_score_loss", "default_collocation_box"]

COLLOCATION = ("box", "data")


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
    fp_center: int = 0,
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
    check_positive("fp_weight", fp_weight, allow_zero=True)
    n_collocation = check_positive_int("n_collocation", n_collocation)
    fp_center = check_positive_int("fp_center", fp_center, minimum=0)
    if fp_center and (fp_center < 2 or n_collocation % fp_center):
        raise ValueError(f"fp_center must be 0 or an integer >= 2 dividing n_collocation = {n_collocation}, "
                         f"got {fp_center}")
    t_eps = sde.t_eps if t_eps is None else t_eps
    if not (isinstance(t_eps, (int, float)) and 0 < t_eps < sde.T):
        raise ValueError(f"t_eps must be a float in (0, T = {sde.T}), got {t_eps!r}")
    fp_t_min = t_eps if fp_t_min is None else fp_t_min
    if not (isinstance(fp_t_min, (int, float)) and 0 < fp_t_min < sde.T):
        raise ValueError(f"fp_t_min must be a float in (0, T = {sde.T}), got {fp_t_min!r}")
    draw = as_sampler("sample_data", sample_data)
    if fp_weight > 0 and collocation == "box" and collocation_box is None:
        collocation_box = default_collocation_box(jax.random.PRNGKey(0) if key is None else key, sde, draw)
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
            if collocation == "box":
                xc, tc = sample_collocation(k_c, n_collocation, lo.astype(x0.dtype), hi.astype(x0.dtype), fp_t_min, sde.T)
            else:  # perturbed data: x_t = m(t) x_0 + σ(t) z at fresh (x_0, t, z)
                k_cx, k_ct, k_cz = jax.random.split(k_c, 3)
                tc = sample_times(k_ct, n_collocation, fp_t_min, sde.T, method="stratified", dtype=x0.dtype)
                x0c = draw(k_cx, n_collocation).astype(x0.dtype)
                xc = jax.vmap(sde.perturb)(tc, x0c, jax.random.normal(k_cz, x0c.shape, x0.dtype))
            if fp_center:  # groups of fp_center points share a time; centre R within each group
                tc = jnp.repeat(tc[::fp_center], fp_center)
                if collocation == "data":
                    xc = jax.vmap(sde.perturb)(tc, x0c, jax.random.normal(k_cz, x0c.shape, x0.dtype))
            r = fokker_planck_residual(model, sde, xc, tc, method=fp_method, key=k_h)
            if fp_center:
                r = r.reshape(-1, fp_center)
                r = (r - jnp.mean(r, axis=1, keepdims=True)) * jnp.sqrt(fp_center / (fp_center - 1))
            loss = loss + fp_weight * jnp.mean(r**2)
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
    fp_center: int = 0,
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
        collocation: where the residual is penalised: ``"box"`` (uniform on
            ``collocation_box`` × :math:`[t_\epsilon, T]`, the paper's choice) or ``"data"``
            (perturbed data :math:`x_t = m x_0 + \sigma z`, the DSM distribution).
        collocation_box: ``(low, high)`` of the collocation box (default
            :func:`default_collocation_box`).
        fp_center: 0 (default: the plain :math:`E[R^2]`), or a group size :math:`k \ge 2`:
            collocation points come in groups of :math:`k` sharing one time and the
            penalty is the within-group variance of :math:`R` (unbiased,
            :math:`\tfrac{k}{k-1}\times` the centred mean square). This ignores the
            :math:`c'(t)` that a time-only constant in :math:`u` adds to :math:`R` — a
            constant DSM cannot see and samplers never use.
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
    k_box, k_fit = jax.random.split(key)
    loss_fn = make_score_loss(
        sde, sample_data, fp_weight=fp_weight, n_collocation=n_collocation, collocation_box=collocation_box,
        weighting=weighting, time_sampling=time_sampling, antithetic=antithetic, t_eps=t_eps, fp_method=fp_method,
        collocation=collocation, fp_center=fp_center, fp_t_min=fp_t_min,
        key=k_box,
    )
    return fit(k_fit, model, loss_fn, steps=steps, batch_size=batch_size, optimizer=optimizer,
               progress_bar=progress_bar, checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every)
