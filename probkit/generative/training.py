r"""A generic stochastic-gradient training loop for generative models.

:func:`fit` minimises ``loss_fn(model, key, batch_size)`` (a Monte-Carlo loss that
draws its own batch from ``key``) with optax. Steps run in jitted chunks of
``lax.scan``; a tqdm bar reports progress; the model, optimiser state, step and
loss history can be checkpointed with :func:`equinox.tree_serialise_leaves` and
a run resumes from its checkpoint. Step ``i`` uses ``jax.random.fold_in(key, i)``,
so a resumed run follows exactly the same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._validate import check_positive_int

__all__ = ["fit"]

LossFn = Callable[[PyTree, PRNGKeyArray, int], Float[Array, ""]]


def _make_chunk(loss_fn: LossFn, optimizer, batch_size: int):
    @eqx.filter_jit
    def run_chunk(params, static, opt_state, key, steps):
        def one_step(carry, step):
            params, opt_state = carry
            model_key = jax.random.fold_in(key, step)

            def loss_of(p):
                return loss_fn(eqx.combine(p, static), model_key, batch_size)

            loss, grads = jax.value_and_grad(loss_of)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = eqx.apply_updates(params, updates)
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(one_step, (params, opt_state), steps)
        return params, opt_state, losses

    return run_chunk


def fit(
    key: PRNGKeyArray,
    model: PyTree,
    loss_fn: LossFn,
    *,
    steps: int,
    batch_size: int,
    optimizer: optax.GradientTransformation | None = None,
    progress_bar: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    chunk_size: int = 100,
) -> tuple[PyTree, Float[Array, " steps"]]:
    r"""Minimise ``loss_fn(model, key, batch_size)`` over the model's array leaves.

    Args:
        key: PRNG key; step ``i`` gets ``fold_in(key, i)``.
        model: an Equinox module (its inexact-array leaves are trained).
        loss_fn: ``(model, key, batch_size) -> scalar``.
        steps: number of optimiser steps. batch_size: passed to ``loss_fn``.
        optimizer: an optax transformation (default ``optax.adam(1e-3)``).
        progress_bar: show a tqdm bar with the running loss.
        checkpoint_path: file for :func:`equinox.tree_serialise_leaves`; if it exists
            the run resumes from it (same ``model``/``optimizer`` structure required).
        checkpoint_every: save every this many steps (default: only at the end).
        chunk_size: steps per jitted ``lax.scan`` chunk (and per bar update).

    Returns:
        ``(trained_model, losses)`` with ``losses`` of shape ``(steps,)``.
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (model, key, batch_size) -> scalar, got {loss_fn!r}")
    optimizer = optax.adam(1e-3) if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")

    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    losses = np.full((steps,), np.nan, dtype=np.float32)
    start = 0
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        like = (params, opt_state, jnp.asarray(0), jnp.zeros((steps,), jnp.float32))
        params, opt_state, done, saved = eqx.tree_deserialise_leaves(checkpoint_path, like)
        start = int(done)
        losses[:] = np.asarray(saved)

    def save(step):
        if checkpoint_path is not None:
            state = (params, opt_state, jnp.asarray(step), jnp.asarray(losses))
            eqx.tree_serialise_leaves(checkpoint_path, state)

    run_chunk = _make_chunk(loss_fn, optimizer, batch_size)
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc="training", leave=False)
    step = start
    try:
        while step < steps:
            n = min(chunk_size, steps - step)
            if checkpoint_every is not None:
                n = min(n, checkpoint_every - step % checkpoint_every)
            params, opt_state, chunk = run_chunk(params, static, opt_state, key, jnp.arange(step, step + n))
            chunk = np.asarray(chunk)
            losses[step : step + n] = chunk
            step += n
            if bar is not None:
                bar.update(n)
                bar.set_postfix(loss=f"{float(chunk[-1]):.4g}")
            if checkpoint_every is not None and step % checkpoint_every == 0:
                save(step)
    finally:
        if bar is not None:
            bar.close()
    save(step)
    return eqx.combine(params, static), jnp.asarray(losses)
