"""Argument checks shared by the public functions of :mod:`probkit.ot`.

Shapes and dtypes are checked at the API boundary. Values (finiteness, weights that
are probability vectors, unit projection directions) raise a ``ValueError`` on
concrete inputs and are :func:`equinox.error_if` checks on traced ones, so they hold
under ``jit``/``vmap``/``grad`` too: use the returned arrays.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from probkit._validate import as_matrix, check_ndim, check_real_dtype, check_value, checked_finite


def float_dtype(*arrays):
    """The common floating dtype (float32 unless an input is float64 and x64 is on)."""
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return dtype


def check_samples(x, y, names=("x", "y")):
    """Return ``x, y`` as ``(n, d)``/``(m, d)`` arrays of one floating dtype, finite values."""
    x = as_matrix(names[0], x, finite=False)
    y = as_matrix(names[1], y, finite=False)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same dimension (last axis), "
            f"got {x.shape} and {y.shape}"
        )
    for name, arr in zip(names, (x, y)):
        if arr.shape[0] < 1:
            raise ValueError(f"{name} must contain at least one sample, got shape {arr.shape}")
        if arr.shape[1] < 1:
            raise ValueError(f"{name} must have at least one dimension (last axis), got shape {arr.shape}")
    dtype = float_dtype(x, y)
    return checked_finite(names[0], x.astype(dtype)), checked_finite(names[1], y.astype(dtype))


def check_points_1d(name: str, u):
    """A non-empty 1-D real vector with finite values."""
    u = jnp.asarray(u)
    check_real_dtype(name, u)
    check_ndim(name, u, 1)
    if u.shape[0] < 1:
        raise ValueError(f"{name} must contain at least one point, got shape {u.shape}")
    return checked_finite(name, u)


def weight_tolerance(n: int, dtype) -> float:
    """Allowed ``|sum(w) - 1|``: ``1e-5`` plus the rounding of a sum of ``n`` terms."""
    return 1e-5 + float(np.sqrt(n)) * float(jnp.finfo(dtype).eps)


def check_weights(name: str, w, n: int, dtype):
    """``None`` or a probability vector of length ``n`` (non-negative, summing to 1)."""
    if w is None:
        return None
    w = jnp.asarray(w)
    check_real_dtype(name, w)
    check_ndim(name, w, 1)
    if w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the samples, got {w.shape}")
    w = checked_finite(name, w.astype(dtype))
    w = check_value(name, w, lambda xp, v: xp.any(v < 0), "be non-negative")
    tol = weight_tolerance(n, dtype)
    return check_value(name, w, lambda xp, v: xp.abs(xp.sum(v) - 1) > tol, f"sum to 1 (within {tol:.2g})")


def check_directions(name: str, thetas, d: int, dtype):
    """``(L, d)`` unit directions in ``dtype``, ``L >= 1``: rows of norm 1 within
    ``1e-6 + 16 sqrt(d) eps`` (float32, d = 64: 1.6e-5; float64: 1e-6)."""
    thetas = jnp.asarray(thetas)
    check_real_dtype(name, thetas)
    check_ndim(name, thetas, 2)
    if thetas.shape[1] != d:
        raise ValueError(f"{name} must have shape (L, {d}), got {thetas.shape}")
    if thetas.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one direction, got shape {thetas.shape}")
    # rounding of a normalised row, plus 1e-6 for float32 unit vectors cast to float64
    tol = 1e-6 + 16 * float(np.sqrt(d)) * float(jnp.finfo(dtype).eps)
    thetas = checked_finite(name, thetas.astype(dtype))

    def not_unit(xp, t):
        return xp.any(xp.abs(xp.sqrt(xp.sum(t * t, axis=1)) - 1) > tol)

    return check_value(name, thetas, not_unit, f"hold unit directions (rows of norm 1 within {tol:.2g})")


def check_p(p) -> float:
    """The order ``p >= 1`` of the Wasserstein distance, as a Python float."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not np.isfinite(p) or p < 1:
        raise ValueError(f"p must be a number >= 1, got {p!r}")
    return float(p)
