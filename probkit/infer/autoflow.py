"""AutoFlow: a NumPyro autoguide whose posterior is any probkit normalizing flow."""

from __future__ import annotations

import warnings
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float
from numpyro import handlers
from numpyro.contrib.module import eqx_module
from numpyro.infer.autoguide import AutoContinuous
from numpyro.infer.initialization import init_to_uniform

from .._validate import check_choice, check_positive, check_positive_int
from ..flows import AbstractBijection, Affine, Chain, Flow, neural_spline_flow
from ..mixflows.reference import laplace_mode_and_hessian


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
#: Conditioner output scale of the default flow (see :class:`probkit.flows.MADE`): in
#: whitened coordinates the posterior is already close to ``N(0, I)`` and the flow only
#: refines it; in the raw coordinates it has further to go.
OUT_SCALE = {"laplace": 0.1, "none": 0.3}
INITS = ("auto", "laplace", "none")


class _Whiten(AbstractBijection):
    r"""Fixed dense affine map :math:`x = m + A y` (not trained: ``stop_gradient``).

    :math:`\log|\det J| = \log|\det A|`, stored.
    """

    loc: Float[Array, " D"]
    matrix: Float[Array, "D D"]
    log_det: Float[Array, ""]

    def transform_and_log_det(self, y):
        loc, a, ld = (lax.stop_gradient(v) for v in (self.loc, self.matrix, self.log_det))
        return loc + a @ y, ld

    def inverse_and_log_det(self, x):
        loc, a, ld = (lax.stop_gradient(v) for v in (self.loc, self.matrix, self.log_det))
        return jnp.linalg.solve(a, x - loc), -ld


def laplace_whitening(logdensity_fn, init, *, steps: int = 500, scale: float = 1.0):
    r"""``(m, A, log|det A|, exact)``: a Laplace fit ``N(m, A Aᵀ)`` of ``π`` on ``R^D``.

    ``m`` is the mode (L-BFGS from ``init``, at most ``steps`` iterations) and ``A Aᵀ = H⁻¹``
    with ``H = −∇² log π(m)``: ``A = L⁻ᵀ`` for the Cholesky factor ``H = L Lᵀ``. Where
    ``H`` is not positive definite (a saddle, a flat direction, a funnel's neck) the
    eigenvalues ``λ_i ≤ 10⁻⁸ max|λ|`` are replaced by ``1/scale²`` (no curvature: the plain
    start's width), ``A = V diag(λ^{-1/2})`` and ``exact`` is false. A non-finite mode or
    Hessian gives ``m = init``, ``A = scale · I``.
    """
    dim = init.shape[0]
    m, hess = laplace_mode_and_hessian(logdensity_fn, init, steps=steps)
    hess = 0.5 * (hess + hess.T)
    finite = bool(jnp.all(jnp.isfinite(m)) & jnp.all(jnp.isfinite(hess)))
    if not finite:
        return init, scale * jnp.eye(dim, dtype=init.dtype), dim * jnp.log(jnp.asarray(scale, init.dtype)), False
    chol = jnp.linalg.cholesky(hess)
    if bool(jnp.all(jnp.isfinite(chol))):
        a = jax.scipy.linalg.solve_triangular(chol, jnp.eye(dim, dtype=chol.dtype), lower=True).T
        return m, a, -jnp.sum(jnp.log(jnp.diag(chol))), True
    evals, evecs = jnp.linalg.eigh(hess)
    floor = 1e-8 * jnp.max(jnp.abs(evals))
    evals = jnp.where(evals > floor, evals, 1.0 / scale**2)
    return m, evecs * evals**-0.5, -0.5 * jnp.sum(jnp.log(evals)), False


class AutoFlow(AutoContinuous):
    r"""Autoguide :math:`q(z) = f_\#q_0` on the model's flattened unconstrained latent space.

    ``flow`` is any :class:`probkit.flows.Flow` of dimension ``D`` (the total size of
    the model's latent sites); by default a :func:`~probkit.flows.neural_spline_flow`
    (spline + conditional affine layers, :data:`DEFAULT_FLOW_KWARGS`) sized to the model
    is built from ``key`` when the guide first runs. All flow parameters are NumPyro
    params (``numpyro.contrib.module.eqx_module``), so ``SVI`` optimises them; samples
    are scored with the forward log-det, no inverse.

    **Start** (``init``). With ``"laplace"`` the guide first fits a Laplace
    approximation ``N(m, A Aᵀ)`` of the posterior on the unconstrained space
    (:func:`laplace_whitening`: the MAP by L-BFGS from ``init_loc_fn``'s point, ``A Aᵀ``
    the inverse of the negative Hessian there) and the flow acts on the whitened
    coordinates ``y = A⁻¹(z − m)``:

    .. math:: z = m + A\,(\mu + \sigma\odot f(u)), \qquad u \sim N(0, I),

    with ``m, A`` fixed, a learnable elementwise affine ``(μ, σ)`` starting at ``(0, 1)``
    and the flow ``f`` starting at the identity, so the initial guide *is* the Laplace
    fit and ``log q(z) = log q_f(y) − log|det A|``. Posterior scales of 10⁻³ next to
    scales of 10, or correlations of −0.99, then look like ``N(0, I)`` to the flow and
    to Adam. The whitening is kept only if its ELBO (``n_elbo`` draws) beats the plain
    start's, which it does not where the mode is a poor summary (Neal's funnel, whose
    "mode" is the neck). With ``"none"`` (the plain start) ``z = μ + σ ⊙ f(u)`` with
    ``(μ, σ)`` starting at ``init_loc_fn``'s point and ``init_scale``. ``"auto"`` (the
    default) is ``"laplace"`` for the default flow and ``"none"`` for a user's ``flow``.
    The chosen start is ``guide.init_kind`` (``"laplace"`` or ``"none"``), the two
    ELBOs ``guide.init_elbos``. The fit costs ``laplace_steps`` L-BFGS iterations, a
    dense ``D × D`` Hessian (``D`` gradient evaluations) and ``2 n_elbo`` log densities,
    once, when the guide first runs; it needs concrete model arguments (a guide first
    run inside ``jit`` starts plain, with a warning).

    The default flow's conditioners scale their outputs by :data:`OUT_SCALE` (0.1
    whitened, 0.3 plain): Adam moves every weight by about its learning rate per step,
    and unscaled spline parameters then overshoot at ``Adam(1e-2)``. With the scale the
    default guide converges under Adam 10⁻² and 10⁻³ alike.

    Models without latent sites get an empty guide (no sample sites; ``sample_posterior``
    gives the deterministic sites, ``{}`` if none), as an empty guide in NumPyro would.
    Discrete latent sites get NumPyro's own error.

    ``TraceMeanField_ELBO`` works but equals ``Trace_ELBO`` here: an AutoContinuous
    guide's model sites are ``Delta``s of one joint draw, which have no analytic KL,
    so NumPyro falls back to the Monte Carlo term (as for ``AutoMultivariateNormal``).
    ``RenyiELBO`` works (it needs only draws and ``log q``).

    :param model: a NumPyro model with continuous latent sites (no local latents).
    :param flow: a probkit ``Flow``; ``None`` for the default neural spline flow.
    :param key: PRNG key for the default flow's initial weights.
    :param prefix: name prefix of the guide's param sites.
    :param init_loc_fn: per-site initialisation (the L-BFGS start, or the centre of the plain start).
    :param init_scale: initial scale of the plain start's affine map.
    :param center: append the learnable elementwise affine map.
    :param flow_kwargs: keyword arguments for the default ``neural_spline_flow`` (override the defaults).
    :param init: ``"auto"``, ``"laplace"`` or ``"none"`` (see above).
    :param laplace_steps: L-BFGS iterations bound of the Laplace fit.
    :param n_elbo: draws estimating each start's ELBO.
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
        init: str = "auto",
        laplace_steps: int = 500,
        n_elbo: int = 256,
    ):
        if flow is not None:
            if not isinstance(flow, Flow):
                raise TypeError(f"flow must be a probkit.flows.Flow or None, got {type(flow).__name__}")
            _check_finite_params("flow", flow)
        check_positive("init_scale", init_scale)
        check_choice("init", init, INITS)
        self._laplace_steps = check_positive_int("laplace_steps", laplace_steps)
        self._n_elbo = check_positive_int("n_elbo", n_elbo)
        self._user_flow = flow
        self._key = jax.random.PRNGKey(0) if key is None else key
        self._init_scale = float(init_scale)
        self._center = bool(center)
        self._flow_kwargs = dict(flow_kwargs or {})
        self._init = ("laplace" if flow is None else "none") if init == "auto" else init
        self.init_kind: str | None = None
        self.init_elbos: dict[str, float] = {}
        self.flow: Flow | None = None
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)

    def _setup_prototype(self, *args, **kwargs):
        try:
            super()._setup_prototype(*args, **kwargs)  # NumPyro's own errors (discrete sites, local latents)
        except RuntimeError:
            if getattr(self, "latent_dim", None) != 0:
                raise
        if self.latent_dim == 0:  # an empty guide, as NumPyro's AutoDelta
            self.flow = None
            return
        dim = int(self.latent_dim)
        init = jnp.asarray(self._init_latent)
        if _concrete(init) and not bool(jnp.all(jnp.isfinite(init))):
            raise ValueError("init_loc_fn gave non-finite initial latent values")
        if self._user_flow is not None and self._user_flow.dim != dim:
            raise ValueError(
                f"flow dimension {self._user_flow.dim} does not match the model's latent size {dim} "
                "(total size of its unconstrained latent sites)"
            )
        kind, whiten = self._start(init, args, kwargs)
        flow = self._user_flow
        if flow is None:
            kw = {**DEFAULT_FLOW_KWARGS, "out_scale": OUT_SCALE[kind], **self._flow_kwargs}
            flow = neural_spline_flow(self._key, dim, **kw)
        if whiten is not None:
            parts = [flow.bijection] + ([Affine(jnp.zeros(dim, init.dtype), 1.0)] if self._center else []) + [whiten]
            flow = Flow(flow.base, Chain(parts))
        elif self._center:
            flow = Flow(flow.base, Chain([flow.bijection, Affine(init, self._init_scale)]))
        _check_finite_params("flow", flow)
        self.flow, self.init_kind = flow, kind

    def _start(self, init, args, kwargs):
        """``(kind, whitening bijection or None)``: the Laplace start if asked for and its ELBO wins."""
        self.init_elbos = {}
        if self._init == "none":
            return "none", None
        if not all(_concrete(x) for x in jax.tree.leaves((init, args, kwargs))):
            warnings.warn("AutoFlow: the guide is first run on traced values (inside jit), so it starts plain "
                          "(init='none') instead of at a Laplace fit", UserWarning, stacklevel=3)
            return "none", None
        potential = self._potential_fn
        unpack = self._unpack_latent

        def logdensity(z):
            return -potential(unpack(z))

        with handlers.block():
            m, a, log_det, _ = laplace_whitening(logdensity, init, steps=self._laplace_steps, scale=self._init_scale)
            key = jax.random.fold_in(self._key, 7)
            eps = jax.random.normal(key, (self._n_elbo, init.shape[0]), init.dtype)
            lp = jax.jit(jax.vmap(logdensity))
            gauss = -0.5 * jnp.sum(eps**2, axis=1)
            elbo = {
                "laplace": lp(m + eps @ a.T) - (gauss - log_det),
                "none": lp(init + self._init_scale * eps) - (gauss - init.shape[0] * jnp.log(self._init_scale)),
            }
        # a non-finite term (a draw outside where the model is defined) makes that start's ELBO -inf
        elbo = {k: float(jnp.where(jnp.all(jnp.isfinite(v)), jnp.mean(v), -jnp.inf)) for k, v in elbo.items()}
        self.init_elbos = elbo
        if not elbo["laplace"] > elbo["none"]:
            return "none", None
        return "laplace", _Whiten(m, a, log_det)

    def __call__(self, *args, **kwargs):
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        if self.latent_dim == 0:
            return {}
        return super().__call__(*args, **kwargs)

    def sample_posterior(self, rng_key, params, *args, sample_shape=(), **kwargs):
        if self.latent_dim == 0:  # the deterministic sites, {} if none
            sites = self._unpack_and_constrain(jnp.zeros((0,)), params)  # they depend on no latent
            return {k: jnp.broadcast_to(v, tuple(sample_shape) + jnp.shape(v)) for k, v in sites.items()}
        return super().sample_posterior(rng_key, params, *args, sample_shape=sample_shape, **kwargs)

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

