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


def test_declared_options_are_keywords_of_the_samplers():
    """Every declared option is accepted by the object it is passed to (the registry cannot drift)."""
    import inspect

    from numpyro.infer import HMC, NUTS
    from numpyro.infer.autoguide import AutoBNAFNormal, AutoIAFNormal, AutoMultivariateNormal

    from probkit.bench.samplers import SAMPLERS, _SVI_OPTIONS
    from probkit.infer import AutoFlow, AutoMixFlow, BlackJAXKernel

    def keywords(*fns):
        return set().union(*(inspect.signature(f).parameters for f in fns))

    owners = {"numpyro_nuts": keywords(NUTS), "numpyro_hmc": keywords(HMC),
              "automvn": keywords(AutoMultivariateNormal), "autoiaf": keywords(AutoIAFNormal),
              "autobnaf": keywords(AutoBNAFNormal), "autoflow": keywords(AutoFlow),
              "mixflow": keywords(AutoMixFlow, AutoMixFlow.fit)}
    for name, spec in SAMPLERS.items():
        if name in owners:
            extra = set(spec.options) - owners[name] - (set(_SVI_OPTIONS) if spec.kind == "vi" else set())
            assert not extra, (name, extra)
        elif name != "fake_iid":  # blackjax: BlackJAXKernel accepts each option
            samples = {float: 0.5, int: 3, bool: True, str: "velocity_verlet", tuple: (0.1, 0.1, 0.1)}
            for key, opt in spec.options.items():
                value = "auto" if key == "adaptation" else samples[opt.types[0]]
                BlackJAXKernel(lambda: None, name, **{key: value})


def test_moment_errors_exact():
    draws = {"a": np.array([[0.0, 2.0, 4.0, 6.0]]), "b": np.array([[1.0, 1.0, 3.0, 3.0]])}
    moments = {"a": (2.0, 2.0), "b": (2.0, 2.0)}  # a: mean 3, sd sqrt(5); b: mean 2, sd 1
    m = compute_metrics(jax.random.PRNGKey(0), draws, None, np.arange(1, 5), iid=True, moments=moments)
    assert m["mean_err_max"] == pytest.approx(0.5) and m["sd_err_max"] == pytest.approx(0.5)
    assert m["bias_x_max"] == pytest.approx(0.25) and m["sw2"] is None


def test_sampler_opts_parse():
    assert parse_sampler_opts(["numpyro_nuts.target_accept_prob=0.9", "automvn.lr=1e-3"]) == {
        "numpyro_nuts": {"target_accept_prob": 0.9},
        "automvn": {"lr": 1e-3},
    }
    with pytest.raises(BenchInputError, match="sampler.key=value"):
        parse_sampler_opts(["oops"])
    with pytest.raises(BenchInputError, match="valid samplers"):
        parse_sampler_opts(["nope.x=1"])
    with pytest.raises(BenchInputError, match=r"unknown option\(s\) \['x'\] for sampler 'automvn'"):
        parse_sampler_opts(["automvn.x=1"])
    with pytest.raises(BenchInputError, match="automvn.steps: expected int, got 1.5"):
        parse_sampler_opts(["automvn.steps=1.5"])


def test_mixflow_sampler_counts_its_reference_fit_and_honours_the_budget():
    """The bench's MixFlow: every fit gradient counted, as many draws as the budget pays for, close to exact ones."""
    target = get_target("gaussian")
    cfg = RunConfig(chains=1, draws=400, budget_grads=100_000)
    spec = get_sampler("mixflow")
    out = spec.run(jax.random.PRNGKey(0), target, cfg, spec.resolve({"reference_steps": 100, "n_elbo": 200}))
    names = list(target.reference())
    # "auto": L-BFGS bound + Hessian columns and ADVI 100 x 4 draws, 200 ELBO draws each (Laplace wins;
    # its covariance whitens the dynamics, so there is no separate curvature pass for the step sizes)
    d = len(names)
    assert out.info["reference"] == "laplace-full"
    fit = (100 + d) + 100 * 4 + 2 * 200
    assert out.info["fit_grads"] == fit
    # a draw costs (N - 1)/2 flow steps on average: 400 draws would need more than the budget
    per_draw = out.grads[1] - out.grads[0]
    n = (100_000 - fit) // per_draw
    assert 0 < n < 400 and all(out.draws[k].shape == (1, n) for k in names)
    assert out.grads[0] == fit + per_draw and out.total_grads == out.grads[-1] <= 100_000
    m = compute_metrics(jax.random.PRNGKey(1), out.draws, target.reference(), out.grads)
    print(f"MixFlow SW2 on the bench Gaussian: {m['sw2']:.3f}")
    assert m["sw2"] < 0.3
