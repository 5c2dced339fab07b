"""``probkit._autodiff.hessian`` and the Laplace starts on log densities forward mode cannot enter.

ODE models integrate with diffrax, whose adjoint is a ``custom_vjp``: ``jax.hessian``
(forward over reverse) raises on them, so the AutoFlow / AutoMixFlow Laplace starts
used to fail on every ODE posterior (lotka_volterra, one_comp in ``probkit bench``).
A ``custom_vjp`` exponential whose backward pass calls itself (as diffrax's adjoint
calls custom_vjp functions) reproduces that failure without the ODE's compile time.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from helpers import float64

from probkit._autodiff import hessian
from probkit.infer import AutoFlow, AutoMixFlow
from probkit.infer.logdensity import forward_mode_grad
from probkit.mixflows import laplace_reference

T = np.linspace(0.5, 3.0, 6)
Y = np.exp(-0.7 * T) + 0.05 * np.array([0.3, -1.1, 0.4, 0.9, -0.2, 0.6])


@jax.custom_vjp
def _exp(x):
    return jnp.exp(x)


_exp.defvjp(lambda x: (jnp.exp(x), x), lambda x, g: (g * _exp(x),))


def _decay(k, how):
    if how == "closed":
        return jnp.exp(-k * T)
    if how == "custom_vjp":
        return _exp(-k * T)
    term = diffrax.ODETerm(lambda t, y, k: -k * y)
    sol = diffrax.diffeqsolve(term, diffrax.Tsit5(), 0.0, 3.0, 0.01, jnp.ones((), k.dtype), args=k,
                              saveat=diffrax.SaveAt(ts=T), max_steps=400)
    return sol.ys


def _model(how):
    def model():
        k = numpyro.sample("k", dist.LogNormal(0.0, 1.0))
        s = numpyro.sample("s", dist.HalfNormal(0.2))
        numpyro.sample("y", dist.Normal(_decay(k, how), s), obs=Y)

    return model


def _logdensity(how):
    return lambda z: (dist.LogNormal(0.0, 1.0).log_prob(jnp.exp(z[0])) + z[0]
                      + dist.Normal(_decay(jnp.exp(z[0]), how), 0.05).log_prob(Y).sum())


def test_hessian_exact_where_autodiff_allows_and_differences_otherwise():
    a = jnp.array([[2.0, 0.7, 0.1], [0.7, 3.0, -0.4], [0.1, -0.4, 1.5]])
    f = lambda x: -0.5 * x @ a @ x + jnp.sin(x[0]) * x[1] ** 3 - jnp.sum(jnp.exp(0.3 * x))  # noqa: E731
    g = lambda x: -0.5 * x @ a @ x + jnp.sin(x[0]) * x[1] ** 3 - jnp.sum(_exp(0.3 * x))  # noqa: E731
    with float64():
        x = jnp.array([0.3, -1.2, 2.0], jnp.float64)
        exact = jax.hessian(f)(x)
        np.testing.assert_array_equal(hessian(f, x), exact)
        np.testing.assert_allclose(hessian(forward_mode_grad(f), x), exact, rtol=1e-12)
        with pytest.raises(TypeError, match="custom_vjp"):
            jax.hessian(g)(x)
        np.testing.assert_allclose(hessian(g, x), exact, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(jax.jit(lambda x: hessian(g, x))(x), exact, rtol=1e-8, atol=1e-8)
    x32 = jnp.array([0.3, -1.2, 2.0], jnp.float32)
    np.testing.assert_allclose(hessian(g, x32), jax.hessian(f)(x32), rtol=2e-3, atol=2e-3)


@pytest.mark.slow
def test_laplace_reference_on_ode_model_matches_closed_form():
    with float64():
        with pytest.raises(TypeError, match="custom_vjp"):
            jax.hessian(_logdensity("ode"))(jnp.array([-0.3]))
        init = jnp.array([0.0])
        ode, exact = (laplace_reference(_logdensity(h), init, covariance="full") for h in ("ode", "closed"))
        np.testing.assert_allclose(ode.mean, exact.mean, rtol=1e-7)
        np.testing.assert_allclose(ode.scale_tril, exact.scale_tril, rtol=1e-6)


def _check_guides_start_at_laplace(how):
    with float64():
        locs = {}
        for h in (how, "closed"):
            guide = AutoFlow(_model(h), key=jax.random.PRNGKey(0))
            with numpyro.handlers.seed(rng_seed=0):
                guide()  # builds the prototype: the Laplace start
            assert guide.init_kind == "laplace"
            locs[h] = guide.flow.bijection.bijections[-1].loc
        np.testing.assert_allclose(locs[how], locs["closed"], rtol=1e-6)
        # the Laplace reference's step sizes take the curvature's diagonal
        mix = AutoMixFlow(_model(how), n_flow_steps=20, n_leapfrog=2, metric="diagonal")
        mix.fit(jax.random.PRNGKey(1), reference="laplace", progress_bar=False)
        assert mix.reference_kind == "laplace"
        draws = mix.sample_posterior(jax.random.PRNGKey(2), None, sample_shape=(50,))
        assert np.all(np.isfinite(draws["k"])) and abs(np.median(draws["k"]) - 0.7) < 0.1


def test_guides_start_at_laplace_through_custom_vjp():
    _check_guides_start_at_laplace("custom_vjp")


@pytest.mark.slow
def test_guides_start_at_laplace_on_ode_model():
    _check_guides_start_at_laplace("ode")
