r"""Bayesian-neural-network prior over regression tasks.

Each dataset draws MLP weights :math:`W_l \sim \mathcal N(0, \sigma_w^2 / \mathrm{fan\_in})`,
biases :math:`b_l \sim \mathcal N(0, \sigma_b^2)`, a noise level :math:`\sigma_n` (fixed or
from a hyperprior), inputs from the x-sampler, and sets :math:`y = f_W(x) + \sigma_n \varepsilon`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from .._validate import check_positive, check_positive_int
from .prior import AbstractPrior, resolve_x_sampler


class BNNPrior(AbstractPrior):
    """Random-MLP prior: ``y = f(x) + noise`` with Gaussian weights (see module docstring)."""

    hidden: tuple[int, ...] = eqx.field(static=True)
    weight_std: float
    bias_std: float
    noise: float
    noise_prior: Any
    activation: Callable = eqx.field(static=True)
    x_sampler: Any
    x_dim: int = eqx.field(static=True)

    def __init__(
        self,
        hidden: Sequence[int] = (32, 32),
        *,
        weight_std: float = 1.0,
        bias_std: float = 1.0,
        noise: float = 0.1,
        noise_prior=None,
        activation: Callable = jnp.tanh,
        x_dim: int = 1,
        x_sampler=None,
    ):
        hidden = tuple(check_positive_int("hidden", h) for h in hidden)
        if not hidden:
            raise ValueError("hidden must list at least one layer width")
        check_positive("weight_std", weight_std)
        check_positive("bias_std", bias_std, allow_zero=True)
        check_positive("noise", noise, allow_zero=True)
        if noise_prior is not None and not hasattr(noise_prior, "sample"):
            raise TypeError(f"noise_prior must be a NumPyro distribution, got {noise_prior!r}")
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {activation!r}")
        self.hidden = hidden
        self.weight_std = float(weight_std)
        self.bias_std = float(bias_std)
        self.noise = float(noise)
        self.noise_prior = noise_prior
        self.activation = activation
        self.x_sampler, self.x_dim = resolve_x_sampler(x_sampler, x_dim)

    def sample_one(self, key: PRNGKeyArray, n_points: int):
        dtype = jnp.result_type(float)
        sizes = (self.x_dim, *self.hidden, 1)
        k_x, k_noise, k_eps, k_w = jax.random.split(key, 4)
        x = self.x_sampler(k_x, n_points)
        h = x
        layer_keys = jax.random.split(k_w, len(sizes) - 1)
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            kw, kb = jax.random.split(layer_keys[i])
            w = jax.random.normal(kw, (fan_in, fan_out), dtype) * self.weight_std / jnp.sqrt(fan_in)
            b = jax.random.normal(kb, (fan_out,), dtype) * self.bias_std
            h = h @ w + b
            if i < len(sizes) - 2:
                h = self.activation(h)
        sigma = (
            jnp.asarray(self.noise, dtype)
            if self.noise_prior is None
            else jnp.asarray(self.noise_prior.sample(k_noise), dtype)
        )
        y = h[:, 0] + sigma * jax.random.normal(k_eps, (n_points,), dtype)
        return x, y
