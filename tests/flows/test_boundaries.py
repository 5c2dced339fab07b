"""Bad input to probkit.flows is rejected at the boundary, naming the argument (issue 26).

Each case passed silently before (NaN parameters, a garbage Flow of two dimensions, the
imaginary part dropped) or crashed inside JAX/MLIR with a message that names nothing.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from probkit.flows import Affine, Chain, Flow, Permute, Planar, Radial, StandardNormal

KEY = jax.random.PRNGKey(0)
FLOW = Flow(StandardNormal(2), Affine(jnp.array([0.5, -1.0]), jnp.array([2.0, 0.5])))
C = jnp.array([1.0 + 1.0j, 0.0])

EAGER = {
    "Affine NaN loc": (lambda: Affine(jnp.nan), ValueError, "loc must contain only finite"),
    "Affine inf in loc": (lambda: Affine(jnp.array([0.0, jnp.inf]), 1.0), ValueError, "loc must contain only finite"),
    "Affine loc/scale of two lengths": (lambda: Affine(jnp.zeros(2), jnp.ones(3)), ValueError,
                                        r"loc and scale must be .* one length D, got shapes \(2,\) and \(3,\)"),
    "Affine matrix loc": (lambda: Affine(jnp.zeros((2, 2))), ValueError, "loc and scale must be scalars or vectors"),
    "Affine complex loc": (lambda: Affine(C), TypeError, "loc must be real"),
    "Affine complex scale": (lambda: Affine(jnp.zeros(2), C), TypeError, "scale must be real"),
    # one scale counted in the log-det of a 3-vector: log 2 instead of 3 log 2
    "Affine of D=1 on a 3-vector": (lambda: Affine(0.0, 2.0).transform_and_log_det(jnp.zeros(3)), ValueError,
                                    r"x must be one vector of shape \(1,\)"),
    "Affine complex x": (lambda: Affine(jnp.zeros(2)).transform(C), TypeError, "x must be real"),
    "Planar complex y": (lambda: Planar(KEY, 2).inverse(C), TypeError, "y must be real"),
    "Radial of D=1 on a 2-vector": (lambda: Radial(KEY, 1).transform(jnp.ones(2)), ValueError,
                                    r"x must be one vector of shape \(1,\)"),
    "Flow base 2, Affine of 3": (lambda: Flow(StandardNormal(2), Affine(jnp.zeros(3))), ValueError,
                                 r"base's dimension 2.*shape \(3,\)"),
    "Flow base 3, Radial of 1": (lambda: Flow(StandardNormal(3), Radial(KEY, 1)), ValueError, "base's dimension 3"),
    "Flow base 2, Chain of Planar 3": (lambda: Flow(StandardNormal(2), Chain([Planar(KEY, 3)])), ValueError,
                                       "base's dimension 2"),
    "Flow.log_prob complex": (lambda: FLOW.log_prob(C), TypeError, "x must be real"),
    "Flow.sample negative": (lambda: FLOW.sample(KEY, (-1,)), ValueError, "sample_shape must be a tuple of non-neg"),
    "Flow.sample_and_log_prob negative": (lambda: FLOW.sample_and_log_prob(KEY, (2, -3)), ValueError,
                                          "sample_shape"),
    "Flow.sample fractional": (lambda: FLOW.sample(KEY, (2.5,)), ValueError, "sample_shape"),
    "StandardNormal negative": (lambda: StandardNormal(2).sample_and_log_prob(KEY, (-2,)), ValueError,
                                "sample_shape"),
}


@pytest.mark.parametrize("case", list(EAGER))
def test_bad_input_raises_at_the_boundary(case):
    fn, error, match = EAGER[case]
    with pytest.raises(error, match=match):
        fn()


@pytest.mark.parametrize(
    "loc, scale, match",
    [(jnp.array([0.0, jnp.nan]), jnp.ones(2), "loc must contain only finite"),
     (jnp.zeros(2), jnp.array([1.0, -1.0]), "scale must be finite and positive"),
     (jnp.zeros(2), jnp.array([1.0, jnp.inf]), "scale must be finite and positive")],
)
def test_affine_traced_parameters_checked_under_jit(loc, scale, match):
    """Built inside jit (traced loc/scale), the value checks are eqx.error_if's."""
    fn = eqx.filter_jit(lambda lo, sc: Affine(lo, sc).transform(jnp.ones(2)))
    with pytest.raises(Exception, match=match):
        jax.block_until_ready(fn(loc, scale))


def test_valid_affine_shapes():
    """A scalar loc or scale is repeated to the other's length; the map is the exact formula."""
    bij = Affine(0.5, jnp.array([1.0, 2.0, 4.0]))
    y, ld = bij.transform_and_log_det(jnp.ones(3))
    assert jnp.allclose(y, jnp.array([1.5, 2.5, 4.5])) and jnp.allclose(ld, jnp.log(8.0))
    assert StandardNormal(2).sample_and_log_prob(KEY, [0])[0].shape == (0, 2)
