"""Bad input to model_logdensity and BlackJAXKernel is rejected at the boundary, naming the argument (issue 26)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import pytest

from probkit.infer import BlackJAXKernel, model_logdensity


def regression(x, y):
    beta = numpyro.sample("beta", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(beta * x, 1.0), obs=y)


def masked(y, mask):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.handlers.mask(mask=mask):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def two_sites():
    numpyro.sample("a", dist.Normal(0.0, 1.0))
    numpyro.sample("b", dist.Normal(0.0, 1.0).expand([2]).to_event(1))


X = jnp.array([0.5, 1.0, 2.0])
NAN = jnp.array([1.0, jnp.nan, 2.0])


@pytest.mark.parametrize(
    "args, match",
    [
        ((X, NAN), r"observed site\(s\) 'y' \(1 of 3"),  # NaN data
        ((X, NAN.at[0].set(jnp.inf)), r"'y' \(2 of 3"),  # inf too
        ((NAN, X), r"NaN or inf in args\[0\]"),  # a NaN covariate makes the model unevaluable
    ],
)
def test_model_logdensity_nonfinite_data(args, match):
    with pytest.raises(ValueError, match=match):
        model_logdensity(regression, *args)


def test_model_logdensity_masked_nan_is_fine():
    """NaN under a False mask is not data: the log density is that of the unmasked entries (exact)."""
    logdensity, _, _ = model_logdensity(masked, NAN, jnp.array([True, False, True]))
    z = jnp.array([0.3])
    expected = dist.Normal(0.0, 1.0).log_prob(0.3) + dist.Normal(0.3, 1.0).log_prob(jnp.array([1.0, 2.0])).sum()
    assert jnp.allclose(logdensity(z), expected, rtol=1e-6)


@pytest.mark.parametrize("shape", [(2,), (4,), (), (3, 1)])
def test_model_logdensity_position_of_wrong_size(shape):
    logdensity, z0, postprocess = model_logdensity(two_sites)
    assert z0.shape == (3,)
    for fn in (logdensity, postprocess, jax.jit(logdensity)):
        with pytest.raises(ValueError, match=re.escape("position must be a flat vector of shape (3,)")):
            fn(jnp.zeros(shape))


@pytest.mark.parametrize(
    "imm, match",
    [
        (jnp.array([1.0, -1.0, 1.0]), "positive"),
        (jnp.array([1.0, jnp.nan, 1.0]), "finite"),
        (jnp.array([[1.0, 2.0], [2.0, 1.0]]), "positive definite"),  # symmetric, eigenvalues 3 and -1
        (jnp.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (jnp.array([True, True, True]), "real array"),
    ],
)
def test_kernel_bad_inverse_mass_matrix(imm, match):
    with pytest.raises(ValueError, match=match):
        BlackJAXKernel(two_sites, "nuts", inverse_mass_matrix=imm, dense_mass=imm.ndim == 2)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"algorithm": "hmc", "num_integration_steps": True}, "num_integration_steps"),
        ({"algorithm": "hmc", "num_integration_steps": 2.0}, "num_integration_steps"),
        ({"max_num_doublings": True}, "max_num_doublings"),
        ({"max_tree_depth": (False, 10)}, "max_tree_depth"),
        ({"init_optimize_steps": True}, "init_optimize_steps"),
        ({"step_size": True}, "step_size"),
    ],
)
def test_kernel_bool_step_counts(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BlackJAXKernel(two_sites, **kwargs)
