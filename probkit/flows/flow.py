"""Flow distributions: a base distribution pushed through a bijection."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_real_dtype, check_sample_shape
from ._base import AbstractBijection
from ._utils import check_dim


class AbstractBase(eqx.Module):
    """A base distribution on ``R^D`` for a :class:`Flow`."""

    dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def sample_and_log_prob(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()):
        """Draws of shape ``sample_shape + (D,)`` and their log densities."""

    @abc.abstractmethod
    def log_prob(self, x: Float[Array, "... D"]) -> Float[Array, "..."]:
        """Log density, reducing the last axis."""

    @abc.abstractmethod
    def to_numpyro(self):
        """The same distribution as a ``numpyro.distributions.Distribution`` (event shape ``(D,)``)."""


class StandardNormal(AbstractBase):
    r"""``N(0, I_D)``: :math:`\log q_0(z) = -\tfrac12\|z\|^2 - \tfrac D2 \log 2\pi`."""

    dim: int = eqx.field(static=True)

    def __init__(self, dim: int):
        self.dim = check_dim("dim", dim)

    def log_prob(self, x):
        return -0.5 * jnp.sum(x * x, axis=-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def sample_and_log_prob(self, key, sample_shape=()):
        z = jax.random.normal(key, check_sample_shape("sample_shape", sample_shape) + (self.dim,))
        return z, self.log_prob(z)

    def to_numpyro(self):
        import numpyro.distributions as dist

        return dist.Normal(jnp.zeros(self.dim), 1.0).to_event(1)


def _batched(fn, x):
    """Apply a single-vector function ``fn`` over all leading axes of ``x``."""
    batch = x.shape[:-1]
    out = jax.vmap(fn)(x.reshape((-1, x.shape[-1])))
    return jax.tree.map(lambda a: a.reshape(batch + a.shape[1:]), out)


def _check_dimension(base: AbstractBase, bijection: AbstractBijection) -> None:
    """The bijection must map the base's ``(D,)`` vectors to ``(D,)`` vectors with a scalar log-det (traced once, abstractly)."""
    d = base.dim
    try:
        y, ld = jax.eval_shape(bijection.transform_and_log_det, jax.ShapeDtypeStruct((d,), jnp.result_type(float)))
    except (ValueError, TypeError, IndexError) as err:
        raise ValueError(f"bijection does not act on vectors of the base's dimension {d}: {err}") from err
    if y.shape != (d,) or ld.shape != ():
        raise ValueError(
            f"bijection maps the base's vectors of shape ({d},) to shape {y.shape} (log-det shape {ld.shape}); "
            f"expected ({d},) and ()"
        )


class Flow(eqx.Module):
    r"""The distribution of :math:`y = f(z)`, :math:`z \sim q_0`:
    :math:`\log q(y) = \log q_0(f^{-1}(y)) + \log|\det J_{f^{-1}}(y)|`.

    The bijection must map the base's ``(D,)`` vectors to ``(D,)`` (checked once, abstractly, on construction).
    """

    base: AbstractBase
    bijection: AbstractBijection

    def __init__(self, base: AbstractBase, bijection: AbstractBijection):
        if not isinstance(base, AbstractBase):
            raise TypeError(f"base must be a probkit.flows base distribution, got {type(base).__name__}")
        if not isinstance(bijection, AbstractBijection):
            raise TypeError(f"bijection must be an AbstractBijection, got {type(bijection).__name__}")
        _check_dimension(base, bijection)
        self.base = base
        self.bijection = bijection

    @property
    def dim(self) -> int:
        """Event dimension ``D``."""
        return self.base.dim

    def _check(self, x):
        check_real_dtype("x", x)
        if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != self.dim:
            raise ValueError(f"x must have last axis of size {self.dim} (the flow dimension), got shape {jnp.shape(x)}")

    def sample_and_log_prob(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()):
        """Draws ``sample_shape + (D,)`` and ``log q`` at them (forward pass only)."""
        z, lp0 = self.base.sample_and_log_prob(key, check_sample_shape("sample_shape", sample_shape))
        y, ld = _batched(self.bijection.transform_and_log_det, z)
        return y, lp0 - ld

    def sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()):
        """Draws of shape ``sample_shape + (D,)``."""
        return self.sample_and_log_prob(key, sample_shape)[0]

    def log_prob(self, x: Float[Array, "... D"]) -> Float[Array, "..."]:
        """``log q(x)`` through the inverse bijection."""
        x = jnp.asarray(x)
        self._check(x)
        z, ld = _batched(self.bijection.inverse_and_log_det, x)
        return self.base.log_prob(z) + ld

    def to_numpyro(self):
        """A ``numpyro.distributions.TransformedDistribution`` with the same law (see :mod:`probkit.flows.numpyro`)."""
        from .numpyro import to_numpyro

        return to_numpyro(self)
