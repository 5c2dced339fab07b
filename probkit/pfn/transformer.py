r"""The PFN transformer (Müller et al., 2022).

A dataset is a set of train pairs :math:`(x_i, y_i)` and query inputs :math:`x^*_j`.
Tokens: train :math:`t_i = E_x x_i + E_y y_i`, query :math:`t^*_j = E_x x^*_j` (linear
encoders, no positional encoding). Each layer is pre-norm multi-head attention and an MLP,
with the PFN mask: position :math:`a` may attend to :math:`b` iff :math:`b` is a (non-padded)
train point or :math:`a = b`. Hence train points only see train points, queries never see one
another, and the output is invariant to permutations of the train points. A decoder maps each
query's final state to the logits of a bar distribution over ``y``.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._validate import check_finite, check_positive_int, is_concrete
from .bar_distribution import (
    AbstractBarDistribution,
    BarDistribution,
    FullSupportBarDistribution,
    check_borders,
    normal_borders,
)


def _uniform(key, shape, fan_in):
    bound = 1.0 / fan_in**0.5
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound, dtype=jnp.result_type(float))


def _layer_norm(h: Array, weight: Array, bias: Array, eps: float = 1e-5) -> Array:
    mean = jnp.mean(h, axis=-1, keepdims=True)
    var = jnp.var(h, axis=-1, keepdims=True)
    return (h - mean) * jax.lax.rsqrt(var + eps) * weight + bias


class _Block(eqx.Module):
    r"""Pre-norm transformer block on one sequence ``h`` of shape ``(L, d)``:

    .. math:: h \leftarrow h + \mathrm{MHA}(\mathrm{LN}(h); \text{mask}),\quad
              h \leftarrow h + W_2\,\mathrm{gelu}(W_1 \mathrm{LN}(h) + b_1) + b_2.
    """

    norm1: Float[Array, "2 d"]
    qkv: Float[Array, "d 3d"]
    qkv_bias: Float[Array, " 3d"]
    out: Float[Array, "d d"]
    out_bias: Float[Array, " d"]
    norm2: Float[Array, "2 d"]
    mlp_in: Float[Array, "d d_ff"]
    mlp_in_bias: Float[Array, " d_ff"]
    mlp_out: Float[Array, "d_ff d"]
    mlp_out_bias: Float[Array, " d"]
    n_heads: int = eqx.field(static=True)

    def __init__(self, key, d_model: int, n_heads: int, d_ff: int):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        dtype = jnp.result_type(float)
        ln = jnp.stack([jnp.ones(d_model, dtype), jnp.zeros(d_model, dtype)])
        self.norm1, self.norm2 = ln, ln
        self.qkv = _uniform(k1, (d_model, 3 * d_model), d_model)
        self.qkv_bias = jnp.zeros(3 * d_model, dtype)
        self.out = _uniform(k2, (d_model, d_model), d_model)
        self.out_bias = jnp.zeros(d_model, dtype)
        self.mlp_in = _uniform(k3, (d_model, d_ff), d_model)
        self.mlp_in_bias = jnp.zeros(d_ff, dtype)
        self.mlp_out = _uniform(k4, (d_ff, d_model), d_ff)
        self.mlp_out_bias = jnp.zeros(d_model, dtype)
        self.n_heads = n_heads

    def __call__(self, h: Float[Array, "L d"], mask: Bool[Array, "L L"]) -> Float[Array, "L d"]:
        length, d = h.shape
        a = _layer_norm(h, *self.norm1)
        q, k, v = jnp.split(a @ self.qkv + self.qkv_bias, 3, axis=-1)
        heads = lambda t: t.reshape(length, self.n_heads, d // self.n_heads)  # noqa: E731
        q, k, v = heads(q), heads(k), heads(v)
        scores = jnp.einsum("qhc,khc->hqk", q, k) / jnp.sqrt(d // self.n_heads).astype(h.dtype)
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
        att = jax.nn.softmax(scores, axis=-1)
        o = jnp.einsum("hqk,khc->qhc", att, v).reshape(length, d)
        h = h + o @ self.out + self.out_bias
        a = _layer_norm(h, *self.norm2)
        return h + jax.nn.gelu(a @ self.mlp_in + self.mlp_in_bias) @ self.mlp_out + self.mlp_out_bias


def attention_mask(is_train: Bool[Array, " L"]) -> Bool[Array, "L L"]:
    """``mask[a, b]``: position a may attend to b iff b is a train point or b == a."""
    n = is_train.shape[0]
    return is_train[None, :] | jnp.eye(n, dtype=bool)


class PFN(eqx.Module):
    """Prior-data fitted network; ``pfn(x_train, y_train, x_test)`` is the predictive.

    Args:
        key: PRNG key for the initial weights.
        x_dim: number of input features.
        n_buckets: buckets of the bar-distribution head.
        d_model, n_layers, n_heads, d_ff: transformer sizes (``d_ff`` defaults to ``2 d_model``).
        borders: bucket borders ``(n_buckets + 1,)``, e.g. from
            ``BarDistribution.from_prior(key, prior, n_buckets).borders``; default: equal-mass
            borders of a standard normal.
        full_support: half-normal tails on the outer buckets (default) or a bounded support.
    """

    x_encoder: eqx.nn.Linear
    y_encoder: eqx.nn.Linear
    layers: _Block  # stacked: every leaf has a leading n_layers axis
    decoder_norm: Float[Array, "2 d"]
    decoder_hidden: eqx.nn.Linear
    decoder_out: eqx.nn.Linear
    borders: Float[Array, " n_buckets+1"]
    x_dim: int = eqx.field(static=True)
    n_buckets: int = eqx.field(static=True)
    d_model: int = eqx.field(static=True)
    n_layers: int = eqx.field(static=True)
    n_heads: int = eqx.field(static=True)
    d_ff: int = eqx.field(static=True)
    full_support: bool = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        x_dim: int,
        *,
        n_buckets: int = 100,
        d_model: int = 64,
        n_layers: int = 4,
        n_heads: int = 4,
        d_ff: int | None = None,
        borders=None,
        full_support: bool = True,
    ):
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.n_buckets = check_positive_int("n_buckets", n_buckets, minimum=2)
        self.d_model = check_positive_int("d_model", d_model)
        self.n_layers = check_positive_int("n_layers", n_layers)
        self.n_heads = check_positive_int("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_ff = check_positive_int("d_ff", 2 * d_model if d_ff is None else d_ff)
        self.full_support = bool(full_support)
        if borders is None:
            borders = normal_borders(n_buckets)
        borders = jnp.asarray(borders, jnp.result_type(float))
        if borders.shape != (n_buckets + 1,):
            raise ValueError(f"borders must have shape ({n_buckets + 1},), got {borders.shape}")
        check_borders("borders", borders)
        self.borders = borders
        k_x, k_y, k_layers, k_d1, k_d2 = jax.random.split(key, 5)
        self.x_encoder = eqx.nn.Linear(x_dim, d_model, key=k_x)
        self.y_encoder = eqx.nn.Linear("scalar", d_model, key=k_y)
        make = lambda k: _Block(k, d_model, n_heads, self.d_ff)  # noqa: E731
        self.layers = eqx.filter_vmap(make)(jax.random.split(k_layers, n_layers))
        self.decoder_norm = jnp.stack([jnp.ones(d_model), jnp.zeros(d_model)]).astype(jnp.result_type(float))
        self.decoder_hidden = eqx.nn.Linear(d_model, self.d_ff, key=k_d1)
        self.decoder_out = eqx.nn.Linear(self.d_ff, n_buckets, key=k_d2)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture (used by ``save``/``load``)."""
        return dict(
            x_dim=self.x_dim,
            n_buckets=self.n_buckets,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            full_support=self.full_support,
        )

    def _distribution(self, logits) -> AbstractBarDistribution:
        cls = FullSupportBarDistribution if self.full_support else BarDistribution
        return cls(jax.lax.stop_gradient(self.borders).astype(logits.dtype), logits)

    def sequence_logits(
        self,
        x: Float[Array, "L x_dim"],
        y: Float[Array, " L"],
        is_train: Bool[Array, " L"],
    ) -> Float[Array, "L n_buckets"]:
        """Bucket logits at every position of one sequence; ``y`` is read only where
        ``is_train``. Positions that are not train points are queries (or padding)."""
        dtype = x.dtype
        y_tok = jax.vmap(self.y_encoder)(jnp.where(is_train, y, 0.0).astype(dtype))
        h = jax.vmap(self.x_encoder)(x) + jnp.where(is_train[:, None], y_tok, 0.0)
        mask = attention_mask(is_train)
        params, static = eqx.partition(self.layers, eqx.is_array)

        def step(h, layer_params):
            return eqx.combine(layer_params, static)(h, mask), None

        h, _ = jax.lax.scan(step, h, params)
        h = _layer_norm(h, *self.decoder_norm)
        return jax.vmap(lambda v: self.decoder_out(jax.nn.gelu(self.decoder_hidden(v))))(h)

    def __call__(
        self,
        x_train: Float[Array, "*batch n x_dim"],
        y_train: Float[Array, "*batch n"],
        x_test: Float[Array, "*batch m x_dim"],
        *,
        train_mask: Bool[Array, "*batch n"] | None = None,
    ) -> AbstractBarDistribution:
        """Predictive distribution of ``y`` at each query, batch shape ``(*batch, m)``.

        Accepts one dataset (``x_train`` 2-D) or a batch (3-D). ``train_mask`` marks the
        real train points when datasets are padded to a common ``n``.
        """
        x_train, y_train, x_test, train_mask = _check_inputs(
            self.x_dim, x_train, y_train, x_test, train_mask
        )
        return self._distribution(_query_logits(self, x_train, y_train, x_test, train_mask))


@eqx.filter_jit
def _query_logits(pfn: PFN, x_train, y_train, x_test, train_mask):
    """Logits at the queries; one compiled program per input shape."""
    n = x_train.shape[-2]
    x = jnp.concatenate([x_train, x_test], axis=-2)
    y = jnp.concatenate([y_train, jnp.zeros(x_test.shape[:-1], y_train.dtype)], axis=-1)
    is_train = jnp.concatenate([train_mask, jnp.zeros(x_test.shape[:-1], bool)], axis=-1)
    fn = pfn.sequence_logits
    for _ in range(x.ndim - 2):
        fn = jax.vmap(fn)
    return fn(x, y, is_train)[..., n:, :]


def _check_inputs(x_dim, x_train, y_train, x_test, train_mask):
    """Validate shapes/finiteness; returns arrays in a common float dtype and a bool mask."""
    x_train, y_train, x_test = (jnp.asarray(a) for a in (x_train, y_train, x_test))
    dtype = jnp.result_type(x_train.dtype, y_train.dtype, x_test.dtype, float)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    x_train, y_train, x_test = (a.astype(dtype) for a in (x_train, y_train, x_test))
    if x_train.ndim not in (2, 3):
        raise ValueError(f"x_train must have shape (n, {x_dim}) or (batch, n, {x_dim}), got {x_train.shape}")
    batch = x_train.shape[:-2]
    if x_train.shape[-1] != x_dim:
        raise ValueError(f"x_train must have {x_dim} features (the model's x_dim), got shape {x_train.shape}")
    if x_test.ndim != x_train.ndim or x_test.shape[:-2] != batch or x_test.shape[-1] != x_dim:
        raise ValueError(
            f"x_test must have shape {(*batch, 'm', x_dim)} (the model's x_dim={x_dim}), got {x_test.shape}"
        )
    if y_train.shape != x_train.shape[:-1]:
        raise ValueError(
            f"y_train must have shape {x_train.shape[:-1]} (one value per row of x_train), got {y_train.shape}"
        )
    if train_mask is None:
        train_mask = jnp.ones(y_train.shape, bool)
    else:
        train_mask = jnp.asarray(train_mask)
        if train_mask.shape != y_train.shape:
            raise ValueError(f"train_mask must have shape {y_train.shape}, got {train_mask.shape}")
        train_mask = train_mask.astype(bool)
    checked = []
    for name, a in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test)):
        if is_concrete(a):
            check_finite(name, a)
        else:
            a = eqx.error_if(a, ~jnp.all(jnp.isfinite(a)), f"{name} must contain only finite values")
        checked.append(a)
    return (*checked, train_mask)
