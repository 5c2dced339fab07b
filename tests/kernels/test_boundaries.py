"""Bad input at the kernels' public boundary (issue 26) and the silent wrong answers of issue 24.

Every case raises ``ValueError``/``TypeError`` naming the argument on concrete values, or an
``EqxRuntimeError`` under ``jit`` (``eqx.error_if``), instead of a NaN, a clamp or a raw
JAX error deep inside.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density

from probkit.kernels import (
    RBF,
    graph_gp,
    graph_random_features,
    laplacian,
    nystrom,
    regularized_laplacian_kernel,
    ridge_leverage_scores,
    squeak,
    uniform_dictionary,
)

_RUNTIME = eqx.EquinoxRuntimeError  # eqx.error_if under eqx.filter_jit
_X = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(6, 2)


# ----------------------------------------------------------------------------- gram


def _bad_X(case):
    X = _X.copy()
    if case == "nan":
        X[0, 0] = np.nan
    elif case == "inf":
        X[2, 1] = -np.inf
    else:
        X = X * (1 + 1j)
    return X


@pytest.mark.parametrize(
    "case,exc,match",
    [("nan", ValueError, "must contain only finite"), ("inf", ValueError, "must contain only finite"),
     ("complex", TypeError, "must be real")],
)
def test_gram_rejects_bad_X(case, exc, match):
    X = _bad_X(case)
    with pytest.raises(exc, match="X " + match):
        RBF().gram(X)
    with pytest.raises(exc, match="Y " + match):
        RBF().gram(_X, X)


def test_gram_rejects_nan_under_jit():
    X = _X.copy()
    X[1, 1] = np.nan
    with pytest.raises(_RUNTIME, match="X must contain only finite"):
        jax.block_until_ready(eqx.filter_jit(lambda x: RBF().gram(x))(X))


# ----------------------------------------------------------------------------- low-rank GPs


def _nystrom_gp():
    X = jnp.asarray(_X)
    return nystrom(X, uniform_dictionary(jax.random.PRNGKey(0), X, 4), RBF(0.5))


def _graph_gp():
    phi = np.eye(5, dtype=np.float32) + 0.1
    return graph_gp((phi, phi.T.copy()), np.array([0, 2, 4]))


_GPS = {
    "nystrom": (_nystrom_gp, lambda gp, y, noise: gp.gp_log_likelihood(y, noise), 6),
    "graph": (_graph_gp, lambda gp, y, noise: gp.log_likelihood(y, noise), 3),
}


@pytest.mark.parametrize("which", sorted(_GPS))
@pytest.mark.parametrize(
    "case,match",
    [("noise0", "noise must be finite and positive"), ("noise_neg", "noise must be finite and positive"),
     ("nan_y", "y must contain only finite"), ("short_y", "y must be a 1-D vector of length")],
)
def test_lowrank_likelihood_rejects_bad_input(which, case, match):
    make, ll, n = _GPS[which]
    gp = make()
    y, noise = np.linspace(-1.0, 1.0, n, dtype=np.float32), 0.1
    if case == "noise0":
        noise = 0.0
    elif case == "noise_neg":
        noise = -0.1
    elif case == "nan_y":
        y[1] = np.nan
    else:
        y = y[:-1]
    with pytest.raises(ValueError, match=match):
        ll(gp, y, noise)


@pytest.mark.parametrize("which", sorted(_GPS))
def test_lowrank_likelihood_raises_under_jit(which):
    """A zero noise reached inside jit (e.g. a sampler's step) raises instead of returning NaN."""
    make, ll, n = _GPS[which]
    gp = make()
    y = jnp.linspace(-1.0, 1.0, n)
    f = eqx.filter_jit(lambda s: ll(gp, y, s))
    assert np.isfinite(f(jnp.asarray(0.1)))
    with pytest.raises(_RUNTIME, match="noise must be finite and positive"):
        jax.block_until_ready(f(jnp.asarray(0.0)))


# ----------------------------------------------------------------------------- leverage, squeak


def test_ridge_leverage_scores_rejects_non_symmetric_K():
    K = np.array([[1.0, 0.5], [0.1, 1.0]])
    with pytest.raises(ValueError, match="K must be symmetric"):
        ridge_leverage_scores(K, 0.1)


def test_squeak_rejects_empty_X():
    with pytest.raises(ValueError, match="X must hold at least one point"):
        squeak(jax.random.PRNGKey(0), np.zeros((0, 2), np.float32), RBF(), gamma=1.0, eps=0.5)


# ----------------------------------------------------------------------------- graphs

_A = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 2.0, 0.0]])


@pytest.mark.parametrize(
    "adjacency,exc,match",
    [(-_A, ValueError, "non-negative"), (_A * (1 + 1j), TypeError, "adjacency must be real"),
     (np.triu(_A), ValueError, "symmetric")],
    ids=["negative", "complex", "non-symmetric"],
)
def test_laplacian_rejects_bad_weights(adjacency, exc, match):
    with pytest.raises(exc, match=match):
        laplacian(adjacency)


@pytest.mark.parametrize("adjacency", [-_A, np.triu(_A)], ids=["negative", "non-symmetric"])
def test_laplacian_rejects_bad_weights_under_jit(adjacency):
    with pytest.raises(_RUNTIME, match="adjacency must be a finite, non-negative, symmetric"):
        jax.block_until_ready(eqx.filter_jit(laplacian)(jnp.asarray(adjacency, jnp.float32)))


@pytest.mark.parametrize(
    "adjacency,dense",
    [(np.zeros((1, 1)), True), (np.pad(_A, ((0, 1), (0, 1))), False)],
    ids=["single-node-dense", "isolated-node-sparse"],
)
def test_grf_isolated_nodes_exact(adjacency, dense):
    """One node: features exactly f_0 (was a gather error); an isolated node's row is exact (sparse too).

    (Dense features with an isolated node: ``test_graph_random_features.test_jit_and_isolated_nodes``.)
    """
    adjacency = adjacency.astype(np.float32)
    phi, phi2 = graph_random_features(jax.random.PRNGKey(0), adjacency, n_walks=4, dense=dense,
                                      max_walk_length=None if dense else 8)
    if not dense:
        phi, phi2 = phi.todense(), phi2.todense()
    K = np.asarray(regularized_laplacian_kernel(adjacency, 1.0))
    iso = np.flatnonzero(adjacency.sum(1) == 0)
    np.testing.assert_allclose(np.asarray(phi @ phi2.T)[iso], K[iso], rtol=1e-6, atol=1e-7)


def test_grf_p_halt_follows_sigma():
    """Issue 24.5: at sigma = 2 the old default p_halt = 0.5 had infinite variance (needs
    p < 1 - s^2 = 0.36; rel. error 3.2 on a 30 x 30 grid): an explicit 0.5 now raises, and the
    default 1/(1 + sigma^2) = 0.2 gives a bounded error."""
    import networkx as nx

    a = nx.to_numpy_array(nx.grid_2d_graph(10, 10)).astype(np.float32)
    with pytest.raises(ValueError, match="p_halt = 0.5 gives the GRF estimator infinite variance"):
        graph_random_features(jax.random.PRNGKey(0), a, n_walks=4, sigma=2.0, p_halt=0.5)
    phi, phi2 = graph_random_features(jax.random.PRNGKey(0), a, n_walks=32, sigma=2.0)
    K = np.asarray(regularized_laplacian_kernel(a, 2.0))
    err = np.linalg.norm(np.asarray(phi @ phi2.T) - K) / np.linalg.norm(K)
    assert err < 0.4, err


# ----------------------------------------------------------------------------- graph GP indices


def test_graph_gp_predict_rejects_out_of_range_nodes():
    gp = _graph_gp()
    y = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"nodes_new must lie in \[0, 5\)"):
        gp.predict(y, 0.1, nodes_new=[7])
    with pytest.raises(ValueError, match=r"nodes must lie in \[0, 5\)"):
        graph_gp(np.eye(5, dtype=np.float32), np.array([0, 5]))


def test_graph_gp_traceable_in_a_numpyro_model():
    """Issue 24.6: graph_gp inside a model with traced nodes (as under NUTS) works; bad nodes raise."""
    import numpyro
    import numpyro.distributions as dist

    phi = jnp.eye(5) + 0.1

    def model(nodes, y):
        noise = numpyro.sample("noise", dist.LogNormal(-1.0, 0.5))
        numpyro.sample("y", graph_gp(phi, nodes).distribution(noise**2), obs=y)

    y = jnp.array([0.3, -0.2, 0.5])
    lp = eqx.filter_jit(lambda nodes, s: log_density(model, (nodes, y), {}, {"noise": s})[0])
    nodes = jnp.array([0, 2, 4])
    direct = log_density(model, (np.array([0, 2, 4]), y), {}, {"noise": 0.4})[0]
    np.testing.assert_allclose(lp(nodes, 0.4), direct, rtol=1e-6)
    with pytest.raises(_RUNTIME, match=r"nodes must lie in \[0, 5\)"):
        jax.block_until_ready(lp(jnp.array([0, 2, 9]), 0.4))
    with pytest.raises(_RUNTIME, match=r"nodes_new must lie in \[0, 5\)"):
        jax.block_until_ready(eqx.filter_jit(lambda k: graph_gp(phi, nodes).predict(y, 0.1, k)[0])(jnp.array([7])))
