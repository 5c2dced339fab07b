r"""A trained one-sided interpolant as a NumPyro distribution (a learned prior).

Samples are :math:`X_1` of the probability-flow ODE (or an SDE with :math:`\epsilon`)
started from :math:`N(0, I)` at :math:`t=0`; ``log_prob`` integrates the ODE back
with the instantaneous change of variables (:func:`~probkit.generative.log_prob`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints

from .._validate import check_choice, check_positive, check_positive_int
from .interpolant import Interpolant
from .interpolant_sampling import log_prob, sample_ode, sample_sde

__all__ = ["InterpolantDistribution"]


class InterpolantDistribution(dist.Distribution):
    r"""Distribution of :math:`X_1` for a velocity field ``model`` transporting
    :math:`N(0, I_d)` at :math:`t=0` to the data at :math:`t=1`.

    Args:
        model: the trained velocity ``(t, x) -> R^d``.
        dim: the event dimension ``d``.
        method: ``"ode"`` or ``"sde"`` for :meth:`sample`.
        eps: :math:`\epsilon` for ``"sde"`` (score from the velocity: needs ``interpolant``,
            one-sided).
        interpolant: the one-sided :class:`Interpolant` (for ``"sde"``).
        ode_kwargs: passed to :func:`sample_ode` and :func:`log_prob` (e.g. ``n_steps``,
            ``solver``, ``adaptive``); sde_kwargs: passed to :func:`sample_sde`.
    """

    arg_constraints = {}
    support = constraints.real_vector
    reparametrized_params = []

    def __init__(self, model, dim, *, method="ode", eps=0.5, interpolant: Interpolant | None = None,
                 ode_kwargs=None, sde_kwargs=None, validate_args=None):
        if not callable(model):
            raise TypeError(f"model must be a callable field (t, x) -> R^d, got {type(model).__name__}")
        dim = check_positive_int("dim", dim)
        check_choice("method", method, ("ode", "sde"))
        if method == "sde":
            check_positive("eps", eps, allow_zero=True)
            if interpolant is None or not interpolant.gaussian_base:
                raise ValueError("method='sde' needs interpolant=... one-sided (gaussian_base=True)")
        self.model = model
        self.method = method
        self.eps = eps
        self.interpolant = interpolant
        self.ode_kwargs = dict(ode_kwargs or {})
        self.sde_kwargs = dict(sde_kwargs or {})
        super().__init__(batch_shape=(), event_shape=(dim,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        d = self.event_shape[0]
        n = int(jnp.prod(jnp.asarray(sample_shape, dtype=int))) if sample_shape else 1
        k0, k1 = jax.random.split(key)
        x0 = jax.random.normal(k0, (n, d))
        if self.method == "ode":
            x = sample_ode(k1, self.model, x0, **self.ode_kwargs)
        else:
            x = sample_sde(k1, self.model, x0, self.eps, interpolant=self.interpolant, **self.sde_kwargs)
        return x.reshape(tuple(sample_shape) + (d,))

    def log_prob(self, value):
        value = jnp.asarray(value)
        d = self.event_shape[0]
        if value.shape[-1:] != (d,):
            raise ValueError(f"value must have trailing dimension {d}, got shape {value.shape}")
        batch = value.shape[:-1]
        kwargs = {k: v for k, v in self.ode_kwargs.items() if k in ("solver", "n_steps", "adaptive", "rtol", "atol")}
        lp = log_prob(self.model, value.reshape(-1, d), **kwargs)
        return lp.reshape(batch)
