r"""Score models for score-based diffusion.

Every model acts on ONE point and exposes :meth:`AbstractScoreModel.score`,
:math:`s(t, x) \approx \nabla_x\log p_t(x)`:

- :class:`ScoreNet`: a direct vector field :math:`s(t, x) = h(t, x)/\sigma(t)`
  (``sde`` given; :math:`\sigma` the marginal std, the usual noise-conditional
  scaling) or :math:`s = h` (``sde=None``), with :math:`h` a
  :class:`~probkit.generative.nets.TimeMLP`;
- :class:`LogDensityNet`: a scalar log-density (up to a time-dependent constant)
  :math:`u(t, x) = h(t, x)/\sigma(t)` (or :math:`h`) with :math:`h` a
  :class:`~probkit.generative.nets.ScalarTimeMLP`; its score is :math:`\nabla_x u`.
  This is the model on which the Fokker–Planck residual is defined.
- :class:`GaussianScore`: the exact :math:`\log p_t` and score for Gaussian data
  :math:`N(\mu, \Sigma)` under an SDE (a reference for tests and tutorials).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Scalar, ScalarLike

from .nets import ScalarTimeMLP, TimeMLP
from .sde import AbstractSDE

__all__ = ["AbstractScoreModel", "AbstractLogDensityModel", "ScoreNet", "LogDensityNet", "GaussianScore",
           "as_score_fn"]


class AbstractScoreModel(eqx.Module):
    r"""A model of the score :math:`\nabla_x\log p_t(x)` of one point."""

    @abc.abstractmethod
    def score(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        r""":math:`s(t, x)`."""


class AbstractLogDensityModel(AbstractScoreModel):
    r"""A model of the log-density :math:`u(t, x) \approx \log p_t(x)` (``__call__``) whose
    score is :math:`\nabla_x u`."""

    @abc.abstractmethod
    def __call__(self, t: ScalarLike, x: Float[Array, " d"]) -> Scalar:
        r""":math:`u(t, x)`."""

    def score(self, t, x):
        return jax.grad(self.__call__, argnums=1)(t, x)


def _check_sde(sde):
    if sde is not None and not isinstance(sde, AbstractSDE):
        raise TypeError(f"sde must be an AbstractSDE or None, got {type(sde).__name__}")


def _inv_std(sde, t, x):
    if sde is None:
        return jnp.ones((), x.dtype)
    return 1 / sde.marginal(jnp.asarray(t, x.dtype))[1]


class ScoreNet(AbstractScoreModel):
    r"""Score network :math:`s(t, x) = h(t, x)/\sigma(t)` (:math:`h` a :class:`TimeMLP`).

    Args:
        key: PRNG key. dim: dimension of ``x``.
        sde: divide by the marginal std :math:`\sigma(t)` of this SDE (``None``: no scaling).
        width, depth, activation, ...: passed to :class:`~probkit.generative.nets.TimeMLP`.
    """

    net: TimeMLP
    sde: AbstractSDE | None

    def __init__(self, key: PRNGKeyArray, dim: int, *, sde: AbstractSDE | None = None, width: int = 128,
                 depth: int = 3, activation: Callable = jax.nn.silu, **kwargs):
        _check_sde(sde)
        self.net = TimeMLP(key, dim, width=width, depth=depth, activation=activation, **kwargs)
        self.sde = sde

    def score(self, t, x):
        return self.net(t, x) * _inv_std(self.sde, t, x)

    def __call__(self, t: ScalarLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """The score (so the model is itself a field)."""
        return self.score(t, x)


class LogDensityNet(AbstractLogDensityModel):
    r"""Log-density network :math:`u(t, x) = h(t, x)/\sigma(t)` (:math:`h` a
    :class:`ScalarTimeMLP`); score :math:`\nabla_x u`. Arguments as :class:`ScoreNet`."""

    net: ScalarTimeMLP
    sde: AbstractSDE | None

    def __init__(self, key: PRNGKeyArray, dim: int, *, sde: AbstractSDE | None = None, width: int = 128,
                 depth: int = 3, activation: Callable = jax.nn.silu, **kwargs):
        _check_sde(sde)
        self.net = ScalarTimeMLP(key, dim, width=width, depth=depth, activation=activation, **kwargs)
        self.sde = sde

    def __call__(self, t, x):
        return self.net(t, x) * _inv_std(self.sde, t, x)


class GaussianScore(AbstractLogDensityModel):
    r"""Exact :math:`\log p_t` and score when the data are :math:`N(\mu, \Sigma)`:
    :math:`p_t = N(m\mu, m^2\Sigma + \sigma^2 I)` under ``sde``."""

    sde: AbstractSDE
    mean: Float[Array, " d"]
    cov: Float[Array, "d d"]

    def __init__(self, sde: AbstractSDE, mean, cov):
        _check_sde(sde)
        mean = jnp.asarray(mean)
        if mean.ndim != 1:
            raise ValueError(f"mean must have shape (d,), got {mean.shape}")
        cov = jnp.asarray(cov, mean.dtype)
        if cov.shape != (mean.shape[0],) * 2:
            raise ValueError(f"cov must have shape {(mean.shape[0],) * 2}, got {cov.shape}")
        self.sde, self.mean, self.cov = sde, mean, cov

    def __call__(self, t, x):
        return self.sde.gaussian_log_prob(t, x, self.mean, self.cov)

    def score(self, t, x):
        return self.sde.gaussian_score(t, x, self.mean, self.cov)


def as_score_fn(model) -> Callable[[ScalarLike, Float[Array, " d"]], Float[Array, " d"]]:
    """``model.score`` for an :class:`AbstractScoreModel`, else ``model`` itself (a callable
    score field ``(t, x) -> R^d``)."""
    if isinstance(model, AbstractScoreModel):
        return model.score
    if not callable(model):
        raise TypeError(f"model must be an AbstractScoreModel or a score field (t, x) -> R^d, got {model!r}")
    return model
