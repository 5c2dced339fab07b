"""A NumPyro model as a log density on its unconstrained latent space."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer.initialization import init_to_median, init_to_uniform
from numpyro.infer.util import initialize_model


def _latent_sites(model, args, kwargs, key):
    # substitute uniform initial values so that improper priors need not be sampled
    seeded = handlers.substitute(handlers.seed(model, key), substitute_fn=init_to_uniform)
    trace = handlers.trace(seeded).get_trace(*args, **kwargs)
    return {
        name: site
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def check_continuous(model, args=(), kwargs=None, key=None) -> None:
    """Raise ``ValueError`` if ``model`` has discrete latent sample sites."""
    key = jax.random.PRNGKey(0) if key is None else key
    sites = _latent_sites(model, args, kwargs or {}, key)
    discrete = [n for n, s in sites.items() if s["fn"].support.is_discrete]
    if discrete:
        raise ValueError(
            f"model has discrete latent sites {discrete}; probkit's guides and samplers need "
            "continuous latents (marginalise them out, e.g. with numpyro's enumeration)"
        )
    if not sites:
        raise ValueError("model has no latent sample sites")


def model_logdensity(
    model: Callable,
    *args: Any,
    key: jax.Array | None = None,
    init_strategy: Callable = init_to_median(num_samples=15),
    **kwargs: Any,
) -> tuple[Callable[[jax.Array], jax.Array], jax.Array, Callable[[jax.Array], dict]]:
    r"""Turn a NumPyro model into ``(logdensity_fn, init_position, postprocess_fn)``.

    The position is a **flat vector** ``z ∈ R^D``: the model's latent sites,
    each mapped to unconstrained space by its support's bijection and raveled
    (in the order of :func:`jax.flatten_util.ravel_pytree` on the dict of sites).

    - ``logdensity_fn(z) = log p(T(z), data) + log|det J_T(z)|``, the density
      that NUTS/HMC target on unconstrained space (minus numpyro's potential).
    - ``init_position``: a point from ``init_strategy`` (median of the prior by default).
    - ``postprocess_fn(z)``: dict of constrained latent values and deterministic sites.

    ``logdensity_fn.unravel`` maps a flat vector back to the dict of
    unconstrained sites; ``logdensity_fn.dim`` is ``D``.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    check_continuous(model, args, kwargs, key)
    info = initialize_model(
        key,
        model,
        model_args=args,
        model_kwargs=kwargs,
        init_strategy=init_strategy,
        dynamic_args=False,
    )
    init = info.param_info.z
    flat, unravel = ravel_pytree(init)
    potential_fn = info.potential_fn
    postprocess = info.postprocess_fn

    def logdensity_fn(z):
        return -potential_fn(unravel(z))

    def postprocess_fn(z):
        return postprocess(unravel(z))

    logdensity_fn.unravel = unravel
    logdensity_fn.dim = int(flat.shape[0])
    return logdensity_fn, jnp.asarray(flat), postprocess_fn
