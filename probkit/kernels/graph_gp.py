r"""Gaussian processes on graph nodes with a graph-random-feature kernel (NumPyro-ready).

With GRF features :math:`\Phi, \Phi'` from independent walk sets (:func:`graph_random_features`),
the covariance factor is :math:`G = [\Phi, \Phi']/\sqrt2`, so

.. math:: \hat K = G G^\top = \tfrac12(\Phi\Phi^\top + \Phi'\Phi'^\top) \succeq 0.

Walks from different nodes are independent, so :math:`\hat K` is unbiased off the diagonal;
its diagonal exceeds :math:`K_{ii}` by the feature variance :math:`\sum_l \operatorname{Var}
\phi_{il} = O(1/m)`, a node-wise nugget that adds to the observation noise. (The unbiased
:math:`\Phi\Phi'^\top` is not symmetric positive semi-definite, so it cannot be a covariance.)
A single :math:`\Phi` gives :math:`G = \Phi`.

Regression on observed nodes :math:`y_{o} \sim \mathcal N(\mu, G_o G_o^\top + \sigma^2 I)` uses
Woodbury (:mod:`probkit.kernels.lowrank_gp`) in :math:`O(n_o D^2)` for :math:`D` feature
columns; predictions at any nodes use their rows of :math:`G`.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array, Float, Int

from .._validate import check_value
from .kmeans import _feature_pair
from .lowrank_gp import lowrank_distribution, lowrank_log_likelihood, lowrank_predict

__all__ = ["GraphGP", "graph_gp"]


class GraphGP(eqx.Module):
    r"""GP over graph nodes with covariance :math:`GG^\top` observed at ``nodes`` (module doc)."""

    factor: Float[Array, "n_nodes D"]
    nodes: Int[Array, " n_obs"]

    def log_likelihood(self, y: Float[Array, " n_obs"], noise, mean=0.0) -> Float[Array, ""]:
        r"""Log marginal likelihood of :math:`y \sim \mathcal N(\mu, G_oG_o^\top + \sigma^2 I)`, :math:`\sigma^2` = ``noise``."""
        return lowrank_log_likelihood(self.factor[self.nodes], y, noise, mean)

    def predict(
        self, y: Float[Array, " n_obs"], noise, nodes_new: Int[Array, " k"] | None = None, mean=0.0
    ) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
        """Posterior mean and variance of the latent ``f`` at ``nodes_new`` (default: all nodes)."""
        F_new = self.factor if nodes_new is None else self.factor[_check_nodes("nodes_new", nodes_new, self.factor.shape[0])]
        return lowrank_predict(self.factor[self.nodes], y, noise, F_new, mean)

    def distribution(self, noise, loc=0.0) -> dist.LowRankMultivariateNormal:
        """NumPyro distribution of ``y`` at the observed nodes, for ``numpyro.sample(..., obs=y)``."""
        return lowrank_distribution(self.factor[self.nodes], noise, loc)


def _bad_index(n: int):
    def is_bad(xp, idx):
        return xp.any((idx < 0) | (idx >= n))

    return is_bad


def _check_nodes(name: str, nodes: Any, n: int) -> Int[Array, " k"]:
    """A 1-D integer node index array within ``[0, n)`` (``eqx.error_if`` when traced)."""
    nodes = jnp.asarray(nodes)
    if nodes.ndim != 1 or not jnp.issubdtype(nodes.dtype, jnp.integer):
        raise ValueError(
            f"{name} must be a 1-D integer index array, got shape {nodes.shape}, dtype {nodes.dtype}"
        )
    return check_value(name, nodes, _bad_index(n), f"lie in [0, {n}) (node indices of the graph)")


def graph_gp(features: Any, nodes: Any = None) -> GraphGP:
    """A :class:`GraphGP` from GRF ``features`` (``Phi`` or the pair ``(Phi, Phi2)``).

    Args:
        features: ``(N, N)`` arrays or BCOO matrices from :func:`graph_random_features`.
        nodes: indices of the observed nodes (default: all ``N``).

    Traceable: ``features`` and ``nodes`` may be traced (e.g. inside a NumPyro model under
    NUTS); out-of-range ``nodes`` (and ``nodes_new`` in :meth:`GraphGP.predict`) raise a
    ``ValueError``, or an ``EqxRuntimeError`` under ``jit``, instead of being clamped.
    """
    phi, phi2 = _feature_pair(features)
    factor = phi if phi2 is phi else jnp.concatenate([phi, phi2], axis=1) / np.sqrt(2.0)
    n = factor.shape[0]
    nodes = jnp.arange(n) if nodes is None else _check_nodes("nodes", nodes, n)
    return GraphGP(factor=factor, nodes=nodes)
