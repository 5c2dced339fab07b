"""Bad input at the boundary of probkit.ot, and float32 data at the ends of the range (issue 26).

Each case failed on the code before the fix: it returned a number (often 0 or the value
of some other problem) instead of raising, or lost the answer to underflow/overflow.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.ot import max_sliced_wasserstein, sliced_wasserstein, wasserstein_1d

KEY = jax.random.PRNGKey(0)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 3)).astype(np.float32)
Y = (RNG.normal(size=(24, 3)) * 1.5 + 6.0).astype(np.float32)  # far apart: overflows at 1e18
TH = RNG.normal(size=(6, 3))
TH = (TH / np.linalg.norm(TH, axis=1, keepdims=True)).astype(np.float32)
W = np.full(24, 1 / 24, np.float32)


def _sw(**kw):
    return lambda: sliced_wasserstein(KEY, kw.pop("x", X), kw.pop("y", Y), **({"n_projections": 6} | kw))


EAGER = {
    "non-unit directions": (_sw(projections=2 * TH), ValueError, "projections must hold unit directions"),
    "zero direction": (_sw(projections=np.vstack([np.zeros((1, 3)), TH])), ValueError,
                       "projections must hold unit directions"),
    "no directions": (_sw(projections=np.zeros((0, 3))), ValueError, "projections must hold at least one"),
    "complex x": (_sw(x=X + 1j), TypeError, "x must be real"),
    "complex weights": (_sw(x_weights=W + 0j), TypeError, "x_weights must be real"),
    "complex directions": (_sw(projections=TH + 0j), TypeError, "projections must be real"),
    "zero-dimensional points": (_sw(x=np.zeros((4, 0)), y=np.zeros((4, 0))), ValueError, "at least one dimension"),
    "w1d empty": (lambda: wasserstein_1d(np.zeros(0), X[:, 0]), ValueError, "u must contain at least one point"),
    "w1d complex": (lambda: wasserstein_1d(X[:, 0] + 1j, X[:, 1]), TypeError, "u must be real"),
    "max-sliced complex": (lambda: max_sliced_wasserstein(KEY, X, Y + 1j, steps=2), TypeError, "y must be real"),
}


@pytest.mark.parametrize("case", list(EAGER))
def test_bad_input_raises_at_the_boundary(case):
    fn, error, match = EAGER[case]
    with pytest.raises(error, match=match):
        fn()


def _nan(a):
    return a.at[0, 0].set(jnp.nan)


JIT = {
    # (traced arguments -> value, arguments, message)
    "NaN in x": (lambda x: sliced_wasserstein(KEY, x, Y, n_projections=6), (_nan(jnp.asarray(X)),),
                 "x must contain only finite values"),
    "inf in y": (lambda y: sliced_wasserstein(KEY, X, y, n_projections=6), (jnp.asarray(Y).at[3, 1].set(jnp.inf),),
                 "y must contain only finite values"),
    "weights sum to 2": (lambda w: sliced_wasserstein(KEY, X, Y, n_projections=6, x_weights=w), (2 * W,),
                         "x_weights must sum to 1"),
    "negative weight": (lambda w: sliced_wasserstein(KEY, X, Y, n_projections=6, y_weights=w),
                        (np.r_[-W[:2], W[2:] + 4 * W[0] / 22],), "y_weights must be non-negative"),
    "non-unit traced directions": (lambda t: sliced_wasserstein(None, X, Y, projections=t), (1.5 * TH,),
                                   "projections must hold unit directions"),
    "w1d NaN": (lambda u: wasserstein_1d(u, Y[:, 0]), (_nan(jnp.asarray(X))[:, 0],), "u must contain only finite"),
    "w1d weights": (lambda w: wasserstein_1d(X[:, 0], Y[:, 0], w), (0.5 * W,), "u_weights must sum to 1"),
}


@pytest.mark.parametrize("case", list(JIT))
def test_bad_values_under_jit_raise(case):
    fn, args, match = JIT[case]
    with pytest.raises(Exception, match=match):
        jax.block_until_ready(jax.jit(fn)(*args))


@functools.cache
def _reference(fn):
    """The float64 value at scale 1 (the answer at scale s is s times it)."""
    with float64():
        return np.asarray(fn(X.astype(np.float64), Y.astype(np.float64)))


def _sw_and_stderr(x, y, **kw):
    return jnp.stack(sliced_wasserstein(None, x, y, projections=TH.astype(x.dtype), return_stderr=True, **kw))


SCALED = {
    "mc": _sw_and_stderr,
    "cv_lower": lambda x, y: _sw_and_stderr(x, y, estimator="cv_lower"),
    "cv_upper": lambda x, y: _sw_and_stderr(x, y, estimator="cv_upper"),
    "weighted": lambda x, y: _sw_and_stderr(x, y, x_weights=W),
    "w1d": lambda x, y: wasserstein_1d(x[:, 0], y[:20, 1]),
    "max-sliced": lambda x, y: max_sliced_wasserstein(KEY, x, y, steps=20, n_restarts=2),
}


@pytest.mark.parametrize("scale", [1e-20, 1e18])
@pytest.mark.parametrize("case", list(SCALED))
def test_float32_at_extreme_scales_matches_float64(case, scale):
    """Value (and standard error) of float32 data times ``scale`` = ``scale`` x the float64 answer."""
    fn = SCALED[case]
    if case == "max-sliced":  # a local maximum: compare with the float32 run at scale 1
        want = np.asarray(fn(X, Y))
    else:
        want = _reference(fn)
    got = np.asarray(fn(X * np.float32(scale), Y * np.float32(scale)))
    np.testing.assert_allclose(got / scale, want, rtol=2e-4)


def test_extreme_scale_gradient_is_exact():
    """d SW / dx is 0-homogeneous: the gradient at scale 1e-20 equals the gradient at scale 1."""
    g = jax.grad(lambda x, s: sliced_wasserstein(None, x, Y * s, projections=TH))
    np.testing.assert_allclose(g(X * np.float32(1e-20), np.float32(1e-20)), g(X, np.float32(1.0)), rtol=1e-5,
                               atol=1e-7)
