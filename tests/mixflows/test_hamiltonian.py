"""The MixFlow map: exact inverse, log-Jacobian against autodiff, measure preservation of the refresh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64
from scipy import stats

from probkit.mixflows import GaussianMomentum, HamiltonianMap, LaplaceMomentum


def _banana(x):
    return -x[0] ** 2 / 8 - 0.5 * (x[1] - 0.5 * x[0] ** 2) ** 2 - 0.5 * x[2] ** 2


def _map(momentum, n_leapfrog=5):
    return HamiltonianMap(_banana, momentum, jnp.log(jnp.array([0.1, 0.05, 0.2])), n_leapfrog)


def _flat(state):
    x, rho, u = state
    return jnp.concatenate([x, rho, u[None]])


def _unflat(v):
    return v[:3], v[3:6], v[6]


def _start():
    return jnp.array([0.3, -0.2, 1.1]), jnp.array([0.4, -1.3, 0.7]), jnp.array(0.37)


# The Gaussian-momentum map is far more sensitive to rounding (its refresh Jacobian
# m(rho)/m(rho') is unbounded in the thin tails): its round-trip error grows about
# 2.5x per step (1e-13 after 10 steps, 1e-5 after 30), so it is checked over 10 steps;
# the default Laplace momentum meets 1e-10 over 100 steps.
@pytest.mark.parametrize("momentum,n_steps", [(LaplaceMomentum(), 100), (GaussianMomentum(), 10)])
def test_inverse_float64(momentum, n_steps):
    with float64():
        fmap = _map(momentum)
        z0 = _start()
        fwd, ld_f = jax.jit(lambda z: fmap.iterate(z, n_steps))(z0)
        back, ld_b = jax.jit(lambda z: fmap.iterate(z, n_steps, inverse=True))(fwd)
        err = float(jnp.max(jnp.abs(_flat(back) - _flat(z0))))
        print(f"round trip error over {n_steps} steps ({type(momentum).__name__}): {err:.2e}")
        assert err < 1e-10
        assert float(jnp.max(jnp.abs(_flat(fwd) - _flat(z0)))) > 0.1  # the map really moved
        np.testing.assert_allclose(ld_b, -ld_f, atol=1e-9)


@pytest.mark.parametrize("momentum", [LaplaceMomentum(), GaussianMomentum()])
def test_log_jacobian_matches_autodiff(momentum):
    with float64():
        fmap = _map(momentum, n_leapfrog=2)
        z = _start()
        for direction in (fmap.forward, fmap.inverse):
            # two steps: the composed log-det is the sum of the per-step log-dets
            def f(v, direction=direction):
                s, total = _unflat(v), 0.0
                for _ in range(2):
                    s, ld = direction(s)
                    total = total + ld
                return _flat(s), total

            v = _flat(z)
            logdet, (sign, ref) = jax.jit(lambda w: (f(w)[1], jnp.linalg.slogdet(jax.jacfwd(lambda a: f(a)[0])(w))))(v)
            assert sign != 0
            np.testing.assert_allclose(logdet, ref, atol=1e-10)
            assert abs(float(logdet)) > 1e-3  # not trivially volume preserving


def test_refresh_preserves_momentum_law():
    """For fixed (x, u) the refresh maps rho ~ m to rho' ~ m (KS test, 1% level)."""
    fmap = _map(LaplaceMomentum())
    rho = jax.random.laplace(jax.random.PRNGKey(0), (5000, 3))
    x, u = jnp.array([0.3, -1.0, 2.0]), jnp.array(0.8)
    new, _ = jax.vmap(lambda r: fmap.refresh(x, r, u))(rho)
    assert float(jnp.mean(jnp.abs(new - rho))) > 0.1  # not the identity
    for i in range(3):
        assert stats.kstest(np.asarray(new[:, i]), stats.laplace.cdf).pvalue > 0.01


def test_trajectory_matches_iterate_and_is_differentiable():
    with float64():
        fmap = _map(LaplaceMomentum())
        z = _start()
        states, lds = fmap.trajectory(z, 4)
        last, total = fmap.iterate(z, 4)
        np.testing.assert_allclose(_flat(jax.tree_util.tree_map(lambda s: s[-1], states)), _flat(last))
        np.testing.assert_allclose(jnp.sum(lds), total)

        def loss(log_eps):
            m = HamiltonianMap(_banana, LaplaceMomentum(), log_eps, 5)
            return jnp.sum(m.iterate(z, 4)[0][0] ** 2)

        g = jax.grad(loss)(fmap.log_step_size)
        h = 1e-6
        e0 = jnp.zeros(3).at[0].set(h)
        fd = (loss(fmap.log_step_size + e0) - loss(fmap.log_step_size - e0)) / (2 * h)
        np.testing.assert_allclose(g[0], fd, rtol=1e-5)
