r"""Change a trained PFN's buckets without changing its predictive.

A bar-distribution head with borders :math:`b` and logits :math:`z` gives bucket :math:`k`
the mass :math:`p_k = \mathrm{softmax}(z)_k`. If new borders :math:`b'` *refine* :math:`b`
(every inner old border is an inner new border), each new bucket :math:`j` lies inside one
old bucket :math:`k(j)` and holds the fraction :math:`f_j = F_{k(j)}(b'_{j+1}) - F_{k(j)}(b'_j)`
of its mass (:math:`F_k` the old bucket's own CDF: uniform inside, half-normal in the tails).
Then

.. math:: z'_j = z_{k(j)} + \log f_j

is an affine function of :math:`z`, so it folds exactly into the decoder's last linear layer:
every new bucket gets exactly its old mass, and the density is unchanged everywhere except
inside the two new outer buckets of a full-support head, whose half-normal shape follows the
new outer widths. Fine-tuning the refined model then starts from the old one rather than from
scratch — the way to give a trained PFN finer resolution, since the bucket width bounds how
sharp a predictive it can express.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_finite, check_open_interval, check_positive_int
from .bar_distribution import BarDistribution, FullSupportBarDistribution, _bucket_index, check_borders
from .transformer import PFN


def refine_borders(
    borders: ArrayLike,
    subdivide: int,
    *,
    tail_samples: ArrayLike | None = None,
    tail_mass: float = 1e-3,
) -> Float[Array, " K+1"]:
    """Borders that refine ``borders``: every inner bucket split into ``subdivide`` equal
    parts and, if ``tail_samples`` (draws of y from the prior) are given, the two outer
    buckets split at the samples' quantiles so that each new tail bucket holds about
    ``tail_mass`` of the prior mass. The outermost borders are the extreme samples (or the old
    outer borders if these reach further)."""
    b = check_borders("borders", borders)
    m = check_positive_int("subdivide", subdivide)
    check_open_interval("tail_mass", tail_mass, 0.0, 0.5)
    inner = b[1:-1]
    steps = np.linspace(0.0, 1.0, m + 1)[:-1]
    mid = (inner[:-1, None] + steps[None, :] * np.diff(inner)[:, None]).ravel()
    left, right = np.array([b[0]]), np.array([b[-1]])
    if tail_samples is not None:
        s = np.asarray(tail_samples, np.float64).ravel()
        check_finite("tail_samples", s)
        lo, hi = s[s < inner[0]], s[s > inner[-1]]
        n_lo, n_hi = int(lo.size / s.size / tail_mass), int(hi.size / s.size / tail_mass)
        if n_lo >= 1:
            left = np.quantile(lo, np.arange(n_lo) / n_lo)
            left[0] = min(left[0], b[0])
        if n_hi >= 1:
            right = np.quantile(hi, np.arange(1, n_hi + 1) / n_hi)
            right[-1] = max(right[-1], b[-1])
    new = np.unique(np.concatenate([left, mid, inner[-1:], right]))
    return jnp.asarray(new, jnp.result_type(float))


def rebucket(pfn: PFN, borders: ArrayLike) -> PFN:
    """``pfn`` with bucket borders ``borders`` that refine ``pfn.borders``; the predictive
    mass of every new bucket equals the old one (see the module docstring)."""
    old = np.asarray(pfn.borders, np.float64)
    new = check_borders("borders", borders)  # a copy: inner borders are snapped below
    inner_old, inner_new = old[1:-1], new[1:-1]
    pos = np.minimum(np.searchsorted(inner_new, inner_old - 1e-6 * np.ptp(old)), inner_new.size - 1)
    hit = np.abs(inner_new[pos] - inner_old) <= 1e-6 * np.ptp(old)
    if not np.all(hit):
        raise ValueError(
            f"borders must refine the model's borders: {int(np.sum(~hit))} of its inner borders "
            f"(e.g. {inner_old[~hit][0]:.6g}) are not inner borders of the new ones"
        )
    new[1 + pos] = inner_old  # snap to the exact old values
    if not pfn.full_support and not (np.isclose(new[0], old[0]) and np.isclose(new[-1], old[-1])):
        raise ValueError("borders of a bounded head must keep its outer borders (its support)")

    # new bucket j = [lo_j, hi_j) lies in old bucket k_j; it gets the fraction f_j of its mass
    # (a centre beyond the old outer borders falls in an old outer bucket, which for a
    # full-support head is its tail)
    lo, hi = new[:-1].copy(), new[1:].copy()
    k_j = _bucket_index(jnp.asarray(old), jnp.asarray(0.5 * (lo + hi)))
    cls = BarDistribution
    if pfn.full_support:
        lo[0], hi[-1] = -np.inf, np.inf
        cls = FullSupportBarDistribution
    bar = cls(jnp.asarray(old), jnp.zeros(old.shape[0] - 1))
    frac = np.asarray(bar._bucket_cdf(jnp.asarray(hi), k_j) - bar._bucket_cdf(jnp.asarray(lo), k_j))
    if not np.all(frac > 0):
        raise ValueError("a new bucket has no mass under the model's bucket shapes (borders too far out)")

    out = pfn.decoder_out
    dtype = out.weight.dtype
    weight = out.weight[k_j]
    bias = out.bias[k_j] + jnp.asarray(np.log(frac), dtype)
    hp = dict(pfn.hyperparameters, n_buckets=new.shape[0] - 1)
    skeleton = PFN(jax.random.PRNGKey(0), **hp, borders=jnp.asarray(new, pfn.borders.dtype))
    leaves = lambda m: (  # noqa: E731
        m.x_encoder, m.y_encoder, m.layers, m.decoder_norm, m.decoder_hidden,
        m.decoder_out.weight, m.decoder_out.bias,
    )
    values = (
        pfn.x_encoder, pfn.y_encoder, pfn.layers, pfn.decoder_norm, pfn.decoder_hidden,
        weight.astype(dtype), bias.astype(dtype),
    )
    return eqx.tree_at(leaves, skeleton, values)
