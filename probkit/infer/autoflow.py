"""AutoFlow: a NumPyro autoguide whose posterior is any probkit normalizing flow."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.contrib.module import eqx_module
from numpyro.infer.autoguide import AutoContinuous
from numpyro.infer.initialization import init_to_uniform

from .._validate import check_positive, check_positive_int
from ..flows import Affine, Chain, Flow, neural_spline_flow
from .logdensity import check_continuous


def _concrete(x) -> bool:
    """Whether ``x`` holds values (not a tracer inside ``jit``/``vmap``), so it can be checked eagerly."""
    return not isinstance(x, jax.core.Tracer)


def _check_finite_params(name: str, module) -> None:
    leaves = [x for x in jax.tree.leaves(eqx.filter(module, eqx.is_inexact_array)) if _concrete(x)]
    bad = [i for i, x in enumerate(leaves) if not bool(jnp.all(jnp.isfinite(x)))]
    if bad:
        raise ValueError(f"{name} has non-finite parameters (NaN or inf) in {len(bad)} of its {len(leaves)} arrays")


#: Default flow: 4 autoregressive layers, each a rational-quadratic spline (8 bins on
#: ``[-4, 4]``) followed by a conditional affine map, MADE conditioners of width 32.
DEFAULT_FLOW_KWARGS = dict(n_layers=4, n_bins=8, bound=4.0, width=32, depth=2, affine=True)


class AutoFlow(AutoContinuous):
    r"""Autoguide :math:`q(z) = f_\#q_0` on the model's flattened unconstrained latent space.

    ``flow`` is any :class:`probkit.flows.Flow` of dimension ``D`` (the total size of
    the model's latent sites); by default a :func:`~probkit.flows.neural_spline_flow`
    (spline + conditional affine layers, :data:`DEFAULT_FLOW_KWARGS`) sized to the model is built from ``key`` when the guide first runs. With
    ``center=True`` a learnable elementwise :class:`~probkit.flows.Affine` map,
    initialised at ``init_loc_fn``'s point with scale ``init_scale``, is applied
    after the flow. All flow parameters are NumPyro params (``numpyro.contrib.module.eqx_module``),
    so ``SVI`` optimises them; samples are scored with the forward log-det, no inverse.

    :param model: a NumPyro model with continuous latent sites (no local latents).
    :param flow: a probkit ``Flow``; ``None`` for the default neural spline flow.
    :param key: PRNG key for the default flow's initial weights.
    :param prefix: name prefix of the guide's param sites.
    :param init_loc_fn: per-site initialisation (the centre when ``center=True``).
    :param init_scale: initial scale of the centring affine map.
    :param center: append the centring affine map.
    :param flow_kwargs: keyword arguments for the default ``neural_spline_flow`` (override the defaults).
    """

    def __init__(
        self,
        model: Callable,
        flow: Flow | None = None,
        *,
        key: jax.Array | None = None,
        prefix: str = "auto",
        init_loc_fn: Callable = init_to_uniform,
        init_scale: float = 1.0,
        center: bool = True,
        flow_kwargs: dict | None = None,
    ):
        if flow is not None:
            if not isinstance(flow, Flow):
                raise TypeError(f"flow must be a probkit.flows.Flow or None, got {type(flow).__name__}")
            _check_finite_params("flow", flow)
        check_positive("init_scale", init_scale)
        self._user_flow = flow
        self._key = jax.random.PRNGKey(0) if key is None else key
        self._init_scale = float(init_scale)
        self._center = bool(center)
        self._flow_kwargs = dict(flow_kwargs or {})
        self.flow: Flow | None = None
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args, **kwargs):
        with handlers.block():
            check_continuous(self.model, args, kwargs)
        super()._setup_prototype(*args, **kwargs)
        dim = int(self.latent_dim)
        flow = self._user_flow
        if flow is None:
            flow = neural_spline_flow(self._key, dim, **{**DEFAULT_FLOW_KWARGS, **self._flow_kwargs})
        elif flow.dim != dim:
            raise ValueError(
                f"flow dimension {flow.dim} does not match the model's latent size {dim} "
                "(total size of its unconstrained latent sites)"
            )
        init = jnp.asarray(self._init_latent)
        if _concrete(init) and not bool(jnp.all(jnp.isfinite(init))):
            raise ValueError("init_loc_fn gave non-finite initial latent values")
        if self._center:
            flow = Flow(flow.base, Chain([flow.bijection, Affine(init, self._init_scale)]))
        _check_finite_params("flow", flow)
        self.flow = flow

    def _flow_module(self) -> Flow:
        return eqx_module(f"{self.prefix}_flow", self.flow)

    def _get_posterior(self):
        return self._flow_module().to_numpyro()

    def get_base_dist(self):
        return self.flow.base.to_numpyro()

    def get_flow(self, params: dict) -> Flow:
        """The fitted :class:`~probkit.flows.Flow` (unconstrained space) for ``params`` from ``SVI``."""
        return handlers.substitute(self._flow_module, params)()

    def quantiles(self, params: dict, quantiles, *, key: jax.Array | None = None, num_samples: int = 4000):
        """Per-coordinate quantiles of the constrained posterior, from ``num_samples`` flow draws.

        Estimated on the unconstrained space and mapped through the site transforms,
        which is exact for elementwise monotone supports (real, positive, interval).
        """
        num_samples = check_positive_int("num_samples", num_samples)
        q = np.asarray(quantiles, dtype=float)
        if np.any((q < 0) | (q > 1)):
            raise ValueError(f"quantiles must lie in [0, 1], got {quantiles!r}")
        key = jax.random.PRNGKey(0) if key is None else key
        draws = self.get_flow(params).sample(key, (num_samples,))
        latent = jnp.quantile(draws, jnp.asarray(q, draws.dtype), axis=0)
        return self._unpack_and_constrain(latent, params)

    def median(self, params: dict, *, key: jax.Array | None = None, num_samples: int = 4000):
        """Per-coordinate posterior median (see :meth:`quantiles`)."""
        return self.quantiles(params, 0.5, key=key, num_samples=num_samples)


__all__ = ["AutoFlow"]

