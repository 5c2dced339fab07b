import equinox as eqx
import jax
import numpy as np
import pytest

from probkit.flows import maf, neural_spline_flow, planar_flow, radial_flow, realnvp


def test_constructor_flows_consistent(x64, randomize_params):
    makers = [planar_flow, radial_flow, realnvp, maf, neural_spline_flow, lambda k, d, n: neural_spline_flow(k, d, n, affine=True)]
    flows = [randomize_params(make(jax.random.PRNGKey(i), 3, 2), jax.random.PRNGKey(10 + i), 0.3)
             for i, make in enumerate(makers)]

    @eqx.filter_jit
    def run(flows, key):
        out = []
        for f in flows:  # one compilation for all constructors
            x, lp = f.sample_and_log_prob(key, (5,))
            out.append((x, lp, f.log_prob(x)))
        return out

    for x, lp, lp_inv in run(flows, jax.random.PRNGKey(2)):
        assert x.shape == (5, 3)
        np.testing.assert_allclose(lp_inv, lp, rtol=1e-8, atol=1e-8)


def test_constructor_bad_args(key):
    with pytest.raises(ValueError, match="dim"):
        maf(key, 0)
    with pytest.raises(ValueError, match="n_layers"):
        neural_spline_flow(key, 2, n_layers=0)
