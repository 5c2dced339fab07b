import equinox as eqx
import jax
import numpy as np
import numpyro.distributions as dist
import pytest

from probkit.flows import maf, to_numpyro


def test_to_numpyro_matches_flow(x64, randomize_params):
    flow = randomize_params(maf(jax.random.PRNGKey(0), 3, 2, width=8), jax.random.PRNGKey(1), 0.3)
    d = flow.to_numpyro()
    assert isinstance(d, dist.Distribution) and d.event_shape == (3,)

    @eqx.filter_jit
    def run(flow, key):
        d = flow.to_numpyro()
        x, inter = d.sample_with_intermediates(key, (4,))
        # scored with the forward log-det, through the inverse, and by Flow itself;
        # the same draws as Flow.sample for the same key
        return x, d.log_prob(x, inter), d.log_prob(x), flow.log_prob(x), flow.sample(key, (4,))

    x, lp_inter, lp_inv, lp_flow, x_flow = run(flow, jax.random.PRNGKey(2))
    assert x.shape == (4, 3)
    np.testing.assert_allclose(lp_inter, lp_inv, rtol=1e-8)
    np.testing.assert_allclose(lp_inv, lp_flow, rtol=1e-8)
    np.testing.assert_allclose(x, x_flow, rtol=1e-12)


def test_to_numpyro_bad():
    with pytest.raises(TypeError, match="flow"):
        to_numpyro("not a flow")
