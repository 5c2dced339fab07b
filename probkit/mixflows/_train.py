"""A small optax training loop shared by MixFlow's ELBO fit and the reference fit."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .._validate import check_positive_int


def default_optimizer(learning_rate: float = 1e-2) -> optax.GradientTransformation:
    """Adam with global-norm clipping (long uncorrected trajectories can give large gradients)."""
    return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(learning_rate))


def maximise(
    key,
    module: eqx.Module,
    objective: Callable,
    *,
    steps: int,
    optimizer: optax.GradientTransformation | None = None,
    progress_bar: bool = True,
    checkpoint_path: str | None = None,
    checkpoint_every: int = 100,
    desc: str = "fit",
):
    r"""Maximise ``objective(module, key)`` over the module's inexact arrays with optax.

    A step whose objective or gradient is not finite is skipped (the parameters
    are kept) and counted. Every ``checkpoint_every`` steps the module is written
    with :func:`equinox.tree_serialise_leaves` when ``checkpoint_path`` is given.
    Returns ``(module, history)`` with the objective value of each step (NaN for
    skipped steps).
    """
    steps = check_positive_int("steps", steps)
    optimizer = default_optimizer() if optimizer is None else optimizer
    params, static = eqx.partition(module, eqx.is_inexact_array)
    opt_state = optimizer.init(params)

    @eqx.filter_jit
    def step(params, opt_state, key):
        def loss(p):
            return -objective(eqx.combine(p, static), key)

        value, grads = eqx.filter_value_and_grad(loss)(params)
        updates, new_state = optimizer.update(grads, opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        leaves = jax.tree_util.tree_leaves(grads)
        ok = jnp.isfinite(value) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves]))
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
        return keep(new_params, params), keep(new_state, opt_state), jnp.where(ok, -value, jnp.nan)

    history = np.empty(steps)
    bar = tqdm(range(steps), desc=desc, disable=not progress_bar)
    for i in bar:
        key, sub = jax.random.split(key)
        params, opt_state, value = step(params, opt_state, sub)
        history[i] = float(value)
        if progress_bar and i % 10 == 0:
            bar.set_postfix(objective=f"{history[i]:.4g}")
        if checkpoint_path is not None and (i + 1) % checkpoint_every == 0:
            eqx.tree_serialise_leaves(checkpoint_path, eqx.combine(params, static))
    module = eqx.combine(params, static)
    if checkpoint_path is not None:
        eqx.tree_serialise_leaves(checkpoint_path, module)
    if np.all(np.isnan(history)):
        raise ValueError("every optimisation step gave a non-finite objective or gradient; "
                         "reduce the step size or improve the reference")
    return module, history
