import equinox as eqx
import jax
import numpy as np
import pytest

from probkit.flows import maf, neural_spline_flow, planar_flow, radial_flow, realnvp


@pytest.mark.parametrize("make", [planar_flow, radial_flow, realnvp, maf, neural_spline_flow])
def test_constructor_flow_consistent(x64, make, randomize_params):
    flow = randomize_params(make(jax.random.PRNGKey(0), 3, 2), jax.random.PRNGKey(1), 0.3)
    x, lp = eqx.filter_jit(flow.sample_and_log_prob)(jax.random.PRNGKey(2), (5,))
    assert x.shape == (5, 3)
    np.testing.assert_allclose(eqx.filter_jit(flow.log_prob)(x), lp, rtol=1e-8, atol=1e-8)


def test_constructor_bad_args(key):
    with pytest.raises(ValueError, match="dim"):
        maf(key, 0)
    with pytest.raises(ValueError, match="n_layers"):
        neural_spline_flow(key, 2, n_layers=0)
