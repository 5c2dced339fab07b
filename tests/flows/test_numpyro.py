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
    x, inter = d.sample_with_intermediates(jax.random.PRNGKey(2), (4,))
    assert x.shape == (4, 3)
    lp_inter = d.log_prob(x, inter)  # scored with the forward log-det
    lp_inv = d.log_prob(x)  # scored through the inverse
    np.testing.assert_allclose(lp_inter, lp_inv, rtol=1e-8)
    np.testing.assert_allclose(lp_inv, eqx.filter_jit(flow.log_prob)(x), rtol=1e-8)
    # the same draws as Flow.sample for the same key
    np.testing.assert_allclose(d.sample(jax.random.PRNGKey(2), (4,)), flow.sample(jax.random.PRNGKey(2), (4,)), rtol=1e-12)


def test_to_numpyro_bad():
    with pytest.raises(TypeError, match="flow"):
        to_numpyro("not a flow")
