"""Argument checks shared by every public entry point.

Each helper raises a ``ValueError`` (or ``TypeError``) that names the argument
and says what was expected. They run on concrete values at the API boundary;
under ``jit`` (traced values) the value checks are skipped and only the static
shape checks apply — inside jit use :func:`equinox.error_if` instead.
"""

from __future__ import annotations

import numbers
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds concrete values (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Require every entry of ``value`` to be finite and > 0 (>= 0 with allow_zero)."""
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_open_interval(name: str, value: Any, low: float, high: float) -> None:
    """Require ``low < value < high``."""
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if not (np.all(np.isfinite(arr)) and np.all(arr > low) and np.all(arr < high)):
        raise ValueError(f"{name} must lie in the open interval ({low}, {high}), got {value!r}")


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Require an integer ``>= minimum`` (bools and floats are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_sample_shape(name: str, shape: Any) -> tuple[int, ...]:
    """Require a sequence of integers >= 0 (a draw count per axis); returns it as a tuple."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of non-negative integers, got {shape!r}") from None
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_)) and n >= 0 for n in dims):
        raise ValueError(f"{name} must be a tuple of non-negative integers, got {shape!r}")
    return tuple(int(n) for n in dims)


def check_real(name: str, value: Any) -> float:
    """Require a finite real number (a Python or NumPy scalar; bools are rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def check_finite(name: str, x: Any) -> None:
    """Require every entry of the array ``x`` to be finite (no NaN or inf)."""
    if not is_concrete(x):
        return
    # NumPy, not jax.numpy: under an enclosing jit/vmap trace a jnp op on a
    # closed-over concrete array would be staged out and return a tracer.
    if not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")


def check_ndim(name: str, x: Any, ndim: int | tuple[int, ...]) -> None:
    """Require ``x.ndim`` to be ``ndim`` (or one of a tuple of allowed values)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    got = jnp.ndim(x)
    if got not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {want} dimensions, got shape {jnp.shape(x)}")


def check_choice(name: str, value: Any, choices) -> None:
    """Require ``value`` to be one of ``choices``; the error lists them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {sorted(choices)}")


def as_float_array(name: str, x: Any, ndim: int, what: str) -> jax.Array:
    """``x`` as a floating array (integers cast to the default float) with ``ndim`` dimensions.

    ``what`` describes the expected value in the error, e.g. ``"a 1-D vector"``.
    """
    arr = jnp.asarray(x)
    check_real_dtype(name, arr)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {what}, got shape {arr.shape}")
    return arr


def as_matrix(name: str, x: Any, *, finite: bool = True) -> jax.Array:
    """Return ``x`` as a 2-D array ``(n, d)``; a 1-D input becomes ``(n, 1)``."""
    arr = jnp.asarray(x)
    check_real_dtype(name, arr)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if arr.ndim == 1:
        arr = arr[:, None]
    check_ndim(name, arr, 2)
    if finite:
        check_finite(name, arr)
    return arr


def check_real_dtype(name: str, x: Any) -> None:
    """Reject complex values (a cast to float would silently drop the imaginary part)."""
    if jnp.iscomplexobj(x):
        raise TypeError(f"{name} must be real, got complex dtype {jnp.result_type(x)}")


def check_value(name: str, x: Any, is_bad, expected: str):
    """Check a value condition eagerly on concrete ``x``, with :func:`equinox.error_if` under jit.

    ``is_bad(xp, x)`` returns a boolean scalar, with ``xp`` NumPy for concrete ``x``
    (a ``ValueError`` "``{name} must {expected}``") or ``jax.numpy`` for a tracer
    (then ``x`` comes back wrapped in ``error_if`` with the same message; use the
    returned value, or the check is dead code). Returns ``x``.
    """
    message = f"{name} must {expected}"
    if is_concrete(x):
        if bool(is_bad(np, np.asarray(x))):
            raise ValueError(message)
        return x
    return eqx.error_if(x, is_bad(jnp, x), message)


def _not_all_finite(xp, x):
    return ~xp.all(xp.isfinite(x))


def checked_finite(name: str, x: Any):
    """:func:`check_finite`, also under jit (``eqx.error_if``); returns ``x``."""
    return check_value(name, x, _not_all_finite, "contain only finite values (found NaN or inf)")


def _not_positive_definite(xp, m):
    finite = xp.all(xp.isfinite(m))
    m = xp.where(finite, m, 0)
    mt = xp.swapaxes(m, -1, -2)
    eps = xp.finfo(m.dtype).eps
    scale = xp.max(xp.abs(m)) if m.size else 0
    asymmetric = xp.any(xp.abs(m - mt) > 100 * eps * scale)
    lam = xp.linalg.eigvalsh(0.5 * (m + mt))
    singular = xp.any(lam[..., 0] <= m.shape[-1] * eps * xp.abs(lam[..., -1]))
    return ~finite | asymmetric | singular


def check_positive_definite(name: str, a: Any):
    """Require a (batch of) symmetric positive-definite matrices ``(..., d, d)``.

    Symmetric to ``100 eps max|a|``; smallest eigenvalue above ``d eps`` times the
    largest (numerically singular counts as not positive definite). ``ValueError`` on
    concrete values, :func:`equinox.error_if` under jit; returns ``a``.
    """
    shape = jnp.shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{name} must be square matrices (..., d, d), got shape {shape}")
    return check_value(name, a, _not_positive_definite, "be symmetric positive definite (and finite)")
