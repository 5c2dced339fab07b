"""SQUEAK against exact references on a clustered set with tiny clusters (float64).

Data: ``clustered`` (4 big clusters + 6 clusters of 3 points, d = 3), RBF(lengthscale 2),
gamma = 1, eps = 0.25. Exact references: ridge leverage scores and the regularised error
from the eigendecomposition of the full gram matrix. Twenty seeds run as one ``vmap``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.kernels import RBF, nystrom, ridge_leverage_scores, squeak, uniform_dictionary
from probkit.kernels._datasets import clustered
from probkit.kernels.squeak import (
    _chunk,
    _chunk_dictionary,
    _concat,
    _estimate_rls,
    _estimate_rls_compact,
    _merge_shrink,
    _squeak_scan,
)

N, GAMMA, EPS, SEEDS, CAP, CHUNK = 400, 1.0, 0.25, 20, 256, 100


def _errors(K, grams):
    """Exact ||(K+gI)^-1/2 (K - K~) (K+gI)^-1/2||_2 for a batch of approximations K~."""
    lam, V = np.linalg.eigh(K)
    R = (V / np.sqrt(np.maximum(lam, 0) + GAMMA)) @ V.T
    E = R @ (K[None] - grams) @ R
    return np.abs(np.linalg.eigvalsh(E)).max(-1)


@pytest.fixture(scope="module")
def setup():
    with float64():
        X, _ = clustered(jax.random.PRNGKey(1), N, 3, dtype=jnp.float64)
        k = RBF(lengthscale=2.0)
        K = np.asarray(k.gram(X))
        yield X, k, K


def _batch(X, k, keys, qbar):
    """SQUEAK dictionaries and uniform ones of the same sizes; their Nystrom grams."""
    ds = jax.vmap(
        lambda kk: squeak(kk, X, k, gamma=GAMMA, eps=EPS, qbar=qbar, max_dict_size=CAP, chunk_size=CHUNK)
    )(keys)
    us = jax.vmap(lambda kk, m: uniform_dictionary(kk, X, m, capacity=CAP))(
        jax.random.split(jax.random.PRNGKey(100), len(keys)), ds.size
    )
    gram = jax.jit(jax.vmap(lambda d: nystrom(X, d, k).gram()))
    return np.asarray(ds.size), np.asarray(gram(ds)), np.asarray(gram(us))


@pytest.mark.slow
def test_accuracy_size_and_beats_uniform(setup):
    """eps = 0.25, default qbar: error <= 2 eps in >= 19/20 seeds, dictionary << n, and below
    uniform Nystrom at the same size; qbar = 5: still below uniform at the same size."""
    X, k, K = setup
    with float64():
        d_eff = float(np.sum(ridge_leverage_scores(K, GAMMA)))
        assert d_eff < 0.05 * N  # d_eff ~ 15 << n = 400
        keys = jax.random.split(jax.random.PRNGKey(0), SEEDS)
        for qbar in (None, 5):
            sizes, g_sq, g_un = _batch(X, k, keys, qbar)
            err, uerr = _errors(K, g_sq), _errors(K, g_un)
            if qbar is None:
                assert np.sum(err <= 2 * EPS) >= SEEDS - 1, err
                assert sizes.max() < 0.5 * N, sizes
            else:
                assert sizes.max() < 0.25 * N, sizes
            # SQUEAK keeps the tiny clusters, uniform sampling misses some of them
            assert np.mean(err) < 0.5 * np.mean(uerr), (qbar, err, uerr)
            assert np.sum(err < uerr) >= SEEDS - 1, (qbar, err, uerr)


def test_rls_estimate_within_bounds_of_exact(setup):
    r"""The dictionary RLS estimate against exact ridge leverage scores.

    Replays SQUEAK's scan to its last union U (previous dictionary + last chunk, exact), checks
    the final merge equals :func:`squeak`'s output, and computes U's exact accuracy
    :math:`\eta = \lVert \sqrt r V^\top (W - I) V \sqrt r \rVert_2` (:math:`K = V\Lambda V^\top`,
    :math:`r = \lambda/(\lambda+\gamma)`, :math:`W` the union's weights). Then for every point
    of U: :math:`(1-\varepsilon)\tau_i/(1+\eta) \le \tilde\tau_i \le (1-\varepsilon)\tau_i/(1-\eta)`
    (rtol 1e-8), which is the paper's :math:`\tau_i(1-\varepsilon)/(1+\varepsilon) \le
    \tilde\tau_i \le \tau_i` whenever :math:`\eta \le \varepsilon`.
    """
    X, k, K = setup
    with float64():
        tau = np.asarray(ridge_leverage_scores(K, GAMMA))
        lam, V = np.linalg.eigh(K)
        sr = np.sqrt(np.maximum(lam, 0) / (np.maximum(lam, 0) + GAMMA))
        key, qbar = jax.random.PRNGKey(5), 24
        chunks, idx, mask = _chunk(X, CHUNK)
        keys = jax.random.split(key, chunks.shape[0])
        kw = dict(gamma=GAMMA, const=1.0 - EPS, qbar=qbar, capacity=CAP)
        prev, _ = _squeak_scan(keys[:-1], chunks[:-1], idx[:-1], mask[:-1], k, **kw)
        union = _concat(prev, _chunk_dictionary(chunks[-1], idx[-1], mask[-1], qbar))
        final, _ = _merge_shrink(keys[-1], k, union, CAP, GAMMA, 1.0 - EPS)
        ref = squeak(key, X, k, gamma=GAMMA, eps=EPS, qbar=qbar, max_dict_size=CAP, chunk_size=CHUNK, compact=False)
        np.testing.assert_array_equal(final.indices, ref.indices)
        np.testing.assert_allclose(final.rls, ref.rls, rtol=1e-10)
        # regression (issue 24.4): by default the empty slots are dropped (a Nystrom GP costs
        # O(n M^2) in the capacity M, used or not); the same compiled pass, so no extra cost
        d = squeak(key, X, k, gamma=GAMMA, eps=EPS, qbar=qbar, max_dict_size=CAP, chunk_size=CHUNK)
        used = np.asarray(ref.mask)
        assert ref.capacity == CAP and 0 < used.sum() < CAP
        assert d.capacity == int(d.size) == used.sum() and bool(np.all(np.asarray(d.mask)))
        np.testing.assert_array_equal(d.indices, np.asarray(ref.indices)[used])
        np.testing.assert_allclose(d.weights, np.asarray(ref.weights)[used])

        m = np.asarray(union.mask)
        ui, w = np.asarray(union.indices)[m], np.asarray(union.weights)[m]
        W = np.zeros(N)
        W[ui] = w
        eta = np.abs(np.linalg.eigvalsh(sr[:, None] * (V.T * (W - 1)) @ V * sr[None, :])).max()
        assert 0 < eta < 1
        ratio = np.asarray(final.rls)[np.asarray(final.mask)] / tau[np.asarray(final.indices)[np.asarray(final.mask)]]
        # the survivors' stored rls are the union's estimates
        lo, hi = (1 - EPS) / (1 + eta), (1 - EPS) / (1 - eta)
        assert ratio.min() >= lo * (1 - 1e-8) and ratio.max() <= hi * (1 + 1e-8), (eta, ratio.min(), ratio.max())
        # the union's estimates of all its points, via the estimator itself
        all_est = np.asarray(
            _estimate_rls(k, union.points, union.probs, union.counts, union.mask, qbar, GAMMA, 1 - EPS)
        )[m]
        r_all = all_est / tau[ui]
        assert r_all.min() >= lo * (1 - 1e-8) and r_all.max() <= hi * (1 + 1e-8), (eta, r_all.min(), r_all.max())


def test_bad_input():
    X = jnp.ones((10, 2))
    k = RBF()
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="gamma"):
        squeak(key, X, k, gamma=0.0, eps=0.2)
    with pytest.raises(ValueError, match="eps"):
        squeak(key, X, k, gamma=1.0, eps=1.0)
    with pytest.raises(ValueError, match="X must contain only finite"):
        squeak(key, X.at[0, 0].set(jnp.nan), k, gamma=1.0, eps=0.2)
    with pytest.raises(ValueError, match="X has 2 columns"):
        squeak(key, X, RBF(lengthscale=jnp.ones(3)), gamma=1.0, eps=0.2)


def test_overflow_asks_to_raise_capacity():
    X = jax.random.normal(jax.random.PRNGKey(0), (40, 2))
    with pytest.raises(ValueError, match="raise max_dict_size"):
        squeak(jax.random.PRNGKey(1), X, RBF(lengthscale=0.1), gamma=1e-3, eps=0.2, max_dict_size=4, chunk_size=8)


@pytest.mark.parametrize("size", [0, 5, 37, 64])
def test_bucketed_estimate_equals_all_slots(setup, size):
    """The size-bucketed eigendecomposition (compact dictionary + chunk) gives the all-slots
    estimate, for an empty, partly filled (between buckets) and full dictionary; under vmap
    (where every slot is used) too."""
    X, k, _ = setup
    cap, chunk = 64, 16
    with float64():
        mask = jnp.arange(cap) < size
        dic = _chunk_dictionary(X[:cap], jnp.arange(cap), mask, 7)
        dic = eqx.tree_at(lambda d: d.probs, dic, jnp.linspace(0.2, 1.0, cap))
        union = _concat(dic, _chunk_dictionary(X[cap:cap + chunk], jnp.arange(cap, cap + chunk), jnp.ones(chunk, bool), 7))
        full = _estimate_rls(k, union.points, union.probs, union.counts, union.mask, union.qbar, GAMMA, 1 - EPS)
        fast = jax.jit(lambda u: _estimate_rls_compact(k, u, cap, GAMMA, 1 - EPS))(union)
        np.testing.assert_allclose(fast, full, rtol=1e-10, atol=1e-12)
        both = jax.vmap(lambda u: _estimate_rls_compact(k, u, cap, GAMMA, 1 - EPS))(jax.tree.map(lambda a: jnp.stack([a, a]), union))
        np.testing.assert_allclose(both, jnp.stack([full, full]), rtol=1e-10, atol=1e-12)

