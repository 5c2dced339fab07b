"""to_arviz: InferenceData from MCMC runs, guide samples, benchmark draws and arrays."""

from __future__ import annotations

import sys

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC

from probkit.infer import BlackJAXKernel, to_arviz


def model(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(mu, sigma).expand([3]).to_event(1), obs=y)


Y = np.array([0.3, -0.2, 0.5])


def test_from_blackjax_mcmc():
    # fixed step size, no initial optimisation: the conversion is under test, not the tuning
    # (compiles neither the Adam initialiser nor the window adaptation)
    kernel = BlackJAXKernel(model, "mala", adaptation=None, init_optimize_steps=0, step_size=0.3)
    mcmc = MCMC(kernel, num_warmup=20, num_samples=15, num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), y=Y, extra_fields=("accept_prob", "num_steps", "energy"))
    idata = to_arviz(mcmc)
    samples = mcmc.get_samples(group_by_chain=True)
    np.testing.assert_array_equal(idata.posterior["sigma"].values, np.asarray(samples["sigma"]))
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 15
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = idata.sample_stats
    np.testing.assert_array_equal(stats["num_grad_evals"].values, np.asarray(extra["num_grad_evals"]))
    np.testing.assert_array_equal(stats["acceptance_rate"].values, np.asarray(extra["accept_prob"]))
    assert "energy" not in stats and "tree_depth" not in stats  # MALA has neither
    assert stats.attrs["warmup_grad_evals"] == int(np.sum(mcmc.last_state.warmup_grad_evals))
    # the model is replayed for the pointwise log likelihood: log N(y | mu, sigma) summed over y
    ll = idata.log_likelihood["y"].values
    mu, sigma = np.asarray(samples["mu"]), np.asarray(samples["sigma"])
    expected = dist.Normal(mu[..., None], sigma[..., None]).log_prob(Y).sum(-1)
    np.testing.assert_allclose(ll.reshape(expected.shape), expected, rtol=1e-5)
    np.testing.assert_array_equal(idata.observed_data["y"].values, Y)


def test_from_guide_samples_dict():
    """Guide posterior samples (draws, ...) become one chain."""
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    guide = AutoNormal(model)
    svi = SVI(model, guide, numpyro.optim.Adam(0.05), Trace_ELBO())
    result = svi.run(jax.random.PRNGKey(0), 50, y=Y, progress_bar=False)
    samples = guide.sample_posterior(jax.random.PRNGKey(1), result.params, sample_shape=(40,))
    idata = to_arviz(samples)
    assert idata.posterior.sizes["chain"] == 1 and idata.posterior.sizes["draw"] == 40
    np.testing.assert_array_equal(idata.posterior["mu"].values[0], np.asarray(samples["mu"]))


def test_from_benchmark_output_and_array():
    from probkit.bench.samplers import SamplerOutput

    rng = np.random.default_rng(0)
    draws = {"theta[1]": rng.normal(size=(4, 10)), "tau": rng.exponential(size=(4, 10))}
    out = SamplerOutput(draws=draws, grads=np.arange(10), total_grads=123, warmup_grads=45, divergences=2)
    idata = to_arviz(out)
    np.testing.assert_array_equal(idata.posterior["theta[1]"].values, draws["theta[1]"])
    assert idata.posterior.attrs["total_grads"] == 123 and idata.posterior.attrs["divergences"] == 2
    grouped = to_arviz(draws, chain_axis=True)
    assert grouped.posterior.sizes["chain"] == 4
    arr = rng.normal(size=(2, 7, 3))
    idata = to_arviz(arr, names=["a", "b", "c"])
    np.testing.assert_array_equal(idata.posterior["c"].values, arr[:, :, 2])


def test_bad_input(monkeypatch):
    with pytest.raises(TypeError, match="obj must be"):
        to_arviz(3.0)
    with pytest.raises(ValueError, match="shape"):
        to_arviz({"a": np.zeros(5)}, chain_axis=True)
    with pytest.raises(ValueError, match="disagree"):
        to_arviz({"a": np.zeros(5), "b": np.zeros(6)})
    with pytest.raises(ValueError, match="empty"):
        to_arviz({})
    with pytest.raises(ValueError, match="names"):
        to_arviz(np.zeros((2, 3, 4)), names=["a"])
    with pytest.raises(ValueError, match="not been run"):
        to_arviz(MCMC(BlackJAXKernel(model), num_warmup=1, num_samples=1))
    monkeypatch.setitem(sys.modules, "arviz", None)  # ArviZ not installed
    with pytest.raises(ImportError, match="pip install arviz"):
        to_arviz({"a": np.zeros(5)})
