"""blackjax sampling algorithms behind one interface: init, tune, step, gradient count.

Every adapter works on a flat position vector ``z ∈ R^D`` and returns, per
transition, a :class:`Transition` record with the acceptance probability, the
number of integration steps, the divergence flag, the energy (NaN where the
algorithm has none) and the number of gradient evaluations.

Gradient evaluations are counted as calls of ``value_and_grad(logdensity_fn)``.
A symmetric splitting integrator with ``2s + 1`` coefficients
(velocity Verlet ``s = 1``, McLachlan ``s = 2``, Yoshida ``s = 3``, Omelyan ``s = 5``)
evaluates the gradient ``s`` times per integration step (the gradient at the
end of a step is reused at the start of the next), so

- NUTS, HMC, adjusted MCLMC: ``num_grad_evals = s · num_integration_steps``;
- MALA, Barker: ``1`` (the gradient at the proposal; the metric is a linear change of variables);
- MCLMC: ``s`` per step (McLachlan by default: 2).
"""

from __future__ import annotations

import abc
import warnings
from typing import Any, Callable, NamedTuple

import blackjax
import blackjax.mcmc.integrators as bj_integrators
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation import window_adaptation
from blackjax.adaptation.mass_matrix import welford_algorithm
from blackjax.adaptation.window_adaptation import build_schedule
from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
from blackjax.mcmc.adjusted_mclmc_dynamic import make_random_trajectory_length_fn
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray


class Transition(NamedTuple):
    """Per-transition statistics reported as NumPyro extra fields."""

    accept_prob: Array
    num_steps: Array
    diverging: Array
    energy: Array
    num_grad_evals: Array


# name -> (euclidean integrator, isokinetic integrator, gradient evaluations per step)
INTEGRATORS: dict[str, tuple[Callable, Callable, int]] = {
    "velocity_verlet": (bj_integrators.velocity_verlet, bj_integrators.isokinetic_velocity_verlet, 1),
    "mclachlan": (bj_integrators.mclachlan, bj_integrators.isokinetic_mclachlan, 2),
    "yoshida": (bj_integrators.yoshida, bj_integrators.isokinetic_yoshida, 3),
    "omelyan": (bj_integrators.omelyan, bj_integrators.isokinetic_omelyan, 5),
}


def _nan_to_zero(x):
    return jnp.where(jnp.isnan(x), jnp.zeros_like(x), x)


def _transition(dtype, accept_prob, num_steps, diverging, energy, num_grad_evals) -> Transition:
    return Transition(
        accept_prob=_nan_to_zero(jnp.asarray(accept_prob, dtype)),
        num_steps=jnp.asarray(num_steps, jnp.int32),
        diverging=jnp.asarray(diverging, bool),
        energy=jnp.asarray(energy, dtype),
        num_grad_evals=jnp.asarray(num_grad_evals, jnp.int32),
    )


class AbstractAlgorithm(eqx.Module):
    """A blackjax algorithm: initial state, tuner, one transition."""

    #: parameter names a user may set (besides the tuner's options)
    param_names: tuple[str, ...] = eqx.field(static=True, default=())
    #: True: tuned during NumPyro's warm-up transitions (``adapt_init``/``adapt_update``);
    #: False: tuned by a whole-run tuner before the first transition (``tune``)
    online: bool = eqx.field(static=True, default=False)

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray, position: Float[Array, " D"], logdensity_fn: Callable) -> Any:
        """The blackjax state at ``position`` (one gradient evaluation)."""

    @abc.abstractmethod
    def default_params(self, position: Float[Array, " D"]) -> dict:
        """Parameters used without tuning (user values override them)."""

    def tune(
        self, key: PRNGKeyArray, state: Any, params: dict, logdensity_fn: Callable, num_steps: int
    ) -> tuple[Any, dict, Array]:
        """blackjax's whole-run tuner for ``num_steps`` transitions: ``(state, params, grad evals)``."""
        raise NotImplementedError

    def adapt_init(self, position: Float[Array, " D"], params: dict) -> tuple[Any, dict]:
        """``(adaptation state, params)`` before the first warm-up transition (``online`` algorithms)."""
        raise NotImplementedError

    def adapt_update(
        self, adapt_state: Any, i: Array, num_warmup: int, position: Array, accept_prob: Array, params: dict
    ) -> tuple[Any, dict]:
        """After transition ``i`` (to ``position``): ``(adapt_state, params)``, unchanged once ``i ≥ num_warmup``."""
        raise NotImplementedError

    @abc.abstractmethod
    def step(
        self, key: PRNGKeyArray, state: Any, params: dict, logdensity_fn: Callable
    ) -> tuple[Any, Transition]:
        """One transition with fixed ``params``."""


def _dtype(position):
    return jnp.result_type(position)


class _WindowAdapted(AbstractAlgorithm):
    """Algorithms tuned by blackjax's Stan window adaptation, one warm-up transition at a time.

    blackjax's ``window_adaptation.base`` (initial fast window, doubling slow
    windows that re-estimate the inverse mass matrix, final fast window; dual
    averaging of the step size towards ``target_accept``) is updated after each
    of NumPyro's warm-up transitions, as NumPyro's own HMC does; the last one
    sets the averaged step size. Sampling transitions then use fixed parameters.
    """

    online: bool = eqx.field(static=True, default=True)
    param_names: tuple[str, ...] = eqx.field(static=True, default=("step_size", "inverse_mass_matrix"))
    integrator: str = eqx.field(static=True, default="velocity_verlet")
    dense_mass: bool = eqx.field(static=True, default=False)
    #: may be traced (a kernel built inside ``jit``)
    target_accept: float | Array = 0.8
    #: False: the step size stays as given during warm-up (NumPyro's ``adapt_step_size``)
    adapt_step_size: bool = eqx.field(static=True, default=True)
    #: False: the inverse mass matrix stays as given during warm-up (NumPyro's ``adapt_mass_matrix``)
    adapt_mass_matrix: bool = eqx.field(static=True, default=True)
    #: False: each window's inverse mass matrix is the plain Welford (co)variance estimate
    #: (NumPyro's ``regularize_mass_matrix=False``); True: Stan's shrinkage towards ``1e-3 I``
    regularize_mass_matrix: bool = eqx.field(static=True, default=True)
    #: structured mass (``dense_mass=True`` only): flat indices of each dense block; every other
    #: coordinate is diagonal. ``None``: one dense block (or diagonal, ``dense_mass=False``)
    mass_blocks: tuple[tuple[int, ...], ...] | None = eqx.field(static=True, default=None)

    @property
    @abc.abstractmethod
    def blackjax_algorithm(self):
        """The blackjax top-level API (``blackjax.nuts`` ...)."""


    def _kernel(self):
        return self.blackjax_algorithm.build_kernel(INTEGRATORS[self.integrator][0])

    def init(self, key, position, logdensity_fn):
        return self.blackjax_algorithm.init(position, logdensity_fn)

    def default_params(self, position):
        dim = position.shape[0]
        imm = jnp.eye(dim, dtype=_dtype(position)) if self.dense_mass else jnp.ones(dim, _dtype(position))
        return {"step_size": jnp.asarray(1.0, _dtype(position)), "inverse_mass_matrix": imm}

    def _adaptation(self):
        with warnings.catch_warnings():  # blackjax keeps `base` "at its released API" but flags it
            warnings.simplefilter("ignore", DeprecationWarning)
            return window_adaptation.base(not self.dense_mass, self.target_accept)

    def _adapt_state(self, position, params):
        init, _, _ = self._adaptation()
        state = init(position, params["step_size"])
        if self.dense_mass == (jnp.ndim(params["inverse_mass_matrix"]) == 2):
            state = state._replace(inverse_mass_matrix=params["inverse_mass_matrix"])
        return state

    def adapt_init(self, position, params):
        """blackjax's ``WindowAdaptationState`` flattened to one vector (:meth:`adapt_update` unflattens it),
        and ``params`` with its initial step size and inverse mass matrix.

        One array instead of ten keeps the warm-up ``lax.cond`` around every
        transition cheap after warm-up: its pass-through branch copies one buffer.
        """
        state = self._adapt_state(position, params)
        params = dict(params)
        if self.adapt_step_size:
            params["step_size"] = jnp.asarray(state.step_size, params["step_size"].dtype)
        if self.adapt_mass_matrix:
            params["inverse_mass_matrix"] = jnp.asarray(state.inverse_mass_matrix, params["inverse_mass_matrix"].dtype)
        return ravel_pytree(state)[0], params

    def block_mask(self, dim: int):
        """The 0/1 pattern of a structured inverse mass matrix (``None`` without ``mass_blocks``)."""
        if self.mass_blocks is None:
            return None
        mask = np.eye(dim, dtype=bool)
        for block in self.mass_blocks:
            mask[np.ix_(block, block)] = True
        return mask

    def _window_estimate(self, state, position):
        r"""The inverse mass matrix a slow window ending at ``position`` sets.

        blackjax's estimate, or (unregularised, structured) the same Welford
        estimate ``Ĉ`` over the window's ``n`` draws (this ``position`` included)
        with Stan's shrinkage ``Ĉ n/(n + 5) + 10⁻³ · 5/(n + 5) · I`` only if
        ``regularize_mass_matrix``, then restricted to ``mass_blocks``: the
        entries outside the dense blocks are zeroed. A block of the dense
        sample covariance is the sample covariance of that block's
        coordinates, and the shrinkage adds only to the diagonal, so this is
        NumPyro's per-block Welford estimate (dense per block, variances for
        the remaining coordinates).
        """
        _, wc_update, wc_final = welford_algorithm(not self.dense_mass)
        cov, n, _ = wc_final(wc_update(state.imm_state.wc_state, position))
        if self.regularize_mass_matrix:
            n = jnp.asarray(n, cov.dtype)
            eye = 1.0 if cov.ndim == 1 else jnp.eye(cov.shape[0], dtype=cov.dtype)
            cov = n / (n + 5) * cov + 1e-3 * (5 / (n + 5)) * eye
        mask = self.block_mask(position.shape[0])
        return cov if mask is None else jnp.where(mask, cov, 0)

    def adapt_update(self, adapt_state, i, num_warmup, position, accept_prob, params):
        _, update, final = self._adaptation()
        unravel = ravel_pytree(self._adapt_state(position, params))[1]  # the structure (its values are unused)
        stage = build_schedule(num_warmup)[jnp.clip(i, 0, num_warmup - 1)]
        old = unravel(adapt_state)
        new = update(old, (stage[0], stage[1]), position, accept_prob)
        if self.mass_blocks is not None or not self.regularize_mass_matrix:
            # a slow window's end (always in a slow stage): NumPyro's estimate instead of blackjax's
            imm = jnp.where(stage[1], self._window_estimate(old, position), new.inverse_mass_matrix)
            imm = imm.astype(new.inverse_mass_matrix.dtype)
            new = new._replace(inverse_mass_matrix=imm, imm_state=new.imm_state._replace(inverse_mass_matrix=imm))
        step_size, imm = final(new)  # Stan: the averaged step size once warm-up ends
        last = i == num_warmup - 1
        new_params = dict(params)
        if self.adapt_step_size:
            new_params["step_size"] = jnp.where(last, step_size, new.step_size).astype(params["step_size"].dtype)
        if self.adapt_mass_matrix:
            new_params["inverse_mass_matrix"] = jnp.where(last, imm, new.inverse_mass_matrix).astype(
                params["inverse_mass_matrix"].dtype
            )
        keep = lambda a, b: jax.tree.map(lambda u, v: jnp.where(i < num_warmup, u, v), a, b)  # noqa: E731
        return keep(ravel_pytree(new)[0], adapt_state), keep(new_params, params)


class _HMCFamily(_WindowAdapted):
    """NUTS and static HMC: blackjax kernels with one trajectory-length argument."""

    @abc.abstractmethod
    def trajectory(self, params: dict):
        """``max_num_doublings`` (NUTS) or the number of integration steps (HMC) for ``params``."""

    def heuristic_step_size(self, key, state, params, logdensity_fn) -> tuple[Array, Array]:
        """NumPyro's ``find_heuristic_step_size``: ``(step size, gradient evaluations)``.

        Doubles (or halves) the step size while one leapfrog step from ``state``
        with fresh momentum is accepted with probability above (below) 0.8, and
        stops at the first change of direction (Hoffman & Gelman 2014, Alg. 4).
        One gradient per trial step.
        """
        kernel = blackjax.hmc.build_kernel(INTEGRATORS[self.integrator][0])
        step0 = params["step_size"]
        finfo = jnp.finfo(jnp.result_type(step0))

        def body(carry):
            step_size, _, direction, k, n = carry
            k, k_step = jax.random.split(k)
            step_size = step_size * 2.0 ** direction.astype(step_size.dtype)
            _, info = kernel(k_step, state, logdensity_fn, step_size, params["inverse_mass_matrix"], 1)
            new = jnp.where(info.acceptance_rate > 0.8, 1, -1).astype(jnp.int32)  # NaN: smaller
            return step_size, direction, new, k, n + 1

        def cond(carry):
            step_size, last, direction, _, _ = carry
            in_range = ((step_size > finfo.tiny) | (direction >= 0)) & ((step_size < finfo.max) | (direction <= 0))
            return in_range & ((last == 0) | (direction == last))

        zero = jnp.zeros((), jnp.int32)
        step_size, _, _, _, n = jax.lax.while_loop(cond, body, (step0, zero, zero, key, zero))
        return step_size, n * INTEGRATORS[self.integrator][2]

    def step(self, key, state, params, logdensity_fn):
        state, info = self._kernel()(
            key, state, logdensity_fn, params["step_size"], params["inverse_mass_matrix"], self.trajectory(params)
        )
        return state, _transition(
            _dtype(state.position), info.acceptance_rate, info.num_integration_steps, info.is_divergent,
            info.energy, info.num_integration_steps * INTEGRATORS[self.integrator][2],
        )


class NUTS(_HMCFamily):
    """No-U-Turn sampler (``blackjax.nuts``), trees of at most ``2^max_num_doublings`` steps."""

    max_num_doublings: int = eqx.field(static=True, default=10)

    @property
    def blackjax_algorithm(self):
        return blackjax.nuts

    def trajectory(self, params):
        return self.max_num_doublings


class HMC(_HMCFamily):
    """Static-length HMC (``blackjax.hmc``) with ``num_integration_steps`` leapfrog steps.

    With ``trajectory_length`` ``T`` (NumPyro's HMC option) the number of steps
    follows the current step size ``ε``: ``⌈T / ε⌉``, clipped to ``[1, 2^16]``.
    """

    num_integration_steps: int = eqx.field(static=True, default=10)
    trajectory_length: float | None = eqx.field(static=True, default=None)

    @property
    def blackjax_algorithm(self):
        return blackjax.hmc

    def trajectory(self, params):
        if self.trajectory_length is None:
            return self.num_integration_steps
        return jnp.clip(jnp.ceil(self.trajectory_length / params["step_size"]), 1, 2**16).astype(jnp.int32)


class _Preconditioned:
    r"""A metric-free blackjax kernel (MALA, Barker) with an inverse mass matrix ``M⁻¹ = C Cᵀ``.

    The base kernel runs on ``y = C⁻¹ x``, whose target is ``log p(C y)`` (a
    constant Jacobian), so e.g. MALA's proposal becomes
    ``x' = x + h M⁻¹∇log p(x) + √(2h) C ξ``: the preconditioned sampler, with
    the same single gradient evaluation per transition. ``C`` is ``√m`` for a
    diagonal ``M⁻¹ = diag(m)`` and the Cholesky factor for a dense one. The
    kernel signature matches the HMC family so that blackjax's window
    adaptation tunes the step size and ``M⁻¹``.
    """

    def __init__(self, base):
        self.init = base.init
        self._base = base

    def build_kernel(self):
        base_kernel = self._base.build_kernel()

        def kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix):
            if jnp.ndim(inverse_mass_matrix) == 2:
                chol = jnp.linalg.cholesky(inverse_mass_matrix)
                to_x = lambda y: chol @ y  # noqa: E731
                to_y = lambda x: jax.scipy.linalg.solve_triangular(chol, x, lower=True)  # noqa: E731
                grad_to_y = lambda g: chol.T @ g  # noqa: E731
                grad_to_x = lambda g: jax.scipy.linalg.solve_triangular(chol.T, g, lower=False)  # noqa: E731
            else:
                scale = jnp.sqrt(inverse_mass_matrix)
                to_x = grad_to_y = lambda v: scale * v  # noqa: E731
                to_y = grad_to_x = lambda v: v / scale  # noqa: E731
            y_state = state._replace(position=to_y(state.position), logdensity_grad=grad_to_y(state.logdensity_grad))
            y_state, info = base_kernel(rng_key, y_state, lambda y: logdensity_fn(to_x(y)), step_size)
            new = y_state._replace(position=to_x(y_state.position), logdensity_grad=grad_to_x(y_state.logdensity_grad))
            return new, info

        return kernel


class _GradientProposal(_WindowAdapted):
    """One-gradient Metropolis proposals (MALA, Barker) with a metric by change of variables."""

    dense_mass: bool = eqx.field(static=True, default=True)

    @property
    @abc.abstractmethod
    def base_algorithm(self):
        """The metric-free blackjax algorithm."""

    @property
    def blackjax_algorithm(self):
        return _Preconditioned(self.base_algorithm)

    def _kernel(self):
        return self.blackjax_algorithm.build_kernel()

    def default_params(self, position):
        return {**super().default_params(position), "step_size": jnp.asarray(0.1, _dtype(position))}

    def step(self, key, state, params, logdensity_fn):
        state, info = self._kernel()(key, state, logdensity_fn, params["step_size"], params["inverse_mass_matrix"])
        return state, _transition(_dtype(state.position), info.acceptance_rate, 1, False, jnp.nan, 1)


class MALA(_GradientProposal):
    """Metropolis-adjusted Langevin (``blackjax.mala``) with a metric.

    Window-adapted step size and inverse mass matrix (dense by default: MALA
    mixes in O(condition number) steps, so correlations must be removed; see
    :class:`_Preconditioned`), targeting acceptance 0.574 (the optimal MALA rate).
    """

    target_accept: float | Array = 0.574

    @property
    def base_algorithm(self):
        return blackjax.mala


class Barker(_GradientProposal):
    """Barker's proposal (``blackjax.barker``), window-adapted step size and metric.

    The metric (dense by default) is applied as a change of variables
    (:class:`_Preconditioned`): Barker's coordinate-wise skewing then acts on
    whitened coordinates. Target acceptance 0.4.
    """

    target_accept: float | Array = 0.4

    @property
    def base_algorithm(self):
        return blackjax.barker


class _MCLMCFamily(AbstractAlgorithm):
    """MCLMC samplers: parameters ``L``, ``step_size``, diagonal metric; whole-run blackjax tuners."""

    integrator: str = eqx.field(static=True, default="mclachlan")
    diagonal_preconditioning: bool = eqx.field(static=True, default=True)
    frac_tune: tuple[float, float, float] = eqx.field(static=True, default=(0.1, 0.1, 0.1))
    param_names: tuple[str, ...] = eqx.field(static=True, default=("L", "step_size", "inverse_mass_matrix"))
    #: blackjax's initial step size, as a multiple of √D
    initial_step_factor: float = eqx.field(static=True, default=0.25)

    def default_params(self, position):
        dim, dtype = position.shape[0], _dtype(position)
        return {
            "L": jnp.asarray(jnp.sqrt(dim), dtype),
            "step_size": jnp.asarray(self.initial_step_factor * jnp.sqrt(dim), dtype),
            "inverse_mass_matrix": jnp.ones(dim, dtype),
        }

    def _tuned(self, params, position, tuned, n_integration_steps):
        """``(params, gradient evaluations)`` from blackjax's ``MCLMCAdaptationState``."""
        dtype = _dtype(position)
        imm = jnp.broadcast_to(jnp.asarray(tuned.inverse_mass_matrix, dtype), position.shape)
        out = {
            "L": jnp.asarray(tuned.L, dtype),
            "step_size": jnp.asarray(tuned.step_size, dtype),
            "inverse_mass_matrix": imm,
        }
        return out, jnp.asarray(n_integration_steps, jnp.int32) * INTEGRATORS[self.integrator][2]

    @staticmethod
    def _adaptation_state(params):
        return MCLMCAdaptationState(params["L"], params["step_size"], params["inverse_mass_matrix"])


class MCLMC(_MCLMCFamily):
    """Microcanonical Langevin (``blackjax.mclmc``), tuned by ``mclmc_find_L_and_step_size``.

    blackjax's tuner spends ``frac_tune1 + frac_tune2 (1 + 1/3) + frac_tune3``
    of its ``num_steps`` argument; it is called with ``num_steps`` chosen so
    that this equals the warm-up length.
    """

    def _kernel(self):
        return blackjax.mclmc.build_kernel(integrator=INTEGRATORS[self.integrator][1])

    def init(self, key, position, logdensity_fn):
        return blackjax.mclmc.init(position, logdensity_fn, key)

    def step(self, key, state, params, logdensity_fn):
        state, info = self._kernel()(
            key, state, logdensity_fn, params["inverse_mass_matrix"], params["L"], params["step_size"]
        )
        return state, _transition(
            _dtype(state.position), 1.0, 1, jnp.logical_not(info.nonans), jnp.nan, INTEGRATORS[self.integrator][2]
        )

    def tune(self, key, state, params, logdensity_fn, num_steps):
        f1, f2, f3 = self.frac_tune
        spend = f1 + f2 * (1 + self.diagonal_preconditioning / 3) + f3
        state, tuned, n_steps = blackjax.mclmc_find_L_and_step_size(
            self._kernel(), max(int(round(num_steps / spend)), 1), state, key, logdensity_fn=logdensity_fn,
            frac_tune1=f1, frac_tune2=f2, frac_tune3=f3,
            diagonal_preconditioning=self.diagonal_preconditioning, params=self._adaptation_state(params),
        )
        return (state, *self._tuned(params, state.position, tuned, n_steps))


class AdjustedMCLMC(_MCLMCFamily):
    """Metropolis-adjusted MCLMC (``blackjax.adjusted_mclmc_dynamic``).

    Each transition draws its number of integration steps uniformly with mean
    ``L / step_size`` (blackjax's random trajectory length); tuned by
    ``adjusted_mclmc_find_L_and_step_size`` towards ``target_accept``.
    """

    target_accept: float | Array = 0.9
    initial_step_factor: float = eqx.field(static=True, default=0.2)

    def _kernel(self):
        return blackjax.adjusted_mclmc_dynamic.build_kernel(
            integration_steps_fn=make_random_trajectory_length_fn(True),
            integrator=INTEGRATORS[self.integrator][1],
        )

    def init(self, key, position, logdensity_fn):
        return blackjax.adjusted_mclmc_dynamic.init(position, logdensity_fn, key)

    def step(self, key, state, params, logdensity_fn):
        state, info = self._kernel()(
            key, state, logdensity_fn, params["step_size"],
            inverse_mass_matrix=params["inverse_mass_matrix"],
            integration_steps_params=(params["L"] / params["step_size"],),
        )
        return state, _transition(
            _dtype(state.position), info.acceptance_rate, info.num_integration_steps, info.is_divergent,
            info.energy, info.num_integration_steps * INTEGRATORS[self.integrator][2],
        )

    def tune(self, key, state, params, logdensity_fn, num_steps):
        f1, f2, f3 = self.frac_tune
        spend = f1 + f2 + 2 * f3  # the third stage reruns a step-size stage of length f1 ≈ f3
        state, tuned, n_steps = blackjax.adjusted_mclmc_find_L_and_step_size(
            mclmc_kernel=self._kernel(), logdensity_fn=logdensity_fn,
            num_steps=max(int(round(num_steps / spend)), 1), state=state, rng_key=key,
            target=self.target_accept, frac_tune1=f1, frac_tune2=f2, frac_tune3=f3,
            diagonal_preconditioning=self.diagonal_preconditioning, params=self._adaptation_state(params),
        )
        return (state, *self._tuned(params, state.position, tuned, n_steps))


ALGORITHMS: dict[str, type[AbstractAlgorithm]] = {
    "nuts": NUTS,
    "hmc": HMC,
    "mala": MALA,
    "barker": Barker,
    "mclmc": MCLMC,
    "adjusted_mclmc": AdjustedMCLMC,
}
