import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro.infer import Predictive
from numpyro.infer.initialization import init_to_value

from probkit.flows import maf, planar_flow
from probkit.infer import AutoFlow, fit_vi

Y = jnp.array([0.8, 1.9, 1.2, 0.4])


def conjugate(y=None):
    # mu ~ N(0, 1), y_i ~ N(mu, 1): posterior N(sum y / (n + 1), 1 / (n + 1))
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("n", 4):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def two_site(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    s = numpyro.sample("s", dist.LogNormal(0.0, 0.5))
    with numpyro.plate("n", 4):
        numpyro.sample("y", dist.Normal(mu, s), obs=y)


def test_autoflow_conjugate_posterior(key):
    guide = AutoFlow(conjugate, maf(jax.random.PRNGKey(1), 1, 2, width=4), init_scale=0.5)
    params, losses = fit_vi(key, conjugate, guide, Y, steps=1500, optimizer=optax.adam(1e-2),
                            num_particles=8, progress_bar=False)
    assert losses.shape == (1500,)
    draws = guide.sample_posterior(jax.random.PRNGKey(2), params, sample_shape=(4000,))["mu"]
    mean, sd = Y.sum() / 5, np.sqrt(1 / 5)
    # exact posterior N(0.86, 0.447²); MC error of the mean ≈ 0.007
    assert abs(float(draws.mean()) - mean) < 0.05
    assert abs(float(draws.std()) - sd) < 0.05
    med = guide.median(params)["mu"]
    assert abs(float(med) - mean) < 0.06
    pred = Predictive(conjugate, guide=guide, params=params, num_samples=7)(jax.random.PRNGKey(3))
    assert pred["y"].shape == (7, 4)
    post = Predictive(guide, params=params, num_samples=7)(jax.random.PRNGKey(3), Y)
    assert post["mu"].shape == (7,)


def test_autoflow_centres_on_init_loc_and_params_registered(key):
    guide = AutoFlow(two_site, planar_flow(jax.random.PRNGKey(1), 2, 2), init_scale=1e-4,
                     init_loc_fn=init_to_value(values={"mu": 0.7, "s": 2.0}))
    params, _ = fit_vi(key, two_site, guide, Y, steps=1, optimizer=optax.sgd(0.0), progress_bar=False)
    assert list(params) == ["auto_flow$params"]
    med = guide.median(params)
    np.testing.assert_allclose(med["mu"], 0.7, atol=1e-2)
    np.testing.assert_allclose(med["s"], 2.0, atol=1e-2)
    q = guide.quantiles(params, [0.1, 0.9])
    assert q["s"].shape == (2,) and q["s"][0] < q["s"][1]
    # the guide's posterior density = flow density
    post = guide.get_posterior(params)
    flow = guide.get_flow(params)
    z = jnp.array([[0.7, jnp.log(2.0)]])
    np.testing.assert_allclose(post.log_prob(z), flow.log_prob(z), rtol=1e-5)


def test_autoflow_bad_input(key):
    with pytest.raises(ValueError, match=r"flow dimension 3 does not match the model's latent size 2"):
        numpyro.handlers.seed(AutoFlow(two_site, planar_flow(key, 3, 1)), 0)(Y)
    bad = planar_flow(key, 2, 1)
    bad = jax.tree.map(lambda x: x * jnp.nan if eqx_inexact(x) else x, bad)
    with pytest.raises(ValueError, match="non-finite"):
        AutoFlow(two_site, bad)
    with pytest.raises(TypeError, match="flow"):
        AutoFlow(two_site, "flow")
    with pytest.raises(ValueError, match="init_scale"):
        AutoFlow(two_site, init_scale=-1.0)

    def discrete():
        numpyro.sample("k", dist.Bernoulli(0.3))
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="discrete"):
        numpyro.handlers.seed(AutoFlow(discrete), 0)()


def eqx_inexact(x):
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)
