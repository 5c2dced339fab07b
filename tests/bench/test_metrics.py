import jax
import numpy as np
import pytest

from probkit.bench.metrics import compute_metrics, equal_size, sliced_w2, standardised_bias
from probkit.bench.samplers import RunConfig, get_sampler, parse_sampler_opts
from probkit.bench.targets import BenchInputError, get_target


def test_standardised_bias_exact_values():
    r = np.random.default_rng(0).normal(size=(100_000, 2))
    x = r[:1000] + np.array([0.5, 0.0])
    b = standardised_bias(x, r)
    assert b["bias_x_max"] == pytest.approx(0.25, abs=0.05)


def test_equal_size_thins_the_larger():
    x, r = equal_size(np.zeros((300, 2)), np.arange(2000.0).reshape(1000, 2))
    assert x.shape == r.shape == (300, 2)
    assert r[0, 0] == 0 and r[-1, 0] == 1998


def test_nuts_on_gaussian_matches_exact_draws():
    """NUTS's SW₂ to the reference is within the exact-vs-exact SW₂ (same size) + 0.05."""
    target = get_target("gaussian")
    cfg = RunConfig(chains=2, draws=500)
    out = get_sampler("numpyro_nuts").run(jax.random.PRNGKey(0), target, cfg, {})
    m = compute_metrics(jax.random.PRNGKey(1), out.draws, target.reference(), out.grads)
    exact = target.exact_draws(jax.random.PRNGKey(2), cfg.chains * cfg.draws)
    names = list(target.reference())
    x = np.stack([exact[n] for n in names], 1)
    r = np.stack([target.reference()[n] for n in names], 1)
    baseline, _ = sliced_w2(jax.random.PRNGKey(1), *equal_size(x, r))
    print(f"NUTS SW2 {m['sw2']:.4f} vs exact-vs-exact {baseline:.4f}")
    assert m["sw2"] <= baseline + 0.05
    assert out.warmup_grads > 0 and out.total_grads > out.warmup_grads


def test_sampler_opts_parse():
    assert parse_sampler_opts(["numpyro_nuts.target_accept_prob=0.9", "automvn.lr=1e-3"]) == {
        "numpyro_nuts": {"target_accept_prob": 0.9},
        "automvn": {"lr": 1e-3},
    }
    with pytest.raises(BenchInputError, match="sampler.key=value"):
        parse_sampler_opts(["oops"])
    with pytest.raises(BenchInputError, match="valid samplers"):
        parse_sampler_opts(["nope.x=1"])


def test_mixflow_sampler_counts_its_reference_fit():
    """The bench's MixFlow: draws of the right shape, close to exact ones, and every fit gradient counted."""
    target = get_target("gaussian")
    cfg = RunConfig(chains=1, draws=400)
    out = get_sampler("mixflow").run(jax.random.PRNGKey(0), target, cfg, {"reference_steps": 100, "n_elbo": 200})
    names = list(target.reference())
    assert all(out.draws[n].shape == (1, 400) for n in names)
    # "auto": L-BFGS bound + Hessian columns and ADVI 100 x 4 draws, 200 ELBO draws each (Laplace wins;
    # its covariance whitens the dynamics, so there is no separate curvature pass for the step sizes)
    d = len(names)
    assert out.info["reference"] == "laplace-full"
    assert out.info["fit_grads"] == (100 + d) + 100 * 4 + 2 * 200
    assert out.grads[0] > out.info["fit_grads"] and out.total_grads == out.grads[-1]
    m = compute_metrics(jax.random.PRNGKey(1), out.draws, target.reference(), out.grads)
    print(f"MixFlow SW2 on the bench Gaussian: {m['sw2']:.3f}")
    assert m["sw2"] < 0.3
