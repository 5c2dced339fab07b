"""BlackJAXKernel and model_logdensity follow NumPyro's MCMC conventions (issue 27).

Each case is one that NumPyro's own ``test/infer/test_mcmc.py`` exercises, in
probkit's words; exact references are conjugate-Gaussian posteriors, analytic
gradients, and NumPyro's ``NUTS`` on the same model. Monte Carlo tolerances:
a posterior mean within 5 standard errors, the ESS taken as a quarter of the
draws (NUTS on these 1-D Gaussians has ESS ≈ draws).

Four cases that each compile a full sampler are ``slow`` (potential_fn, forward mode,
the kernel built inside jit, the max_tree_depth pair); the rest run by default.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS, init_to_value
from numpyro.infer.util import potential_energy

from probkit.infer import BlackJAXKernel, model_logdensity

N_OBS = 20


def normal_mean(y):
    """mu ~ N(0, 1), y_i ~ N(mu, 1): posterior N(Σy / (n + 1), 1 / (n + 1))."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def posterior(y):
    n = y.shape[0]
    return float(jnp.sum(y)) / (n + 1), 1.0 / np.sqrt(n + 1)


def assert_mean(draws, mean, sd):
    se = sd / np.sqrt(len(draws) / 4)
    assert abs(float(np.mean(draws)) - mean) < 5 * se, (float(np.mean(draws)), mean, se)


# ---------------------------------------------------------------- silently wrong before


def test_jit_model_args_second_run_samples_new_posterior():
    """MCMC(jit_model_args=True): a second run on new data of the same shape targets the new posterior."""
    y1, y2 = jnp.full(N_OBS, 2.0), jnp.full(N_OBS, -2.0)
    mcmc = MCMC(BlackJAXKernel(normal_mean), num_warmup=100, num_samples=200, progress_bar=False,
                jit_model_args=True)
    mcmc.run(jax.random.PRNGKey(0), y1)
    assert_mean(mcmc.get_samples()["mu"], *posterior(y1))
    mcmc.run(jax.random.PRNGKey(1), y2)  # reuses the compiled sampler with the new data as its argument
    assert_mean(mcmc.get_samples()["mu"], *posterior(y2))


def test_potential_energy_extra_field_as_numpyro():
    """extra_fields=("potential_energy",) (NumPyro's HMCState field): U(z) = -log p(z) of each draw, vectorized chains."""
    y = jnp.linspace(-1.0, 2.0, N_OBS)
    mcmc = MCMC(BlackJAXKernel(normal_mean), num_warmup=10, num_samples=10, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), y, extra_fields=("potential_energy",))
    energy = mcmc.get_extra_fields()["potential_energy"]
    mu = mcmc.get_samples()["mu"]
    assert energy.shape == mu.shape == (20,)
    expected = jax.vmap(lambda m: potential_energy(normal_mean, (y,), {}, {"mu": m}))(mu)
    np.testing.assert_allclose(energy, expected, rtol=1e-5)


# ---------------------------------------------------------------- models without latent sites


def empty_model():
    pass


def deterministic_only():
    numpyro.deterministic("d", jnp.array([3.0, 4.0]))
    numpyro.sample("y", dist.Normal(0.0, 2.0), obs=0.5)


@pytest.mark.parametrize("model", [empty_model, deterministic_only])
def test_no_latent_sites_as_numpyro(model):
    """No latent sites: NumPyro's NUTS returns {} or the deterministic sites; so does the kernel, without gradients."""
    mcmc = MCMC(BlackJAXKernel(model), num_warmup=3, num_samples=4, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    samples = mcmc.get_samples()
    if model is empty_model:
        assert samples == {}
    else:
        assert set(samples) == {"d"}
        np.testing.assert_array_equal(samples["d"], np.broadcast_to([3.0, 4.0], (8, 2)))
    assert np.all(mcmc.get_extra_fields()["num_grad_evals"] == 0)


def test_model_logdensity_without_latent_sites():
    """D = 0: the log density is the data's log likelihood; postprocess gives the deterministic sites."""
    logdensity, z0, postprocess = model_logdensity(deterministic_only)
    assert z0.shape == (0,) and logdensity.dim == 0
    np.testing.assert_allclose(logdensity(z0), dist.Normal(0.0, 2.0).log_prob(0.5), rtol=1e-6)
    np.testing.assert_array_equal(postprocess(z0)["d"], [3.0, 4.0])
    assert model_logdensity(empty_model)[0](jnp.zeros(0)) == 0.0


# ---------------------------------------------------------------- discrete latent sites


def poisson_latent():
    numpyro.sample("k", dist.Poisson(2.0))


def bernoulli_latent():
    b = numpyro.sample("b", dist.Bernoulli(0.3))
    numpyro.sample("y", dist.Normal(b, 1.0), obs=0.5)


@pytest.mark.parametrize("model", [poisson_latent, bernoulli_latent])
def test_discrete_latent_sites_get_numpyro_error(model):
    """NumPyro's own error (no enumerate support; or enumeration needing funsor), not a probkit wording."""
    try:
        MCMC(NUTS(model), num_warmup=2, num_samples=2, progress_bar=False).run(jax.random.PRNGKey(0))
    except Exception as err:  # noqa: BLE001 - whatever NumPyro raises is the reference
        expected = err
    else:  # funsor installed: NumPyro enumerates, and so does probkit
        pytest.skip("NumPyro enumerates this model (funsor installed)")
    for call in (
        lambda: model_logdensity(model),
        lambda: MCMC(BlackJAXKernel(model), num_warmup=2, num_samples=2, progress_bar=False).run(
            jax.random.PRNGKey(0)
        ),
    ):
        with pytest.raises(type(expected)) as info:
            call()
        assert str(info.value) == str(expected)


# ---------------------------------------------------------------- potential_fn, init_strategy


@pytest.mark.slow
def test_potential_fn_with_init_params():
    """potential_fn U with init_params (NumPyro's unnormalised-normal case): exp(-U) = N(1, 0.5²)."""
    mean, sd = 1.0, 0.5

    def potential(z):
        return 0.5 * jnp.sum(((z["x"] - mean) / sd) ** 2)

    mcmc = MCMC(BlackJAXKernel(potential_fn=potential), num_warmup=100, num_samples=300, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), init_params={"x": jnp.zeros((2, 3))})
    x = mcmc.get_samples()["x"]  # the identity postprocess: draws of the pytree itself
    assert x.shape == (600, 3)
    for j in range(3):
        assert_mean(x[:, j], mean, sd)
    np.testing.assert_allclose(np.std(x, 0), sd, rtol=0.15)
    with pytest.raises(ValueError, match="init_params"):
        BlackJAXKernel(potential_fn=potential).init(jax.random.PRNGKey(0), 10, None, (), {})


def positive_model():
    numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("s", dist.LogNormal(0.0, 1.0))


def test_init_strategy_as_numpyro():
    """init_strategy=init_to_value: the same unconstrained start as NumPyro's NUTS (log 2 for s = 2)."""
    strategy = init_to_value(values={"mu": 0.7, "s": 2.0})
    key = jax.random.PRNGKey(3)
    expected = NUTS(positive_model, init_strategy=strategy).init(key, 0, None, (), {}).z
    got = BlackJAXKernel(positive_model, init_strategy=strategy).init(key, 0, None, (), {}).z
    np.testing.assert_allclose(got["mu"], 0.7, rtol=1e-6)
    np.testing.assert_allclose(got["s"], np.log(2.0), rtol=1e-6)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-6)


# ---------------------------------------------------------------- forward-mode differentiation


def while_loop_model(y):
    """mu passed through a lax.while_loop (identity after 3 iterations): reverse mode cannot differentiate it."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    loc = jax.lax.while_loop(lambda c: c[1] < 3, lambda c: (c[0] * 1.0, c[1] + 1), (mu, 0))[0]
    numpyro.sample("y", dist.Normal(loc, 1.0), obs=y)


@pytest.mark.slow
def test_forward_mode_differentiation():
    """Gradient = the conjugate posterior's (Σy − (n+1) mu) in forward mode; draws of that posterior."""
    y = jnp.linspace(-1.0, 3.0, N_OBS)
    with pytest.raises(ValueError, match="[Rr]everse-mode"):
        BlackJAXKernel(while_loop_model).init(jax.random.PRNGKey(0), 0, None, (y,), {})
    kernel = BlackJAXKernel(while_loop_model, forward_mode_differentiation=True)
    mcmc = MCMC(kernel, num_warmup=100, num_samples=200, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(1), y)
    assert_mean(mcmc.get_samples()["mu"], *posterior(y))
    grad = jax.grad(kernel._target.logdensity((y,), {}))(jnp.array([0.3]))
    np.testing.assert_allclose(grad, [jnp.sum(y) - (N_OBS + 1) * 0.3], rtol=1e-5)


# ---------------------------------------------------------------- NumPyro's keywords


def stretched():
    """N(0, diag(1, 10²)): without mass-matrix adaptation NUTS needs long trees."""
    numpyro.sample("x", dist.Normal(0.0, jnp.array([1.0, 10.0])).to_event(1))


def test_numpyro_nuts_keywords_accepted_unchanged():
    """Every keyword of NUTS(...) with NumPyro's defaults goes to BlackJAXKernel(model, "nuts", ...)."""
    defaults = {k: p.default for k, p in inspect.signature(NUTS).parameters.items() if k != "model"}
    kernel = BlackJAXKernel(normal_mean, "nuts", **defaults)
    assert kernel._algorithm.target_accept == defaults["target_accept_prob"] == 0.8
    assert kernel._algorithm.max_num_doublings == defaults["max_tree_depth"] == 10
    kw = dict(target_accept_prob=0.9, max_tree_depth=6, dense_mass=True, adapt_step_size=True, adapt_mass_matrix=True)
    algorithm = BlackJAXKernel(normal_mean, "nuts", **kw)._algorithm
    assert (algorithm.target_accept, algorithm.max_num_doublings, algorithm.dense_mass) == (0.9, 6, True)
    with pytest.raises(TypeError, match="not both"):
        BlackJAXKernel(normal_mean, target_accept_prob=0.9, target_accept=0.8)


@pytest.mark.slow
def test_max_tree_depth_pair_and_fixed_parameters():
    """max_tree_depth=(2, 5): trees ≤ 2² − 1 steps in warm-up, ≤ 2⁵ − 1 after (NumPyro's pair);
    adapt_step_size=False / adapt_mass_matrix=False keep the given values through warm-up."""
    kernel = BlackJAXKernel(stretched, "nuts", max_tree_depth=(2, 5), step_size=0.5, adapt_step_size=False,
                            adapt_mass_matrix=False)
    n_warmup = 40
    state = kernel.init(jax.random.PRNGKey(0), n_warmup, None, (), {})

    @jax.jit
    def run(state):
        return jax.lax.scan(lambda s, _: (lambda t: (t, t.num_steps))(kernel.sample(s, (), {})), state, None,
                            length=2 * n_warmup)

    last, num_steps = run(state)
    warm, steps = np.asarray(num_steps[:n_warmup]), np.asarray(num_steps[n_warmup:])
    assert warm.max() <= 3 and steps.max() <= 31
    assert steps.max() > 3  # the sampling depth is really used: 0.5-steps across a 10-sd axis
    assert float(last.params["step_size"]) == 0.5
    np.testing.assert_array_equal(last.params["inverse_mass_matrix"], [1.0, 1.0])


@pytest.mark.slow
def test_kernel_built_inside_jit_with_traced_step_size_and_target():
    """NUTS built inside jit from traced step_size / target_accept_prob: the conjugate posterior; a traced
    value outside (0, 1) is caught by eqx.error_if."""
    y = jnp.full(N_OBS, 1.0)

    @jax.jit
    def draws(step_size, target):
        kernel = BlackJAXKernel(normal_mean, "nuts", step_size=step_size, target_accept_prob=target)
        mcmc = MCMC(kernel, num_warmup=100, num_samples=200, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(0), y)
        return mcmc.get_samples()["mu"]

    assert_mean(draws(0.3, 0.85), *posterior(y))
    with pytest.raises(Exception, match="target_accept must be in"):
        jax.block_until_ready(draws(0.3, 1.5))


def test_hmc_trajectory_length_and_heuristic_step_size():
    """HMC trajectory_length T: ⌈T / ε⌉ leapfrog steps (NumPyro's HMC); find_heuristic_step_size: a
    power-of-two multiple of the initial step, one gradient per trial counted before the first transition."""
    kernel = BlackJAXKernel(normal_mean, "hmc", trajectory_length=1.0, step_size=0.3, adaptation=None)
    mcmc = MCMC(kernel, num_warmup=0, num_samples=5, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), jnp.ones(N_OBS), extra_fields=("num_steps",))
    np.testing.assert_array_equal(mcmc.get_extra_fields()["num_steps"], 4)
    kernel = BlackJAXKernel(normal_mean, "nuts", find_heuristic_step_size=True, step_size=1.0, adaptation=None)
    state = kernel.init(jax.random.PRNGKey(0), 0, None, (jnp.ones(N_OBS),), {})
    log2 = np.log2(float(state.params["step_size"]))
    assert log2 == round(log2) and log2 < 0  # posterior sd 0.22: the unit step is too large
    assert int(state.warmup_grad_evals) == 1 + (1 - round(log2))  # initial gradient + trials 1, 1/2, ...


# ---------------------------------------------------------------- the upstream-suite script

UPSTREAM_LIKE = '''
import jax, jax.numpy as jnp, pytest
from numpyro.infer import HMC, NUTS, SA
from numpyro.infer.autoguide import AutoDelta, AutoDiagonalNormal


@pytest.mark.parametrize("kernel_cls", [HMC, NUTS, SA])
def test_kernel(kernel_cls):
    if kernel_cls is SA:
        pytest.skip("SA")
    assert kernel_cls in [HMC, NUTS] and kernel_cls is not SA
    kernel_cls(potential_fn=lambda z: 0.5 * z**2, target_accept_prob=0.7, max_tree_depth=(4, 6))


@pytest.mark.parametrize("auto_class, n", [(AutoDiagonalNormal, 1), pytest.param(AutoDelta, 2, marks=pytest.mark.skip)])
def test_guide(auto_class, n):
    assert n == 1 and auto_class is not AutoDelta


@pytest.mark.parametrize("guide_cls", [AutoDelta, AutoDiagonalNormal])
def test_guide_cls(guide_cls):
    assert guide_cls is not AutoDelta


@pytest.mark.parametrize("kernel_cls", [NUTS])
def test_state(kernel_cls):
    state = kernel_cls(potential_fn=lambda z: 0.5 * jnp.sum(z**2)).init(jax.random.PRNGKey(0), 5, jnp.zeros(1), (), {})
    assert state.adapt_state.mass_matrix_sqrt.shape == (1,)


def test_direct():
    assert NUTS(potential_fn=lambda z: z**2, max_tree_depth=7).__class__.__name__ != "NUTS"
'''


@pytest.mark.slow
def test_upstream_script_adds_probkit_cases(tmp_path):
    """The script adds AutoFlow/AutoMixFlow next to AutoDiagonalNormal and BlackJAXNUTS next to NUTS
    (treated as NUTS in the tests' branches), runs only those, and tells internal-state failures apart."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "src" / "test" / "infer").mkdir(parents=True)
    (tmp_path / "src" / "test" / "infer" / "test_mcmc.py").write_text(UPSTREAM_LIKE)
    report = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, str(root / "scripts" / "run_numpyro_upstream.py"), str(tmp_path / "src"),
         "--files", "test/infer/test_mcmc.py", "--report", str(report)],
        capture_output=True, text=True, cwd=root, env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # no failure other than internal state
    text = report.read_text()
    # test_guide, test_guide_cls (a row added to its guide_cls parametrisation, not a copy of NumPyro's rows)
    assert "| AutoFlow | 2 | 0 | 0 |" in text and "| AutoMixFlow | 2 | 0 | 0 |" in text
    assert "| BlackJAXNUTS | 2 | 1 | 0 |" in text  # test_kernel, test_direct__BlackJAXNUTS; test_state
    assert "test_state[BlackJAXNUTS]" in text and "NumPyro-internal state" in text
    assert "numpyro |" not in text  # NumPyro's own cases (test_direct with NUTS fails) are not run
