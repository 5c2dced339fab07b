"""train_score_model: DSM learns the Gaussian score; the Fokker-Planck penalty lowers the
residual of the learned log-density; argument checks."""

import jax
import jax.numpy as jnp
import optax
import pytest

from probkit.generative import (
    VPSDE,
    GaussianScore,
    LogDensityNet,
    ScoreNet,
    sample_collocation,
    score_fokker_planck_residual,
    train_score_model,
)
from probkit.generative.diffusion_training import _fp_scale, make_score_loss

MU = jnp.array([1.0, -1.0])
SD = jnp.array([0.7, 0.4])


def gaussian(key, n):
    return MU + SD * jax.random.normal(key, (n, 2))


@pytest.mark.slow
def test_dsm_learns_the_gaussian_score(key):
    sde = VPSDE()
    model = ScoreNet(key, 2, sde=sde, width=32, depth=2)
    model, losses = train_score_model(jax.random.PRNGKey(1), model, sde, gaussian, steps=400, batch_size=256,
                                      optimizer=optax.adam(3e-3), progress_bar=False)
    assert losses.shape == (400,) and bool(jnp.all(jnp.isfinite(losses)))
    exact = GaussianScore(sde, MU, jnp.diag(SD**2))
    x = gaussian(jax.random.PRNGKey(2), 200)
    for t in (0.2, 0.5):
        m, s = sde.marginal(t)
        xt = m * x + s * jax.random.normal(jax.random.PRNGKey(3), x.shape)
        err = jax.vmap(model.score, (None, 0))(t, xt) - jax.vmap(exact.score, (None, 0))(t, xt)
        ref = jax.vmap(exact.score, (None, 0))(t, xt)
        # relative L2 error of the learned score on the marginal's bulk
        assert float(jnp.sqrt(jnp.mean(err**2) / jnp.mean(ref**2))) < 0.2


@pytest.mark.slow
def test_fokker_planck_penalty_lowers_the_residual(key):
    """The penalty does what it optimises: a lower score residual on fresh collocation points."""
    sde = VPSDE()
    box = (-4 * jnp.ones(2), 4 * jnp.ones(2))
    xc, tc = sample_collocation(jax.random.PRNGKey(9), 256, box[0], box[1], sde.t_eps, sde.T)
    rms = {}
    for w in (0.0, 10.0):
        model = LogDensityNet(key, 2, width=16, depth=2)
        model, losses = train_score_model(jax.random.PRNGKey(1), model, sde, gaussian, steps=150, batch_size=64,
                                          fp_weight=w, n_collocation=64, collocation_box=box,
                                          optimizer=optax.adam(3e-3), progress_bar=False)
        assert bool(jnp.all(jnp.isfinite(losses)))
        lam = jax.vmap(lambda s: _fp_scale(sde, s, "score", True))(tc)  # the penalty's normalisation
        rms[w] = float(jnp.sqrt(jnp.mean((lam[:, None] * score_fokker_planck_residual(model, sde, xc, tc)) ** 2)))
    assert rms[10.0] < 0.5 * rms[0.0], rms


def test_bad_arguments(key):
    sde = VPSDE()
    net = ScoreNet(key, 2, width=8, depth=1)
    with pytest.raises(TypeError, match="log-density model"):
        train_score_model(key, net, sde, gaussian, steps=1, batch_size=4, fp_weight=1.0, progress_bar=False)
    with pytest.raises(TypeError, match="model must be an AbstractScoreModel"):
        train_score_model(key, lambda t, x: x, sde, gaussian, steps=1, batch_size=4, progress_bar=False)
    with pytest.raises(ValueError, match="fp_weight"):
        train_score_model(key, net, sde, gaussian, steps=1, batch_size=4, fp_weight=-1.0, progress_bar=False)
    with pytest.raises(ValueError, match="weighting"):
        train_score_model(key, net, sde, gaussian, steps=1, batch_size=4, weighting="snr", progress_bar=False)
    with pytest.raises(ValueError, match="sample_data"):
        train_score_model(key, net, sde, jnp.zeros(3), steps=1, batch_size=4, progress_bar=False)
    u = LogDensityNet(key, 2, width=8, depth=1)
    with pytest.raises(ValueError, match="collocation_box"):
        train_score_model(key, u, sde, gaussian, steps=1, batch_size=4, fp_weight=1.0,
                          collocation_box=(jnp.ones(2), jnp.zeros(2)), progress_bar=False)
    with pytest.raises(ValueError, match="fp_residual"):
        train_score_model(key, u, sde, gaussian, steps=1, batch_size=4, fp_weight=1.0, fp_residual="R",
                          progress_bar=False)
    with pytest.raises(ValueError, match="collocation"):
        train_score_model(key, u, sde, gaussian, steps=1, batch_size=4, fp_weight=1.0, collocation="grid",
                          progress_bar=False)


class _Shifted(GaussianScore):
    """The exact Gaussian log-density plus a time-only constant c(t) = 5 t."""

    def __call__(self, t, x):
        return super().__call__(t, x) + 5.0 * t


class _Scaled(GaussianScore):
    """1.2 times the exact log-density: not a solution of the Fokker-Planck equation."""

    def __call__(self, t, x):
        return 1.2 * super().__call__(t, x)

    def score(self, t, x):
        return 1.2 * super().score(t, x)


@pytest.mark.parametrize("collocation", ["box", pytest.param("mixed", marks=pytest.mark.slow)])
def test_score_penalty_ignores_a_time_only_constant(key, collocation):
    sde = VPSDE()
    exact, shifted = GaussianScore(sde, MU, jnp.diag(SD**2)), _Shifted(sde, MU, jnp.diag(SD**2))
    kw = dict(fp_weight=1.0, n_collocation=32, collocation=collocation)
    plain = make_score_loss(sde, gaussian, fp_residual="log_density", fp_normalize=False, **kw)
    score = make_score_loss(sde, gaussian, **kw)
    dsm = make_score_loss(sde, gaussian)
    k = jax.random.PRNGKey(4)
    base = float(dsm(exact, k, 64))
    # exact u: no residual either way; u + 5t: R = 5 everywhere, invisible to the score residual
    assert float(plain(exact, k, 64)) == pytest.approx(base, rel=1e-4)
    assert float(score(exact, k, 64)) == pytest.approx(base, rel=1e-4)
    assert float(plain(shifted, k, 64)) == pytest.approx(base + 25.0, rel=1e-4)
    assert float(score(shifted, k, 64)) == pytest.approx(base, rel=1e-4)
    # a wrong score is penalised, with the normalisation lambda = sigma^2/g^2 (times sigma)
    wrong = _Scaled(sde, MU, jnp.diag(SD**2))
    assert float(score(wrong, k, 64)) > float(dsm(wrong, k, 64)) + 1e-3
