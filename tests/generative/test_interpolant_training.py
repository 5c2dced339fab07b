"""Acceptance: a short-trained velocity (2-D Gaussian -> mixture) is close to the exact
mixture field, and its ODE and SDE samples agree in sliced Wasserstein distance."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probkit.generative import (
    GaussianMixtureFields,
    TimeMLP,
    linear,
    one_sided,
    sample_ode,
    sample_sde,
    train_interpolant,
)
from probkit.ot import sliced_wasserstein

W = np.array([0.4, 0.6])
MU = np.array([[-1.5, 0.0], [1.5, 0.5]])
COV = np.stack([0.2 * np.eye(2), np.array([[0.3, 0.1], [0.1, 0.2]])])
L2_TOL = 0.05  # relative L2 error E|b - b*|^2 / E|b*|^2 over t ~ U(0, 1), x_t ~ rho_t
SW_FACTOR, SW_SLACK = 2.0, 0.05  # SW_2(ODE, SDE) <= 2 SW_2(data, data) + 0.05 on 2000 points


def sample_mixture(key, n):
    k1, k2 = jax.random.split(key)
    comp = jax.random.categorical(k1, jnp.log(W), shape=(n,))
    chol = jnp.asarray(np.linalg.cholesky(COV), jnp.float32)
    return jnp.asarray(MU, jnp.float32)[comp] + jnp.einsum("nij,nj->ni", chol[comp], jax.random.normal(k2, (n, 2)))


@pytest.fixture(scope="module")
def trained():
    key = jax.random.PRNGKey(0)
    it = one_sided("linear")
    net = TimeMLP(key, 2, width=64, depth=2)
    net, losses = train_interpolant(key, net, it, None, sample_mixture, steps=1500, batch_size=256,
                                    optimizer=optax.adam(3e-3), progress_bar=False)
    return it, net, losses


@pytest.mark.slow
def test_trained_velocity_matches_the_exact_mixture_field(trained):
    it, net, losses = trained
    assert bool(jnp.all(jnp.isfinite(losses))) and float(losses[-100:].mean()) < float(losses[:100].mean())
    exact = GaussianMixtureFields(it, W, MU, COV)
    kt, k0, k1 = jax.random.split(jax.random.PRNGKey(5), 3)
    n = 4000
    t = jax.random.uniform(kt, (n,))
    x0, x1 = jax.random.normal(k0, (n, 2)), sample_mixture(k1, n)
    xt = jax.vmap(lambda s, a, b: it(s, a, b, a))(t, x0, x1)
    err = jnp.mean(jnp.sum((jax.vmap(net)(t, xt) - jax.vmap(exact)(t, xt)) ** 2, -1))
    rel = float(err / jnp.mean(jnp.sum(jax.vmap(exact)(t, xt) ** 2, -1)))
    assert rel < L2_TOL, rel


@pytest.mark.slow
def test_ode_and_sde_samples_agree(trained):
    it, net, _ = trained
    n = 2000
    xo = sample_ode(None, net, jax.random.normal(jax.random.PRNGKey(7), (n, 2)), solver="heun", n_steps=50)
    # eps(t) = 0.5 (1 - t): the score from b, -(x - t b)/(1 - t), is singular at t = 1
    xs = sample_sde(jax.random.PRNGKey(8), net, n, lambda t: 0.5 * (1 - t), dim=2, interpolant=it, n_steps=200)
    d1, d2 = sample_mixture(jax.random.PRNGKey(10), n), sample_mixture(jax.random.PRNGKey(11), n)
    sw = lambda a, b: float(sliced_wasserstein(jax.random.PRNGKey(0), a, b, n_projections=200))  # noqa: E731
    baseline = sw(d1, d2)
    assert sw(xo, xs) < SW_FACTOR * baseline + SW_SLACK
    assert sw(xo, d1) < SW_FACTOR * baseline + SW_SLACK
    assert sw(xs, d1) < SW_FACTOR * baseline + SW_SLACK


def test_two_sided_pair_training_and_checkpoint(tmp_path):
    """Joint (b, eta) training runs, checkpoints and resumes to the same parameters."""
    key = jax.random.PRNGKey(1)
    it = linear()
    k1, k2 = jax.random.split(key)
    pair = (TimeMLP(k1, 2, width=16, depth=1), TimeMLP(k2, 2, width=16, depth=1))
    src = lambda k, n: jax.random.normal(k, (n, 2)) + 1.0  # noqa: E731
    kw = dict(steps=20, batch_size=32, progress_bar=False, target="velocity+denoiser")
    full, losses = train_interpolant(key, pair, it, src, sample_mixture, **kw)
    assert losses.shape == (20,) and bool(jnp.all(jnp.isfinite(losses)))
    path = tmp_path / "pair.eqx"
    again, _ = train_interpolant(key, pair, it, src, sample_mixture, checkpoint_path=path, checkpoint_every=10, **kw)
    resumed, _ = train_interpolant(key, pair, it, src, sample_mixture, checkpoint_path=path, **kw)
    for a, b in ((full, again), (full, resumed)):
        for la, lb in zip(jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_array)),
                          jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array))):
            np.testing.assert_allclose(la, lb, rtol=1e-5, atol=1e-6)
