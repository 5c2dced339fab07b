"""The NumPyro posteriordb models against Stan.

Tests without Stan: each ``stan_points/<posterior>.json``, written by
``scripts/verify_posteriordb.py --record``, holds Stan's log density and
gradient (mapped to NumPyro's coordinates) at a few points of NumPyro's
unconstrained space; NumPyro's log density must differ from Stan's by a
constant (1e-6 relative) and its gradient must equal Stan's (1e-6), in float64
(:data:`DEFAULT_POINTS` in the default suite, the others marked slow).
The slow test runs the script itself (compiling Stan) when pystan is installed.
"""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.util import constrain_fn, log_density, potential_energy

from probkit.bench import posteriordb
from probkit.bench.metrics import gradient_error, offset_deviation
from probkit.bench.models import MODELS
from probkit.bench.targets import model_data

POINTS = sorted((Path(__file__).parent / "stan_points").glob("*.json"))
REPO = Path(__file__).resolve().parents[2]
# the default suite checks these (one compilation each, ~1.3 s CPU); every other recorded posterior
# is checked with the slow tests
DEFAULT_POINTS = {"eight_schools-eight_schools_noncentered", "kidiq-kidscore_momiq"}


def numpyro_values_and_grads(name: str, zs: np.ndarray, density: str):
    """NumPyro's log density (``unconstrained``: with the Jacobian; ``constrained``: without) and gradient at ``zs``.

    The flat layout is :func:`probkit.infer.model_logdensity`'s (``ravel_pytree``
    of the dict of unconstrained sites), found by abstract evaluation; one
    compilation per model, no initialisation search.
    """
    model = MODELS[name]
    data = model_data(model, posteriordb.load(name, draws=False).data)

    def unconstrained_sites():
        seeded = handlers.substitute(handlers.seed(model, 0), substitute_fn=init_to_uniform)
        trace = handlers.trace(seeded).get_trace(**data)
        return {n: biject_to(s["fn"].support).inv(s["value"]) for n, s in trace.items()
                if s["type"] == "sample" and not s["is_observed"]}

    shapes = jax.eval_shape(unconstrained_sites)
    _, unravel = ravel_pytree(jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes))

    def fn(z):
        params = unravel(z)
        if density == "unconstrained":
            return -potential_energy(model, (), data, params)
        return log_density(model, (), data, constrain_fn(model, (), data, params))[0]

    lp, g = jax.jit(jax.vmap(jax.value_and_grad(fn)))(jnp.asarray(zs))
    dim = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))
    return dim, np.asarray(lp), np.asarray(g)


def check_against_points(rec: dict) -> None:
    name = rec["posterior"]
    zs = np.array([p["z"] for p in rec["points"]])
    lp_stan = np.array([p["logp_stan"] for p in rec["points"]])
    g_stan = np.array([p["grad_stan"] for p in rec["points"]])
    with float64():
        dim, lp, g = numpyro_values_and_grads(name, zs, rec["density"])
    assert dim == rec["dim"], f"{name}: NumPyro dimension {dim}, recorded {rec['dim']} (re-run --record)"
    diff = lp - lp_stan
    dev = offset_deviation(diff, lp)  # each point on the scale of its own |log p| as well
    assert dev <= rec["tolerance"]["density"], f"{name}: log density minus Stan's varies by {dev:.3g} (relative)"
    for k in range(len(zs)):
        err = gradient_error(g[k], g_stan[k])
        assert err <= rec["tolerance"]["grad"], f"{name}: gradient differs from Stan's by {err:.3g} at point {k}"


@pytest.mark.parametrize(
    "path", [pytest.param(p, marks=[] if p.stem in DEFAULT_POINTS else [pytest.mark.slow]) for p in POINTS],
    ids=[p.stem for p in POINTS],
)
def test_numpyro_matches_recorded_stan_points(path):
    check_against_points(json.loads(path.read_text()))


def test_recorded_points_cover_the_original_models():
    recorded = {p.stem for p in POINTS}
    for name in ["arK-arK", "diamonds-diamonds", "eight_schools-eight_schools_noncentered", "garch-garch11",
                 "kidiq-kidscore_momiq", "low_dim_gauss_mix-low_dim_gauss_mix"]:
        assert name in recorded and name in MODELS


def test_a_wrong_model_fails_the_check(monkeypatch):
    """kidscore_momiq with σ ~ Cauchy⁺(0, 5) instead of Stan's Cauchy⁺(0, 2.5) must fail the check."""
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    def wrong(kid_score, mom_iq, **unused):
        beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real, (), (2,)))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(5.0))
        numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * jnp.asarray(mom_iq, float), sigma).to_event(1),
                       obs=jnp.asarray(kid_score, float))

    name = "kidiq-kidscore_momiq"
    rec = json.loads((Path(__file__).parent / "stan_points" / f"{name}.json").read_text())
    monkeypatch.setitem(MODELS, name, wrong)
    with pytest.raises(AssertionError, match="log density minus Stan's varies"):
        check_against_points(rec)


@pytest.mark.slow
def test_verify_script_against_stan(tmp_path):
    pytest.importorskip("stan")
    names = ["eight_schools-eight_schools_noncentered", "kidiq-kidscore_momiq"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "verify_posteriordb.py"), *names, "--points", "5",
         "--root", str(posteriordb.BUNDLED_ROOT), "--out", str(tmp_path), "--table"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in names:
        rec = json.loads((tmp_path / f"{name}.json").read_text())["exact"]
        assert rec["pass"] and rec["mode"] == "same_transforms" and rec["points"] == 5
        assert rec["density_rel_dev"] < 1e-9 and rec["grad_rel_err"] < 1e-9
    assert "kidiq-kidscore_momiq | pass" in (tmp_path / "posteriordb.md").read_text()
