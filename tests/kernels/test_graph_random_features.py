"""Graph random features: unbiasedness, 1/sqrt(m) error decay, q-GRF variance, sharding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from helpers import float64
from jax.experimental import sparse as jsparse

from probkit.kernels.graph import as_graph, diffusion_kernel, regularized_laplacian_kernel
from probkit.kernels.graph_random_features import (
    DiffusionSeries,
    RegularizedLaplacianSeries,
    SquareRootSeries,
    graph_random_features,
)

# karate club (34) + ladder (20) + G(50, 0.1) (50) as one disconnected graph: walks never
# leave a component, so the estimator on each block is exactly the estimator on that graph,
# and one compilation serves all three test graphs.
BLOCKS = {"karate": slice(0, 34), "ladder": slice(34, 54), "gnp": slice(54, 104)}
N_SEEDS = 200


def _test_graph():
    return nx.disjoint_union_all(
        [nx.karate_club_graph(), nx.ladder_graph(10), nx.gnp_random_graph(50, 0.1, seed=0)]
    )


def _gram_fn(graph, **kw):
    def one(k):
        phi, phi2 = graph_random_features(k, graph, **kw)
        return phi @ phi2.T

    return jax.jit(jax.vmap(one))


@pytest.fixture(scope="module")
def estimates():
    """200-seed kernel estimates (m = 16, sigma = 1, p_halt = 0.5) for GRF and q-GRF, float64."""
    with float64():
        g = as_graph(_test_graph())
        exact = np.asarray(regularized_laplacian_kernel(g, 1.0, 2))
        keys = jax.random.split(jax.random.PRNGKey(0), N_SEEDS)
        out = {v: np.asarray(_gram_fn(g, n_walks=16, variant=v)(keys)) for v in ("grf", "qgrf")}
    return exact, out


def _zscores(samples, exact):
    """|mean - exact| / (MC standard error); a floor 1e-4 max|K| covers never-visited entries."""
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    return np.abs(mean - exact) / (se + 1e-4 * np.abs(exact).max())


@pytest.mark.parametrize("variant", ["grf", "qgrf"])
def test_unbiased_over_200_seeds(estimates, variant):
    exact, out = estimates
    z = _zscores(out[variant], exact)
    # walks never cross components: off-block entries are exactly zero
    mask = np.zeros_like(exact, dtype=bool)
    for s in BLOCKS.values():
        mask[s, s] = True
    assert np.all(out[variant][:, ~mask] == 0.0)
    # diagonal: every entry within 4 standard errors
    assert np.diag(z).max() < 4.0
    # 10,816 entries: under normality 0.27% exceed 3 SE and 0.006% exceed 4 SE; allow for
    # multiple testing and the estimator's skew, and check the z^2 average (a bias inflates it)
    assert (z > 3).mean() < 0.006
    assert (z > 4).mean() < 0.001
    assert z.max() < 7.0
    assert 0.7 < np.mean(z[mask] ** 2) < 1.3


def test_qgrf_lower_error_than_grf_on_each_graph(estimates):
    exact, out = estimates
    for name, s in BLOCKS.items():
        k = exact[s, s]
        err = {
            v: np.mean(np.linalg.norm(out[v][:, s, s] - k, axis=(1, 2)) / np.linalg.norm(k))
            for v in out
        }
        assert err["qgrf"] < err["grf"], (name, err)


def test_error_decays_like_inverse_sqrt_m():
    """Slope of log rel. Frobenius error vs log m in [-0.6, -0.4] for m = 4..64, sigma = 0.1, 1.

    m walks are m/4 independent blocks of 4 walks (walks are i.i.d.), so one compilation
    with 4 walks gives every m by averaging the first m/4 blocks.
    """
    g = as_graph(nx.karate_club_graph())
    reps, blocks = 24, 16
    ms = np.array([4, 8, 16, 32, 64])
    with float64():
        for sigma in (0.1, 1.0):
            exact = np.asarray(regularized_laplacian_kernel(g, sigma, 2))

            @jax.jit
            def feats(keys, sigma=sigma):
                return jax.vmap(lambda k: graph_random_features(k, g, n_walks=4, sigma=sigma))(keys)

            keys = jax.random.split(jax.random.PRNGKey(1), reps * blocks)
            phi, phi2 = (np.asarray(x).reshape(reps, blocks, 34, 34) for x in feats(keys))
            errs = []
            for m in ms:
                a, b = phi[:, : m // 4].mean(1), phi2[:, : m // 4].mean(1)
                kh = a @ b.transpose(0, 2, 1)
                errs.append(np.mean(np.linalg.norm(kh - exact, axis=(1, 2)) / np.linalg.norm(exact)))
            slope = np.polyfit(np.log(ms), np.log(errs), 1)[0]
            assert -0.6 <= slope <= -0.4, (sigma, slope, errs)


def test_other_kernels_unbiased():
    """Regularised Laplacian with d = 1 and d = 3, and the diffusion kernel, over 200 seeds.

    The three square-root series are tabulated (60 terms; the last is below 1e-12) and stacked
    so one compilation serves all three; the tabulation equals the closed forms
    (see test_square_root_series_deconvolution).
    """
    cases = [
        (RegularizedLaplacianSeries(sigma=1.0, d=1.0), lambda a: regularized_laplacian_kernel(a, 1.0, 1.0)),
        (RegularizedLaplacianSeries(sigma=0.8, d=3.0), lambda a: regularized_laplacian_kernel(a, 0.8, 3.0)),
        (DiffusionSeries(beta=1.0), lambda a: diffusion_kernel(a, 1.0)),
    ]
    with float64():
        g = as_graph(nx.ladder_graph(6))
        table = jnp.stack([s.coefficient(jnp.arange(60)) for s, _ in cases])
        assert float(table[:, -1].max()) < 1e-12

        @jax.jit
        def grams(f, keys):
            one = lambda k: graph_random_features(k, g, n_walks=16, kernel=SquareRootSeries(f=f))
            phi, phi2 = jax.vmap(one)(keys)
            return phi @ phi2.transpose(0, 2, 1)

        keys = jax.random.split(jax.random.PRNGKey(2), N_SEEDS)
        samples = np.asarray(jax.vmap(grams, (0, None))(table, keys))
        for (_, exact_fn), sample in zip(cases, samples):
            z = _zscores(sample, np.asarray(exact_fn(g)))
            assert z.max() < 5.0
            assert np.diag(z).max() < 4.0


def test_square_root_series_deconvolution():
    """Deconvolving the kernel's series c_k recovers the closed-form square-root series f_k."""
    with float64():
        k = jnp.arange(30)
        sigma, d = 0.9, 3.0
        s = sigma**2 / (1 + sigma**2)
        from jax.scipy.special import gammaln

        c = jnp.exp(gammaln(k + d) - gammaln(d) - gammaln(k + 1.0) + k * jnp.log(s)) / (1 + sigma**2) ** d
        f = SquareRootSeries.from_kernel_coefficients(c).coefficient(k)
        np.testing.assert_allclose(f, RegularizedLaplacianSeries(sigma=sigma, d=d).coefficient(k), rtol=1e-10)
        beta = 1.7
        c = jnp.exp(-beta + k * jnp.log(beta) - gammaln(k + 1.0))
        f = SquareRootSeries.from_kernel_coefficients(c).coefficient(k)
        np.testing.assert_allclose(f, DiffusionSeries(beta=beta).coefficient(k), rtol=1e-10, atol=1e-14)
        # the convolution square of f is c
        np.testing.assert_allclose(jnp.convolve(f, f)[:30], c, rtol=1e-10, atol=1e-14)


@pytest.mark.slow
def test_sparse_matches_dense_and_dtypes():
    g = as_graph(nx.karate_club_graph())
    key = jax.random.PRNGKey(3)
    d1, d2 = graph_random_features(key, g, n_walks=8, max_walk_length=12)
    s1, s2 = graph_random_features(key, g, n_walks=8, max_walk_length=12, dense=False)
    assert isinstance(s1, jsparse.BCOO) and d1.dtype == jnp.float32
    np.testing.assert_allclose(s1.todense(), d1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s2.todense(), d2, rtol=1e-5, atol=1e-7)
    # default sparse cap: the series tail beyond it is negligible, so it matches the uncapped run
    u1, _ = graph_random_features(key, g, n_walks=8)
    s1, _ = graph_random_features(key, g, n_walks=8, dense=False)
    np.testing.assert_allclose(s1.todense(), u1, rtol=1e-5, atol=1e-7)
    with float64():
        g64 = as_graph(np.asarray(nx.to_numpy_array(nx.karate_club_graph()), np.float64))
        assert graph_random_features(key, g64, n_walks=2)[0].dtype == jnp.float64


def test_jit_and_isolated_nodes():
    a = np.asarray(nx.to_numpy_array(nx.path_graph(5)))
    a = np.pad(a, ((0, 1), (0, 1)))  # node 5 is isolated: L[5, 5] = 1, K[5, 5] = (1 + s^2)^-2
    g = as_graph(a)
    f = jax.jit(lambda k, g: graph_random_features(k, g, n_walks=4, sigma=0.7))
    phi, phi2 = f(jax.random.PRNGKey(0), g)
    exact = regularized_laplacian_kernel(a, 0.7, 2)
    np.testing.assert_allclose(exact[5], np.eye(6)[5] / 1.49**2, rtol=1e-6, atol=1e-7)
    # the isolated node's walks halt at once: its row is exact, not just unbiased
    np.testing.assert_allclose((phi @ phi2.T)[5], exact[5], rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_sharded_identical_to_unsharded(devices_runner):
    out = devices_runner(
        """
        import jax, numpy as np, networkx as nx
        from jax.sharding import Mesh
        from probkit.kernels.graph_random_features import graph_random_features
        assert len(jax.devices()) == 4
        g = nx.karate_club_graph()  # 34 nodes: not a multiple of 4, exercises padding
        mesh = Mesh(np.array(jax.devices()), ("nodes",))
        key = jax.random.PRNGKey(7)
        for variant in ("qgrf",):
            a = graph_random_features(key, g, n_walks=4, variant=variant)
            b = graph_random_features(key, g, n_walks=4, variant=variant, mesh=mesh)
            assert len(b[0].sharding.device_set) == 4
            for x, y in zip(a, b):
                assert np.array_equal(np.asarray(x), np.asarray(y)), variant
        a = graph_random_features(key, g, n_walks=4, dense=False, max_walk_length=10)
        b = graph_random_features(key, g, n_walks=4, dense=False, max_walk_length=10, mesh=mesh)
        for x, y in zip(a, b):
            assert np.array_equal(np.asarray(x.todense()), np.asarray(y.todense()))
        print("ok")
        """
    )
    assert out.strip().endswith("ok")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_walks=0), "n_walks"),
        (dict(n_walks=2.5), "n_walks"),
        (dict(n_walks=4, p_halt=0.0), "p_halt"),
        (dict(n_walks=4, p_halt=1.0), "p_halt"),
        (dict(n_walks=4, sigma=-1.0), "sigma"),
        (dict(n_walks=4, variant="foo"), "variant"),
        (dict(n_walks=4, kernel="foo"), "kernel"),
        (dict(n_walks=4, max_walk_length=0), "max_walk_length"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        graph_random_features(jax.random.PRNGKey(0), np.ones((3, 3)), **kwargs)


@pytest.mark.parametrize(
    "adjacency,match",
    [(np.ones((3, 4)), "square"), (-np.ones((3, 3)), "non-negative"), (np.triu(np.ones((3, 3))), "symmetric")],
)
def test_bad_adjacency(adjacency, match):
    with pytest.raises(ValueError, match=match):
        graph_random_features(jax.random.PRNGKey(0), adjacency, n_walks=2)


def _rel_error(adjacency, sigma, n_walks, seed=0, **kw):
    phi, phi2 = graph_random_features(jax.random.PRNGKey(seed), adjacency, n_walks=n_walks, sigma=sigma, **kw)
    K = np.asarray(regularized_laplacian_kernel(adjacency, sigma))
    return np.linalg.norm(np.asarray(phi @ phi2.T) - K) / np.linalg.norm(K)


@pytest.mark.slow
@pytest.mark.parametrize("graph", ["grid", "random"])
def test_error_bounded_across_sigma(graph):
    """Relative Frobenius error of Phi Phi'^T at m = 64 with the default p_halt, sigma 0.5..4,
    on a 20 x 20 grid and G(300, 0.02): bounded (measured <= 0.28 on 30 x 30 / G(400, 0.02))."""
    g = nx.grid_2d_graph(20, 20) if graph == "grid" else nx.gnp_random_graph(300, 0.02, seed=0)
    a = as_graph(nx.to_numpy_array(g).astype(np.float32))
    errs = {s: _rel_error(a, s, 64) for s in (0.5, 1.0, 2.0, 4.0)}
    assert max(errs.values()) < 0.35, errs
