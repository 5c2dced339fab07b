"""Checks shared by the MixFlow entry points (the log density they are given)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import is_concrete


def check_logdensity(logdensity_fn: Callable, x0, *, finite: bool = True) -> None:
    """Require ``logdensity_fn(x0)`` to be a real scalar (and, with ``finite``, finite with a finite gradient).

    The shape check is abstract (``jax.eval_shape``), so it runs before any
    gradient is taken and also under ``jit``; the value check runs on concrete
    points only. Raises ``TypeError``/``ValueError`` naming ``logdensity_fn``.
    """
    if not callable(logdensity_fn):
        raise TypeError(f"logdensity_fn must be callable, got {type(logdensity_fn).__name__}")
    x0 = jnp.asarray(x0)
    out = jax.eval_shape(logdensity_fn, x0)
    if out.shape != ():
        raise ValueError(
            f"logdensity_fn must return a scalar log density for one point of shape {x0.shape}, "
            f"got shape {out.shape} (sum the terms, or vmap over a batch outside it)"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"logdensity_fn must return a real floating value, got dtype {out.dtype}")
    if not (finite and is_concrete(x0)):
        return
    value, grad = jax.value_and_grad(logdensity_fn)(x0)
    if not (np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))):
        raise ValueError(
            "logdensity_fn must be finite with a finite gradient at the starting point "
            f"(the reference mean {np.asarray(x0)!r}); got log density {float(value)!r}"
        )


def check_burn_in(burn_in, n_flow_steps: int) -> int:
    """``burn_in`` as an integer in ``[0, n_flow_steps)``."""
    from .._validate import check_positive_int

    burn_in = check_positive_int("burn_in", burn_in, minimum=0)
    if burn_in >= n_flow_steps:
        raise ValueError(f"burn_in must be < n_flow_steps={n_flow_steps}, got {burn_in}")
    return burn_in


def check_draws_per_trajectory(m, width: int) -> int:
    """``m`` as an integer in ``[1, width]`` (``width = n_flow_steps − burn_in`` states per trajectory)."""
    from .._validate import check_positive_int

    m = check_positive_int("draws_per_trajectory", m)
    if m > width:
        raise ValueError(f"draws_per_trajectory must be <= n_flow_steps - burn_in = {width}, got {m}")
    return m


def check_loc_scale_tril(loc_name: str, loc, scale_tril):
    """``(loc, tril(scale_tril))`` checked: a finite 1-D ``loc`` and a finite ``(d, d)`` factor with a non-zero diagonal."""
    from .._validate import as_float_array, check_finite

    loc = as_float_array(loc_name, loc, 1, "a 1-D vector")
    check_finite(loc_name, loc)
    d = loc.shape[0]
    scale_tril = jnp.asarray(scale_tril, loc.dtype)
    if scale_tril.shape != (d, d):
        raise ValueError(f"scale_tril must have shape ({d}, {d}), got {scale_tril.shape}")
    if is_concrete(scale_tril) and not (np.all(np.isfinite(np.asarray(scale_tril)))
                                        and np.all(np.diag(np.asarray(scale_tril)) != 0)):
        raise ValueError("scale_tril must be finite with a non-zero diagonal (a Cholesky factor)")
    return loc, jnp.tril(scale_tril)
