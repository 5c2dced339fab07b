r"""Time-conditioned networks for generative models.

Every network here maps ONE point: ``net(t, x)`` with ``t`` a scalar and ``x`` of
shape ``(d,)``. Batch with :func:`jax.vmap`. They are shared by the stochastic
interpolants and by score-based diffusion.

- :class:`FourierTimeEmbedding`: :math:`t \mapsto (t, \sin(2\pi\omega_k t), \cos(2\pi\omega_k t))_k`
  with fixed log-spaced frequencies :math:`\omega_k`.
- :class:`TimeMLP`: :math:`(t, x) \mapsto \mathbb{R}^{d_{out}}`, an MLP on
  ``concat(x, embed(t))`` whose identical hidden layers are stacked and run by
  :func:`jax.lax.scan`.
- :class:`ScalarTimeMLP`: :math:`u(t, x) \in \mathbb{R}` (e.g. a log-density);
  :meth:`ScalarTimeMLP.score` gives :math:`\nabla_x u(t, x)`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Scalar, ScalarLike

from .._validate import check_positive, check_positive_int

__all__ = ["FourierTimeEmbedding", "TimeMLP", "ScalarTimeMLP"]


class FourierTimeEmbedding(eqx.Module):
    r"""Fixed Fourier features of a scalar time,
    :math:`e(t) = (t, \sin 2\pi\omega_1 t, \dots, \cos 2\pi\omega_K t)`.

    The frequencies :math:`\omega_k` are log-spaced in ``[1, max_frequency]`` and not
    trained (``stop_gradient``). Output size ``2 * n_frequencies + 1``.
    """

    frequencies: Float[Array, " k"]

    def __init__(self, n_frequencies: int = 8, max_frequency: float = 16.0):
        check_positive_int("n_frequencies", n_frequencies)
        check_positive("max_frequency", max_frequency)
        self.frequencies = jnp.geomspace(1.0, max(float(max_frequency), 1.0), n_frequencies)

    @property
    def size(self) -> int:
        return 2 * self.frequencies.shape[0] + 1

    def __call__(self, t: ScalarLike) -> Float[Array, " e"]:
        freqs = jax.lax.stop_gradient(self.frequencies)
        t = jnp.asarray(t, dtype=freqs.dtype)
        angles = 2 * jnp.pi * freqs * t
        return jnp.concatenate([t[None], jnp.sin(angles), jnp.cos(angles)])


class _Trunk(eqx.Module):
    """Input layer, ``depth - 1`` stacked identical hidden layers (scanned), output layer."""

    embedding: FourierTimeEmbedding
    first: eqx.nn.Linear
    hidden: eqx.nn.Linear | None  # a stacked Linear (leading axis = layer) or None
    last: eqx.nn.Linear
    activation: Callable = eqx.field(static=True)

    def __init__(self, key, in_size, out_size, width, depth, n_frequencies, max_frequency, activation):
        in_size = check_positive_int("in_size", in_size)
        width = check_positive_int("width", width)
        depth = check_positive_int("depth", depth)
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {activation!r}")
        k_first, k_hidden, k_last = jax.random.split(key, 3)
        self.embedding = FourierTimeEmbedding(n_frequencies, max_frequency)
        self.first = eqx.nn.Linear(in_size + self.embedding.size, width, key=k_first)
        if depth > 1:
            make = lambda k: eqx.nn.Linear(width, width, key=k)  # noqa: E731
            self.hidden = eqx.filter_vmap(make)(jax.random.split(k_hidden, depth - 1))
        else:
            self.hidden = None
        self.last = eqx.nn.Linear(width, out_size, key=k_last)
        self.activation = activation

    def __call__(self, t, x):
        h = jnp.concatenate([x, self.embedding(t).astype(x.dtype)])
        h = self.activation(self.first(h))
        if self.hidden is not None:
            params, static = eqx.partition(self.hidden, eqx.is_array)

            def layer(h, p):
                return self.activation(eqx.combine(p, static)(h)), None

            h, _ = jax.lax.scan(layer, h, params)
        return self.last(h)


class TimeMLP(eqx.Module):
    r"""MLP field :math:`f(t, x) \in \mathbb{R}^{d_{out}}` for one point ``x`` of shape ``(d,)``.

    Args:
        key: PRNG key for the initialisation.
        in_size: dimension ``d`` of ``x``.
        out_size: output dimension (defaults to ``in_size``: a vector field).
        width: hidden width. depth: number of hidden layers (≥ 1).
        n_frequencies, max_frequency: the :class:`FourierTimeEmbedding`.
        activation: elementwise nonlinearity (default SiLU).
    """

    trunk: _Trunk

    def __init__(
        self,
        key: PRNGKeyArray,
        in_size: int,
        out_size: int | None = None,
        *,
        width: int = 128,
        depth: int = 3,
        n_frequencies: int = 8,
        max_frequency: float = 16.0,
        activation: Callable = jax.nn.silu,
    ):
        out_size = in_size if out_size is None else check_positive_int("out_size", out_size)
        self.trunk = _Trunk(key, in_size, out_size, width, depth, n_frequencies, max_frequency, activation)

    def __call__(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d_out"]:
        return self.trunk(t, x)


class ScalarTimeMLP(eqx.Module):
    r"""Scalar network :math:`u(t, x) \in \mathbb{R}` (e.g. a time-dependent log-density);
    its score is :math:`\nabla_x u(t, x)` (:meth:`score`). Arguments as :class:`TimeMLP`."""

    trunk: _Trunk

    def __init__(
        self,
        key: PRNGKeyArray,
        in_size: int,
        *,
        width: int = 128,
        depth: int = 3,
        n_frequencies: int = 8,
        max_frequency: float = 16.0,
        activation: Callable = jax.nn.silu,
    ):
        self.trunk = _Trunk(key, in_size, 1, width, depth, n_frequencies, max_frequency, activation)

    def __call__(self, t: ScalarLike, x: Float[Array, " d"]) -> Scalar:
        return self.trunk(t, x)[0]

    def score(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        r""":math:`\nabla_x u(t, x)`."""
        return jax.grad(self.__call__, argnums=1)(t, x)
