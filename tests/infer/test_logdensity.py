import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import potential_energy

from probkit.infer import model_logdensity


def model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    s = numpyro.sample("s", dist.HalfNormal(1.5))
    w = numpyro.sample("w", dist.Dirichlet(jnp.ones(3)))
    numpyro.deterministic("twice", 2 * mu)
    numpyro.sample("y", dist.Normal(mu + w[0], s), obs=y)


def test_logdensity_matches_potential_energy(x64):
    y = jnp.array([0.3, -0.4, 1.1])
    logdensity, init, post = model_logdensity(model, y)
    assert init.shape == (4,) and logdensity.dim == 4  # mu, s, w (simplex: 2 free)
    z = jnp.array([0.2, -0.7, 0.4, -0.1])

    @jax.jit
    def evaluate(z):
        ref = -potential_energy(model, (y,), {}, logdensity.unravel(z))
        # by hand: log p(T(z)) + log|det J_T|
        u = logdensity.unravel(z)
        s = jnp.exp(u["s"])
        w = dist.transforms.StickBreakingTransform()(u["w"])
        by_hand = (dist.Normal(0, 2).log_prob(u["mu"]) + dist.HalfNormal(1.5).log_prob(s) + u["s"]
                   + dist.Dirichlet(jnp.ones(3)).log_prob(w)
                   + dist.transforms.StickBreakingTransform().log_abs_det_jacobian(u["w"], w)
                   + dist.Normal(u["mu"] + w[0], s).log_prob(y).sum())
        return logdensity(z), ref, by_hand, post(z), s, w, u["mu"], jax.grad(logdensity)(z)

    lp, ref, by_hand, vals, s, w, mu, grad = evaluate(z)
    np.testing.assert_allclose(lp, ref, rtol=1e-12)
    np.testing.assert_allclose(lp, by_hand, rtol=1e-10)
    np.testing.assert_allclose(vals["s"], s, rtol=1e-12)
    np.testing.assert_allclose(vals["w"], w, rtol=1e-12)
    np.testing.assert_allclose(vals["twice"], 2 * mu, rtol=1e-12)
    assert jnp.isfinite(grad).all()
    np.testing.assert_allclose(logdensity(z), lp, rtol=1e-12)  # unjitted call agrees

# discrete latent sites: NumPyro's own error, tests/infer/test_numpyro_compat_mcmc.py
