"""A NumPyro model (or a potential energy) as a log density on a flat unconstrained vector."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.distributions.distribution import MaskedDistribution
from numpyro.infer.initialization import init_to_median, init_to_uniform
from numpyro.infer.util import initialize_model

from .._validate import is_concrete


def _trace(model, args, kwargs, key):
    # substitute uniform initial values so that improper priors need not be sampled
    seeded = handlers.substitute(handlers.seed(model, key), substitute_fn=init_to_uniform)
    return handlers.trace(seeded).get_trace(*args, **kwargs)


def _latent_sites(model, args, kwargs, key):
    trace = _trace(model, args, kwargs, key)
    return {
        name: site
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def check_continuous(model, args=(), kwargs=None, key=None) -> None:
    """Raise ``ValueError`` if ``model`` has discrete latent sample sites (or none at all)."""
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


def _site_mask(site):
    """The site's mask (``handlers.mask`` wraps the distribution; plates/``obs_mask`` set ``site["mask"]``)."""
    masks = [site.get("mask"), getattr(site["fn"], "_mask", None) if isinstance(site["fn"], MaskedDistribution) else None]
    masks = [m for m in masks if m is not None]
    if not masks or not all(is_concrete(m) for m in masks):
        return None
    out = np.asarray(masks[0], bool)
    for m in masks[1:]:
        out = out & np.asarray(m, bool)
    return out


def _check_observed_finite(trace) -> None:
    """``ValueError`` naming each observed site whose (unmasked) values are NaN or infinite."""
    bad = []
    for name, site in trace.items():
        value = site.get("value")
        if site["type"] != "sample" or not site["is_observed"] or not is_concrete(value):
            continue
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.inexact):
            continue
        nonfinite = ~np.isfinite(value)
        event_ndim = len(site["fn"].event_shape)
        if event_ndim:
            nonfinite = nonfinite.any(axis=tuple(range(-event_ndim, 0)))
        mask = _site_mask(site)
        if mask is not None:  # masked-out entries (e.g. missing data) may hold NaN
            try:
                nonfinite = nonfinite & np.broadcast_to(mask, nonfinite.shape)
            except ValueError:
                pass
        if nonfinite.any():
            bad.append(f"{name!r} ({int(nonfinite.sum())} of {nonfinite.size} entries)")
    if bad:
        raise ValueError(
            f"observed data must be finite: NaN or inf at observed site(s) {', '.join(bad)}; "
            "drop or mask them (e.g. numpyro.sample(..., obs_mask=...))"
        )


def _nonfinite_arguments(args, kwargs) -> list[str]:
    """Names of the model arguments that are floating arrays with NaN or inf entries."""
    named = [(f"args[{i}]", a) for i, a in enumerate(args)] + [(repr(k), v) for k, v in kwargs.items()]
    out = []
    for name, value in named:
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
            if not is_concrete(leaf) or not hasattr(leaf, "dtype"):
                continue
            arr = np.asarray(leaf)
            if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
                out.append(name + jax.tree_util.keystr(path))
    return out


def _check_position(z, dim: int):
    if jnp.shape(z) != (dim,):
        raise ValueError(
            f"position must be a flat vector of shape ({dim},) (the model's unconstrained latent values), "
            f"got shape {jnp.shape(z)}"
        )
    return z


def forward_mode_grad(fn: Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
    r"""``fn`` whose reverse-mode gradient is computed in forward mode (``D`` JVPs, as ``jax.jacfwd``).

    For log densities built on ``lax.while_loop`` (adaptive ODE solvers,
    root finding), which reverse-mode autodiff cannot differentiate; what
    NumPyro's ``forward_mode_differentiation=True`` does. ``value_and_grad`` of
    the result costs one forward pass with ``D`` tangents.
    """

    @jax.custom_vjp
    def wrapped(z):
        return fn(z)

    def fwd(z):
        if z.shape[0] == 0:
            return fn(z), jnp.zeros_like(z)
        value, grad = jax.vmap(lambda t: jax.jvp(fn, (z,), (t,)))(jnp.eye(z.shape[0], dtype=z.dtype))
        return value[0], grad

    def bwd(grad, cotangent):
        return (cotangent * grad,)

    wrapped.defvjp(fwd, bwd)
    return wrapped


class Target(NamedTuple):
    """A log density on the flat vector ``z ∈ R^dim``, built from the model arguments at call time.

    ``logdensity(args, kwargs)`` and ``postprocess(args, kwargs)`` return the
    functions of ``z`` for those model arguments (which may be traced: the
    log density is never baked into a compiled sampler); ``init_position``
    is the point from the ``init_strategy`` for the arguments the target was
    built with; ``unravel`` maps ``z`` to the dict of unconstrained sites.
    """

    logdensity: Callable[[tuple, dict], Callable]
    postprocess: Callable[[tuple, dict], Callable]
    init_position: jax.Array
    unravel: Callable
    dim: int


def _flat_functions(logdensity_of, postprocess_of, unravel, dim, forward_mode):
    def logdensity(args, kwargs):
        fn = logdensity_of(args, kwargs)
        flat = lambda z: fn(unravel(_check_position(z, dim)))  # noqa: E731
        return forward_mode_grad(flat) if forward_mode else flat

    def postprocess(args, kwargs):
        fn = postprocess_of(args, kwargs)
        return lambda z: fn(unravel(_check_position(z, dim)))

    return logdensity, postprocess


def model_target(
    model: Callable,
    args: tuple = (),
    kwargs: dict | None = None,
    *,
    key: jax.Array | None = None,
    init_strategy: Callable = init_to_median(num_samples=15),
    forward_mode_differentiation: bool = False,
) -> Target:
    """The :class:`Target` of a NumPyro model (see :func:`model_logdensity`).

    Discrete latent sites are NumPyro's business: ``initialize_model`` raises
    its own error, or enumerates them when ``funsor`` is installed.
    """
    kwargs = {} if kwargs is None else kwargs
    key = jax.random.PRNGKey(0) if key is None else key

    def unevaluable(err):
        bad = _nonfinite_arguments(args, kwargs)
        if bad:
            raise ValueError(f"model arguments must be finite: NaN or inf in {', '.join(bad)}") from err
        raise err

    try:
        trace = _trace(model, args, kwargs, key)
    except (RuntimeError, ValueError) as err:
        unevaluable(err)
    _check_observed_finite(trace)
    try:
        info = initialize_model(
            key, model, model_args=args, model_kwargs=kwargs, init_strategy=init_strategy, dynamic_args=True,
            forward_mode_differentiation=forward_mode_differentiation,
        )
    except (RuntimeError, ValueError) as err:
        unevaluable(err)
    flat, unravel = ravel_pytree(info.param_info.z)
    dim = int(flat.shape[0])
    potential_of, postprocess_of = info.potential_fn, info.postprocess_fn

    def logdensity_of(args, kwargs):
        potential = potential_of(*args, **kwargs)
        return lambda params: -potential(params)

    logdensity, postprocess = _flat_functions(
        logdensity_of, lambda a, k: postprocess_of(*a, **k), unravel, dim, forward_mode_differentiation
    )
    return Target(logdensity, postprocess, jnp.asarray(flat), unravel, dim)


def potential_target(potential_fn: Callable, prototype: Any, *, forward_mode_differentiation: bool = False) -> Target:
    """The :class:`Target` of a potential energy ``U(params)`` (log density ``-U``) on ``prototype``'s pytree.

    The postprocess map is the identity on the pytree, as for NumPyro's kernels
    built from a ``potential_fn``.
    """
    flat, unravel = ravel_pytree(prototype)
    dim = int(flat.shape[0])
    logdensity, postprocess = _flat_functions(
        lambda a, k: lambda params: -potential_fn(params), lambda a, k: lambda params: params, unravel, dim,
        forward_mode_differentiation,
    )
    return Target(logdensity, postprocess, jnp.asarray(flat), unravel, dim)


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
    unconstrained sites; ``logdensity_fn.dim`` is ``D``. A model without latent
    sites has ``D = 0``: ``logdensity_fn`` is the log likelihood of the data and
    ``postprocess_fn`` gives the deterministic sites. Discrete latent sites get
    NumPyro's own error (or its enumeration, with ``funsor`` installed).

    Raises ``ValueError`` for observed data with NaN or inf (unless masked),
    for model arguments with NaN or inf that make the model unevaluable, and,
    when called, for a position that is not of shape ``(D,)``.
    """
    target = model_target(model, args, kwargs, key=key, init_strategy=init_strategy)
    logdensity_fn = target.logdensity(args, kwargs)
    logdensity_fn.unravel = target.unravel
    logdensity_fn.dim = target.dim
    return logdensity_fn, target.init_position, target.postprocess(args, kwargs)
