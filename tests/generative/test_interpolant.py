"""Tests for probkit.generative.interpolant."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative import GaussianMixtureFields
from probkit.generative.interpolant import (
    Interpolant,
    encoder_decoder,
    gamma_quadratic,
    gamma_sqrt,
    gamma_zero,
    linear,
    one_sided,
    trig,
)

SCHEDULES = {
    "linear": linear(),
    "trig": trig(gamma_quadratic(2.0)),
    "encoder_decoder": encoder_decoder(),
    "one_sided_linear": one_sided("linear"),
    "one_sided_trig": one_sided("trig"),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_boundary_conditions_and_autodiff_derivatives(name):
    it = SCHEDULES[name]
    with float64():
        assert float(it.alpha(0.0)) == pytest.approx(1.0) and float(it.alpha(1.0)) == pytest.approx(0.0, abs=1e-12)
        assert float(it.beta(0.0)) == pytest.approx(0.0, abs=1e-12) and float(it.beta(1.0)) == pytest.approx(1.0)
        assert float(it.gamma(0.0)) == pytest.approx(0.0, abs=1e-12) and float(it.gamma(1.0)) == pytest.approx(0.0, abs=1e-12)
        h = 1e-6
        for t in (0.2, 0.35, 0.8):
            for f, fd in ((it.alpha, it.alpha_dot), (it.beta, it.beta_dot), (it.gamma, it.gamma_dot)):
                num = (f(t + h) - f(t - h)) / (2 * h)
                assert float(fd(t)) == pytest.approx(float(num), rel=1e-6, abs=1e-8)
            gg = it.gamma(t) * it.gamma_dot(t)
            assert float(it.gamma_gamma_dot(t)) == pytest.approx(float(gg), rel=1e-9, abs=1e-12)


def test_interpolant_value_and_velocity_target():
    it = linear()
    x0, x1, z = jnp.array([1.0, 2.0]), jnp.array([-1.0, 0.5]), jnp.array([0.3, -0.4])
    t = 0.3
    g = np.sqrt(0.3 * 0.7)
    np.testing.assert_allclose(it(t, x0, x1, z), 0.7 * x0 + 0.3 * x1 + g * z, rtol=1e-6)
    gd = (1 - 2 * t) / (2 * g)
    np.testing.assert_allclose(it.velocity_target(t, x0, x1, z), -x0 + x1 + gd * z, rtol=1e-5)
    # the noise variable and its coefficient
    np.testing.assert_allclose(it.noise(x0, z), z)
    os_ = one_sided()
    np.testing.assert_allclose(os_.noise(x0, z), x0)
    assert float(os_.noise_coefficient(0.25)) == pytest.approx(0.75)
    assert float(gamma_sqrt(2.0)(0.5)) == pytest.approx(np.sqrt(0.5))


@pytest.mark.parametrize("schedule", ["linear", "trig"])
def test_score_from_velocity_is_the_exact_score(schedule):
    """One-sided Gaussian base -> Gaussian mixture: s(b) equals the closed-form score."""
    with float64():
        it = one_sided(schedule)
        fields = GaussianMixtureFields(it, jnp.array([0.3, 0.7]), jnp.array([[1.0, 0.0], [-1.0, 2.0]]),
                                       jnp.stack([0.5 * jnp.eye(2), jnp.array([[1.0, 0.3], [0.3, 0.5]])]))
        x = jnp.array([0.4, -0.3])

        @jax.vmap
        def fields_at(t):
            return (it.score_from_velocity(t, x, fields.velocity(t, x)), it.score_from_denoiser(t, fields.denoiser(t, x)),
                    fields.score(t, x))

        from_b, from_eta, exact = jax.jit(fields_at)(jnp.array([0.1, 0.5, 0.9]))
        np.testing.assert_allclose(from_b, exact, rtol=1e-9)
        np.testing.assert_allclose(from_eta, exact, rtol=1e-9)


def test_bad_arguments():
    with pytest.raises(TypeError, match="alpha"):
        Interpolant(1.0, lambda t: t)
    with pytest.raises(ValueError, match="gamma_zero"):
        Interpolant(lambda t: 1 - t, lambda t: t, gamma_sqrt(), gaussian_base=True)
    with pytest.raises(ValueError, match="schedule"):
        one_sided("cosine")
    with pytest.raises(ValueError, match="a must be positive"):
        gamma_sqrt(-1.0)
    with pytest.raises(ValueError, match="one-sided"):
        linear().score_from_velocity(0.5, jnp.zeros(2), jnp.zeros(2))
    assert float(gamma_zero(0.3)) == 0.0
