"""A small optax training loop shared by MixFlow's ELBO fit and the reference fit, with checkpoints."""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .._checkpoint import check_checkpoint_path, load_checkpoint, save_checkpoint, save_on_interrupt
from .._validate import check_positive_int


@functools.lru_cache(maxsize=None)  # one object, so that a repeated fit reuses the compiled step
def default_optimizer(learning_rate: float = 1e-2) -> optax.GradientTransformation:
    """Adam with global-norm clipping (long uncorrected trajectories can give large gradients)."""
    return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(learning_rate))


def _state_names(opt_state) -> list[str]:
    """The optimiser's state types (e.g. ``ScaleByAdamState``): its structure, without function identities."""
    is_state = lambda x: isinstance(x, tuple) and hasattr(x, "_fields")  # noqa: E731
    return [type(x).__name__ for x in jax.tree_util.tree_leaves(opt_state, is_leaf=is_state) if is_state(x)]


@eqx.filter_jit
def _step(params, opt_state, key_data, *, static, objective, optimizer, typed_key):
    """One optimiser step on ``−objective``; skipped (parameters kept) when not finite."""
    key = jax.random.wrap_key_data(key_data) if typed_key else key_data
    key, sub = jax.random.split(key)

    def loss(p):
        return -objective(eqx.combine(p, static), sub)

    value, grads = eqx.filter_value_and_grad(loss)(params)
    updates, new_state = optimizer.update(grads, opt_state, params)
    new_params = eqx.apply_updates(params, updates)
    leaves = jax.tree_util.tree_leaves(grads)
    ok = jnp.isfinite(value) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves]))
    keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
    key_data = jax.random.key_data(key) if typed_key else key
    return keep(new_params, params), keep(new_state, opt_state), key_data, jnp.where(ok, -value, jnp.nan)


def _digest(tree) -> str:
    """A short hash of a tree's array values (the starting point, in the checkpoint's fingerprint)."""
    h = hashlib.sha1()
    for leaf in jax.tree_util.tree_leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def maximise(
    key,
    module: eqx.Module,
    objective: Callable,
    *,
    steps: int,
    optimizer: optax.GradientTransformation | None = None,
    progress_bar: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    fingerprint: dict | None = None,
    desc: str = "fit",
):
    r"""Maximise ``objective(module, key)`` over the module's inexact arrays with optax.

    A step whose objective or gradient is not finite is skipped (the parameters
    are kept) and counted. Returns ``(module, history)`` with the objective value of
    each step (NaN for skipped steps). The step compiles once per objective, optimizer
    and module structure: a hashable objective, equal by value, reuses it across calls.

    **Checkpoints** (:mod:`probkit._checkpoint`). With ``checkpoint_path`` (its folder
    is checked before the first step) the parameters, the optimiser state and the PRNG
    key are written atomically every ``checkpoint_every`` steps, after the last step and
    on ``KeyboardInterrupt``, with the step reached and the history. If the file exists
    the run resumes from it, bit-identical to an uninterrupted run; ``steps`` may be
    larger than before. The fingerprint (``desc``, the seed, a hash of the starting
    parameters, the optimiser's state types, and the caller's ``fingerprint``)
    must match, else a ``ValueError`` names the file and what differs.
    """
    steps = check_positive_int("steps", steps)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    checkpoint_path = check_checkpoint_path("checkpoint_path", checkpoint_path)
    optimizer = default_optimizer() if optimizer is None else optimizer
    params, static = eqx.partition(module, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    typed_key = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    key_data = jax.random.key_data(key) if typed_key else jnp.asarray(key)

    step = functools.partial(_step, static=static, objective=objective, optimizer=optimizer, typed_key=typed_key)

    history = np.full(steps, np.nan)
    # one tuple, replaced in a single assignment, so that an interrupt never saves a half-updated state
    carry = (params, opt_state, key_data, 0)
    fp = {"objective": desc, "seed": np.asarray(key_data).tolist(), "start": _digest(params),
          "optimizer_state": _state_names(opt_state), **(fingerprint or {})}
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        tree, meta = load_checkpoint(checkpoint_path, carry[:3], fingerprint=fp)
        done = int(meta.get("step", 0))
        if done > steps:
            raise ValueError(f"checkpoint {checkpoint_path!r} is at step {done}, past steps={steps}; "
                             "ask for at least as many steps, or use another checkpoint path")
        history[:done] = np.asarray(meta.get("history", []), dtype=float)[:done]
        carry = (*tree, done)

    def save():
        if checkpoint_path is not None:
            state = carry
            save_checkpoint(checkpoint_path, state[:3], fingerprint=fp,
                            meta={"step": state[3], "history": history[:state[3]].tolist()})

    bar = tqdm(range(carry[3], steps), desc=desc, disable=not progress_bar)
    with save_on_interrupt(save):
        for i in bar:
            params, opt_state, key_data, value = step(*carry[:3])
            history[i] = float(value)
            carry = (params, opt_state, key_data, i + 1)
            if progress_bar and i % 10 == 0:
                bar.set_postfix(objective=f"{history[i]:.4g}")
            if (i + 1) % checkpoint_every == 0 and i + 1 < steps:
                save()
    save()
    module = eqx.combine(carry[0], static)
    if np.all(np.isnan(history)):
        raise ValueError("every optimisation step gave a non-finite objective or gradient; "
                         "reduce the step size or improve the reference")
    return module, history
