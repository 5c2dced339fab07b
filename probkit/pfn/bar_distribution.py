r"""Bar (Riemann) distributions: the PFN output head.

A bar distribution over the real line is fixed by ``K + 1`` increasing borders
:math:`b_0 < \dots < b_K` and ``K`` logits :math:`\ell_k`. Bucket ``k`` has mass
:math:`p_k = \mathrm{softmax}(\ell)_k`, spread uniformly over :math:`[b_k, b_{k+1}]`:

.. math:: \log p(y) = \log p_k - \log w_k,\qquad w_k = b_{k+1} - b_k,\ y \in [b_k, b_{k+1}).

The full-support variant replaces the two outer buckets by half-normal tails,
:math:`p_0\,\mathrm{HN}(b_1 - y; s_0)` for :math:`y < b_1` and
:math:`p_{K-1}\,\mathrm{HN}(y - b_{K-1}; s_{K-1})` for :math:`y > b_{K-1}`, with scales
:math:`s = w / \Phi^{-1}(3/4)` so that half of each tail's mass lies within its bucket width.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf, erfinv
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._validate import check_finite, check_ndim, check_positive_int, check_real_dtype, check_value

_PHI_INV_3_4 = 0.6744897501960817  # Φ^{-1}(3/4): P(|Z| < 0.6745) = 1/2
_SQRT2 = math.sqrt(2.0)


def _bucket_index(borders: Array, y: Array) -> Array:
    """Index k of the bucket [b_k, b_{k+1}) holding y, clipped to 0..K-1."""
    k = jnp.searchsorted(borders, y, side="right") - 1
    return jnp.clip(k, 0, borders.shape[0] - 2)


def _gather(values: Array, k: Array) -> Array:
    """values[..., k] with k broadcast against the batch shape of values."""
    shape = jnp.broadcast_shapes(k.shape, values.shape[:-1])
    values = jnp.broadcast_to(values, (*shape, values.shape[-1]))
    return jnp.take_along_axis(values, jnp.broadcast_to(k, shape)[..., None], axis=-1)[..., 0]


def check_borders(name: str, borders: ArrayLike) -> np.ndarray:
    """``borders`` as a float64 NumPy vector after checking that it is 1-D, finite, strictly
    increasing and has at least 3 entries (2 buckets)."""
    b = np.array(borders, np.float64)
    check_ndim(name, b, 1)
    check_finite(name, b)
    if b.shape[0] < 3 or not np.all(np.diff(b) > 0):
        raise ValueError(f"{name} must be strictly increasing with at least 3 entries, got {b.shape[0]}")
    return b


def borders_from_samples(y: ArrayLike, n_buckets: int) -> Float[Array, " n_buckets+1"]:
    """Borders at the ``0, 1/K, ..., 1`` empirical quantiles of ``y`` (equal mass per bucket)."""
    n_buckets = check_positive_int("n_buckets", n_buckets, minimum=2)
    y = jnp.ravel(jnp.asarray(y))
    check_finite("y", y)
    borders = jnp.quantile(y, jnp.linspace(0.0, 1.0, n_buckets + 1, dtype=y.dtype))
    if not bool(jnp.all(jnp.diff(borders) > 0)):
        raise ValueError("y must have enough distinct values to give strictly increasing borders")
    return borders


class AbstractBarDistribution(eqx.Module):
    """A piecewise distribution over buckets; subclasses define the outer buckets.

    ``borders`` has shape ``(K + 1,)``; ``logits`` has shape ``(*batch, K)``. Every
    method broadcasts its argument against ``batch``.
    """

    borders: Float[Array, " K+1"]
    logits: Float[Array, "*batch K"]

    def __init__(self, borders: ArrayLike, logits: ArrayLike):
        """Checks: ``borders`` 1-D, finite and strictly increasing; ``logits`` of shape
        ``(*batch, K)`` without NaN or ``+inf`` (``-inf`` is a bucket of mass 0). On concrete
        values a ``ValueError``; under jit :func:`equinox.error_if`."""
        borders, logits = jnp.asarray(borders), jnp.asarray(logits)
        for name, a in (("borders", borders), ("logits", logits)):
            check_real_dtype(name, a)
        check_ndim("borders", borders, 1)
        if borders.shape[0] < 2:
            raise ValueError(f"borders must have at least 2 entries (1 bucket), got shape {borders.shape}")
        k = borders.shape[0] - 1
        if logits.ndim < 1 or logits.shape[-1] != k:
            raise ValueError(f"logits must have shape (*batch, {k}) (one per bucket of borders), got {logits.shape}")
        if not jnp.issubdtype(logits.dtype, jnp.floating):
            logits = logits.astype(jnp.result_type(float))
        self.borders = check_value(
            "borders", borders, lambda xp, b: ~(xp.all(xp.isfinite(b)) & xp.all(b[1:] > b[:-1])),
            "be finite and strictly increasing",
        )
        self.logits = check_value(
            "logits", logits, lambda xp, v: xp.any(xp.isnan(v) | (v == xp.inf)), "not contain NaN or +inf"
        )

    # ---- per-bucket pieces a subclass must define -------------------------------
    @abc.abstractmethod
    def _bucket_log_density(self, y: Array, k: Array) -> Array:
        """log of the normalised density of bucket k at y (the bucket's own shape)."""

    @abc.abstractmethod
    def _bucket_cdf(self, y: Array, k: Array) -> Array:
        """Fraction of bucket k's mass below y."""

    @abc.abstractmethod
    def _bucket_quantile(self, u: Array, k: Array) -> Array:
        """Inverse of ``_bucket_cdf`` in bucket k, u in [0, 1]."""

    @abc.abstractmethod
    def _bucket_means(self) -> Float[Array, " K"]:
        """Mean of each bucket's shape."""

    @abc.abstractmethod
    def _bucket_second_moments(self) -> Float[Array, " K"]:
        """E[y^2] under each bucket's shape."""

    @abc.abstractmethod
    def _bucket_entropies(self) -> Float[Array, " K"]:
        """Differential entropy of each bucket's shape."""

    # ---- construction ------------------------------------------------------------
    @classmethod
    def from_prior(
        cls,
        key: PRNGKeyArray,
        prior,
        n_buckets: int,
        *,
        n_datasets: int = 1000,
        n_points: int = 100,
    ):
        """Borders from quantiles of ``y`` drawn from ``prior``; uniform logits.

        Draws ``n_datasets`` datasets of ``n_points`` points with ``prior.sample``.
        """
        n_datasets = check_positive_int("n_datasets", n_datasets)
        n_points = check_positive_int("n_points", n_points)
        _, y = prior.sample(key, n_datasets, n_points)
        borders = borders_from_samples(y, n_buckets)
        return cls(borders, jnp.zeros(borders.shape[0] - 1, borders.dtype))

    # ---- derived quantities ---------------------------------------------------------
    @property
    def n_buckets(self) -> int:
        return self.borders.shape[0] - 1

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.logits.shape[:-1]

    @property
    def widths(self) -> Float[Array, " K"]:
        return jnp.diff(self.borders)

    @property
    def probs(self) -> Float[Array, "*batch K"]:
        return jax.nn.softmax(self.logits, axis=-1)

    def _y(self, y: ArrayLike) -> Array:
        return jnp.asarray(y, dtype=self.logits.dtype)

    @eqx.filter_jit
    def log_prob(self, y: ArrayLike) -> Float[Array, "*batch"]:
        """log density at ``y`` (``-inf`` outside the support, never NaN)."""
        y = self._y(y)
        k = _bucket_index(self.borders, y)
        log_p = _gather(jax.nn.log_softmax(self.logits, axis=-1), k)
        return log_p + self._bucket_log_density(y, k)

    @eqx.filter_jit
    def cdf(self, y: ArrayLike) -> Float[Array, "*batch"]:
        """P(Y <= y)."""
        y = self._y(y)
        k = _bucket_index(self.borders, y)
        probs = self.probs
        below = jnp.cumsum(probs, axis=-1) - probs  # mass of buckets left of k
        return jnp.clip(_gather(below, k) + _gather(probs, k) * self._bucket_cdf(y, k), 0.0, 1.0)

    def quantile(self, q: ArrayLike) -> Float[Array, "*batch"]:
        """Inverse cdf at level ``q`` in [0, 1] (outside, or NaN: ``ValueError``; under jit
        :func:`equinox.error_if`)."""
        q = check_value("q", self._y(q), lambda xp, v: ~xp.all((v >= 0) & (v <= 1)), "lie in [0, 1]")
        return self._quantile(q)

    @eqx.filter_jit
    def _quantile(self, q: Array) -> Float[Array, "*batch"]:
        probs = self.probs
        upper = jnp.cumsum(probs, axis=-1)
        q_b = jnp.broadcast_to(q, jnp.broadcast_shapes(q.shape, self.batch_shape))
        # first bucket whose cumulative mass reaches q
        k = jnp.sum(upper < q_b[..., None], axis=-1)
        k = jnp.clip(k, 0, self.n_buckets - 1)
        below = _gather(upper - probs, k)
        p_k = _gather(probs, k)
        u = jnp.clip((q_b - below) / jnp.where(p_k > 0, p_k, 1.0), 0.0, 1.0)
        return self._bucket_quantile(u, k)

    def median(self) -> Float[Array, "*batch"]:
        return self.quantile(0.5)

    @eqx.filter_jit
    def mean(self) -> Float[Array, "*batch"]:
        return jnp.sum(self.probs * self._bucket_means(), axis=-1)

    @eqx.filter_jit
    def variance(self) -> Float[Array, "*batch"]:
        m = self.mean()
        return jnp.maximum(jnp.sum(self.probs * self._bucket_second_moments(), axis=-1) - m**2, 0.0)

    @eqx.filter_jit
    def entropy(self) -> Float[Array, "*batch"]:
        r"""Differential entropy :math:`-\sum_k p_k \log p_k + \sum_k p_k H_k`."""
        probs = self.probs
        log_p = jax.nn.log_softmax(self.logits, axis=-1)
        return -jnp.sum(probs * log_p, axis=-1) + jnp.sum(probs * self._bucket_entropies(), axis=-1)

    @eqx.filter_jit
    def sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()) -> Array:
        """Draws of shape ``sample_shape + batch_shape`` by inverse-cdf sampling."""
        u = jax.random.uniform(
            key, tuple(sample_shape) + self.batch_shape, dtype=self.logits.dtype
        )
        return self._quantile(u)

    def __getitem__(self, index):
        """Index the batch dimensions, e.g. ``pred[0]`` for the first dataset."""
        return type(self)(self.borders, self.logits[index])


class BarDistribution(AbstractBarDistribution):
    """Bar distribution on ``[b_0, b_K]``: every bucket is uniform (density 0 outside)."""

    def __check_init__(self):
        check_ndim("borders", self.borders, 1)

    def _bucket_log_density(self, y, k):
        inside = (y >= self.borders[0]) & (y <= self.borders[-1])
        return jnp.where(inside, -jnp.log(self.widths[k]), -jnp.inf)

    def _bucket_cdf(self, y, k):
        return jnp.clip((y - self.borders[k]) / self.widths[k], 0.0, 1.0)

    def _bucket_quantile(self, u, k):
        return self.borders[k] + u * self.widths[k]

    def _bucket_means(self):
        return 0.5 * (self.borders[:-1] + self.borders[1:])

    def _bucket_second_moments(self):
        a, b = self.borders[:-1], self.borders[1:]
        return (a * a + a * b + b * b) / 3.0

    def _bucket_entropies(self):
        return jnp.log(self.widths)


class FullSupportBarDistribution(AbstractBarDistribution):
    """Bar distribution on the whole real line: half-normal outer buckets.

    Bucket 0 covers ``(-inf, b_1)`` with density ``HN(b_1 - y; s_0)``; bucket ``K-1``
    covers ``[b_{K-1}, inf)`` with density ``HN(y - b_{K-1}; s_{K-1})``;
    ``s = w / Φ^{-1}(3/4)``. Needs ``K >= 2``.
    """

    def __check_init__(self):
        check_ndim("borders", self.borders, 1)
        if self.borders.shape[0] < 3:
            raise ValueError("borders must have at least 3 entries (2 buckets) for full support")

    @property
    def _scales(self):
        w = self.widths
        return w[0] / _PHI_INV_3_4, w[-1] / _PHI_INV_3_4

    def _tail_offset(self, y, k):
        """(is_left, is_right, t >= 0 distance into the tail)."""
        last = self.n_buckets - 1
        is_left, is_right = k == 0, k == last
        t = jnp.where(is_left, self.borders[1] - y, y - self.borders[last])
        return is_left, is_right, jnp.maximum(t, 0.0)

    def _bucket_log_density(self, y, k):
        s_left, s_right = self._scales
        is_left, is_right, t = self._tail_offset(y, k)
        s = jnp.where(is_left, s_left, s_right)
        log_hn = 0.5 * math.log(2.0 / math.pi) - jnp.log(s) - 0.5 * (t / s) ** 2
        return jnp.where(is_left | is_right, log_hn, -jnp.log(self.widths[k]))

    def _bucket_cdf(self, y, k):
        s_left, s_right = self._scales
        is_left, is_right, t = self._tail_offset(y, k)
        uniform = jnp.clip((y - self.borders[k]) / self.widths[k], 0.0, 1.0)
        left = 1.0 - erf(t / (s_left * _SQRT2))
        right = erf(t / (s_right * _SQRT2))
        return jnp.where(is_left, left, jnp.where(is_right, right, uniform))

    def _bucket_quantile(self, u, k):
        s_left, s_right = self._scales
        last = self.n_buckets - 1
        # keep erfinv's argument inside (-1, 1): u = 0 / 1 map to the extreme finite values
        tiny = jnp.finfo(u.dtype).eps
        left = self.borders[1] - s_left * _SQRT2 * erfinv(jnp.clip(1.0 - u, 0.0, 1.0 - tiny))
        right = self.borders[last] + s_right * _SQRT2 * erfinv(jnp.clip(u, 0.0, 1.0 - tiny))
        uniform = self.borders[k] + u * self.widths[k]
        return jnp.where(k == 0, left, jnp.where(k == last, right, uniform))

    def _bucket_means(self):
        s_left, s_right = self._scales
        c = math.sqrt(2.0 / math.pi)
        mid = 0.5 * (self.borders[:-1] + self.borders[1:])
        return mid.at[0].set(self.borders[1] - c * s_left).at[-1].set(self.borders[-2] + c * s_right)

    def _bucket_second_moments(self):
        s_left, s_right = self._scales
        c = math.sqrt(2.0 / math.pi)
        a, b = self.borders[:-1], self.borders[1:]
        m2 = (a * a + a * b + b * b) / 3.0
        # E[(b1 - T)^2] with T ~ HN(s): b1^2 - 2 b1 c s + s^2
        b1, bl = self.borders[1], self.borders[-2]
        m2 = m2.at[0].set(b1**2 - 2 * b1 * c * s_left + s_left**2)
        return m2.at[-1].set(bl**2 + 2 * bl * c * s_right + s_right**2)

    def _bucket_entropies(self):
        s_left, s_right = self._scales
        h = jnp.log(self.widths)
        hn = lambda s: 0.5 * jnp.log(0.5 * math.pi * s**2) + 0.5  # noqa: E731
        return h.at[0].set(hn(s_left)).at[-1].set(hn(s_right))


def normal_borders(n_buckets: int, *, scale: float = 1.0, dtype=None) -> Array:
    """Borders with equal mass ``1/K`` under N(0, scale²) for the inner buckets; the two outer
    borders lie one neighbouring width further out (finite)."""
    n_buckets = check_positive_int("n_buckets", n_buckets, minimum=2)
    dtype = dtype or jnp.result_type(float)
    q = jnp.linspace(0.0, 1.0, n_buckets + 1, dtype=dtype)[1:-1]
    inner = jax.scipy.special.ndtri(q) * scale
    w = inner[1] - inner[0] if n_buckets > 2 else jnp.asarray(scale, dtype)
    return jnp.concatenate([inner[:1] - w, inner, inner[-1:] + w])
