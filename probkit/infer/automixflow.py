r"""``AutoMixFlow``: a NumPyro autoguide whose posterior is a MixFlow on the model's potential.

The MixFlow (:class:`probkit.mixflows.MixFlow`) lives on the model's flat
unconstrained latent space, targeting ``logdensity_fn`` from
:func:`~probkit.infer.model_logdensity`.

**Fitting.** The MixFlow's marginal density on ``z`` has no closed form (only the
augmented density on ``(z, ρ, u)`` does), and its parameters are not trained by
gradient steps on NumPyro's ELBO. :meth:`AutoMixFlow.fit` (1) builds a Gaussian reference ``q0``: with
``reference="auto"`` (the default) both a full-covariance Laplace approximation at
the MAP (:func:`~probkit.mixflows.laplace_reference`) and a mean-field ADVI fit
(:func:`~probkit.mixflows.fit_gaussian_reference`), keeping the one with the higher
ELBO ``E_{q0}[log π − log q0]`` (:func:`~probkit.mixflows.reference_elbo`), which is
the Laplace fit on near-Gaussian posteriors and ADVI where the mode is a poor summary
(funnels, bananas, hierarchical scales); ``"laplace"`` (mean-field, marginal
standard deviations), ``"laplace-full"`` and ``"advi"`` force one; (2) preconditions
the dynamics (``metric="auto"``): a full-covariance reference ``N(μ, L Lᵀ)`` whitens
them, ``x = μ + L y`` (a dense mass matrix, :class:`~probkit.mixflows.Preconditioner`),
with the scalar step ``step_size`` in whitened units, so that a posterior with
correlations of −0.99 mixes as fast as an isotropic one; a mean-field reference sets
the per-coordinate step ``ε_i = step_size × c_i`` with ``c_i`` its *conditional*
standard deviation: ``1/sqrt(−∂²log π/∂z_i²)`` at the mode for the Laplace fits (the
reference scale where that curvature is not positive) and ADVI's ``σ_i``, which solves
``σ_i⁻² = E_{q0}[−∂²log π/∂z_i²]`` (the curvature averaged over ``q0``, robust where it
varies, as in a funnel's neck). ``metric="diagonal"`` uses the conditional-sd steps
for a full-covariance reference too (the behaviour before the dense metric); and
(3) optionally tunes ``ε`` and the reference by maximising MixFlow's own unbiased
augmented ELBO (``steps > 0``). ``fit`` returns a NumPyro
:class:`~numpyro.infer.svi.SVIRunResult` ``(params={}, state=None, losses)``: the
guide holds no NumPyro parameters, and ``losses`` are the negative ELBO estimates of
step (3) (empty when ``steps=0``).

**Under SVI.** The first run of an unfitted guide with the model's arguments
(``SVI.init``, ``Predictive``, ``guide(*args)``; concrete values, not inside ``jit``)
calls ``fit`` with its defaults (the key from the enclosing ``seed`` handler), so
``SVI(model, AutoMixFlow(model), optim, Trace_ELBO()).run(...)`` works as with any
autoguide. Because SVI evaluates the guide's density, which runs the flow backwards,
that first fit shortens the flow (``guide.n_flow_steps``) to the longest whose inverse
returns reference draws to within :data:`~probkit.mixflows.ROUND_TRIP_TOL` (rounding of
the uncorrected dynamics grows with the flow's length; see ``MixFlow.check_round_trip``).
SVI then has no parameter to train: its losses are unbiased estimates of
MixFlow's augmented ``−ELBO`` (the guide's draw carries its momentum and ``u`` as
NumPyro ``intermediates``, so ``log q`` is the exact augmented density, one backward
flow run per draw). Call ``fit`` yourself to choose the reference or to tune
the step size by the sound augmented ELBO. A model's own ``numpyro.param`` sites, which
SVI learns, are fixed in the MixFlow at their values when it was fitted: SVI's steps
use it as fitted, and ``sample_posterior`` / ``median`` / ``quantiles`` given ``params``
with other values of them refit a guide fitted on first use there and raise for one
fitted by ``fit`` (its draws would come from a stale posterior).

**Using the fitted guide.** ``guide.sample_posterior(key, params, sample_shape=...)``
(``params`` may be ``{}`` or ``fit``'s ``.params``), ``numpyro.infer.Predictive(model,
guide=guide, ...)``, ``guide.median(params)`` and ``guide.quantiles(params, qs)`` (Monte
Carlo, from ``num_samples`` draws). ``sample_posterior`` reuses trajectories: with
``draws_per_trajectory="auto"`` each reference draw gives ``m = (N − B) // 10`` states
10 map steps apart (see :meth:`probkit.mixflows.MixFlow.sample`), every one an exact
draw of the MixFlow, correlated within a trajectory like MCMC draws 10 steps apart and
independent across trajectories; ``draws_per_trajectory=1`` gives i.i.d. draws at
``m`` times the cost. The ``log_prob`` of the guide's latent distribution is the exact
augmented density given the draw's ``intermediates`` (as in the guide's own trace) and
otherwise MixFlow's importance-sampling estimate of the marginal (see
:meth:`MixFlow.log_prob`); both run the map backwards and warn (once per fit) when
float32 rounding makes that inverse drift.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro import handlers
from numpyro.distributions import Distribution, constraints
from numpyro.infer.autoguide import AutoContinuous
from numpyro.infer.initialization import init_to_median
from numpyro.infer.svi import SVIRunResult
from numpyro.primitives import _PYRO_STACK

from .._autodiff import hessian
from .._checkpoint import check_checkpoint_path
from .._validate import check_choice, check_positive, check_positive_int
from ..mixflows import (
    ROUND_TRIP_TOL,
    FullRankGaussianReference,
    MixFlow,
    Preconditioner,
    fit_gaussian_reference,
    laplace_reference,
    reference_elbo,
)
from ..mixflows._checks import check_burn_in, check_draws_per_trajectory
from ..mixflows.momentum import as_momentum
from .logdensity import model_logdensity

REFERENCES = ("auto", "laplace", "laplace-full", "advi")
METRICS = ("auto", "diagonal")
SPACING = 10  # map steps between the draws of one trajectory under draws_per_trajectory="auto"


class _MixFlowLatent(Distribution):
    """The MixFlow as a NumPyro distribution on the guide's flat latent vector."""

    support = constraints.real_vector

    def __init__(self, flow: MixFlow, perm: jax.Array, draws_per_trajectory: int = 1, n_marginal: int = 64,
                 before_log_prob=None):
        self.flow, self.perm, self.n_marginal = flow, perm, n_marginal
        self.draws_per_trajectory, self.before_log_prob = draws_per_trajectory, before_log_prob
        self.inv_perm = jnp.argsort(perm)
        super().__init__(batch_shape=(), event_shape=(flow.dim,))

    def sample(self, key, sample_shape=()):
        n = max(int(math.prod(sample_shape)), 1)
        with handlers.block():  # the potential runs the model: hide its sites from outer handlers
            z = self.flow.sample(key, n, draws_per_trajectory=min(self.draws_per_trajectory, n))[:, self.perm]
        return z.reshape(tuple(sample_shape) + (self.flow.dim,))

    def sample_with_intermediates(self, key, sample_shape=()):
        """A draw and its augmentation ``[ρ, u]``, so that :meth:`log_prob` can be exact (as under SVI)."""
        n = max(int(math.prod(sample_shape)), 1)
        with handlers.block():
            x, rho, u = self.flow.sample_augmented(key, n)
        shape = tuple(sample_shape)
        return (x[:, self.perm].reshape(shape + (self.flow.dim,)),
                [rho.reshape(shape + (self.flow.dim,)), u.reshape(shape)])

    def log_prob(self, value, intermediates=None):
        r"""With the draw's ``intermediates`` ``[ρ, u]``: the exact ``log q_N(x, ρ, u) − log m(ρ)``, whose
        ELBO is MixFlow's sound augmented one; without: the importance-sampling estimate of ``log q_N(x)``."""
        if self.before_log_prob is not None:
            self.before_log_prob()
        x = value[..., self.inv_perm]
        with handlers.block():
            if intermediates:
                rho, u = intermediates
                log_m = jnp.sum(self.flow.momentum.log_prob(rho), axis=-1)
                return self.flow.log_prob_augmented(x, rho, u) - log_m
            return self.flow.log_prob(x, n_samples=self.n_marginal, check=self.before_log_prob is None)


def _same(a, b) -> bool:
    """Pytrees with equal structure and values (traced values count as the same: nothing to compare)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if any(isinstance(x, jax.core.Tracer) for x in la + lb):
        return True
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(np.shape(x) == np.shape(y) and np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
               for x, y in zip(la, lb))


_NOT_FITTED = (
    "AutoMixFlow has no fitted MixFlow yet: call guide.fit(key, *model_args, **model_kwargs), or run the "
    "guide once with the model's arguments (SVI.init, Predictive, guide(*model_args)), which fits it with "
    "fit's defaults; then use guide.sample_posterior(key, {}, sample_shape=...), guide.median({}), "
    "guide.quantiles({}, qs) or Predictive(model, guide=guide, params={}, num_samples=...)"
)


class AutoMixFlow(AutoContinuous):
    r"""NumPyro guide: a MixFlow (Xu, Chen, Campbell 2023) on the unconstrained latent space.

    ``n_flow_steps`` (``N``, default 500), ``n_leapfrog`` (10), ``momentum``
    (``"laplace"``), ``burn_in`` (0) are passed to :class:`~probkit.mixflows.MixFlow`;
    ``step_size`` (0.3) is *relative*: in whitened units under a full-covariance
    reference, else times the reference's conditional standard deviation (see the module
    docstring; 0.2–0.5 works on the bundled posteriors). ``metric``: ``"auto"`` (dense
    whitening by a full-covariance reference) or ``"diagonal"``.
    ``draws_per_trajectory``: ``"auto"`` (``(N − B) // 10`` correlated draws per
    trajectory in ``sample_posterior``, ``median`` and ``quantiles``) or an integer
    (1: i.i.d.). Every argument is checked here, before any fitting.

    Prefer long flows: a trajectory of ``N`` steps forgets its reference draw only
    gradually. With the defaults and ``reference="auto"``, at NUTS's gradient budget
    (reference fit included), the median sliced Wasserstein distance relative to NUTS
    over seeds 0–9 / 10–19 was 1.09× / 0.91× on a banana, 1.10× / 1.04× on eight
    schools, 0.55× / 0.59× on a funnel (ADVI references); with full-covariance Laplace
    references and the dense metric, over seeds 0–4, 0.48× on kidiq (0.66× with the
    diagonal metric) and 0.56× on a regression with posterior correlation −0.998 (2.01×
    diagonal), with no failed run (``benchmarks/results/mixflows.md``). Call :meth:`fit`
    with the model's arguments before sampling, or let the first run of the guide fit it
    with the defaults (see the module docstring for what SVI does with it).
    """

    def __init__(
        self,
        model,
        *,
        n_flow_steps: int = 500,
        n_leapfrog: int = 10,
        step_size: float = 0.3,
        momentum: str = "laplace",
        burn_in: int = 0,
        metric: str = "auto",
        draws_per_trajectory: int | str = "auto",
        prefix: str = "auto",
        init_loc_fn=init_to_median(num_samples=15),
    ):
        self.n_flow_steps = check_positive_int("n_flow_steps", n_flow_steps)
        self.n_leapfrog = check_positive_int("n_leapfrog", n_leapfrog)
        if np.ndim(step_size) != 0:
            raise ValueError(f"step_size must be a positive scalar (a relative step), got shape {np.shape(step_size)}")
        check_positive("step_size", step_size)
        self.step_size = float(step_size)
        as_momentum(momentum)
        self.momentum = momentum
        self.burn_in = check_burn_in(burn_in, self.n_flow_steps)
        check_choice("metric", metric, METRICS)
        self.metric = metric
        width = self.n_flow_steps - self.burn_in
        if draws_per_trajectory != "auto":
            check_draws_per_trajectory(draws_per_trajectory, width)
        self.draws_per_trajectory = draws_per_trajectory
        self.mixflow: MixFlow | None = None
        self.reference = None
        self.reference_kind: str | None = None
        self.reference_elbos: dict[str, float] = {}
        self.reference_grad_evals = 0
        self._perm = None
        self._density_checked = False
        self._fitted_on = None  # (args, kwargs, model parameter values) of the fit
        self._auto_fitted = False  # fitted on first use, with fit's defaults
        self._pending_params = {}
        super().__init__(model, prefix=prefix, init_loc_fn=init_loc_fn)

    def _draws_per_trajectory(self, override=None) -> int:
        m = self.draws_per_trajectory if override is None else override
        width = self.n_flow_steps - self.burn_in
        return max(1, width // SPACING) if m == "auto" else check_draws_per_trajectory(m, width)

    def fit(
        self,
        key,
        *args,
        steps: int = 0,
        reference: str = "auto",
        reference_steps: int = 1000,
        advi_samples: int = 4,
        n_elbo: int = 1000,
        optimizer=None,
        n_samples: int = 4,
        progress_bar: bool = True,
        checkpoint_path=None,
        checkpoint_every: int = 100,
        **kwargs,
    ) -> SVIRunResult:
        """Build and tune the MixFlow for ``model(*args, **kwargs)``.

        Returns ``SVIRunResult(params={}, state=None, losses)``: the guide keeps its
        state itself (``guide.mixflow``), and ``losses`` holds ``−ELBO`` of each of the
        ``steps`` MixFlow ELBO steps (empty if ``steps=0``, the default).
        ``reference_steps`` bounds the L-BFGS iterations of the Laplace fit and sets
        the ADVI steps (``advi_samples`` draws each); ``n_elbo`` draws estimate each
        candidate's ELBO under ``reference="auto"``. The candidates' ELBOs are kept in
        ``guide.reference_elbos`` and the chosen one's name in ``guide.reference_kind``;
        ``guide.reference_grad_evals`` bounds the gradient evaluations the reference and
        step sizes cost (L-BFGS iterations at their bound, Hessian columns, ADVI steps ×
        draws, and the ELBO draws, log densities counted as gradients).
        ``checkpoint_path`` / ``checkpoint_every`` checkpoint the ELBO steps
        (:meth:`MixFlow.fit`). Every argument is checked before any work starts.
        """
        check_choice("reference", reference, REFERENCES)
        steps = check_positive_int("steps", steps, minimum=0)
        reference_steps = check_positive_int("reference_steps", reference_steps)
        advi_samples = check_positive_int("advi_samples", advi_samples)
        n_elbo = check_positive_int("n_elbo", n_elbo)
        n_samples = check_positive_int("n_samples", n_samples)
        check_positive_int("checkpoint_every", checkpoint_every)
        check_checkpoint_path("checkpoint_path", checkpoint_path)
        k_ref, k_fit, k_proto = jax.random.split(key, 3)
        model = handlers.substitute(self.model, data=self._pending_params) if self._pending_params else self.model
        logdensity_fn, init, _ = model_logdensity(model, *args, key=k_proto, **kwargs)
        builders = {
            "laplace": lambda: laplace_reference(logdensity_fn, init, steps=reference_steps),
            "laplace-full": lambda: laplace_reference(logdensity_fn, init, steps=reference_steps, covariance="full"),
            "advi": lambda: fit_gaussian_reference(k_ref, logdensity_fn, init, steps=reference_steps,
                                                   n_samples=advi_samples, progress_bar=progress_bar),
        }
        dim = logdensity_fn.dim
        cost = {"laplace": reference_steps + dim, "laplace-full": reference_steps + dim,
                "advi": reference_steps * advi_samples}
        if reference == "auto":
            candidates, elbos, errors, grads = {}, {}, [], 0
            for name in ("laplace-full", "advi"):
                grads += cost[name]
                try:
                    candidates[name] = builders[name]()
                except ValueError as err:  # e.g. no negative-definite Hessian at the mode
                    errors.append(f"{name}: {err}")
                    continue
                elbos[name] = float(reference_elbo(jax.random.fold_in(k_ref, 1), candidates[name],
                                                   logdensity_fn, n_elbo))
                grads += n_elbo
            if not candidates:
                raise ValueError("AutoMixFlow.fit: no reference could be built (" + "; ".join(errors) + ")")
            kind = max(elbos, key=elbos.get)
            ref = candidates[kind]
        else:
            kind, ref, elbos, grads = reference, builders[reference](), {}, cost[reference]
        preconditioner = None
        if self.metric == "auto" and isinstance(ref, FullRankGaussianReference):
            # whitened dynamics: the reference's own covariance is the (dense) inverse mass matrix
            preconditioner, step = Preconditioner.from_reference(ref), self.step_size
        elif kind == "advi":  # ADVI's σ_i solves σ_i⁻² = E_q0[−∂²log π/∂z_i²]: curvature averaged over q0
            step = self.step_size * ref.scale
        else:  # the Laplace fit's conditional sd, from the curvature at the mode
            curvature = -jnp.diag(hessian(logdensity_fn, ref.mean))
            step = self.step_size * jnp.where(curvature > 0, 1 / jnp.sqrt(jnp.abs(curvature)), ref.scale)
            grads += dim
        flow = MixFlow(
            logdensity_fn, dim, n_flow_steps=self.n_flow_steps, n_leapfrog=self.n_leapfrog,
            step_size=step, reference=ref, momentum=self.momentum, burn_in=self.burn_in,
            preconditioner=preconditioner,
        )
        history = np.empty(0)
        if steps:
            flow, history = flow.fit(k_fit, steps=steps, optimizer=optimizer, n_samples=n_samples,
                                     progress_bar=progress_bar, checkpoint_path=checkpoint_path,
                                     checkpoint_every=checkpoint_every)
        if self.prototype_trace is None:
            handlers.seed(self._setup_prototype, rng_seed=k_proto)(*args, **kwargs)
        # model_logdensity ravels sites in sorted-name order, AutoContinuous in model order
        index = logdensity_fn.unravel(jnp.arange(logdensity_fn.dim, dtype=jnp.float32))
        self._perm = jnp.concatenate([jnp.ravel(index[name]) for name in self._init_locs]).astype(int)
        self.mixflow, self.reference = flow, ref
        self.reference_kind, self.reference_elbos, self.reference_grad_evals = kind, elbos, int(grads)
        self._density_checked = False
        # what the MixFlow targets: the posterior for these model arguments and parameter values
        params = {name: site["value"] for name, site in self.prototype_trace.items() if site["type"] == "param"}
        self._fitted_on = (args, kwargs, {**params, **self._pending_params})
        self._auto_fitted, self._pending_params = False, {}
        return SVIRunResult(params={}, state=None, losses=jnp.asarray(-history))

    def _check_density_once(self) -> None:
        """Once per fit (outside any trace), warn if the inverse map the density uses drifts."""
        if not self._density_checked and not math.isnan(self.mixflow.check_round_trip()):
            self._density_checked = True

    def __call__(self, *args, **kwargs):
        """Sample the latent sites from the MixFlow, fitting it first (``fit`` with defaults) if not yet fitted."""
        if self.mixflow is None:
            self._fit_on_first_use(args, kwargs)
        return super().__call__(*args, **kwargs)

    def _fit_on_first_use(self, args, kwargs, params=None, key=None) -> None:
        """``fit(key, *args, **kwargs)`` with its defaults, as SVI.init or Predictive first run the guide.

        The key is the guide's PRNG stream under a ``seed`` handler (SVI's), else ``PRNGKey(0)``;
        the outer handlers (SVI's trace) do not see the fit's own model runs. ``params``: the
        model's parameter values to fit at (default: the model's own initial values).
        """
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs, params))):
            raise RuntimeError(_NOT_FITTED + " (it was first run on traced values, inside jit, where it cannot be fitted)")
        if key is None:
            seeded = any(isinstance(h, handlers.seed) for h in _PYRO_STACK)
            key = numpyro.prng_key() if seeded else jax.random.PRNGKey(0)
        pending = dict(params or {})
        self._pending_params = pending
        with handlers.block():
            self.fit(key, *args, progress_bar=False, **kwargs)
            shorter = self._reliable_length()
            if shorter is not None:  # SVI needs the density: refit with a flow whose inverse is reliable
                self.n_flow_steps = shorter
                if self.draws_per_trajectory != "auto":
                    self.draws_per_trajectory = min(self.draws_per_trajectory, shorter - self.burn_in)
                self._pending_params = pending
                self.fit(key, *args, progress_bar=False, **kwargs)
        self._auto_fitted = True

    def _reliable_length(self) -> int | None:
        """``None`` if the fitted flow's ``N − 1``-step inverse is reliable, else the longest ``N`` that is.

        Reliable: 32 reference draws return to within
        :data:`~probkit.mixflows.ROUND_TRIP_TOL` reference sd (the check that
        ``log_prob`` runs uses 8 other draws). Round trips are
        measured at 16 lengths spread geometrically over ``1..N − 1``; the result is at
        least ``burn_in + 2``.
        """
        n = self.n_flow_steps
        if n <= 2:
            return None
        ks = np.unique(np.geomspace(1, n - 1, 16).astype(int))
        _, drift = self.mixflow.round_trip_error(jax.random.PRNGKey(1), 32, ks, relative=True)
        ok = drift <= ROUND_TRIP_TOL
        if ok[-1]:
            return None
        good = ks[: np.argmax(~ok)]  # the lengths before the first unreliable one
        return max(int(good[-1]) + 1 if good.size else 2, self.burn_in + 2)

    def _check_fitted_on(self, params, where: str) -> None:
        """The MixFlow targets the posterior at the model parameter values it was fitted at.

        Where ``params`` (e.g. SVI's, which learns the model's ``numpyro.param`` sites) holds a
        model parameter whose concrete value differs from the fit's, a guide fitted on first
        use refits itself there (fit's defaults, the fit's model arguments) and one fitted by
        ``fit`` raises: its draws would come from a stale posterior.
        """
        if self._fitted_on is None or not params:
            return
        fit_args, fit_kwargs, fit_params = self._fitted_on
        changed = [name for name in fit_params if name in params and not _same(params[name], fit_params[name])]
        if not changed:
            return
        if self._auto_fitted:
            at = {**fit_params, **{k: params[k] for k in fit_params if k in params}}
            self._fit_on_first_use(fit_args, fit_kwargs, at, key=jax.random.PRNGKey(0))
            return
        raise ValueError(
            f"AutoMixFlow.{where}: params holds model parameter values ({', '.join(map(repr, changed))}) other "
            "than those the MixFlow was fitted at, so its draws would come from a stale posterior. Refit it at "
            "them: AutoMixFlow(handlers.substitute(model, data=params)).fit(key, *model_args), or pass params "
            "without the model's parameters"
        )

    def _get_posterior(self, draws_per_trajectory=None):
        if self.mixflow is None:
            raise RuntimeError(_NOT_FITTED)
        return _MixFlowLatent(self.mixflow, self._perm, self._draws_per_trajectory(draws_per_trajectory),
                              before_log_prob=self._check_density_once)

    def sample_posterior(self, rng_key, params, *args, sample_shape=(), draws_per_trajectory=None, **kwargs):
        """Draws of the latent sites, ``sample_shape`` of them (``params`` may be ``{}`` or ``None``).

        ``draws_per_trajectory`` overrides the guide's setting for this call (1: i.i.d.;
        see the module docstring for the correlation of the default's draws).
        """
        params = {} if params is None else params
        self._check_fitted_on(params, "sample_posterior")
        latent = self._get_posterior(draws_per_trajectory).sample(rng_key, tuple(sample_shape))
        if not isinstance(latent, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(latent))):
            bad = int(jnp.sum(~jnp.all(jnp.isfinite(latent.reshape(-1, latent.shape[-1])), axis=-1)))
            raise ValueError(
                f"AutoMixFlow.sample_posterior: {bad} of {latent.size // latent.shape[-1]} draws are not finite: "
                f"the uncorrected Hamiltonian dynamics diverged (reference {self.reference_kind!r}, relative "
                f"step_size {self.step_size}). Refit with a smaller step_size, another reference or more "
                "reference_steps"
            )
        return self._unpack_and_constrain(latent, params)

    def _latent_quantiles(self, qs, num_samples, rng_key):
        num_samples = check_positive_int("num_samples", num_samples)
        qs = jnp.asarray(qs, jnp.result_type(float))
        if not bool(jnp.all((qs >= 0) & (qs <= 1))):
            raise ValueError(f"quantiles must lie in [0, 1], got {np.asarray(qs)!r}")
        key = jax.random.PRNGKey(0) if rng_key is None else rng_key
        z = self._get_posterior().sample(key, (num_samples,))
        return jnp.quantile(z, qs, axis=0)

    def median(self, params, *, num_samples: int = 4000, rng_key=None):
        """Per-coordinate median of ``num_samples`` draws of the unconstrained latent, constrained.

        As NumPyro's autoguides do, the quantile is taken on the unconstrained latent and
        mapped through the sites' bijections (for elementwise monotone bijections this
        is the constrained marginal quantile). A Monte Carlo estimate from the
        ``draws_per_trajectory`` setting's draws (default key ``PRNGKey(0)``).
        """
        self._check_fitted_on(params, "median")
        return self._unpack_and_constrain(self._latent_quantiles(0.5, num_samples, rng_key), params)

    def quantiles(self, params, quantiles, *, num_samples: int = 4000, rng_key=None):
        """Per-coordinate ``quantiles`` (leading axis) of the latent sites; Monte Carlo, as :meth:`median`."""
        self._check_fitted_on(params, "quantiles")
        return self._unpack_and_constrain(self._latent_quantiles(quantiles, num_samples, rng_key), params)
