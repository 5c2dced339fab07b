r"""A generic stochastic-gradient training loop for generative models.

:func:`fit` minimises ``loss_fn(model, key, batch_size)`` (a Monte-Carlo loss that
draws its own batch from ``key``) with optax. Steps run in jitted chunks of
``lax.scan``; a tqdm bar reports progress; the model, optimiser state and loss
history can be checkpointed (:mod:`probkit._checkpoint`: atomic writes, a
configuration fingerprint) and a run resumes from its checkpoint. Step ``i`` uses
``jax.random.fold_in(key, i)``, so a resumed run follows exactly the same trajectory
as an uninterrupted one.
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

from .._checkpoint import (
    check_checkpoint_path,
    describe,
    digest,
    load_training_state,
    save_on_interrupt,
    save_training_state,
)
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
        checkpoint_path: checkpoint file (its folder must exist). If it exists the run
            resumes from it; it is written atomically every ``checkpoint_every`` steps, at
            the end and on ``KeyboardInterrupt`` (SIGINT). It carries a fingerprint of the
            model's structure, the optimiser, ``loss_fn`` (its closure: data, settings),
            ``key`` and ``batch_size``: resuming under another configuration, or from a
            file of another model, raises a ``ValueError`` naming the file and what
            differs. ``steps`` may grow between runs (the loss history is extended).
        checkpoint_every: save every this many steps (default: only at the end).
        chunk_size: steps per jitted ``lax.scan`` chunk (and per bar update).

    Returns:
        ``(trained_model, losses)`` with ``losses`` of shape ``(steps,)``.

    Raises:
        FloatingPointError: when a loss is NaN or infinite (diverged, or NaN data drawn
            by a sampler); the checkpoint keeps the last one written before.
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    checkpoint_path = check_checkpoint_path("checkpoint_path", checkpoint_path)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (model, key, batch_size) -> scalar, got {loss_fn!r}")
    optimizer = optax.adam(1e-3) if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")

    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    fingerprint = None
    if checkpoint_path is not None:  # digests only when needed (loss_fn may close over large data)
        fingerprint = {
            "model": digest(static),
            "optimizer": digest(optimizer),
            "loss_fn": digest(loss_fn),
            "key": describe(key),
            "batch_size": batch_size,
        }
    (params, opt_state), losses, start = load_training_state(
        checkpoint_path, (params, opt_state), fingerprint=fingerprint, steps=steps
    )
    step = start

    def save():
        if checkpoint_path is not None:
            save_training_state(checkpoint_path, (params, opt_state), losses[:step], fingerprint=fingerprint)

    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc="training", leave=False)
    run_chunk = _make_chunk(loss_fn, optimizer, batch_size)
    try:
        with save_on_interrupt(save):
            while step < steps:
                n = min(chunk_size, steps - step)
                if checkpoint_every is not None:
                    n = min(n, checkpoint_every - step % checkpoint_every)
                out = run_chunk(params, static, opt_state, key, jnp.arange(step, step + n))
                chunk = np.asarray(out[2])
                if not np.all(np.isfinite(chunk)):
                    bad = step + int(np.argmin(np.isfinite(chunk)))
                    raise FloatingPointError(
                        f"fit: the loss is {chunk[bad - step]} at step {bad} (diverged: lower the learning rate, "
                        "or check the data the loss draws for NaN/inf); the last checkpoint is kept"
                    )
                params, opt_state = out[0], out[1]
                losses[step : step + n] = chunk
                step += n
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix(loss=f"{float(chunk[-1]):.4g}")
                if checkpoint_every is not None and step % checkpoint_every == 0:
                    save()
    finally:
        if bar is not None:
            bar.close()
    save()
    return eqx.combine(params, static), jnp.asarray(losses)
