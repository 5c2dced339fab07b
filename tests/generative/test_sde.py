"""Forward SDEs: marginals consistent with drift/diffusion (exact Fokker-Planck check is in
test_diffusion_losses), closed forms, priors, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.generative import VESDE, VPSDE, SubVPSDE

SDES = [VPSDE(), VPSDE.ou(beta=2.0), SubVPSDE(), VESDE()]


@pytest.mark.parametrize("sde", SDES, ids=["vp", "ou", "subvp", "ve"])
def test_marginal_moments_solve_their_odes(sde):
    r"""For linear drift f = a(t)x: m' = a m and (σ²)' = 2aσ² + g², with m(0)=1, σ(0)=0."""
    with float64():
        t = jnp.linspace(0.05, 0.95, 7) * sde.T
        m, s = jax.vmap(sde.marginal)(t)
        dm, ds = jax.vmap(jax.jacfwd(sde.marginal))(t)
        a = jax.vmap(lambda ti: sde.drift(ti, jnp.ones(1))[0])(t)
        g2 = jax.vmap(sde.diffusion)(t) ** 2
        np.testing.assert_allclose(dm, a * m, rtol=1e-10)
        np.testing.assert_allclose(2 * s * ds, 2 * a * s**2 + g2, rtol=1e-9)
        m0, s0 = sde.marginal(0.0)
        assert float(m0) == pytest.approx(1.0) and float(s0) == pytest.approx(0.0, abs=1e-12)


def test_closed_forms():
    with float64():
        vp = VPSDE(beta_min=0.1, beta_max=20.0)
        m, s = vp.marginal(0.5)
        b = 0.1 * 0.5 + 0.5 * 19.9 * 0.25
        assert float(m) == pytest.approx(np.exp(-b / 2)) and float(s) == pytest.approx(np.sqrt(1 - np.exp(-b)))
        ou = VPSDE.ou(beta=2.0)  # dX = -X dt + sqrt(2) dW
        np.testing.assert_allclose(ou.drift(0.3, jnp.array([1.0, -2.0])), [-1.0, 2.0])
        assert float(ou.diffusion(0.7)) == pytest.approx(np.sqrt(2.0))
        assert float(ou.marginal(1.0)[0]) == pytest.approx(np.exp(-1.0))
        ve = VESDE(sigma_min=0.01, sigma_max=50.0)
        assert float(ve.marginal(1.0)[1]) == pytest.approx(np.sqrt(50.0**2 - 0.01**2))
        assert float(SubVPSDE().marginal(0.5)[1]) == pytest.approx(1 - np.exp(-b))
        x = jnp.array([0.3, -1.2, 2.0])
        for sde in SDES:
            np.testing.assert_allclose(sde.drift_divergence(0.4, x), jnp.trace(jax.jacfwd(sde.drift, 1)(0.4, x)),
                                       atol=1e-12)


def test_prior_and_perturb(key):
    with float64():
        ve = VESDE(sigma_max=5.0)
        x = ve.prior_sample(key, (4000, 2), jnp.float64)
        assert abs(float(jnp.std(x)) - 5.0) < 0.15
        y = jnp.array([0.5, -1.0])
        expected = jax.scipy.stats.norm.logpdf(y, 0.0, 5.0).sum()
        assert float(ve.prior_log_prob(y)) == pytest.approx(float(expected))
        vp = VPSDE()
        m, s = vp.marginal(0.3)
        np.testing.assert_allclose(vp.perturb(0.3, y, jnp.ones(2)), m * y + s)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: VPSDE(beta_min=-1.0), "beta_min"),
        (lambda: VPSDE(beta_min=5.0, beta_max=1.0), "beta_max"),
        (lambda: VPSDE(T=0.0), "T"),
        (lambda: VPSDE(t_eps=2.0), "t_eps"),
        (lambda: VESDE(sigma_min=1.0, sigma_max=0.5), "sigma_max"),
        (lambda: SubVPSDE(beta_max=float("nan")), "beta_max"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
