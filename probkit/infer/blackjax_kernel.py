"""blackjax samplers as NumPyro MCMC kernels."""

from __future__ import annotations

import dataclasses
import hashlib
import numbers
from functools import partial
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import initialize_model
from numpyro.util import is_prng_key

from .._validate import check_choice, check_open_interval, check_positive, is_concrete
from ._blackjax_algorithms import ALGORITHMS, INTEGRATORS, AbstractAlgorithm
from .logdensity import Target, model_target, potential_target

__all__ = ["BlackJAXKernel", "BlackJAXState"]


class BlackJAXState(NamedTuple):
    """State of :class:`BlackJAXKernel` (one chain; a leading chain axis when vectorized).

    - ``i``: transitions done (warm-up included); ``z``: unconstrained latent sites;
    - ``sampler_state``: blackjax's state on the flat position; ``params``: tuned parameters;
      ``adapt_state``: blackjax's window-adaptation state flattened to one vector
      (``None`` if not adapted online);
    - ``accept_prob``, ``num_steps`` (integration steps), ``diverging``,
      ``energy`` (NaN where undefined), ``num_grad_evals``: of the last transition;
    - ``potential_energy`` (a property, NumPyro's ``HMCState`` field, so
      ``extra_fields=("potential_energy",)`` works): ``U(z) = -log p(z)`` at the
      current position;
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

    @property
    def potential_energy(self):
        """``U(z) = -log p(z)`` on the unconstrained space (NumPyro's ``HMCState.potential_energy``)."""
        return -self.sampler_state.logdensity


_MASS = ("dense_mass", "adapt_step_size", "adapt_mass_matrix", "regularize_mass_matrix")
_OPTIONS = {
    "nuts": ("max_num_doublings", "target_accept", "integrator", *_MASS),
    "hmc": ("num_integration_steps", "trajectory_length", "target_accept", "integrator", *_MASS),
    "mala": ("target_accept", *_MASS),
    "barker": ("target_accept", *_MASS),
    "mclmc": ("integrator", "diagonal_preconditioning", "frac_tune"),
    "adjusted_mclmc": ("integrator", "target_accept", "diagonal_preconditioning", "frac_tune"),
}
#: NumPyro's keyword -> probkit's (``NUTS(model, **kw)`` -> ``BlackJAXKernel(model, "nuts", **kw)``)
NUMPYRO_NAMES = {"target_accept_prob": "target_accept", "max_tree_depth": "max_num_doublings"}


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


def _is_traced(tree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


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


def _check_unit_interval(name: str, value):
    """``value`` in (0, 1): checked now if concrete, by ``eqx.error_if`` when traced (a kernel built in jit)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    if is_concrete(value):
        check_open_interval(name, value, 0.0, 1.0)
        return float(value)
    return eqx.error_if(value, ~((value > 0) & (value < 1)), f"{name} must be in (0, 1)")


def _check_step_count(name: str, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_inverse_mass_matrix(value):
    """A positive diagonal (1-D) or symmetric positive-definite (2-D) inverse mass matrix."""
    if not is_concrete(value):  # a kernel built inside jit
        ok = jnp.all(jnp.isfinite(value)) & (jnp.all(value > 0) if jnp.ndim(value) == 1 else True)
        return eqx.error_if(value, ~ok, "inverse_mass_matrix must be finite (and positive if diagonal)")
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or arr.ndim not in (1, 2):
        raise ValueError(
            f"inverse_mass_matrix must be a 1-D (diagonal) or 2-D (dense) real array, got {arr.dtype} of shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("inverse_mass_matrix must be finite (found NaN or inf)")
    if arr.ndim == 1 and np.any(arr <= 0):
        raise ValueError(f"a diagonal inverse_mass_matrix must be positive, got {arr}")
    if arr.ndim == 2:
        if arr.shape[0] != arr.shape[1] or not np.allclose(arr, arr.T, rtol=1e-6, atol=0):
            raise ValueError(f"a dense inverse_mass_matrix must be square and symmetric, got shape {arr.shape}")
        try:
            np.linalg.cholesky(arr)
        except np.linalg.LinAlgError:
            raise ValueError("a dense inverse_mass_matrix must be positive definite") from None
    return value


def _check_dense_mass(value):
    """``dense_mass``: a bool, or NumPyro's structured form, a list of tuples of site names."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (list, tuple)) and all(
        isinstance(g, tuple) and g and all(isinstance(n, str) for n in g) for g in value
    ):
        groups = [tuple(g) for g in value]
        names = [n for g in groups for n in g]
        if len(set(names)) != len(names):
            raise ValueError(f"dense_mass: a site may be in one group only, got {value!r}")
        return groups
    raise TypeError(
        "dense_mass must be a bool or a list of tuples of site names (NumPyro's structured mass, e.g. "
        f"[('w',), ('x', 'y')]), got {value!r}"
    )


def _check_inverse_mass_matrix_dict(value: dict) -> dict:
    """NumPyro's structured ``inverse_mass_matrix``: ``{(site names): 1-D or 2-D array}``."""
    out = {}
    for key, block in value.items():
        if not (isinstance(key, tuple) and key and all(isinstance(n, str) for n in key)):
            raise TypeError(f"inverse_mass_matrix dict keys must be tuples of site names, got {key!r}")
        out[key] = _check_inverse_mass_matrix(block)
    names = [n for k in out for n in k]
    if len(set(names)) != len(names):
        raise ValueError(f"inverse_mass_matrix: a site may be in one key only, got keys {list(out)}")
    return out


def _site_indices(unravel, dim: int) -> dict:
    """Site name -> its flat indices in the unconstrained position (``ravel_pytree``'s order)."""
    tree = unravel(np.arange(dim, dtype=np.float64))
    if not isinstance(tree, dict):
        raise ValueError("a structured dense_mass or a dict inverse_mass_matrix needs named sites: a model, "
                         "or a dict of init_params with potential_fn")
    return {k: np.asarray(v).reshape(-1).round().astype(int) for k, v in tree.items()}


def _mass_layout(sites: dict, dense_mass, imm):
    """NumPyro's structured mass (``hmc_util._initialize_mass_matrix``) on the flat position.

    ``dense_mass`` a list of site-name groups (``True``: one group of all sites,
    sorted; ``False``: none) and ``imm`` ``None`` or a dict keyed by site-name
    tuples. Returns ``(blocks, layout, matrix)``: the flat indices of each dense
    group, ``layout`` = ``[(key, flat indices, dense?)]`` (the dense groups, the
    other keys of ``imm``, then the remaining sites, sorted, as one diagonal
    block) and the initial inverse mass matrix on the flat position (2-D with
    zeros outside the dense blocks; 1-D without dense groups), or ``None`` for
    the algorithm's default (identity) when ``imm`` is ``None``.
    """
    if isinstance(dense_mass, bool):
        dense_mass = [tuple(sorted(sites))] if dense_mass else []
    imm = {} if imm is None else imm
    unknown = sorted({n for g in list(dense_mass) + list(imm) for n in g} - set(sites))
    if unknown:
        raise ValueError(f"dense_mass / inverse_mass_matrix name sites {unknown} that are not latent sites of the "
                         f"model (its sites: {sorted(sites)})")
    layout = [(g, True) for g in dense_mass] + [(k, False) for k in imm if k not in dense_mass]
    covered = [n for key, _ in layout for n in key]
    if len(set(covered)) != len(covered):
        raise ValueError(f"inverse_mass_matrix keys {list(imm)} conflict with dense_mass groups {dense_mass}: each "
                         "site must be in one block (a dense group's matrix is keyed by the group itself)")
    remaining = tuple(sorted(set(sites) - set(covered)))
    if remaining:
        layout.append((remaining, False))
    layout = [(key, np.concatenate([sites[n] for n in key]), dense) for key, dense in layout]
    dim = sum(idx.size for _, idx, _ in layout)
    blocks = tuple(tuple(int(i) for i in idx) for _, idx, dense in layout if dense)
    if not imm:
        return blocks, layout, None
    flat = np.zeros((dim, dim)) if blocks else np.ones(dim)
    for key, idx, dense in layout:
        value = imm.get(key)
        if value is None:
            value = np.ones(idx.size)
        value = np.asarray(value, np.float64)
        size = value.shape[0]
        if size != idx.size:
            raise ValueError(f"inverse_mass_matrix[{key!r}] must have {idx.size} rows (the block's unconstrained "
                             f"size), got shape {value.shape}")
        if dense:
            flat[np.ix_(idx, idx)] = np.diag(value) if value.ndim == 1 else value
        else:
            diag = np.diag(value) if value.ndim == 2 else value
            if blocks:
                flat[idx, idx] = diag
            else:
                flat[idx] = diag
    return blocks, layout, flat


def _make_algorithms(algorithm: str, options: dict) -> tuple[AbstractAlgorithm, AbstractAlgorithm]:
    """``(warm-up algorithm, sampling algorithm)``: the same unless ``max_num_doublings`` is a pair."""
    if "target_accept" in options:
        options["target_accept"] = _check_unit_interval("target_accept", options["target_accept"])
    if "integrator" in options:
        check_choice("integrator", options["integrator"], tuple(INTEGRATORS))
    for name in ("adapt_step_size", "adapt_mass_matrix", "dense_mass", "diagonal_preconditioning",
                 "regularize_mass_matrix"):
        if name in options and not isinstance(options[name], (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {options[name]!r}")
    if "num_integration_steps" in options:
        if "trajectory_length" in options:
            raise TypeError("give num_integration_steps or trajectory_length, not both")
        options["num_integration_steps"] = _check_step_count("num_integration_steps", options["num_integration_steps"])
    if options.get("trajectory_length") is not None:
        check_positive("trajectory_length", options["trajectory_length"])
        options["trajectory_length"] = float(options["trajectory_length"])
    depths = options.pop("max_num_doublings", None)
    if depths is None:
        return (ALGORITHMS[algorithm](**options),) * 2
    if not (isinstance(depths, (tuple, list)) and len(depths) == 2):
        depths = (depths, depths)
    depths = tuple(_check_step_count("max_num_doublings (max_tree_depth)", d) for d in depths)
    warmup, sampling = (ALGORITHMS[algorithm](max_num_doublings=d, **options) for d in depths)
    return (warmup, warmup) if depths[0] == depths[1] else (warmup, sampling)


class BlackJAXKernel(MCMCKernel):
    r"""A blackjax sampling algorithm as a :class:`numpyro.infer.mcmc.MCMCKernel`.

    ``BlackJAXKernel(model, "nuts")`` is used like ``numpyro.infer.NUTS(model)``::

        mcmc = MCMC(BlackJAXKernel(model, "nuts"), num_warmup=500, num_samples=500,
                    num_chains=4, chain_method="vectorized")
        mcmc.run(key, **data, extra_fields=("accept_prob", "num_steps", "energy"))

    The sampler targets ``log p(z)`` on the flat unconstrained space of
    :func:`~probkit.infer.model_logdensity`; ``state.z`` holds the unconstrained
    sites and :meth:`postprocess_fn` maps them to constrained values. The log
    density is rebuilt from the model arguments that :meth:`sample` receives,
    as NumPyro's HMC does, so ``MCMC(..., jit_model_args=True)`` re-runs one
    compiled sampler on new data of the same shapes. Instead of a model,
    ``potential_fn=U`` (with ``init_params`` given to ``MCMC.run``) samples
    ``exp(-U)`` on the pytree of ``init_params``, as NumPyro's kernels do. A model
    without latent sites gives ``z = {}`` and its deterministic sites; discrete
    latent sites get NumPyro's own error (or its enumeration, with ``funsor``).

    **Algorithms** (``algorithm=``): ``"nuts"``, ``"hmc"`` (option
    ``num_integration_steps``, or NumPyro's ``trajectory_length``), ``"mala"``,
    ``"barker"``, ``"mclmc"``, ``"adjusted_mclmc"``. Tuned parameters may be fixed
    through ``**params``: ``step_size``, ``inverse_mass_matrix`` (diagonal, or dense
    with ``dense_mass=True``), ``L`` (MCLMC); the remaining keywords are algorithm
    options (``target_accept``, ``max_num_doublings``, ``dense_mass``, ``integrator``,
    ``adapt_step_size``, ``adapt_mass_matrix``, ``diagonal_preconditioning``,
    ``frac_tune``). ``step_size`` and ``target_accept`` may be traced (a kernel
    built inside ``jit``; checked by ``eqx.error_if``).

    **NumPyro's keywords** are accepted, so ``NUTS(model, **kw)`` becomes
    ``BlackJAXKernel(model, "nuts", **kw)``: ``target_accept_prob``
    (``target_accept``), ``max_tree_depth`` (``max_num_doublings``; a pair
    ``(warm-up, sampling)`` as in NumPyro), ``dense_mass``, ``adapt_step_size``,
    ``adapt_mass_matrix``, ``step_size``, ``inverse_mass_matrix``,
    ``trajectory_length`` (ignored by NUTS, as in NumPyro), ``init_strategy``,
    ``find_heuristic_step_size`` (NUTS/HMC: NumPyro's step-size search, once
    before warm-up), ``forward_mode_differentiation`` (gradients by ``D``
    forward-mode JVPs, for models with ``lax.while_loop``),
    ``regularize_mass_matrix`` (``False``: each window's estimate is the plain
    Welford (co)variance, without Stan's shrinkage
    ``Ĉ n/(n + 5) + 10⁻³ · 5/(n + 5) · I``; a dense one is then singular for a
    window shorter than ``D``, as in NumPyro) and ``kinetic_fn=None`` (other
    values are rejected).

    **Mass matrix structure** (NumPyro's). ``dense_mass`` is a bool or a list
    of tuples of site names, ``[("w",), ("x", "y")]``: a dense block per group
    (rows in the group's site order), the remaining sites diagonal. On the
    flat position the inverse mass matrix is then a ``D × D`` matrix, zero
    outside the blocks (each site's flat indices come from ``ravel_pytree``
    of the unconstrained sites). Warm-up estimates the dense Welford
    covariance of each window and zeroes the entries outside the blocks: a
    block of the sample covariance is the sample covariance of its
    coordinates and Stan's shrinkage touches only the diagonal, so this is
    NumPyro's per-block estimate (at ``O(D²)`` memory instead of per block).
    ``inverse_mass_matrix`` is an array (a 1-D one with ``dense_mass=True``
    is the diagonal of a dense matrix; a 2-D one with ``dense_mass=False``
    gives its diagonal) or, as in NumPyro, a dict keyed by site-name tuples
    (``{("x",): diag, ("y", "z"): matrix}``): the dense groups' keys take
    1-D or 2-D blocks, other keys diagonal blocks, unnamed sites start at 1;
    with a structured ``dense_mass`` it must be such a dict.
    :meth:`structured_inverse_mass_matrix` turns a flat matrix back into
    NumPyro's dict.

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
    optional initial optimisation, the heuristic step-size search and an MCLMC
    tuner, also kept in ``state.warmup_grad_evals``) are added to the first
    transition's count (``i == 0``), so that ``Σ num_grad_evals`` over all
    transitions, warm-up included, is the run's total cost.

    **Initialisation.** By default each chain starts at a point drawn uniformly in
    ``[-init_radius, init_radius]^D`` on the unconstrained space (NumPyro's
    ``init_to_uniform``), or at the prior median if that point has a
    non-finite density; with ``init_strategy`` (NumPyro's, e.g. ``init_to_median``)
    the point comes from NumPyro's ``initialize_model`` for each chain. Then, for
    ``init_optimize_steps > 0`` (default 2000 for MALA, Barker and the MCLMC
    family, whose tuners fail from starts far in the tails, 0 for NUTS/HMC),
    that many Adam steps (cosine-decayed rate 0.5) move it towards the mode of
    ``log p(z)``; their gradient evaluations are counted in
    ``warmup_grad_evals``. ``init_params`` (unconstrained sites) replaces both steps.
    """

    sample_field = "z"
    #: extra field with the gradient evaluations of each transition
    GRAD_FIELD = "num_grad_evals"
    #: extra field with the divergence flag of each transition
    DIVERGENCE_FIELD = "diverging"

    def __init__(
        self,
        model: Callable | None = None,
        algorithm: str = "nuts",
        *,
        potential_fn: Callable | None = None,
        adaptation: str | None = "auto",
        init_radius: float = 2.0,
        init_optimize_steps: int | None = None,
        init_strategy: Callable | None = None,
        find_heuristic_step_size: bool = False,
        forward_mode_differentiation: bool = False,
        regularize_mass_matrix: bool = True,
        kinetic_fn: Callable | None = None,
        **params: Any,
    ):
        if model is None and potential_fn is None:
            raise ValueError("give a model or a potential_fn")
        if model is not None and potential_fn is not None:
            raise ValueError("give a model or a potential_fn, not both")
        if model is not None and not callable(model):
            raise TypeError(f"model must be a callable NumPyro model, got {type(model).__name__}")
        if potential_fn is not None and not callable(potential_fn):
            raise TypeError(f"potential_fn must be callable, got {type(potential_fn).__name__}")
        check_choice("algorithm", algorithm, tuple(ALGORITHMS))
        if adaptation not in ("auto", None, "none"):
            raise ValueError(f"adaptation must be 'auto' or None, got {adaptation!r}")
        check_positive("init_radius", init_radius)
        if init_optimize_steps is None:
            init_optimize_steps = 0 if algorithm in ("nuts", "hmc") else 2000
        if isinstance(init_optimize_steps, bool) or not isinstance(init_optimize_steps, int) or init_optimize_steps < 0:
            raise ValueError(f"init_optimize_steps must be a non-negative int, got {init_optimize_steps!r}")
        if init_strategy is not None and not callable(init_strategy):
            raise TypeError(f"init_strategy must be a NumPyro init strategy (callable), got {init_strategy!r}")
        for name, flag in (("find_heuristic_step_size", find_heuristic_step_size),
                           ("forward_mode_differentiation", forward_mode_differentiation)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        if find_heuristic_step_size and algorithm not in ("nuts", "hmc"):
            raise ValueError(f"find_heuristic_step_size applies to 'nuts' and 'hmc', not {algorithm!r}")
        if kinetic_fn is not None:
            raise TypeError("kinetic_fn is not supported: blackjax's kernels use the Gaussian kinetic energy "
                            "of the inverse mass matrix")
        if not isinstance(regularize_mass_matrix, (bool, np.bool_)):
            raise TypeError(f"regularize_mass_matrix must be a bool, got {regularize_mass_matrix!r}")
        if "dense_mass" in _OPTIONS[algorithm]:  # the window-adapted algorithms
            params["regularize_mass_matrix"] = bool(regularize_mass_matrix)
        elif not regularize_mass_matrix:
            raise ValueError(f"regularize_mass_matrix=False applies to the window-adapted algorithms (nuts, hmc, "
                             f"mala, barker), not {algorithm!r}")
        for numpyro_name, name in NUMPYRO_NAMES.items():
            if numpyro_name in params:
                if name in params:
                    raise TypeError(f"give {numpyro_name} or {name}, not both")
                params[name] = params.pop(numpyro_name)
        if "inverse_mass_matrix" in params and params["inverse_mass_matrix"] is None:
            del params["inverse_mass_matrix"]  # NumPyro's default: adapted from the identity
        if algorithm == "nuts":
            params.pop("trajectory_length", None)  # NumPyro's NUTS ignores it too
        # NumPyro's structured mass: resolved on the model's sites by `_resolve_mass` (in `init`)
        dense_mass = _check_dense_mass(params["dense_mass"]) if "dense_mass" in params else False
        imm_dict = None
        if isinstance(params.get("inverse_mass_matrix"), dict):
            imm_dict = _check_inverse_mass_matrix_dict(params.pop("inverse_mass_matrix"))
        if isinstance(dense_mass, list):
            if dense_mass and "inverse_mass_matrix" in params:
                raise ValueError("with a structured dense_mass give inverse_mass_matrix as a dict keyed by site-name "
                                 "tuples (NumPyro's form, e.g. {('x', 'y'): matrix}), not one array")
            params["dense_mass"] = bool(dense_mass)
        self._mass_spec = (dense_mass, imm_dict)  # structured when dense_mass is a list or imm_dict is given
        self._mass_layout = None
        self._resolved_imm = None
        options = {k: params.pop(k) for k in list(params) if k in _OPTIONS[algorithm]}
        self._warmup_algorithm, self._algorithm = _make_algorithms(algorithm, options)
        unknown = [k for k in params if k not in self._algorithm.param_names]
        if unknown:
            raise TypeError(
                f"unknown parameters {unknown} for algorithm {algorithm!r}; expected parameters "
                f"{list(self._algorithm.param_names)} or options {list(_OPTIONS[algorithm])}"
            )
        for name in ("step_size", "L"):
            if name in params:
                if isinstance(params[name], (bool, np.bool_)):
                    raise ValueError(f"{name} must be a positive number, got {params[name]!r}")
                check_positive(name, params[name])
                if not is_concrete(params[name]):
                    value = params[name]
                    params[name] = eqx.error_if(value, ~(value > 0), f"{name} must be positive")
        if "inverse_mass_matrix" in params:
            params["inverse_mass_matrix"] = _check_inverse_mass_matrix(params["inverse_mass_matrix"])
        self.init_optimize_steps = init_optimize_steps
        self._model = model
        self._potential_fn = potential_fn
        self.algorithm = algorithm
        self.adaptation = "auto" if adaptation == "auto" else None
        self.init_radius = float(init_radius)
        self.init_strategy = init_strategy
        self.find_heuristic_step_size = bool(find_heuristic_step_size)
        self.forward_mode_differentiation = bool(forward_mode_differentiation)
        self._user_params = params
        self._target: Target | None = None
        self._sample_fn = None
        self._cache_key = None
        self._jit_init = {}

    # -- set-up ---------------------------------------------------------------------------

    @property
    def model(self):
        return self._model

    @property
    def default_fields(self):
        return ("z", "diverging", "num_grad_evals")

    def _setup(self, model_args, model_kwargs):
        """Build (or reuse, for the same model arguments) the model's :class:`~probkit.infer.logdensity.Target`.

        Traced arguments (``pmap``, a user's ``jit``) reuse the target built for
        concrete ones, or build it from the traced values.
        """
        if _is_traced((model_args, model_kwargs)):
            key = None
            if self._target is not None:
                return
        else:
            key = _args_key(model_args, model_kwargs)
            if self._target is not None and self._cache_key == key:
                return
        self._target = model_target(
            self._model, model_args, model_kwargs, forward_mode_differentiation=self.forward_mode_differentiation
        )
        self._cache_key = key
        self._jit_init = {}
        self._resolve_mass()

    def _setup_potential(self, prototype):
        key = ("potential", jax.tree.structure(prototype), tuple((jnp.shape(x), jnp.result_type(x))
                                                                  for x in jax.tree.leaves(prototype)))
        if self._target is not None and self._cache_key == key:
            return
        self._target = potential_target(
            self._potential_fn, prototype, forward_mode_differentiation=self.forward_mode_differentiation
        )
        self._cache_key = key
        self._jit_init = {}
        self._resolve_mass()

    def _resolve_mass(self):
        """NumPyro's structured ``dense_mass`` / dict ``inverse_mass_matrix`` on the flat position of the target.

        Sets the dense blocks of the algorithms (``mass_blocks``) and the initial
        inverse mass matrix (see :func:`_mass_layout`).
        """
        self._mass_layout = self._resolved_imm = None
        dense_mass, imm_dict = self._mass_spec
        if not (isinstance(dense_mass, list) or imm_dict is not None) or self._target.dim == 0:
            return
        sites = _site_indices(self._target.unravel, self._target.dim)
        blocks, self._mass_layout, self._resolved_imm = _mass_layout(sites, *self._mass_spec)
        same = self._warmup_algorithm is self._algorithm
        self._algorithm = dataclasses.replace(self._algorithm, mass_blocks=blocks or None)
        self._warmup_algorithm = self._algorithm if same else dataclasses.replace(
            self._warmup_algorithm, mass_blocks=blocks or None
        )

    def structured_inverse_mass_matrix(self, inverse_mass_matrix) -> dict:
        """NumPyro's form of an inverse mass matrix: ``{(site names): block}``.

        ``inverse_mass_matrix`` is a flat one (``state.params["inverse_mass_matrix"]``,
        leading chain axes allowed) or a :class:`BlackJAXState`. The keys are
        those of NumPyro's ``adapt_state.inverse_mass_matrix``: each dense group
        (a matrix, rows in the group's site order), each other key of a dict
        ``inverse_mass_matrix`` and the remaining sites, sorted (diagonals);
        ``dense_mass=True`` / ``False`` give one key of all sites.
        """
        if isinstance(inverse_mass_matrix, BlackJAXState):
            inverse_mass_matrix = inverse_mass_matrix.params["inverse_mass_matrix"]
        if self._target is None:
            raise RuntimeError("structured_inverse_mass_matrix needs the model's sites: call init first")
        layout = self._mass_layout
        if layout is None:
            sites = _site_indices(self._target.unravel, self._target.dim)
            layout = _mass_layout(sites, self._mass_spec[0], None)[1]
        imm = jnp.asarray(inverse_mass_matrix)
        dense = self._algorithm.dense_mass
        out = {}
        for key, idx, block_dense in layout:
            if not dense:
                out[key] = imm[..., idx]
            elif block_dense:
                out[key] = imm[..., idx[:, None], idx[None, :]]
            else:
                out[key] = jnp.diagonal(imm, axis1=-2, axis2=-1)[..., idx]
        return out

    def _params(self, position) -> dict:
        params = self._algorithm.default_params(position)
        dtype = jnp.result_type(position)
        user = dict(self._user_params)
        if self._resolved_imm is not None:
            user["inverse_mass_matrix"] = self._resolved_imm
        for name, value in user.items():
            value = jnp.asarray(value, dtype)
            if name == "inverse_mass_matrix":
                expected = params[name].shape
                # NumPyro: a diagonal given for a dense mass is that matrix's diagonal, and a dense one given for a
                # diagonal mass gives its diagonal
                if len(expected) == 2 and value.ndim == 1:
                    value = jnp.diag(value)
                elif len(expected) == 1 and value.ndim == 2 and value.shape == expected * 2:
                    value = jnp.diagonal(value)
                if value.shape != expected:
                    kind = "dense (dense_mass=True)" if len(expected) == 2 else "diagonal"
                    raise ValueError(f"inverse_mass_matrix must be {kind} with shape {expected}, got {value.shape}")
            params[name] = value
        return params

    def _initial_position(self, key, logdensity_fn, model_args, model_kwargs):
        """A starting point of one chain: ``init_strategy``, or uniform in the radius (the median if invalid)."""
        median = self._target.init_position
        if self.init_strategy is not None:
            info = initialize_model(
                key, self._model, init_strategy=self.init_strategy, model_args=model_args,
                model_kwargs=model_kwargs, dynamic_args=True, validate_grad=False,
            )
            return ravel_pytree(info.param_info.z)[0].astype(median.dtype)
        u = jax.random.uniform(key, median.shape, jnp.result_type(median), -self.init_radius, self.init_radius)
        return jnp.where(jnp.isfinite(logdensity_fn(u)), u, median)

    def _init_one(self, key, position, num_warmup: int, has_position: bool, model_args, model_kwargs):
        """Initial state of one chain (traceable)."""
        logdensity_fn = self._target.logdensity(model_args, model_kwargs)
        k_init, k_state, k_tune, k_run = jax.random.split(key, 4)
        if not has_position:
            position = self._initial_position(k_init, logdensity_fn, model_args, model_kwargs)
        grads = jnp.asarray(1, jnp.int32)
        adapt_state = None
        empty = self._target.dim == 0
        if self.init_optimize_steps > 0 and not has_position and not empty:
            position = _adam_to_mode(logdensity_fn, position, self.init_optimize_steps)
            grads = grads + self.init_optimize_steps
        sampler_state = self._algorithm.init(k_state, position, logdensity_fn)
        params = self._params(position)
        if self.find_heuristic_step_size and not empty:
            step_size, n = self._algorithm.heuristic_step_size(
                jax.random.fold_in(k_tune, 1), sampler_state, params, logdensity_fn
            )
            params["step_size"], grads = step_size, grads + n
        if self.adaptation == "auto" and num_warmup > 0 and not empty:
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
            z=self._target.unravel(sampler_state.position),
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
        model_kwargs = model_kwargs or {}
        self._num_warmup = int(num_warmup)
        has_position = init_params is not None
        batched = not is_prng_key(rng_key)
        if self._potential_fn is not None:
            if not has_position:
                raise ValueError("init_params must be given with potential_fn (one value per chain), "
                                 "as for NumPyro's kernels")
            self._setup_potential(jax.tree.map(lambda x: x[0], init_params) if batched else init_params)
        else:
            self._setup(model_args, model_kwargs)
        dim = self._target.dim
        if has_position:
            flatten = lambda p: ravel_pytree(p)[0]  # noqa: E731
            position = jax.vmap(flatten)(init_params) if batched else flatten(init_params)
            if position.shape[-1] != dim:
                raise ValueError(
                    f"init_params must hold {dim} unconstrained values per chain (the model's latent sites), "
                    f"got {position.shape[-1]}"
                )
        else:
            position = self._target.init_position
        init_one = partial(
            self._init_one, num_warmup=self._num_warmup, has_position=has_position, model_args=model_args,
            model_kwargs=model_kwargs,
        )
        if batched and not has_position:
            position = jnp.broadcast_to(position, (rng_key.shape[0],) + position.shape)
        if _is_traced((rng_key, position, model_args, model_kwargs)):
            # under pmap/vmap/jit from MCMC or a user: trace in place
            state = jax.vmap(init_one)(rng_key, position) if batched else init_one(rng_key, position)
        else:
            cache = (batched, has_position, self._num_warmup)
            if cache not in self._jit_init:
                self._jit_init[cache] = jax.jit(jax.vmap(init_one) if batched else init_one)
            state = self._jit_init[cache](rng_key, position)
        self._sample_fn = self._transition
        return state

    # -- transitions ----------------------------------------------------------------------

    def _transition(self, state: BlackJAXState, logdensity_fn, algorithm) -> BlackJAXState:
        key, k_step = jax.random.split(state.rng_key)
        sampler_state, tr = algorithm.step(k_step, state.sampler_state, state.params, logdensity_fn)
        return BlackJAXState(
            i=state.i + 1,
            z=self._target.unravel(sampler_state.position),
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
        """A no-op transition: a warm-up done by a whole-run tuner in :meth:`init`, or a model without latents."""
        grads = jnp.where(state.i == 0, state.warmup_grad_evals, 0).astype(state.num_grad_evals.dtype)
        return state._replace(i=state.i + 1, num_grad_evals=grads)

    def sample(self, state, model_args, model_kwargs):
        """One transition (adapting during warm-up; a no-op during a warm-up done by a whole-run tuner).

        The log density is built from ``model_args``/``model_kwargs`` (traced
        under ``MCMC(jit_model_args=True)``), never from those given to :meth:`init`.
        """
        if self._sample_fn is None:
            raise RuntimeError("BlackJAXKernel.sample called before init")
        batched = jnp.ndim(state.i) > 0
        vmap = jax.vmap if batched else (lambda f: f)
        if self._target.dim == 0:  # nothing to sample: the chain only counts its transitions
            return vmap(self._skip)(state)
        logdensity_fn = self._target.logdensity(model_args, model_kwargs or {})
        # `i` is shared by all chains, so the branches below are real even for vectorized chains
        i = state.i.reshape(-1)[0] if batched else state.i
        warm = i < self._num_warmup
        step = lambda algorithm: vmap(partial(self._transition, logdensity_fn=logdensity_fn, algorithm=algorithm))  # noqa: E731
        transition = step(self._algorithm)
        if self._warmup_algorithm is not self._algorithm and self._num_warmup > 0:  # max_tree_depth pair
            transition = partial(jax.lax.cond, warm, step(self._warmup_algorithm), transition)
        if self.adaptation != "auto" or self._num_warmup == 0:
            return transition(state)
        if self._algorithm.online:  # adapt after warm-up transitions only: no adaptation cost when sampling
            new = transition(state)
            # the cond carries only what the adaptation changes (its pass-through branch copies its outputs)
            adapt_state, params = jax.lax.cond(
                warm, vmap(self._adapt), lambda s: (s.adapt_state, s.params), new
            )
            return new._replace(adapt_state=adapt_state, params=params)
        return jax.lax.cond(warm, vmap(self._skip), transition, state)

    def postprocess_fn(self, model_args, model_kwargs):
        """Map unconstrained sites ``z`` to constrained values and deterministic sites (identity for a potential)."""
        if self._potential_fn is not None:
            return lambda z: z
        model_kwargs = model_kwargs or {}
        self._setup(model_args, model_kwargs)
        postprocess = self._target.postprocess(model_args, model_kwargs)
        return lambda z: postprocess(ravel_pytree(z)[0])

    def get_diagnostics_str(self, state):
        return "{} steps of size {:.2e}. acc. prob={:.2f}".format(
            int(state.num_steps), float(state.params["step_size"]), float(state.accept_prob)
        )
