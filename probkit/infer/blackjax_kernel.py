"""blackjax samplers as NumPyro MCMC kernels."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.mcmc import MCMCKernel
from numpyro.util import is_prng_key

from .._validate import check_choice, check_positive
from ._blackjax_algorithms import ALGORITHMS, INTEGRATORS, AbstractAlgorithm
from .logdensity import model_logdensity

__all__ = ["BlackJAXKernel", "BlackJAXState"]


class BlackJAXState(NamedTuple):
    """State of :class:`BlackJAXKernel` (one chain; a leading chain axis when vectorized).

    - ``i``: transitions done (warm-up included); ``z``: unconstrained latent sites;
    - ``sampler_state``: blackjax's state on the flat position; ``params``: tuned parameters;
      ``adapt_state``: blackjax's window-adaptation state flattened to one vector
      (``None`` if not adapted online);
    - ``accept_prob``, ``num_steps`` (integration steps), ``diverging``,
      ``energy`` (NaN where undefined), ``num_grad_evals``: of the last transition;
    - ``warmup_grad_evals``: gradient evaluations spent before the first
      transition (initial gradient, initial optimisation, MCLMC tuner);
    - ``rng_key``.
    """

    i: Any
    z: Any
    sampler_state: Any
    params: Any
    adapt_state: Any
    accept_prob: Any
    num_steps: Any
    diverging: Any
    energy: Any
    num_grad_evals: Any
    warmup_grad_evals: Any
    rng_key: Any


_OPTIONS = {
    "nuts": ("max_num_doublings", "target_accept", "dense_mass", "integrator"),
    "hmc": ("num_integration_steps", "target_accept", "dense_mass", "integrator"),
    "mala": ("target_accept", "dense_mass"),
    "barker": ("target_accept", "dense_mass"),
    "mclmc": ("integrator", "diagonal_preconditioning", "frac_tune"),
    "adjusted_mclmc": ("integrator", "target_accept", "diagonal_preconditioning", "frac_tune"),
}


def _adam_to_mode(logdensity_fn: Callable, position, num_steps: int, lr: float = 0.5):
    r"""``num_steps`` Adam steps (cosine-decayed rate ``lr``) towards the mode of ``logdensity_fn``.

    Adam's per-coordinate normalisation makes it insensitive to the huge,
    badly scaled gradients far in the tails; exactly one gradient per step.
    A non-finite result falls back to the starting point.
    """
    import optax

    opt = optax.adam(optax.cosine_decay_schedule(lr, num_steps, alpha=1e-3))
    grad_fn = jax.grad(lambda z: -logdensity_fn(z))

    def body(carry, _):
        z, state = carry
        updates, state = opt.update(grad_fn(z), state, z)
        return (optax.apply_updates(z, updates), state), None

    (z, _), _ = jax.lax.scan(body, (position, opt.init(position)), None, length=num_steps)
    ok = jnp.all(jnp.isfinite(z)) & jnp.isfinite(logdensity_fn(z))
    return jnp.where(ok, z.astype(position.dtype), position)


def _args_key(model_args, model_kwargs):
    """A hashable fingerprint of the model arguments (arrays by shape, dtype and content)."""

    def leaf(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            arr = np.asarray(x)
            return (arr.shape, str(arr.dtype), hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest())
        try:
            hash(x)
            return x
        except TypeError:
            return repr(x)

    flat, treedef = jax.tree.flatten((tuple(model_args), dict(model_kwargs)))
    return (str(treedef), tuple(leaf(x) for x in flat))


def _make_algorithm(algorithm: str, options: dict) -> AbstractAlgorithm:
    if "target_accept" in options:
        ta = options["target_accept"]
        if not (isinstance(ta, (int, float)) and 0.0 < ta < 1.0):
            raise ValueError(f"target_accept must be in (0, 1), got {ta!r}")
    if "integrator" in options:
        check_choice("integrator", options["integrator"], tuple(INTEGRATORS))
    for name in ("max_num_doublings", "num_integration_steps"):
        if name in options and not (isinstance(options[name], int) and options[name] >= 1):
            raise ValueError(f"{name} must be a positive int, got {options[name]!r}")
    return ALGORITHMS[algorithm](**options)


class BlackJAXKernel(MCMCKernel):
    r"""A blackjax sampling algorithm as a :class:`numpyro.infer.mcmc.MCMCKernel`.

    ``BlackJAXKernel(model, "nuts")`` is used like ``numpyro.infer.NUTS(model)``::

        mcmc = MCMC(BlackJAXKernel(model, "nuts"), num_warmup=500, num_samples=500,
                    num_chains=4, chain_method="vectorized")
        mcmc.run(key, **data, extra_fields=("accept_prob", "num_steps", "energy"))

    The sampler targets ``log p(z)`` on the flat unconstrained space of
    :func:`~probkit.infer.model_logdensity`; ``state.z`` holds the unconstrained
    sites and :meth:`postprocess_fn` maps them to constrained values.

    **Algorithms** (``algorithm=``): ``"nuts"``, ``"hmc"`` (option
    ``num_integration_steps``), ``"mala"``, ``"barker"``, ``"mclmc"``,
    ``"adjusted_mclmc"``. Tuned parameters may be fixed through ``**params``:
    ``step_size``, ``inverse_mass_matrix``, ``L`` (MCLMC);
    the remaining keywords are algorithm options (``target_accept``,
    ``max_num_doublings``, ``dense_mass``, ``integrator``,
    ``diagonal_preconditioning``, ``frac_tune``).

    **Warm-up** (``adaptation="auto"``, ``num_warmup > 0``). NUTS, HMC, MALA
    and Barker are tuned by blackjax's Stan window adaptation
    (``blackjax.adaptation.window_adaptation.base``: step size by dual
    averaging, inverse mass matrix over doubling windows; diagonal for
    NUTS/HMC, dense for MALA/Barker by default) updated after each of
    NumPyro's warm-up transitions, as NumPyro's own HMC does. blackjax's MCLMC
    tuners (``mclmc_find_L_and_step_size``,
    ``adjusted_mclmc_find_L_and_step_size``) are whole-run procedures: they run
    for ``num_warmup`` transitions inside :meth:`init`, and NumPyro's warm-up
    transitions are then no-ops that keep the tuned state (a ``lax.cond``
    around the transition). With ``adaptation=None`` the parameters stay as
    given and warm-up transitions are ordinary transitions (burn-in).

    **Gradient accounting.** ``num_grad_evals`` (a default extra field) counts
    the ``value_and_grad`` calls of each transition; for NUTS it equals
    ``num_steps`` (velocity Verlet: one gradient per leapfrog step). The
    gradients spent before the first transition (the initial gradient, the
    optional initial optimisation and an MCLMC tuner, also kept in
    ``state.warmup_grad_evals``) are added to the first transition's count
    (``i == 0``), so that
    ``Σ num_grad_evals`` over all transitions, warm-up included, is the run's
    total cost.

    **Initialisation.** Each chain starts at a point drawn uniformly in
    ``[-init_radius, init_radius]^D`` on the unconstrained space (NumPyro's
    ``init_to_uniform``), or at the prior median if that point has a
    non-finite density. Then, for ``init_optimize_steps > 0`` (default 2000 for MALA, Barker and the
    MCLMC family, whose tuners fail from starts far in the tails, 0 for
    NUTS/HMC), that many Adam steps (cosine-decayed rate 0.5) move it towards
    the mode of ``log p(z)``; their gradient evaluations are counted in
    ``warmup_grad_evals``. ``init_params`` (unconstrained sites) replaces both steps.
    """

    sample_field = "z"
    #: extra field with the gradient evaluations of each transition
    GRAD_FIELD = "num_grad_evals"
    #: extra field with the divergence flag of each transition
    DIVERGENCE_FIELD = "diverging"

    def __init__(
        self,
        model: Callable,
        algorithm: str = "nuts",
        *,
        adaptation: str | None = "auto",
        init_radius: float = 2.0,
        init_optimize_steps: int | None = None,
        **params: Any,
    ):
        if not callable(model):
            raise TypeError(f"model must be a callable NumPyro model, got {type(model).__name__}")
        check_choice("algorithm", algorithm, tuple(ALGORITHMS))
        if adaptation not in ("auto", None, "none"):
            raise ValueError(f"adaptation must be 'auto' or None, got {adaptation!r}")
        check_positive("init_radius", init_radius)
        if init_optimize_steps is None:
            init_optimize_steps = 0 if algorithm in ("nuts", "hmc") else 2000
        if not isinstance(init_optimize_steps, int) or init_optimize_steps < 0:
            raise ValueError(f"init_optimize_steps must be a non-negative int, got {init_optimize_steps!r}")
        self.init_optimize_steps = init_optimize_steps
        options = {k: params.pop(k) for k in list(params) if k in _OPTIONS[algorithm]}
        self._algorithm = _make_algorithm(algorithm, options)
        unknown = [k for k in params if k not in self._algorithm.param_names]
        if unknown:
            raise TypeError(
                f"unknown parameters {unknown} for algorithm {algorithm!r}; expected parameters "
                f"{list(self._algorithm.param_names)} or options {list(_OPTIONS[algorithm])}"
            )
        for name in ("step_size", "L"):
            if name in params:
                check_positive(name, params[name])
        self._model = model
        self.algorithm = algorithm
        self.adaptation = "auto" if adaptation == "auto" else None
        self.init_radius = float(init_radius)
        self._user_params = params
        self._sample_fn = None
        self._cache_key = None

    # -- set-up ---------------------------------------------------------------------------

    @property
    def model(self):
        return self._model

    @property
    def default_fields(self):
        return ("z", "diverging", "num_grad_evals")

    def _setup(self, model_args, model_kwargs):
        """Build (or reuse, for the same model arguments) the log density and its helpers."""
        leaves = jax.tree.leaves((model_args, model_kwargs))
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            # MCMC(jit_model_args=True) traces the data it gave to `init`
            if self._cache_key is None:
                raise RuntimeError("BlackJAXKernel used with traced model arguments before init")
            return
        key = _args_key(model_args, model_kwargs)
        if self._cache_key is not None and self._cache_key == key:
            return
        logdensity_fn, position, postprocess = model_logdensity(self._model, *model_args, **model_kwargs)
        self._logdensity_fn = logdensity_fn
        self._median_position = position
        self._postprocess = postprocess
        self._unravel = logdensity_fn.unravel
        self._cache_key = key
        self._jit_init = {}

    def _params(self, position) -> dict:
        params = self._algorithm.default_params(position)
        dtype = jnp.result_type(position)
        for name, value in self._user_params.items():
            value = jnp.asarray(value, dtype)
            if name == "inverse_mass_matrix":
                expected = params[name].shape
                if value.shape != expected:
                    kind = "dense (dense_mass=True)" if len(expected) == 2 else "diagonal"
                    raise ValueError(f"inverse_mass_matrix must be {kind} with shape {expected}, got {value.shape}")
            params[name] = value
        return params

    def _init_one(self, key, position, num_warmup: int, has_position: bool):
        """Initial state of one chain (traceable)."""
        logdensity_fn = self._logdensity_fn
        k_init, k_state, k_tune, k_run = jax.random.split(key, 4)
        if not has_position:
            dtype = jnp.result_type(self._median_position)
            u = jax.random.uniform(
                k_init, self._median_position.shape, dtype, -self.init_radius, self.init_radius
            )
            position = jnp.where(jnp.isfinite(logdensity_fn(u)), u, self._median_position)
        grads = jnp.asarray(1, jnp.int32)
        adapt_state = None
        if self.init_optimize_steps > 0 and not has_position:
            position = _adam_to_mode(logdensity_fn, position, self.init_optimize_steps)
            grads = grads + self.init_optimize_steps
        sampler_state = self._algorithm.init(k_state, position, logdensity_fn)
        params = self._params(position)
        if self.adaptation == "auto" and num_warmup > 0:
            if self._algorithm.online:
                adapt_state, params = self._algorithm.adapt_init(position, params)
            else:
                sampler_state, params, tune_grads = self._algorithm.tune(
                    k_tune, sampler_state, params, logdensity_fn, num_warmup
                )
                grads = grads + jnp.asarray(tune_grads, jnp.int32)
        dtype = jnp.result_type(sampler_state.position)
        return BlackJAXState(
            i=jnp.asarray(0, jnp.int32),
            z=self._unravel(sampler_state.position),
            sampler_state=sampler_state,
            params=params,
            adapt_state=adapt_state,
            accept_prob=jnp.zeros((), dtype),
            num_steps=jnp.zeros((), jnp.int32),
            diverging=jnp.zeros((), bool),
            energy=jnp.full((), jnp.nan, dtype),
            num_grad_evals=jnp.zeros((), jnp.int32),
            warmup_grad_evals=grads,
            rng_key=k_run,
        )

    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs):
        """Build the log density and initialise every chain (for MCLMC: run blackjax's tuner)."""
        self._setup(model_args, model_kwargs or {})
        self._num_warmup = int(num_warmup)
        has_position = init_params is not None
        batched = not is_prng_key(rng_key)
        if has_position:
            flatten = lambda p: ravel_pytree(p)[0]  # noqa: E731
            position = jax.vmap(flatten)(init_params) if batched else flatten(init_params)
            if position.shape[-1] != self._median_position.shape[0]:
                raise ValueError(
                    f"init_params must hold {self._median_position.shape[0]} unconstrained values "
                    f"per chain (the model's latent sites), got {position.shape[-1]}"
                )
        else:
            position = self._median_position
        init_one = lambda k, p: self._init_one(k, p, self._num_warmup, has_position)  # noqa: E731
        if batched and not has_position:
            position = jnp.broadcast_to(position, (rng_key.shape[0],) + position.shape)
        if isinstance(rng_key, jax.core.Tracer) or isinstance(position, jax.core.Tracer):
            # under pmap/vmap from MCMC: trace in place
            state = jax.vmap(init_one)(rng_key, position) if batched else init_one(rng_key, position)
        else:
            cache = (batched, has_position, self._num_warmup)
            if cache not in self._jit_init:
                self._jit_init[cache] = jax.jit(jax.vmap(init_one) if batched else init_one)
            state = self._jit_init[cache](rng_key, position)
        self._sample_fn = self._transition
        return state

    # -- transitions ----------------------------------------------------------------------

    def _transition(self, state: BlackJAXState) -> BlackJAXState:
        key, k_step = jax.random.split(state.rng_key)
        sampler_state, tr = self._algorithm.step(k_step, state.sampler_state, state.params, self._logdensity_fn)
        return BlackJAXState(
            i=state.i + 1,
            z=self._unravel(sampler_state.position),
            sampler_state=sampler_state,
            params=state.params,
            adapt_state=state.adapt_state,
            accept_prob=tr.accept_prob,
            num_steps=tr.num_steps,
            diverging=tr.diverging,
            energy=tr.energy,
            num_grad_evals=tr.num_grad_evals + jnp.where(state.i == 0, state.warmup_grad_evals, 0),
            warmup_grad_evals=state.warmup_grad_evals,
            rng_key=key,
        )

    def _adapt(self, state: BlackJAXState) -> tuple[Any, dict]:
        """Window-adaptation update after warm-up transition ``state.i - 1``: ``(adapt_state, params)``."""
        return self._algorithm.adapt_update(
            state.adapt_state, state.i - 1, self._num_warmup, state.sampler_state.position, state.accept_prob,
            state.params,
        )

    @staticmethod
    def _skip(state: BlackJAXState) -> BlackJAXState:
        """A warm-up no-op after blackjax's tuner has done the warm-up in :meth:`init`."""
        grads = jnp.where(state.i == 0, state.warmup_grad_evals, 0).astype(state.num_grad_evals.dtype)
        return state._replace(i=state.i + 1, num_grad_evals=grads)

    def sample(self, state, model_args, model_kwargs):
        """One transition (adapting during warm-up; a no-op during a warm-up done by a whole-run tuner)."""
        if self._sample_fn is None:
            raise RuntimeError("BlackJAXKernel.sample called before init")
        batched = jnp.ndim(state.i) > 0
        vmap = jax.vmap if batched else (lambda f: f)
        # `i` is shared by all chains, so the branches below are real even for vectorized chains
        i = state.i.reshape(-1)[0] if batched else state.i
        if self.adaptation != "auto" or self._num_warmup == 0:
            return vmap(self._transition)(state)
        if self._algorithm.online:  # adapt after warm-up transitions only: no adaptation cost when sampling
            new = vmap(self._transition)(state)
            # the cond carries only what the adaptation changes (its pass-through branch copies its outputs)
            adapt_state, params = jax.lax.cond(
                i < self._num_warmup, vmap(self._adapt), lambda s: (s.adapt_state, s.params), new
            )
            return new._replace(adapt_state=adapt_state, params=params)
        return jax.lax.cond(i < self._num_warmup, vmap(self._skip), vmap(self._transition), state)

    def postprocess_fn(self, model_args, model_kwargs):
        """Map unconstrained sites ``z`` to constrained values and deterministic sites."""
        self._setup(model_args, model_kwargs or {})
        postprocess = self._postprocess
        return lambda z: postprocess(ravel_pytree(z)[0])

    def get_diagnostics_str(self, state):
        return "{} steps of size {:.2e}. acc. prob={:.2f}".format(
            int(state.num_steps), float(state.params["step_size"]), float(state.accept_prob)
        )
