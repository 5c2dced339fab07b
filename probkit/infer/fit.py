"""Fit a NumPyro guide by stochastic variational inference (optax optimiser, scanned steps)."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from numpyro import handlers
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.util import log_density
from numpyro.optim import optax_to_numpyro
from tqdm.auto import tqdm

from .._validate import check_positive_int
from .psis import K_THRESHOLD, psis


class VIResult(tuple):
    """``(params, losses)`` as returned by :func:`fit_vi`, with the fit's diagnostic attached.

    Unpacks as the pair; ``.params``, ``.losses``, ``.pareto_k`` (the PSIS shape ``k̂``
    of the importance weights ``log p − log q`` of ``diagnostic_draws`` guide draws,
    ``None`` when not computed) and ``.log_weights`` (those raw log weights).
    """

    def __new__(cls, params, losses, pareto_k=None, log_weights=None):
        self = super().__new__(cls, (params, losses))
        self.pareto_k, self.log_weights = pareto_k, log_weights
        return self

    @property
    def params(self):
        return self[0]

    @property
    def losses(self):
        return self[1]


def importance_log_weights(key: jax.Array, model: Callable, guide: Callable, params: dict, *args,
                           n: int = 1000, **kwargs) -> jax.Array:
    r"""``log w_s = log p(x_s, data) − log q(x_s)`` for ``n`` draws ``x_s ~ q`` of the guide.

    Each term is one particle of NumPyro's ``Trace_ELBO`` (the guide traced with
    ``params``, the model replayed on its draw), so ``mean(log w)`` is the ELBO.
    """

    def one(k):
        guide_lp, guide_trace = log_density(handlers.seed(guide, k), args, kwargs, params)
        model_lp, _ = log_density(handlers.replay(handlers.seed(model, k), guide_trace), args, kwargs, params)
        return model_lp - guide_lp

    return jax.jit(jax.vmap(one))(jax.random.split(key, n))


def default_optimizer(steps: int, peak_lr: float = 2e-3) -> optax.GradientTransformation:
    r"""Adam whose step size rises linearly to ``peak_lr`` over the first 5 % of ``steps``
    and then follows a cosine down to ``peak_lr / 100`` at ``steps``."""
    steps = check_positive_int("steps", steps)
    warmup = max(1, steps // 20)
    schedule = optax.warmup_cosine_decay_schedule(0.0, peak_lr, warmup, max(steps, warmup + 1), peak_lr / 100)
    return optax.adam(schedule)


def fit_vi(
    key: jax.Array,
    model: Callable,
    guide: Callable,
    *args: Any,
    steps: int,
    optimizer: optax.GradientTransformation | None = None,
    loss=None,
    num_particles: int = 1,
    progress_bar: bool = True,
    n_updates: int = 50,
    init_params: dict | None = None,
    checkpoint: str | None = None,
    diagnostic_draws: int = 1000,
    **kwargs: Any,
) -> VIResult:
    """Maximise the ELBO of ``guide`` for ``model(*args, **kwargs)``; return ``(params, losses)``.

    Steps run inside ``lax.scan`` in chunks (one compilation for all full chunks);
    the tqdm bar advances once per chunk (``n_updates`` chunks) and is off with
    ``progress_bar=False`` (then one scan over all steps). ``losses[t]`` is the
    negative ELBO estimate at step ``t``. With ``checkpoint`` a path, the params
    are written after every chunk with :func:`equinox.tree_serialise_leaves`
    (restore with ``eqx.tree_deserialise_leaves(path, like)`` and pass as
    ``init_params``). A non-finite loss stops the fit with a ``FloatingPointError`` naming
    the first such step (the steps after it in the same chunk are not applied), as do
    non-finite parameters.

    **Diagnostic.** After the fit, ``diagnostic_draws`` draws of the guide give the
    importance weights ``log w = log p(x, data) − log q(x)`` and their Pareto-smoothed
    shape ``k̂`` (:func:`probkit.infer.psis`; Yao et al. 2018): ``k̂ ≤ 0.7`` means
    importance sampling from the guide is reliable and the guide is close to the
    posterior, ``k̂ > 0.7`` (warned, ``UserWarning``) that the guide misses part of
    the posterior's mass, whatever the final loss says. The result unpacks as
    ``(params, losses)`` and carries ``.pareto_k`` and ``.log_weights``
    (:class:`VIResult`); ``diagnostic_draws=0`` skips it.

    :param optimizer: an optax transformation; default :func:`default_optimizer` (``steps``), Adam
        with a linear warm-up and cosine decay, which lets the last steps average out the
        gradient noise of the ELBO estimate.
    :param loss: a NumPyro ELBO, default ``Trace_ELBO(num_particles)``.
    :param num_particles: ELBO particles per step. Reverse-KL training is mode-seeking and a
        noisy gradient lets it drop separated modes: on Rezende & Mohamed's U4 energy the
        default AutoFlow lost one branch with 16 particles (KL 0.16-0.19) and kept both
        with 256 (KL 0.02-0.04); raise it for multimodal posteriors.
    """
    steps = check_positive_int("steps", steps)
    num_particles = check_positive_int("num_particles", num_particles)
    n_updates = check_positive_int("n_updates", n_updates)
    diagnostic_draws = check_positive_int("diagnostic_draws", diagnostic_draws, minimum=0)
    optimizer = default_optimizer(steps) if optimizer is None else optimizer
    loss = Trace_ELBO(num_particles=num_particles) if loss is None else loss
    svi = SVI(model, guide, optax_to_numpyro(optimizer), loss)
    key, init_key = jax.random.split(key)
    diag_key = jax.random.fold_in(key, 1)
    state = svi.init(init_key, *args, init_params=init_params, **kwargs)

    def run(state, n):
        # carry the step of the first non-finite loss (-1: none); from there on the state is frozen
        def body(carry, t):
            s, bad = carry
            new, value = svi.update(s, *args, **kwargs)
            bad = jnp.where((bad < 0) & ~jnp.isfinite(value), t, bad)
            s = jax.tree.map(lambda a, b: jnp.where(bad >= 0, a, b), s, new)
            return (s, bad), value

        (state, bad), values = lax.scan(body, (state, jnp.array(-1)), jnp.arange(n))
        return state, bad, values

    run = jax.jit(run, static_argnums=1)
    chunk = -(-steps // n_updates) if progress_bar else steps
    losses = []
    done = 0
    with tqdm(total=steps, disable=not progress_bar, desc="fit_vi") as bar:
        while done < steps:
            n = min(chunk, steps - done)
            state, bad, values = run(state, n)
            if int(bad) >= 0:
                step = done + int(bad)
                raise FloatingPointError(
                    f"fit_vi: the loss became non-finite ({float(values[int(bad)])}) at step {step} "
                    f"(0-based; the last finite loss was at step {step - 1}): the model's log density "
                    "is NaN or infinite where the guide draws, e.g. outside its support, or the guide "
                    "diverged; check the model or lower the learning rate"
                )
            losses.append(values)
            done += n
            params = svi.get_params(state)
            if not all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params)):
                raise FloatingPointError(f"fit_vi: parameters became non-finite by step {done}")
            if checkpoint is not None:
                eqx.tree_serialise_leaves(checkpoint, params)
            bar.set_postfix(loss=f"{float(np.mean(np.asarray(values))):.4g}")
            bar.update(n)
    params = svi.get_params(state)
    pareto_k = log_weights = None
    if diagnostic_draws:
        log_weights = importance_log_weights(diag_key, model, guide, params, *args, n=diagnostic_draws, **kwargs)
        if bool(jnp.any(jnp.isnan(log_weights) | (log_weights == jnp.inf))):
            pareto_k = float("inf")
        else:
            pareto_k = float(psis(log_weights)[1])
        if not pareto_k <= K_THRESHOLD:
            warnings.warn(
                f"fit_vi: Pareto k-hat of the importance weights log p - log q is {pareto_k:.2f} > {K_THRESHOLD} "
                f"({diagnostic_draws} guide draws; Yao et al. 2018): the guide misses part of the posterior, "
                "so its moments may be far off; try more steps or particles, a richer guide, or "
                "reparametrise the model",
                UserWarning,
                stacklevel=2,
            )
    return VIResult(params, jnp.concatenate(losses), pareto_k, log_weights)
