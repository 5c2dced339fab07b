"""Argument checks shared by the public functions of :mod:`probkit.ot`."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from probkit._validate import as_matrix, check_finite, check_ndim, is_concrete


def float_dtype(*arrays):
    """The common floating dtype (float32 unless an input is float64 and x64 is on)."""
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return dtype


def check_samples(x, y, names=("x", "y")):
    """Return ``x, y`` as ``(n, d)``/``(m, d)`` arrays of one floating dtype."""
    x = as_matrix(names[0], x)
    y = as_matrix(names[1], y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same dimension (last axis), "
            f"got {x.shape} and {y.shape}"
        )
    for name, arr in zip(names, (x, y)):
        if arr.shape[0] < 1:
            raise ValueError(f"{name} must contain at least one sample, got shape {arr.shape}")
    dtype = float_dtype(x, y)
    return x.astype(dtype), y.astype(dtype)


def check_weights(name: str, w, n: int, dtype):
    """``None`` or a probability vector of length ``n`` (non-negative, summing to 1)."""
    if w is None:
        return None
    w = jnp.asarray(w)
    check_ndim(name, w, 1)
    if w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the samples, got {w.shape}")
    check_finite(name, w)
    if is_concrete(w):
        arr = np.asarray(w, dtype=np.float64)
        if np.any(arr < 0):
            raise ValueError(f"{name} must be non-negative")
        total = arr.sum()
        if abs(total - 1.0) > 1e-5:
            raise ValueError(f"{name} must sum to 1, got sum {total!r}")
    return w.astype(dtype)


def check_p(p) -> float:
    """The order ``p >= 1`` of the Wasserstein distance, as a Python float."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not np.isfinite(p) or p < 1:
        raise ValueError(f"p must be a number >= 1, got {p!r}")
    return float(p)
