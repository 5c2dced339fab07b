"""Masked autoregressive bijections with a MADE conditioner (Germain et al.; Papamakarios et al.)."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._validate import check_positive, check_positive_int
from ._base import AbstractBijection
from ._utils import check_dim, check_vector
from .transformer import AbstractTransformer, AffineTransformer


class _MaskedLinear(eqx.Module):
    weight: Float[Array, "out in"]
    bias: Float[Array, " out"]
    mask: Bool[Array, "out in"]

    def __init__(self, key, mask: np.ndarray, *, zero: bool = False):
        n_out, n_in = mask.shape
        lim = 1.0 / np.sqrt(max(n_in, 1))
        kw, kb = jax.random.split(key)
        self.weight = jax.random.uniform(kw, (n_out, n_in), minval=-lim, maxval=lim)
        self.bias = jax.random.uniform(kb, (n_out,), minval=-lim, maxval=lim)
        if zero:
            self.weight, self.bias = jnp.zeros_like(self.weight), jnp.zeros_like(self.bias)
        self.mask = jnp.asarray(mask, dtype=bool)

    def __call__(self, x):
        return jnp.where(self.mask, self.weight, 0.0) @ x + self.bias


class MADE(eqx.Module):
    r"""Masked MLP: output block ``i`` (``P`` numbers) depends only on ``x_{<i}``.

    Degrees: inputs ``1..D``; hidden units ``(j mod (D-1)) + 1``; a hidden unit sees
    inputs with degree ≤ its own, output ``i`` sees hidden units with degree < ``i``.
    The last layer starts at zero. Its output is multiplied by ``out_scale`` (a fixed
    number): under Adam, whose steps have a size set by the learning rate whatever
    the gradient's scale, this slows the transformer parameters' change by the
    same factor without changing where the optimiser can go.
    """

    layers: tuple[_MaskedLinear, ...]
    activation: Callable
    dim: int = eqx.field(static=True)
    n_params: int = eqx.field(static=True)
    out_scale: float = eqx.field(static=True, default=1.0)

    def __init__(self, key, dim: int, n_params: int, *, width: int = 32, depth: int = 2, activation=jax.nn.tanh,
                 out_scale: float = 1.0):
        self.dim = check_dim("dim", dim)
        check_positive("out_scale", out_scale)
        self.out_scale = float(out_scale)
        self.n_params = check_positive_int("n_params", n_params)
        width = check_positive_int("width", width)
        depth = check_positive_int("depth", depth)
        deg_in = np.arange(1, dim + 1)
        if dim > 1:
            deg_hidden = np.arange(width) % (dim - 1) + 1
        else:
            deg_hidden = np.zeros(width, dtype=int)
        deg_out = np.repeat(deg_in, n_params)
        masks = [deg_hidden[:, None] >= deg_in[None, :]]
        masks += [deg_hidden[:, None] >= deg_hidden[None, :]] * (depth - 1)
        masks += [deg_out[:, None] > deg_hidden[None, :]]
        keys = jax.random.split(key, len(masks))
        self.layers = tuple(
            _MaskedLinear(k, m, zero=(i == len(masks) - 1)) for i, (k, m) in enumerate(zip(keys, masks))
        )
        self.activation = activation

    def __call__(self, x: Float[Array, " D"]) -> Float[Array, "D P"]:
        h = x
        for layer in self.layers[:-1]:
            h = self.activation(layer(h))
        out = self.layers[-1](h)
        if self.out_scale != 1.0:
            out = self.out_scale * out
        return out.reshape(self.dim, self.n_params)


class MaskedAutoregressive(AbstractBijection):
    r"""Autoregressive layer :math:`y_i = \tau(x_i; \theta_i(x_{<i}))` with a :class:`MADE` conditioner.

    The forward (sampling) direction is one network pass, as in an inverse
    autoregressive flow; :math:`\log|\det J| = \sum_i \log|\partial\tau/\partial x_i|`
    (triangular Jacobian). The inverse takes ``D`` sequential passes (``fori_loop``):
    after pass ``i`` the first ``i`` coordinates are exact.
    """

    made: MADE
    transformer: AbstractTransformer

    def __init__(
        self,
        key: PRNGKeyArray,
        dim: int,
        transformer: AbstractTransformer | None = None,
        *,
        width: int = 32,
        depth: int = 2,
        activation: Callable = jax.nn.tanh,
        out_scale: float = 1.0,
    ):
        self.transformer = AffineTransformer() if transformer is None else transformer
        self.made = MADE(key, dim, self.transformer.num_params, width=width, depth=depth, activation=activation,
                         out_scale=out_scale)

    def transform_and_log_det(self, x):
        check_vector("x", x, self.made.dim)
        y, ld = jax.vmap(self.transformer.transform_and_log_det)(x, self.made(x))
        return y, jnp.sum(ld)

    def inverse_and_log_det(self, y):
        check_vector("y", y, self.made.dim)

        def body(_, x):
            return jax.vmap(self.transformer.inverse_and_log_det)(y, self.made(x))[0]

        x = lax.fori_loop(0, self.made.dim, body, jnp.zeros_like(y))
        x, ld = jax.vmap(self.transformer.inverse_and_log_det)(y, self.made(x))
        return x, jnp.sum(ld)
