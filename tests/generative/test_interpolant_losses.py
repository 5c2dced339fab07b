r"""The quadratic losses are minimised by the exact fields: with common random numbers,
:math:`L(f^* + c) - L(f^*) = \tfrac12|c|^2` in expectation for any constant shift c."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative import GaussianMixtureFields, VelocityFromV, interpolant_loss, linear, one_sided
from probkit.generative.interpolant_losses import make_interpolant_loss, v_scale

W, MU, COV = np.array([0.4, 0.6]), np.array([[-1.5, 0.0], [1.5, 0.5]]), np.stack([0.2 * np.eye(2), 0.3 * np.eye(2)])
N = 20000


def _draws(key, it):
    k = jax.random.split(key, 5)
    comp = jax.random.categorical(k[0], jnp.log(W), shape=(N,))
    x1 = MU[comp] + jnp.sqrt(COV[comp, 0, 0])[:, None] * jax.random.normal(k[1], (N, 2), jnp.float64)
    x0 = jax.random.normal(k[2], (N, 2), jnp.float64)
    z = jax.random.normal(k[3], (N, 2), jnp.float64)
    t = jax.random.uniform(k[4], (N,), jnp.float64, 0.05, 0.95)
    return t, x0, x1, z


@pytest.mark.parametrize("interp", ["one_sided", "two_sided"])
@pytest.mark.parametrize("target", ["velocity", "denoiser", "score", "v"])
def test_exact_field_is_the_minimiser(key, interp, target):
    with float64():
        if interp == "one_sided":
            it = one_sided("linear")
            fields = GaussianMixtureFields(it, W, MU, COV)
        else:
            it = linear()
            fields = GaussianMixtureFields(it, W, MU, COV, x0_mean=np.zeros(2), x0_cov=np.eye(2))
        exact = {
            "velocity": fields.velocity,
            "denoiser": fields.denoiser,
            "score": fields.score,
            "v": lambda t, x: fields.velocity(t, x) / v_scale(it, t),
        }[target]
        t, x0, x1, z = _draws(key, it)
        c = jnp.array([0.3, -0.2])
        l_star = interpolant_loss(exact, it, t, x0, x1, z, target=target)
        l_shift = interpolant_loss(lambda s, x: exact(s, x) + c, it, t, x0, x1, z, target=target)
        # the difference is 1/2|c|^2 + c . E[f*(x_t) - target]; the second term has mean 0
        assert float(l_shift - l_star) == pytest.approx(0.5 * float(c @ c), abs=0.02)


@pytest.mark.slow
def test_velocity_from_v_and_antithetic_variance(key):
    with float64():
        it = linear()
        fields = GaussianMixtureFields(it, W, MU, COV, x0_mean=np.zeros(2), x0_cov=np.eye(2))
        v = lambda t, x: fields.velocity(t, x) / v_scale(it, t)  # noqa: E731
        np.testing.assert_allclose(VelocityFromV(v, it)(0.3, jnp.ones(2)), fields.velocity(0.3, jnp.ones(2)), rtol=1e-12)
        t, x0, x1, z = _draws(key, it)
        t = t * 0.1  # near t = 0 where gamma-dot blows up
        per_sample = [jax.vmap(lambda *a: interpolant_loss(fields.velocity, it, *(b[None] for b in a),
                                                          antithetic=anti))(t[:2000], x0[:2000], x1[:2000], z[:2000])
                      for anti in (False, True)]
        assert float(jnp.var(per_sample[1])) < 0.5 * float(jnp.var(per_sample[0]))


def test_time_weight_and_loss_factory(key):
    with float64():
        it = one_sided()
        fields = GaussianMixtureFields(it, W, MU, COV)
        t, x0, x1, z = _draws(key, it)
        plain = interpolant_loss(fields.velocity, it, t, x0, x1, z, antithetic=False)
        doubled = interpolant_loss(fields.velocity, it, t, x0, x1, z, antithetic=False, time_weight=lambda s: 2.0)
        assert float(doubled) == pytest.approx(2 * float(plain), rel=1e-12)
        data = np.asarray(x1[:500])
        loss_fn = make_interpolant_loss(it, None, data)
        assert jnp.isfinite(loss_fn(fields.velocity, key, 64))


def test_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        make_interpolant_loss(one_sided(), None, np.zeros((5, 2)), target="flow")
    with pytest.raises(ValueError, match="sample_x0 is required"):
        make_interpolant_loss(linear(), None, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="sample_x0=None"):
        make_interpolant_loss(one_sided(), np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="sample_x1"):
        make_interpolant_loss(one_sided(), None, np.zeros(5))
    with pytest.raises(ValueError, match="t_min"):
        make_interpolant_loss(one_sided(), None, np.zeros((5, 2)), t_min=0.7)
    with pytest.raises(TypeError, match="interpolant"):
        make_interpolant_loss("linear", None, np.zeros((5, 2)))
