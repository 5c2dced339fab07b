"""Tests for probkit.ot.sliced: exactness, POT agreement, variance reduction, stderr."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.ot import sliced_wasserstein, wasserstein_1d

ESTIMATORS = ("mc", "cv_lower", "cv_upper")


def whitened_pair(seed, n, d, shift, c):
    """x = m1 + z A^T, y = m2 + sqrt(c) z A^T with z exactly centred and whitened.

    Every slice is then an increasing affine map, so
    SW_2^2 = ||m1 - m2||^2 / d + (1 - sqrt c)^2 tr(A A^T) / d exactly.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / n)).T
    a = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    m1 = rng.normal(size=d)
    m2 = m1 + shift
    x = m1 + z @ a.T
    y = m2 + np.sqrt(c) * z @ a.T
    truth = (np.sum((m1 - m2) ** 2) + (1 - np.sqrt(c)) ** 2 * np.trace(a @ a.T)) / d
    return x, y, truth


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_one_dimensional_inputs_are_exact(estimator):
    with float64():
        rng = np.random.default_rng(0)
        u, v = rng.normal(size=40), rng.gamma(2.0, size=40)
        exact = wasserstein_1d(u, v)
        key = jax.random.PRNGKey(1)
        got = sliced_wasserstein(key, u, v, n_projections=5, estimator=estimator)
        np.testing.assert_allclose(got, exact, rtol=1e-12)
        # unequal sizes, weights
        b = rng.random(30)
        b /= b.sum()
        exact = wasserstein_1d(u, v[:30], None, b)
        got = sliced_wasserstein(key, u, v[:30], n_projections=4, estimator=estimator, y_weights=b)
        np.testing.assert_allclose(got, exact, rtol=1e-12)


@pytest.mark.parametrize(
    "projections",
    ["uniform", pytest.param("orthogonal", marks=pytest.mark.slow), pytest.param("qmc", marks=pytest.mark.slow)],
)
def test_converges_to_closed_form_gaussian_sw2(projections):
    with float64():
        x, y, truth = whitened_pair(0, 300, 5, shift=0.5, c=2.0)
        key = jax.random.PRNGKey(2)

        @jax.jit
        def all_estimates(k):
            return [
                sliced_wasserstein(
                    k, x, y, n_projections=2000, estimator=e, projections=projections,
                    return_stderr=True, root=False,
                )
                for e in ESTIMATORS
            ]

        for est, (z, se) in zip(ESTIMATORS, all_estimates(key)):
            assert abs(z - truth) <= 3 * se + 1e-10, (est, z, truth, se)
            assert se < 0.02 * truth
        # the root and its delta-method stderr
        r, se_r = sliced_wasserstein(
            key, x, y, n_projections=2000, estimator="cv_upper", projections=projections, return_stderr=True
        )
        np.testing.assert_allclose(r, np.sqrt(z), rtol=1e-12)
        np.testing.assert_allclose(se_r, se / (2 * np.sqrt(z)), rtol=1e-10)


def _all_estimators(x, y, n_projections, n_seeds):
    def one(k):
        return [
            sliced_wasserstein(k, x, y, n_projections=n_projections, estimator=e, return_stderr=True, root=False)
            for e in ESTIMATORS
        ]

    keys = jax.random.split(jax.random.PRNGKey(3), n_seeds)
    out = jax.jit(jax.vmap(one))(keys)
    return {e: (np.asarray(z, np.float64), np.asarray(s, np.float64)) for e, (z, s) in zip(ESTIMATORS, out)}


def test_unbiased_consistent_and_stderr_calibrated():
    """500 seeds, L = 20, exact truth: mc unbiased, cv consistent, stderr within 20%."""
    x, y, truth = whitened_pair(1, 200, 6, shift=0.4, c=0.5)
    res = _all_estimators(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), 20, 500)
    for est, (z, se) in res.items():
        sem = z.std() / np.sqrt(len(z))
        if est == "mc":
            assert abs(z.mean() - truth) <= 3 * sem, (est, z.mean(), truth)
        else:  # O(1/L) bias of the estimated coefficient: allow 1% of the truth
            assert abs(z.mean() - truth) <= 3 * sem + 0.01 * truth, (est, z.mean(), truth)
        ratio = np.sqrt(np.mean(se**2)) / z.std()
        assert 0.8 <= ratio <= 1.2, (est, ratio)


@pytest.mark.slow
def test_variance_reduction_gaussian_clouds():
    """n = 1000, d = 10, L = 10, 500 seeds (Nguyen & Ho's setting)."""
    kx, ky = jax.random.split(jax.random.PRNGKey(4))
    x = jax.random.normal(kx, (1000, 10))
    y_noise = jax.random.normal(ky, (1000, 10))
    diff = _all_estimators(x, y_noise + 1.0, 10, 500)
    v = {e: diff[e][0].var() for e in ESTIMATORS}
    assert v["mc"] / v["cv_lower"] >= 50, v
    assert v["mc"] / v["cv_upper"] >= 5, v
    same = _all_estimators(x, y_noise, 10, 500)
    v = {e: same[e][0].var() for e in ESTIMATORS}
    assert v["cv_lower"] <= 1.2 * v["mc"], v
    assert v["cv_upper"] <= 1.2 * v["mc"], v


def test_agrees_with_pot_weighted_unequal():
    ot = pytest.importorskip("ot")
    with float64():
        rng = np.random.default_rng(5)
        x, y = rng.normal(size=(60, 4)), rng.normal(size=(45, 4)) + 0.7
        a, b = rng.random(60), rng.random(45)
        a, b = a / a.sum(), b / b.sum()
        th = rng.normal(size=(25, 4))
        th /= np.linalg.norm(th, axis=1, keepdims=True)
        for p in (1.5, 2):
            for kw, (wa, wb) in [("weighted", (a, b)), ("unweighted", (None, None))]:
                ref = ot.sliced_wasserstein_distance(x, y, wa, wb, projections=th.T, p=p)
                got = sliced_wasserstein(None, x, y, x_weights=wa, y_weights=wb, projections=th, p=p)
                np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6, err_msg=f"{kw} p={p}")


def test_float32_default_and_float64_propagation():
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    out = sliced_wasserstein(jax.random.PRNGKey(0), x, x + 1, n_projections=8)
    assert out.dtype == jnp.float32
    with float64():
        out = sliced_wasserstein(jax.random.PRNGKey(0), x.astype(np.float64), x + 1.0, n_projections=8)
        assert out.dtype == jnp.float64


def test_grad_matches_finite_differences_and_chunking():
    with float64():
        x, y, _ = whitened_pair(2, 30, 3, shift=0.3, c=1.5)
        y = y[:25]
        key = jax.random.PRNGKey(6)

        def f(x_, est, chunk=None):
            return sliced_wasserstein(key, x_, y, n_projections=12, estimator=est, chunk_size=chunk)

        grads = jax.jit(lambda x_: [jax.grad(f)(x_, e) for e in ESTIMATORS])(jnp.asarray(x))
        values = jax.jit(lambda x_: jnp.stack([f(x_, e) for e in ESTIMATORS]))
        e = np.zeros_like(x)
        e[4, 1] = 1e-6
        fd = (values(x + e) - values(x - e)) / 2e-6
        for g, fd_e in zip(grads, fd):
            np.testing.assert_allclose(g[4, 1], fd_e, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(f(x, "cv_upper", chunk=5), values(x)[2], rtol=1e-12)


def test_projected_variances_from_covariance_equal_per_slice(monkeypatch):
    """Both ways of computing theta^T (S1 + S2) theta (and the traces) agree, values and gradients."""
    from probkit.ot import sliced

    with float64():
        rng = np.random.default_rng(7)
        x, y = rng.normal(size=(30, 4)) + 3.0, rng.normal(size=(24, 4)) * 2.0
        a, b = rng.random(30), rng.random(24)
        th = rng.normal(size=(9, 4))
        th = jnp.asarray(th / np.linalg.norm(th, axis=1, keepdims=True))
        for wa, wb in [(None, None), (jnp.asarray(a / a.sum()), jnp.asarray(b / b.sum()))]:

            def stats(x_, wa=wa, wb=wb):
                _, _, var_sum, _, trace_sum = sliced.slice_stats(x_, y, wa, wb, th, p=2, need_var=True, chunk_size=4)
                return jnp.sum(var_sum**2) + trace_sum, (var_sum, trace_sum)

            res = {}
            for cov in (True, False):
                monkeypatch.setattr(sliced, "_use_covariance", lambda d, L, cov=cov: cov)
                (_, res[cov]), grad = jax.jit(jax.value_and_grad(stats, has_aux=True))(jnp.asarray(x))
                res[cov] += (grad,)
            for u, v in zip(res[True], res[False]):
                np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
            # direct check of one slice
            pa = np.full(30, 1 / 30) if wa is None else np.asarray(wa)
            pb = np.full(24, 1 / 24) if wb is None else np.asarray(wb)
            xp, yp = x @ np.asarray(th[0]), y @ np.asarray(th[0])
            np.testing.assert_allclose(pa @ (xp - pa @ xp) ** 2 + pb @ (yp - pb @ yp) ** 2, res[True][0][0], rtol=1e-12)


def test_detach_coefficient_keeps_value_and_drops_the_coefficient_gradient():
    """detach_coefficient: same value; gradient = grad W_bar - alpha_hat grad(G_bar - E G) with alpha_hat fixed."""
    with float64():
        rng = np.random.default_rng(8)
        x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3)) * 0.7 + 1.0
        th = rng.normal(size=(8, 3))
        th = jnp.asarray(th / np.linalg.norm(th, axis=1, keepdims=True))

        def sw(x_, est, detach=False):
            return sliced_wasserstein(None, x_, y, projections=th, estimator=est, root=False,
                                      detach_coefficient=detach)

        def g_minus_mean(x_, est):  # G_bar - E G in closed form (E theta theta^T = I / d)
            dm = jnp.mean(x_, 0) - jnp.mean(y, 0)
            g, eg = jnp.mean((th @ dm) ** 2), dm @ dm / 3
            if est == "cv_upper":
                s = jnp.cov(x_.T, bias=True) + jnp.cov(y.T, bias=True)
                g, eg = g + jnp.mean(jnp.sum((th @ s) * th, 1)), eg + jnp.trace(s) / 3
            return g - eg

        @jax.jit
        def check(x_):
            out = {}
            for est in ("cv_lower", "cv_upper"):
                z = sw(x_, est)
                alpha = jax.lax.stop_gradient((sw(x_, "mc") - z) / g_minus_mean(x_, est))
                out[est] = (
                    z,
                    sw(x_, est, True),
                    jax.grad(lambda u: sw(u, "mc") - alpha * g_minus_mean(u, est))(x_),
                    jax.grad(lambda u: sw(u, est, True))(x_),
                    jax.grad(lambda u: sw(u, est))(x_),
                )
            return out

        for est, (z, z_detached, expected, got, full) in check(jnp.asarray(x)).items():
            np.testing.assert_allclose(z_detached, z, rtol=1e-14, err_msg=est)
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=est)
            assert np.max(np.abs(full - got)) > 1e-6, est  # the alpha_hat term is really dropped


def test_fixed_coefficient_is_unbiased_with_calibrated_stderr():
    """cv_coefficient: W_bar - alpha (G_bar - E G) for a fixed alpha, unbiased (500 seeds, no bias allowance)."""
    x, y, truth = whitened_pair(1, 200, 6, shift=0.4, c=0.5)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

    def one(k):
        return [
            sliced_wasserstein(k, x, y, n_projections=20, estimator=e, cv_coefficient=c, return_stderr=True,
                               root=False)
            for e, c in (("cv_lower", 1.0), ("cv_upper", 0.5))
        ]

    out = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(5), 500))
    for z, se in out:
        z, se = np.asarray(z, np.float64), np.asarray(se, np.float64)
        assert abs(z.mean() - truth) <= 3 * z.std() / np.sqrt(len(z)), (z.mean(), truth)
        assert 0.8 <= np.sqrt(np.mean(se**2)) / z.std() <= 1.2


def test_fixed_coefficient_one_gives_the_exact_translation_gradient():
    """cv_lower with alpha = 1: value = W_bar - (G_bar - E G); the gradient summed over the points of x
    (the derivative along a common translation) is exactly 2 (m1 - m2) / d, whatever the directions."""
    with float64():
        rng = np.random.default_rng(9)
        x, y = rng.normal(size=(25, 4)), rng.normal(size=(18, 4)) * 0.6 + 0.8
        wy = rng.dirichlet(np.ones(18))
        th = rng.normal(size=(5, 4))
        th = jnp.asarray(th / np.linalg.norm(th, axis=1, keepdims=True))
        dm = x.mean(0) - wy @ y

        def sw(x_, **kw):
            return sliced_wasserstein(None, x_, y, y_weights=wy, projections=th, root=False, **kw)

        z = sw(x, estimator="cv_lower", cv_coefficient=1.0)
        np.testing.assert_allclose(z, sw(x, estimator="mc") - (np.mean((th @ dm) ** 2) - dm @ dm / 4), rtol=1e-12)
        g = jax.grad(lambda u: sw(u, estimator="cv_lower", cv_coefficient=1.0))(jnp.asarray(x))
        np.testing.assert_allclose(g.sum(0), 2 * dm / 4, rtol=1e-10, atol=1e-14)
        g_mc = jax.grad(lambda u: sw(u, estimator="mc"))(jnp.asarray(x))
        assert np.max(np.abs(g_mc.sum(0) - 2 * dm / 4)) > 1e-2  # plain MC's translation part is noisy


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=np.zeros((5, 3))), "same dimension"),
        (dict(x_weights=np.full(4, 0.2)), "sum to 1"),
        (dict(x_weights=np.array([1.5, -0.5, 0.0, 0.0])), "x_weights must be non-negative"),
        (dict(x=np.array([[np.nan, 0.0]] * 4)), "x must contain only finite"),
        (dict(y_weights=np.full(3, 1 / 3)), "y_weights must have shape"),
        (dict(estimator="cv"), "estimator"),
        (dict(estimator="cv_lower", p=1), "p=2 only"),
        (dict(p=0.5), "p must be"),
        (dict(n_projections=0), "n_projections"),
        (dict(n_projections=1, return_stderr=True), "return_stderr"),
        (dict(projections="sobol"), "projections"),
        (dict(projections=np.ones((3, 5))), r"projections must have shape \(L, 2\)"),
        (dict(cv_coefficient=1.0), "cv_coefficient applies to the control variates"),
        (dict(estimator="cv_lower", cv_coefficient=np.inf), "cv_coefficient must be a finite real number"),
        (dict(estimator="cv_lower", cv_coefficient=1.0, detach_coefficient=True), "detach_coefficient"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(x=np.zeros((4, 2)), y=np.ones((4, 2)), n_projections=5)
    args.update(kwargs)
    x, y = args.pop("x"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        sliced_wasserstein(jax.random.PRNGKey(0), x, y, **args)
