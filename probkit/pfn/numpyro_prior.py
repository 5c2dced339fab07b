r"""Any NumPyro regression model as a PFN prior.

``model(x, y=None)`` must have exactly one observed sample site (the one that
receives ``y``). A dataset is ``x`` from the x-sampler and ``y`` from the model's
prior predictive at ``x``: every latent site is drawn from its prior, then the
observed site is drawn given them (as ``numpyro.infer.Predictive`` does).
"""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray
from numpyro import handlers

from .prior import AbstractPrior, resolve_x_sampler


def _observed_site(model: Callable, x) -> str:
    """Name of the single site that becomes observed when ``y`` is passed."""
    y = jnp.zeros(x.shape[0], x.dtype)
    trace = handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(x, y=y)
    names = [n for n, s in trace.items() if s["type"] == "sample" and s["is_observed"]]
    if len(names) != 1:
        raise ValueError(
            f"model must have exactly one observed site receiving y (model(x, y=y)); found {names}"
        )
    return names[0]


class NumPyroPrior(AbstractPrior):
    """Prior predictive of a NumPyro model ``model(x, y=None)`` (see module docstring).

    ``obs_site`` names the site giving ``y``; found automatically when omitted.
    """

    model: Callable = eqx.field(static=True)
    x_sampler: Any
    x_dim: int = eqx.field(static=True)
    obs_site: str = eqx.field(static=True)

    def __init__(self, model: Callable, x_sampler=None, *, x_dim: int = 1, obs_site: str | None = None):
        if not callable(model):
            raise TypeError(f"model must be a NumPyro model callable as model(x, y=None), got {model!r}")
        self.model = model
        self.x_sampler, self.x_dim = resolve_x_sampler(x_sampler, x_dim)
        x_probe = self.x_sampler(jax.random.PRNGKey(0), 3)
        site = _observed_site(model, x_probe) if obs_site is None else obs_site
        trace = handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(x_probe, y=None)
        if site not in trace:
            raise ValueError(f"obs_site {site!r} is not a site of the model; sites: {list(trace)}")
        if jnp.shape(trace[site]["value"]) != (3,):
            raise ValueError(
                f"the observed site {site!r} must have shape (n_points,) given x of n_points rows, "
                f"got {jnp.shape(trace[site]['value'])} for 3 rows"
            )
        self.obs_site = site

    def sample_one(self, key: PRNGKeyArray, n_points: int):
        k_x, k_model = jax.random.split(key)
        x = self.x_sampler(k_x, n_points)
        trace = handlers.trace(handlers.seed(self.model, k_model)).get_trace(x, y=None)
        y = jnp.asarray(trace[self.obs_site]["value"], x.dtype)
        return x, y
