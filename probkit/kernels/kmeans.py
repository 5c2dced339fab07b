r"""Kernel k-means on a low-rank (possibly asymmetric) kernel :math:`K \approx \tfrac12(\Phi\Phi'^\top + \Phi'\Phi^\top)`.

The squared feature-space distance of point :math:`i` to the centre of cluster :math:`c` is

.. math:: \lVert \phi_i - \mu_c\rVert^2 = K_{ii} - \frac{2}{n_c}\sum_{j\in c} K_{ij}
          + \frac{1}{n_c^2}\sum_{j,l\in c} K_{jl},

evaluated through cluster feature sums :math:`S_c = \sum_{j\in c}\Phi_j`, :math:`S'_c` in
:math:`O(N D k)` per Lloyd step, never forming :math:`K`. Passing ``(K, I)`` runs exact kernel
k-means on a Gram matrix ``K``. Initialisation is k-means++ in feature space; the best of
``n_init`` restarts (lowest within-cluster sum) is returned.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._validate import check_finite, check_positive_int

__all__ = ["KMeansResult", "kernel_kmeans"]


class KMeansResult(eqx.Module):
    """Cluster labels ``(N,)``, objective (within-cluster sum of squared distances), iterations."""

    labels: Int[Array, " n"]
    objective: Float[Array, ""]
    n_iter: Int[Array, ""]


def _as_features(name: str, x: Any) -> Array:
    if isinstance(x, jsparse.BCOO):
        x = x.todense()
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_points, n_features) array, got shape {x.shape}")
    check_finite(name, x)
    return x


def _feature_pair(features: Any) -> tuple[Array, Array]:
    """``(Phi, Phi2)`` from an array (then ``Phi2 is Phi``) or a pair; checks shapes."""
    if isinstance(features, (tuple, list)):
        if len(features) != 2:
            raise ValueError(f"features must be an array or a pair (Phi, Phi2), got {len(features)} items")
        phi, phi2 = _as_features("features[0]", features[0]), _as_features("features[1]", features[1])
        if phi.shape != phi2.shape:
            raise ValueError(f"features pair must have equal shapes, got {phi.shape} and {phi2.shape}")
        return phi, phi2
    phi = _as_features("features", features)
    return phi, phi


def _distances(phi, phi2, diag, labels, k):
    """(N, k) squared kernel distances to the cluster centres (inf for empty clusters)."""
    z = jax.nn.one_hot(labels, k, dtype=phi.dtype)
    counts = z.sum(0)
    s, s2 = z.T @ phi, z.T @ phi2
    cross = 0.5 * (phi @ s2.T + phi2 @ s.T)
    within = jnp.sum(s * s2, axis=1)
    safe = jnp.maximum(counts, 1.0)
    dist = diag[:, None] - 2 * cross / safe + within / safe**2
    return jnp.where(counts > 0, dist, jnp.inf)


def _kmeans_pp(key, phi, phi2, diag, k):
    """k-means++ seeding with kernel distances d(i, j)^2 = K_ii - 2 K_ij + K_jj."""
    n = phi.shape[0]

    def gram_col(j):
        return 0.5 * (phi @ phi2[j] + phi2 @ phi[j])

    k0, key = jax.random.split(key)
    first = jax.random.randint(k0, (), 0, n)
    best = jnp.maximum(diag - 2 * gram_col(first) + diag[first], 0.0)
    centres = jnp.zeros((k,), jnp.int32).at[0].set(first)

    def body(c, carry):
        best, centres = carry
        logits = jnp.log(jnp.maximum(best, 0.0))
        j = jax.random.categorical(jax.random.fold_in(key, c), logits)
        j = jnp.where(jnp.all(best <= 0), jax.random.randint(jax.random.fold_in(key, -c), (), 0, n), j)
        d = jnp.maximum(diag - 2 * gram_col(j) + diag[j], 0.0)
        return jnp.minimum(best, d), centres.at[c].set(j)

    _, centres = lax.fori_loop(1, k, body, (best, centres))
    d_all = jax.vmap(lambda j: diag - 2 * gram_col(j) + diag[j])(centres)  # (k, N)
    return jnp.argmin(d_all, axis=0).astype(jnp.int32)


def _lloyd(key, phi, phi2, diag, k, max_iter):
    labels = _kmeans_pp(key, phi, phi2, diag, k)

    def cond(state):
        it, _, changed = state
        return changed & (it < max_iter)

    def body(state):
        it, labels, _ = state
        new = jnp.argmin(_distances(phi, phi2, diag, labels, k), axis=1).astype(jnp.int32)
        return it + 1, new, jnp.any(new != labels)

    n_iter, labels, _ = lax.while_loop(cond, body, (jnp.asarray(0), labels, jnp.asarray(True)))
    dist = _distances(phi, phi2, diag, labels, k)
    objective = jnp.sum(jnp.take_along_axis(dist, labels[:, None], axis=1))
    return KMeansResult(labels=labels, objective=objective, n_iter=n_iter)


def kernel_kmeans(
    key: PRNGKeyArray,
    features: Any,
    k: int,
    *,
    n_init: int = 10,
    max_iter: int = 100,
) -> KMeansResult:
    r"""Kernel k-means with :math:`K = \tfrac12(\Phi\Phi'^\top + \Phi'\Phi^\top)`.

    Args:
        key: PRNG key.
        features: ``Phi`` (then :math:`K = \Phi\Phi^\top`) or a pair ``(Phi, Phi2)`` of
            ``(N, D)`` arrays or BCOO matrices, e.g. from :func:`graph_random_features`.
        k: number of clusters.
        n_init: k-means++ restarts (vmapped); the lowest objective wins.
        max_iter: cap on Lloyd iterations per restart.
    """
    k = check_positive_int("k", k)
    n_init = check_positive_int("n_init", n_init)
    max_iter = check_positive_int("max_iter", max_iter)
    phi, phi2 = _feature_pair(features)
    if k > phi.shape[0]:
        raise ValueError(f"k must be at most the number of points {phi.shape[0]}, got {k}")
    diag = jnp.sum(phi * phi2, axis=1)
    runs = jax.vmap(lambda kk: _lloyd(kk, phi, phi2, diag, k, max_iter))(jax.random.split(key, n_init))
    best = jnp.argmin(runs.objective)
    return jax.tree_util.tree_map(lambda x: x[best], runs)
