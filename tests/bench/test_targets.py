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


def _summaries_only_tree(root):
    """A posteriordb tree whose one posterior has mean / mean-square summaries but no draws."""
    import json

    db = root / "posterior_database"
    files = {
        "posteriors/toy-normal.json": {"name": "toy-normal", "model_name": "normal", "data_name": "toy",
                                       "reference_posterior_name": "toy-normal"},
        "data/data/toy.json": {"N": 3, "y": [0.1, -0.2, 0.4]},
        "reference_posteriors/summary_statistics/mean_value/mean_value/toy-normal.json":
            {"names": ["mu"], "mean_value": [0.1]},
        "reference_posteriors/summary_statistics/mean_squared_value/mean_squared_value/toy-normal.json":
            {"names": ["mu"], "mean_squared_value": [0.1**2 + 0.5**2]},
    }
    for rel, obj in files.items():
        (db / rel).parent.mkdir(parents=True, exist_ok=True)
        (db / rel).write_text(json.dumps(obj))
    (root / "m.py").write_text(
        "import numpyro, numpyro.distributions as dist\n"
        "def model(N, y):\n"
        "    mu = numpyro.sample('mu', dist.Normal(0, 10))\n"
        "    numpyro.sample('y', dist.Normal(mu, 1).expand([N]), obs=y)\n"
    )
    return root


def test_summaries_only_target_is_scored_by_mean_and_sd(tmp_path):
    from bench import fake_sampler  # noqa: F401 - registers fake_iid
    from probkit.bench import RunConfig, format_table, posteriordb, run_one
    from probkit.bench.targets import posteriordb_clone_target

    root = _summaries_only_tree(tmp_path)
    assert posteriordb.names(root) == ["toy-normal"]
    target = posteriordb_clone_target(str(root), "toy-normal", f"{root / 'm.py'}:model")
    assert not target.has_draws and target.moments() == {"mu": (0.1, pytest.approx(0.5))}
    with pytest.raises(BenchInputError, match="summaries only"):
        target.reference()
    rec = run_one(target, "fake_iid", 0, RunConfig(chains=2, draws=2000), {})  # draws N(0.1, 0.5)
    assert not rec["failed"] and rec["mean_err_max"] < 0.1 and rec["sd_err_max"] < 0.1
    assert rec["sw2"] is None and rec["unavailable"] == ["sw2", "sw2_stderr", "bias_x2_max", "bias_x2_mean",
                                                         "grads_to_bias"]
    assert "toy-normal: reference is a summary (mean, sd): sw2, sw2_stderr" in format_table([rec])


def test_non_finite_reference_is_refused():
    from probkit.bench.targets import check_reference

    with pytest.raises(BenchInputError, match="target t: parameter 'b' has 1 non-finite draws"):
        check_reference({"a": np.zeros(3), "b": np.array([0.0, np.inf, 1.0])}, "target t")
    with pytest.raises(BenchInputError, match="parameter 'a' has no draws"):
        check_reference({"a": np.zeros(0)}, "target t")
