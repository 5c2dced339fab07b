"""MixFlow: exact augmented density, sample/log_prob agreement, unbiased ELBO, banana, bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64
from scipy import stats

from probkit.mixflows import FullRankGaussianReference, GaussianReference, MixFlow, Preconditioner, fit_gaussian_reference
from probkit.ot import sliced_wasserstein


def _std_normal(x):
    return -0.5 * jnp.sum(x**2)


def _gauss_flow(n_flow_steps=10, reference=None, **kw):
    ref = GaussianReference(jnp.array([0.5, -0.5]), 1.5) if reference is None else reference
    return MixFlow(_std_normal, 2, n_flow_steps=n_flow_steps, n_leapfrog=5, step_size=0.3, reference=ref, **kw)


@pytest.mark.parametrize("reference", ["diagonal", "full", "full+dense metric"])
def test_augmented_density_matches_autodiff_jacobians(reference):
    """log q_N(z) = logmeanexp_n [log q0(T^-n z) + log|det dT^-n/dz|] with autodiff determinants."""
    with float64():
        full = FullRankGaussianReference(jnp.array([0.5, -0.5]), jnp.array([[1.5, 0.0], [0.9, 0.7]]))
        ref = None if reference == "diagonal" else full
        pre = "reference" if reference.endswith("dense metric") else None
        flow = _gauss_flow(n_flow_steps=4, burn_in=1, reference=ref, preconditioner=pre)
        fmap = flow.flow_map
        v = jnp.array([0.7, -1.2, 0.3, -0.9, 0.42])

        def inv_n(w, n):
            s = (w[:2], w[2:4], w[4])
            for _ in range(n):
                s, _ = fmap.inverse(s)
            return jnp.concatenate([s[0], s[1], s[2][None]])

        @jax.jit
        def expected_fn(v):
            terms = []
            for n in range(1, 4):  # burn_in = 1 drops n = 0
                w = inv_n(v, n)
                logdet = jnp.linalg.slogdet(jax.jacfwd(lambda a, n=n: inv_n(a, n))(v))[1]
                log_q0 = flow.reference.log_prob(w[:2]) + jnp.sum(flow.momentum.log_prob(w[2:4]))
                terms.append(log_q0 + logdet)
            return jax.scipy.special.logsumexp(jnp.array(terms)) - math.log(3)

        expected = expected_fn(v)
        got = flow.log_prob_augmented(v[:2], v[2:4], v[4])
        np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_dense_preconditioner_makes_a_correlated_gaussian_isotropic():
    """Issue 24 item 8: whitened by its covariance, N(mu, Sigma) with correlation -0.99 is *exactly*
    the isotropic problem: trajectories are mu + L y of the N(0, I) flow's trajectories y (same
    keys, same step), and log q_N(x, rho, u) = log q_N^iso(y, rho, u) - log|det L|."""
    with float64():
        mu, cov = jnp.array([3.0, -1.0]), jnp.array([[4.0, -1.98], [-1.98, 1.0]])
        prec, chol = jnp.linalg.inv(cov), jnp.linalg.cholesky(cov)
        kw = dict(n_flow_steps=30, n_leapfrog=5, step_size=0.3)
        corr = MixFlow(lambda x: -0.5 * (x - mu) @ prec @ (x - mu), 2, reference=FullRankGaussianReference(mu, chol),
                       preconditioner="reference", **kw)
        iso = MixFlow(_std_normal, 2, reference=GaussianReference(jnp.zeros(2)), **kw)
        key = jax.random.PRNGKey(0)
        x, y = corr.sample_trajectories(key, 3), iso.sample_trajectories(key, 3)
        np.testing.assert_allclose(x, mu + y @ chol.T, atol=1e-9)
        assert float(jnp.std(y[:, 0])) > 0.3  # the trajectories moved
        rho, u = jax.random.laplace(key, (8, 2)), jax.random.uniform(key, (8,))
        np.testing.assert_allclose(corr.log_prob_augmented(x[:8], rho, u),
                                   iso.log_prob_augmented(y[:8], rho, u) - jnp.sum(jnp.log(jnp.diag(chol))), atol=1e-9)
        with pytest.raises(ValueError, match="preconditioner"):
            MixFlow(_std_normal, 2, preconditioner=Preconditioner(jnp.zeros(3), jnp.eye(3)), **kw)
        with pytest.raises(ValueError, match="preconditioner"):
            MixFlow(_std_normal, 2, preconditioner="dense", **kw)


def test_draws_reusing_trajectories_are_exact_draws():
    """draws_per_trajectory = m: every draw is marginally q_N (k_j uniform on B..N-1); chunked i.i.d. draws too.

    Against ``sample_trajectories`` (all states weighted equally represent q_N exactly):
    first and second moments agree within 4 Monte Carlo s.e. (a standard Gaussian target
    with an offset reference, so that q_N differs from both the target and the reference).
    """
    flow = _gauss_flow(n_flow_steps=10, burn_in=2)
    full = np.asarray(flow.sample_trajectories(jax.random.PRNGKey(5), 4000))  # 32000 states
    for m in (1, 5):
        x = np.asarray(flow.sample(jax.random.PRNGKey(6), 6000, draws_per_trajectory=m))
        assert x.shape == (6000, 2)
        for f in (lambda a: a, lambda a: a**2):
            groups = f(x).reshape(-1, m, 2).mean(1)  # trajectories are independent
            se = np.sqrt(groups.var(0) / len(groups) + f(full).reshape(4000, 8, 2).mean(1).var(0) / 4000)
            np.testing.assert_array_less(np.abs(f(x).mean(0) - f(full).mean(0)), 4 * se)
    with pytest.raises(ValueError, match="draws_per_trajectory"):
        flow.sample(jax.random.PRNGKey(0), 10, draws_per_trajectory=9)


def _bin_counts(x, weights):
    """Weighted counts in 36 unit bins on [-3, 3]^2 plus one outer bin."""
    inside = np.all(np.abs(x) < 3, axis=1)
    c, _, _ = np.histogram2d(x[inside, 0], x[inside, 1], bins=6, range=[[-3, 3], [-3, 3]], weights=weights[inside])
    return np.append(c.ravel(), weights[~inside].sum())


def test_sample_matches_log_prob_on_gaussian():
    """`sample` vs the density: binned chi-square (1% level) and log_prob integrates to 1 +- 0.02.

    Bin probabilities come from the exact augmented density by importance sampling
    over (x, rho, u) with a wide proposal; the chi-square statistic adds the IS
    variance to the multinomial variance. The x-marginal `log_prob` is integrated
    on a grid.
    """
    with float64():
        flow = _gauss_flow()
        h = 0.25
        g = jnp.arange(-6 + h / 2, 6, h)
        grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1)  # (48, 48, 2)
        mass = float(jnp.sum(jnp.exp(flow.log_prob(grid, n_samples=32))) * h * h)
        print(f"integral of exp(log_prob) on [-6, 6]^2: {mass:.4f}")
        assert abs(mass - 1) < 0.02

        m = 200000
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(11), 3)
        x = 2.0 * jax.random.normal(k1, (m, 2))
        rho = 1.5 * jax.random.laplace(k2, (m, 2))
        u = jax.random.uniform(k3, (m,))
        log_r = stats.norm(0, 2).logpdf(np.asarray(x)).sum(1) + stats.laplace(0, 1.5).logpdf(np.asarray(rho)).sum(1)
        w = np.exp(np.asarray(flow.log_prob_augmented(x, rho, u)) - log_r)
        p = _bin_counts(np.asarray(x), w) / m
        var_p = _bin_counts(np.asarray(x), w**2) / m - p**2
        n = 20000
        counts = _bin_counts(np.asarray(flow.sample(jax.random.PRNGKey(1), n)), np.ones(n))
        stat = np.sum((counts / n - p) ** 2 / (p * (1 - p) / n + var_p / m))
        pvalue = stats.chi2.sf(stat, df=p.size - 1)
        print(f"binned chi-square {stat:.1f} on {p.size - 1} df, p-value {pvalue:.3f}")
        assert pvalue > 0.01
        # the test has power: the reference alone fails it
        ref_x = np.asarray(jax.vmap(flow.reference.sample)(jax.random.split(jax.random.PRNGKey(2), n)))
        stat_ref = np.sum((_bin_counts(ref_x, np.ones(n)) / n - p) ** 2 / (p * (1 - p) / n + var_p / m))
        assert stats.chi2.sf(stat_ref, df=p.size - 1) < 1e-6


def test_elbo_unbiased():
    """Mean of elbo over seeds matches E_q[log pi + log m - log q] from sample/log_prob (3 s.e.)."""
    with float64():
        flow = _gauss_flow(n_flow_steps=8, burn_in=2)
        keys = jax.random.split(jax.random.PRNGKey(3), 400)
        est = np.asarray(jax.vmap(lambda k: flow.elbo(k, 1))(keys))
        x, rho, u = flow.sample_augmented(jax.random.PRNGKey(4), 4000)
        log_p = jax.vmap(_std_normal)(x) + jnp.sum(flow.momentum.log_prob(rho), -1)
        direct = np.asarray(log_p - flow.log_prob_augmented(x, rho, u))
        se = math.sqrt(est.var() / est.size + direct.var() / direct.size)
        print(f"elbo estimator {est.mean():.4f} vs direct {direct.mean():.4f} (se {se:.4f})")
        assert abs(est.mean() - direct.mean()) < 3 * se
        assert est.mean() < math.log(2 * math.pi)  # a lower bound on log Z


def test_dtype_jit_and_round_trip():
    flow = _gauss_flow()
    x = flow.sample(jax.random.PRNGKey(0), 64)
    assert x.shape == (64, 2) and x.dtype == jnp.float32
    traj = flow.sample_trajectories(jax.random.PRNGKey(0), 3)
    assert traj.shape == (30, 2) and traj.dtype == jnp.float32
    with float64():
        ks, err = _gauss_flow().round_trip_error(jax.random.PRNGKey(0), n=4)
    assert ks[-1] == 10 and np.all(err < 1e-12)


@pytest.mark.slow
def test_fit_improves_elbo():
    flow = MixFlow(_std_normal, 2, n_flow_steps=4, n_leapfrog=2, step_size=0.02,
                   reference=GaussianReference(jnp.array([2.0, -2.0]), 0.3))
    fitted, history = flow.fit(jax.random.PRNGKey(0), steps=40, n_samples=8, progress_bar=False)
    assert history.shape == (40,) and np.all(np.isfinite(history))
    before = flow.elbo(jax.random.PRNGKey(9), 256)
    after = fitted.elbo(jax.random.PRNGKey(9), 256)
    print(f"ELBO before fit {before:.3f}, after {after:.3f}")
    assert after > before + 0.5


def test_bad_input():
    kw = dict(n_leapfrog=2, step_size=0.1)
    with pytest.raises(ValueError, match="step_size"):
        MixFlow(_std_normal, 2, n_flow_steps=5, n_leapfrog=2, step_size=0.0)
    with pytest.raises(ValueError, match="step_size"):
        MixFlow(_std_normal, 2, n_flow_steps=5, n_leapfrog=2, step_size=jnp.array([0.1, -0.1]))
    with pytest.raises(ValueError, match="n_flow_steps"):
        MixFlow(_std_normal, 2, n_flow_steps=0, **kw)
    with pytest.raises(ValueError, match="logdensity_fn"):
        MixFlow(lambda x: jnp.nan * jnp.sum(x), 2, n_flow_steps=5, **kw)
    with pytest.raises(ValueError, match="momentum"):
        MixFlow(_std_normal, 2, n_flow_steps=5, momentum="cauchy", **kw)
    with pytest.raises(ValueError, match="burn_in"):
        MixFlow(_std_normal, 2, n_flow_steps=5, burn_in=5, **kw)
    with pytest.raises(ValueError, match="dim"):
        MixFlow(_std_normal, 3, n_flow_steps=5, reference=GaussianReference(jnp.zeros(2)), **kw)


def _banana(x, b=0.1):
    return -x[0] ** 2 / 200 - 0.5 * (x[1] - b * x[0] ** 2 + 100 * b) ** 2


def _banana_draws(key, n, b=0.1):
    y = jax.random.normal(key, (n, 2)) * jnp.array([10.0, 1.0])
    return jnp.stack([y[:, 0], y[:, 1] + b * y[:, 0] ** 2 - 100 * b], 1)


@pytest.mark.slow
def test_banana_beats_mean_field_reference():
    """Banana b = 0.1, N = 500: SW(MixFlow, exact) <= SW(mean-field reference, exact) / 5."""
    key = jax.random.PRNGKey(0)
    ref = fit_gaussian_reference(key, _banana, jnp.zeros(2), steps=500, progress_bar=False)
    flow = MixFlow(_banana, 2, n_flow_steps=500, n_leapfrog=50, step_size=0.1, reference=ref)
    n = 2000
    exact = _banana_draws(jax.random.PRNGKey(1), n)
    x_flow = flow.sample(jax.random.PRNGKey(2), n)
    x_ref = jax.vmap(ref.sample)(jax.random.split(jax.random.PRNGKey(3), n))
    sw_flow = float(sliced_wasserstein(jax.random.PRNGKey(4), x_flow, exact, n_projections=256))
    sw_ref = float(sliced_wasserstein(jax.random.PRNGKey(4), x_ref, exact, n_projections=256))
    print(f"banana SW: MixFlow {sw_flow:.3f}, mean-field reference {sw_ref:.3f}, ratio {sw_ref / sw_flow:.1f}")
    assert np.all(np.isfinite(np.asarray(x_flow)))
    assert sw_flow <= sw_ref / 5
