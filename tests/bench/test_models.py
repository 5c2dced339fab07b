"""The NumPyro ports of the bundled posteriordb models reproduce the reference posteriors."""

import jax
import numpy as np
import pytest
from numpyro.diagnostics import effective_sample_size
from numpyro import handlers
from numpyro.infer import MCMC, NUTS
from numpyro.infer.initialization import init_to_uniform

from probkit.bench import get_model, posteriordb
from probkit.bench.models import MODELS
from probkit.bench.names import flatten_sites, match_reference

FAST = [
    "eight_schools-eight_schools_noncentered",
    "kidiq-kidscore_momiq",
    "garch-garch11",
    "arK-arK",
    "low_dim_gauss_mix-low_dim_gauss_mix",
]


def _check_against_reference(name, num_warmup, num_samples):
    post = posteriordb.load(name)
    mcmc = MCMC(NUTS(get_model(name)), num_warmup=num_warmup, num_samples=num_samples, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(2024), **post.data)
    samples = flatten_sites(mcmc.get_samples())
    failures = []
    for param in match_reference(post.reference, samples):
        ref = post.reference[param].reshape(-1)
        x = np.asarray(samples[param])
        ess = float(effective_sample_size(x[None]))
        mcse = x.std() / np.sqrt(ess)
        tol = max(0.1 * ref.std(), 4 * mcse)
        err = abs(x.mean() - ref.mean())
        if err > tol:
            failures.append(f"{param}: |{x.mean():.4g} - {ref.mean():.4g}| = {err:.3g} > {tol:.3g}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST)
def test_nuts_matches_reference(name):
    _check_against_reference(name, num_warmup=500, num_samples=1000)


@pytest.mark.slow
def test_nuts_matches_reference_diamonds():
    _check_against_reference("diamonds-diamonds", num_warmup=300, num_samples=300)


def _latent_site_shapes(model, data):
    """Shapes of the model's latent and deterministic sites, by abstract evaluation (nothing compiles)."""

    def run():
        seeded = handlers.substitute(handlers.seed(model, rng_seed=0), substitute_fn=init_to_uniform)
        trace = handlers.trace(seeded).get_trace(**data)
        return {k: s["value"] for k, s in trace.items()
                if s["type"] in ("sample", "deterministic") and not s.get("is_observed", False)}

    return jax.eval_shape(run)


def test_every_bundled_posterior_has_a_model():
    """Every bundled posterior has a registered model whose sites carry every reference name (cheap: shapes only)."""
    assert sorted(MODELS) == sorted(posteriordb.names())
    for name in posteriordb.names():
        post = posteriordb.load(name)
        shapes = _latent_site_shapes(get_model(name), post.data)
        sites = flatten_sites({k: np.zeros(v.shape) for k, v in shapes.items()}, sample_ndim=0)
        # summaries-only posteriors (mcycle_gp-accel_gp) are matched by their summary names
        match_reference(post.reference if post.reference is not None else post.summary, sites, source=name)


@pytest.mark.slow
def test_every_bundled_model_has_a_finite_log_density_at_init():
    from probkit.infer import model_logdensity

    for name in posteriordb.names():
        post = posteriordb.load(name)
        logdensity, z0, postprocess = model_logdensity(get_model(name), **post.data)
        assert np.isfinite(float(logdensity(z0))), name
        sites = flatten_sites(postprocess(z0), sample_ndim=0)
        match_reference(post.reference if post.reference is not None else post.summary, sites, source=name)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="available"):
        get_model("nope")


def test_flatten_sites_names():
    out = flatten_sites({"a": np.zeros((5, 2, 3)), "b": np.zeros(5)})
    assert "a[2,3]" in out and out["a[2,3]"].shape == (5,) and out["b"].shape == (5,)
