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
    """One step each way (the composition over steps is a sum: checked against
    ``iterate`` in test_trajectory_matches_iterate_and_is_differentiable); one compile."""
    with float64():
        fmap = _map(momentum, n_leapfrog=2)
        v = _flat(_start())

        @jax.jit
        def check(w):
            out = []
            for direction in (fmap.forward, fmap.inverse):
                step = lambda a, d=direction: d(_unflat(a))  # noqa: E731
                out.append((step(w)[1], *jnp.linalg.slogdet(jax.jacfwd(lambda a, s=step: _flat(s(a)[0]))(w))))
            return out

        for logdet, sign, ref in check(v):
            assert sign != 0
            np.testing.assert_allclose(logdet, ref, atol=1e-10)
            assert abs(float(logdet)) > 1e-3  # not trivially volume preserving


def test_refresh_preserves_momentum_law():
    """For fixed (x, u) the refresh maps rho ~ m to rho' ~ m (KS test, 1% level)."""
    fmap = _map(LaplaceMomentum())
    rho = jax.random.laplace(jax.random.PRNGKey(0), (5000, 3))
    x, u = jnp.array([0.3, -1.0, 2.0]), jnp.array(0.8)
    new, _ = jax.jit(jax.vmap(lambda r: fmap.refresh(x, r, u)))(rho)
    assert float(jnp.mean(jnp.abs(new - rho))) > 0.1  # not the identity
    for i in range(3):
        assert stats.kstest(np.asarray(new[:, i]), stats.laplace.cdf).pvalue > 0.01


def test_trajectory_matches_iterate_and_is_differentiable():
    with float64():
        fmap = _map(LaplaceMomentum())
        z = _start()

        def loss(log_eps):
            m = HamiltonianMap(_banana, LaplaceMomentum(), log_eps, 5)
            return jnp.sum(m.iterate(z, 4)[0][0] ** 2)

        h = 1e-6
        e0 = jnp.zeros(3).at[0].set(h)

        @jax.jit  # one compile for the whole check
        def quantities(le):
            states, lds = fmap.trajectory(z, 4)
            last, total = fmap.iterate(z, 4)
            fd = (loss(le + e0) - loss(le - e0)) / (2 * h)
            return _flat(jax.tree_util.tree_map(lambda s: s[-1], states)), _flat(last), jnp.sum(lds), total, \
                jax.grad(loss)(le)[0], fd

        traj_last, last, ld_sum, total, g0, fd = quantities(fmap.log_step_size)
        np.testing.assert_allclose(traj_last, last)
        np.testing.assert_allclose(ld_sum, total)
        np.testing.assert_allclose(g0, fd, rtol=1e-5)
