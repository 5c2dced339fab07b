"""Tests for probkit.generative.sampling (generic diffrax integrators)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative.sampling import divergence, ode_log_prob, solve_ode, solve_sde

A = jnp.array([[-0.5, 1.0], [0.0, -0.3]])


def linear_field(t, x):
    return A @ x


def std_normal(y):
    return -0.5 * (jnp.sum(y**2) + y.shape[-1] * jnp.log(2 * jnp.pi))


def test_linear_ode_forward_backward_and_nfe(key):
    with float64():
        x0 = jax.random.normal(key, (5, 2))
        expm = jax.scipy.linalg.expm(A)
        x1, nfe = solve_ode(linear_field, x0, 0.0, 1.0, adaptive=True, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(x1, x0 @ expm.T, atol=1e-6)
        xb, nfe_heun = solve_ode(linear_field, x1, 1.0, 0.0, solver="heun", n_steps=50)
        np.testing.assert_allclose(xb, x0, atol=1e-3)
        assert int(nfe_heun) == 100  # Heun: 2 evaluations per step
        _, nfe_tsit = solve_ode(linear_field, x0, 0.0, 1.0, solver="tsit5", n_steps=10)
        assert int(nfe_tsit) == 61  # FSAL: 1 + 6 per step
        _, nfe_euler = solve_ode(linear_field, x0, 0.0, 1.0, solver="euler", n_steps=10)
        assert int(nfe_euler) == 10


def test_nfe_counts_real_evaluations(key):
    calls = []

    def counted(t, x):
        jax.debug.callback(lambda *_: calls.append(1), t)
        return -x

    _, nfe = solve_ode(counted, jnp.ones((1, 2)), 0.0, 1.0, solver="tsit5", n_steps=5, adaptive=True, rtol=1e-3, atol=1e-3)
    jax.effects_barrier()
    assert len(calls) == int(nfe)


def test_ode_log_prob_of_a_linear_flow(key):
    """x at t=0 is mapped to expm(A) x at t=1 where the density is N(0, I)."""
    with float64():
        x = jax.random.normal(key, (6, 2))
        expm = jax.scipy.linalg.expm(A)
        exact = jax.vmap(std_normal)(x @ expm.T) + jnp.log(jnp.abs(jnp.linalg.det(expm)))
        lp, nfe = ode_log_prob(linear_field, x, 0.0, 1.0, std_normal)
        np.testing.assert_allclose(lp, exact, atol=1e-5)
        assert int(nfe) > 0
        # Hutchinson with the probe average over many probes
        lp_h, _ = ode_log_prob(linear_field, x, 0.0, 1.0, std_normal, divergence_method="hutchinson",
                               key=key, n_probes=4000)
        np.testing.assert_allclose(lp_h, exact, atol=0.1)  # sd of the 4000-probe mean: 1/sqrt(4000)


def test_hutchinson_divergence_is_unbiased(key):
    with float64():
        w = jax.random.normal(key, (4, 4))
        field = lambda t, x: jnp.tanh(w @ x) * (1 + t)  # noqa: E731
        x = jnp.array([0.3, -0.1, 0.5, 0.2])
        signs = jnp.array(np.array(np.meshgrid(*[[-1.0, 1.0]] * 4)).reshape(4, -1).T)
        probes = jax.random.normal(jax.random.PRNGKey(3), (2000, 4), dtype=jnp.float64)

        @jax.jit  # one compile for the whole check
        def quantities(x):
            return (divergence(field, 0.7, x), jnp.trace(jax.jacrev(field, 1)(0.7, x)), divergence(field, 0.7, x, signs),
                    jax.vmap(lambda v: divergence(field, 0.7, x, v[None]))(probes))

        exact, trace, all_signs, single = quantities(x)
        np.testing.assert_allclose(exact, trace, rtol=1e-12)
        # averaging v^T J v over all 2^d sign vectors cancels every off-diagonal term exactly
        np.testing.assert_allclose(all_signs, exact, rtol=1e-12)
        # one random probe at a time: the mean is within 3 standard errors of the exact value
        se = jnp.std(single) / jnp.sqrt(2000)
        assert abs(float(jnp.mean(single) - exact)) < 3 * float(se)
        assert float(se) > 0


@pytest.mark.parametrize("solver", ["euler", "heun", pytest.param("shark", marks=pytest.mark.slow)])
def test_ou_sde_variance_forward_and_backward(solver):
    """dX = -X dt + g dW from 0: Var X_T = g^2 (1 - e^{-2T}) / 2 per coordinate."""
    g, T, n = 0.8, 1.5, 4000
    expected = g**2 * (1 - np.exp(-2 * T)) / 2
    se = expected * np.sqrt(2 / (2 * n))  # sd of a variance estimate pooled over 2 coordinates
    xs, nfe = solve_sde(jax.random.PRNGKey(1), lambda t, x: -x, lambda t: g, jnp.zeros((n, 2)), 0.0, T,
                        solver=solver, n_steps=150)
    assert abs(float(jnp.var(xs)) - expected) < 4 * se + 0.01 * expected  # + discretisation
    assert int(nfe) == 150 * (1 if solver == "euler" else 2)
    # backward in time: the drift +x becomes -x in reversed time
    xb, _ = solve_sde(jax.random.PRNGKey(2), lambda t, x: x, lambda t: g, jnp.zeros((n, 2)), T, 0.0,
                      solver=solver, n_steps=150)
    assert abs(float(jnp.var(xb)) - expected) < 4 * se + 0.01 * expected


def test_bad_arguments(key):
    x = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match="x0"):
        solve_ode(linear_field, jnp.zeros(3), 0.0, 1.0)
    with pytest.raises(ValueError, match="t0 and t1"):
        solve_ode(linear_field, x, 1.0, 1.0)
    with pytest.raises(ValueError, match="solver"):
        solve_ode(linear_field, x, 0.0, 1.0, solver="rk99")
    with pytest.raises(ValueError, match="n_steps"):
        solve_sde(key, linear_field, lambda t: 1.0, x, 0.0, 1.0, n_steps=0)
    with pytest.raises(ValueError, match="solver"):
        solve_sde(key, linear_field, lambda t: 1.0, x, 0.0, 1.0, solver="tsit5")
    with pytest.raises(TypeError, match="diffusion"):
        solve_sde(key, linear_field, 1.0, x, 0.0, 1.0)
    with pytest.raises(ValueError, match="divergence_method"):
        ode_log_prob(linear_field, x, 0.0, 1.0, std_normal, divergence_method="trace")
    with pytest.raises(ValueError, match="key"):
        ode_log_prob(linear_field, x, 0.0, 1.0, std_normal, divergence_method="hutchinson")
    with pytest.raises(ValueError, match="rtol"):
        solve_ode(linear_field, x, 0.0, 1.0, adaptive=True, rtol=-1.0)
