import jax
import numpy as np
import pytest

from probkit.bench.targets import BenchInputError, builtin_names, get_target, model_data
from probkit.infer import model_logdensity


@pytest.mark.parametrize("name", ["gaussian", "ill_gaussian", "banana", "funnel10", "funnel50", "mixture"])
def test_analytic_exact_draws_match_model_density(name):
    """The exact sampler draws from the model's density: E_exact[∇ log p] = 0 (score identity)."""
    target = get_target(name)
    logdensity, z0, postprocess = model_logdensity(target.model)
    ref = target.reference()
    assert len(ref) == z0.shape[0]
    # all analytic targets are unconstrained, so the position is the reference vector
    # ordered as the model's sites; check the score identity on exact draws
    draws = target.exact_draws(jax.random.PRNGKey(1), 4000)
    sites = postprocess(z0)
    from probkit.bench.names import flatten_sites

    names = list(flatten_sites(jax.device_get(sites), sample_ndim=0))
    z = np.stack([draws[n] for n in names], axis=1)
    scores = jax.vmap(jax.grad(logdensity))(z)
    mean_score = np.asarray(scores.mean(axis=0))
    se = np.asarray(scores.std(axis=0)) / np.sqrt(len(z))
    assert np.all(np.abs(mean_score) < 5 * se + 1e-6), (mean_score, se)


def test_banana_exact_moments():
    draws = get_target("banana").exact_draws(jax.random.PRNGKey(0), 200_000)
    # x2 = y2 + 0.1 y1² − 10 with y1 ~ N(0, 100): E[x2] = 0, Var[x2] = 1 + 0.01 · 2 · 100² = 201
    assert abs(draws["x2"].mean()) < 0.15
    assert abs(draws["x2"].var() - 201.0) < 6.0


def test_unknown_target():
    with pytest.raises(BenchInputError, match="valid targets"):
        get_target("nope")
    assert "banana" in builtin_names()


def test_model_data_filters_by_signature():
    def model(J, y):
        pass

    assert set(model_data(model, {"J": 1, "y": [1, 2], "N": 3})) == {"J", "y"}
    assert isinstance(model_data(model, {"y": [1, 2]})["y"], np.ndarray)
