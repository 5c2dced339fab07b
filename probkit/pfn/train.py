r"""Prior-fitting: train a PFN on datasets drawn afresh from a prior at every step.

Each step draws ``batch_size`` sequences of ``seq_len`` points from the prior; each sequence
gets a cut ``n`` (its first ``n`` points are train points, the rest queries) drawn with
:math:`P(n) \propto 1/(\text{seq\_len} - n)`, which favours long contexts and gives every cut
the same expected number of query targets. The loss is the mean over sequences of the mean
query negative log-likelihood under the bar-distribution head — a Monte-Carlo estimate of the
prior-data NLL whose minimiser is the posterior predictive distribution.
"""

from __future__ import annotations

import os
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, PRNGKeyArray
from tqdm.auto import tqdm

from .._checkpoint import (
    check_checkpoint_path,
    describe,
    digest,
    load_training_state,
    save_on_interrupt,
    save_training_state,
)
from .._validate import check_positive, check_positive_int
from .prior import AbstractPrior
from .transformer import PFN


def default_optimizer(steps: int, learning_rate: float = 1e-3, warmup_steps: int | None = None):
    """Adam with linear warm-up (10% of the steps by default) then cosine decay to 1%."""
    warmup = max(1, steps // 10) if warmup_steps is None else warmup_steps
    warmup = min(warmup, max(steps - 1, 1))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, warmup, max(steps, warmup + 1), end_value=0.01 * learning_rate
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def cut_log_weights(seq_len: int, min_train: int, max_train: int) -> Array:
    """log P(n) ∝ -log(seq_len - n) for n = min_train..max_train."""
    n = jnp.arange(min_train, max_train + 1)
    return -jnp.log(seq_len - n)


def pfn_loss(pfn: PFN, x: Array, y: Array, n_train: Array) -> Array:
    """Mean over sequences of the mean query NLL; sequence b has ``n_train[b]`` train points."""
    pos = jnp.arange(x.shape[1])
    is_train = pos[None, :] < n_train[:, None]
    logits = jax.vmap(pfn.sequence_logits)(x, y, is_train)
    nll = -pfn._distribution(logits).log_prob(y.astype(logits.dtype))
    query = (~is_train).astype(nll.dtype)
    return jnp.mean(jnp.sum(nll * query, axis=1) / jnp.sum(query, axis=1))


def _trainable(pfn: PFN):
    """Filter spec: every inexact array except the fixed bucket borders."""
    spec = jax.tree_util.tree_map(eqx.is_inexact_array, pfn)
    return eqx.tree_at(lambda m: m.borders, spec, replace=False)


@eqx.filter_jit
def _train_step(params, opt_state, step_key, static, prior, optimizer, log_w, batch_size, seq_len, min_train,
                batch_sharding):
    """One optimiser step; module level, so calls with the same configuration share the compilation."""
    k_data, k_cut = jax.random.split(step_key)
    x, y = prior.sample(k_data, batch_size, seq_len)
    x = jax.lax.with_sharding_constraint(x, batch_sharding)
    y = jax.lax.with_sharding_constraint(y, batch_sharding)
    n_train = min_train + jax.random.categorical(k_cut, log_w, shape=(batch_size,))
    n_train = jax.lax.with_sharding_constraint(n_train, batch_sharding)
    loss, grads = eqx.filter_value_and_grad(lambda p: pfn_loss(eqx.combine(p, static), x, y, n_train))(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state, loss


def train_pfn(
    key: PRNGKeyArray,
    pfn: PFN,
    prior: AbstractPrior,
    *,
    steps: int,
    batch_size: int,
    seq_len: int,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 1e-3,
    min_train: int = 1,
    max_train: int | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    progress_bar: bool = True,
    devices=None,
    callback: Callable[[int, float], None] | None = None,
) -> tuple[PFN, np.ndarray]:
    """Fit ``pfn`` to ``prior``; returns ``(trained_pfn, losses)`` (one loss per step).

    ``optimizer`` defaults to :func:`default_optimizer` (adam, warm-up + cosine).
    With ``checkpoint_path`` (its folder must exist), the parameters, optimiser state and
    loss curve are written atomically (:mod:`probkit._checkpoint`) every
    ``checkpoint_every`` steps, at the end, and on ``KeyboardInterrupt`` (SIGINT); a later
    call resumes from the file (step ``s`` always uses ``fold_in(key, s)``, so a resumed
    run equals an uninterrupted one). The file carries a fingerprint of the configuration
    (architecture, borders, prior, optimiser or learning rate, key, batch and sequence
    sizes): resuming under another one, or from a file of another model, raises a
    ``ValueError`` naming the file and what differs. ``steps`` may grow between runs (the
    loss curve is extended; the default optimiser's schedule is then stretched to the new
    ``steps``). A non-finite loss raises ``FloatingPointError`` (the last checkpoint is
    kept). With several
    ``devices`` (default: all local devices) the batch is sharded across them
    (data parallel, ``NamedSharding`` on the batch axis; parameters replicated).
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    seq_len = check_positive_int("seq_len", seq_len, minimum=2)
    min_train = check_positive_int("min_train", min_train, minimum=0)
    max_train = seq_len - 1 if max_train is None else check_positive_int("max_train", max_train)
    if not min_train <= max_train < seq_len:
        raise ValueError(
            f"need min_train <= max_train < seq_len, got min_train={min_train}, "
            f"max_train={max_train}, seq_len={seq_len}"
        )
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    check_positive("learning_rate", learning_rate)
    if not isinstance(pfn, PFN):
        raise TypeError(f"pfn must be a PFN, got {type(pfn).__name__}")
    if not isinstance(prior, AbstractPrior):
        raise TypeError(f"prior must be an AbstractPrior (GPPrior, BNNPrior, ...), got {type(prior).__name__}")
    if prior.x_dim != pfn.x_dim:
        raise ValueError(f"prior.x_dim ({prior.x_dim}) must equal pfn.x_dim ({pfn.x_dim})")
    devices = list(jax.local_devices() if devices is None else devices)
    if batch_size % len(devices):
        raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of devices ({len(devices)})")
    checkpoint_path = check_checkpoint_path("checkpoint_path", checkpoint_path)
    user_optimizer = optimizer
    optimizer = default_optimizer(steps, learning_rate) if optimizer is None else optimizer

    mesh = Mesh(np.array(devices), ("batch",))
    replicated = NamedSharding(mesh, PartitionSpec())
    batch_sharding = NamedSharding(mesh, PartitionSpec("batch"))
    params, static = eqx.partition(pfn, _trainable(pfn))
    opt_state = optimizer.init(params)
    log_w = cut_log_weights(seq_len, min_train, max_train)

    fingerprint = {
        "pfn": pfn.hyperparameters,
        "borders": digest(pfn.borders),
        "prior": digest(prior),
        "optimizer": {"default": {"learning_rate": learning_rate}} if user_optimizer is None else digest(user_optimizer),
        "key": describe(key),
        "batch_size": batch_size,
        "seq_len": seq_len,
        "train_sizes": [min_train, max_train],
    }
    (params, opt_state), losses, start = load_training_state(
        checkpoint_path, (params, opt_state), fingerprint=fingerprint, steps=steps
    )
    params, opt_state = jax.device_put((params, opt_state), replicated)

    def step(params, opt_state, step_key):
        return _train_step(params, opt_state, step_key, static, prior, optimizer, log_w, batch_size, seq_len,
                           min_train, batch_sharding)

    done = start  # steps whose update is in (params, opt_state)

    def save():
        if checkpoint_path is not None:
            save_training_state(checkpoint_path, (params, opt_state), losses[:done], fingerprint=fingerprint)

    bar = tqdm(total=steps, initial=start, disable=not progress_bar, desc="train_pfn")
    with save_on_interrupt(save):
        for s in range(start, steps):
            new_params, new_opt_state, loss = step(params, opt_state, jax.random.fold_in(key, s))
            loss = float(loss)
            if not np.isfinite(loss):
                bar.close()
                raise FloatingPointError(
                    f"train_pfn: the loss is {loss} at step {s} (diverged: lower the learning rate, or check "
                    "the prior's samples); the last checkpoint is kept"
                )
            params, opt_state, done = new_params, new_opt_state, s + 1
            losses[s] = loss
            bar.update(1)
            if s % 10 == 0 or s == steps - 1:
                bar.set_postfix(loss=f"{losses[max(0, s - 49): s + 1].mean():.4f}")
            if done % checkpoint_every == 0 or done == steps:
                save()
            if callback is not None:
                callback(s, loss)
    bar.close()
    return eqx.combine(params, static), losses
