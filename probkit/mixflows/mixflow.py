r"""MixFlow: the mixture of repeated applications of a measure-preserving map.

``q_N = (1/(N − B)) Σ_{n=B}^{N−1} T^n_# q̄0`` on the augmented space
``z = (x, ρ, u)`` with reference ``q̄0(z) = q0(x) m(ρ) 1[u ∈ [0,1)]``, target
``π̄(z) = π(x) m(ρ)`` and ``T`` the Hamiltonian map
(:class:`~probkit.mixflows.HamiltonianMap`); ``B`` is ``burn_in`` (0 in the paper).

- Sampling: ``K ~ Unif{B..N−1}``, ``z ~ q̄0``, return ``T^K z``.
- Augmented density, one backward pass of ``N − 1`` steps:
  ``log q_N(z) = logmeanexp_{n=B}^{N−1} [log q̄0(T^{−n} z) + log|J_{T^{−n}}(z)|]``.
- The ``x``-marginal ``q_N(x) = ∫ q_N(x, ρ, u) dρ du`` has no closed form;
  :meth:`MixFlow.log_prob` estimates it by importance sampling
  ``q_N(x) = E_{ρ~m, u~U}[q_N(x, ρ, u)/m(ρ)]`` (unbiased for ``q_N(x)``, consistent
  for its log). :meth:`MixFlow.log_prob_augmented` is exact.
- ELBO (augmented, a lower bound on ``log Z`` because the ``x``-marginal of
  ``π̄`` is ``π``): ``E_{q_N}[log π̄(z) − log q_N(z)]
  = E_{z0~q̄0} (1/(N−B)) Σ_n [log π̄ − log q_N](T^n z0)``. For one ``z0`` every
  ``log q_N(T^n z0)`` needs only states ``T^k z0``, ``k ∈ [−(N−1−B), N−1]`` of a
  single trajectory: with ``S_k`` the cumulative forward log-Jacobian from ``z0``,
  ``log q_N(z_n) = −S_n + logmeanexp_{k=n−N+1}^{n−B} [log q̄0(z_k) + S_k]``.
  Cost ``2N − 2 − B`` map steps; the estimate is exactly unbiased.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checkpoint import check_checkpoint_path
from .._validate import check_finite, check_positive, check_positive_int, check_real_dtype
from ._checks import check_burn_in, check_draws_per_trajectory, check_logdensity
from ._train import maximise
from .hamiltonian import HamiltonianMap
from .momentum import AbstractMomentum, as_momentum
from .preconditioner import Preconditioner
from .reference import AbstractReference, FullRankGaussianReference, GaussianReference

ROUND_TRIP_TOL = 1e-2
"""Round-trip error (reference sd units) above which :meth:`MixFlow.check_round_trip` warns."""


@dataclasses.dataclass(frozen=True)
class _ELBO:
    """The fit's objective, equal by value so that repeated fits reuse the compiled step."""

    n_samples: int

    def __call__(self, flow: "MixFlow", key) -> Float[Array, ""]:
        return flow.elbo(key, self.n_samples)


class MixFlow(eqx.Module):
    r"""Mixed variational flow on uncorrected Hamiltonian dynamics (Xu, Chen, Campbell 2023).

    **Arguments.** ``logdensity_fn``: unnormalised ``log π`` of one point in
    ``R^dim`` (a scalar); ``n_flow_steps``: ``N``; ``n_leapfrog``: leapfrog steps per map
    step; ``step_size``: ``ε`` (scalar or per-coordinate, positive; in whitened units
    with a preconditioner); ``reference``: a :class:`AbstractReference` on ``x`` (default
    ``N(0, I)``); ``momentum``: ``"laplace"``, ``"gaussian"`` or an :class:`AbstractMomentum`;
    ``burn_in``: ``B``, the mixture uses ``T^n``, ``n = B..N−1``; ``preconditioner``:
    ``None`` (the identity), ``"reference"`` (whiten by the Gaussian reference's mean and
    covariance, a dense mass matrix for a full-rank one) or a :class:`Preconditioner`.

    ``sample`` draws from the ``x``-marginal of ``q_N``; ``log_prob_augmented`` is
    the exact augmented density; ``log_prob`` the importance-sampling estimate of
    the ``x``-marginal; ``elbo`` the unbiased augmented ELBO estimate. Each map
    step costs ``n_leapfrog + 1`` gradient evaluations.

    **Numerics.** The densities and the ELBO run the map backwards (``T^{−n}``, up to
    ``n = N − 1``), and the uncorrected dynamics amplify rounding errors: in float32 the
    round trip ``T^{−n}T^n z`` can drift by whole posterior widths after 100–400 steps
    (on a correlated regression, 2.9 sd after 111 steps with a diagonal metric). Sampling
    only runs forwards and is unaffected. :meth:`check_round_trip` measures the drift in
    reference-sd units and warns above ``ROUND_TRIP_TOL`` (1e-2); :meth:`fit` and
    :meth:`log_prob` call it. Use float64 (``jax.enable_x64``), a shorter flow or a
    smaller step where it warns.
    """

    flow_map: HamiltonianMap
    reference: AbstractReference
    n_flow_steps: int = eqx.field(static=True)
    burn_in: int = eqx.field(static=True)

    def __init__(
        self,
        logdensity_fn: Callable,
        dim: int,
        *,
        n_flow_steps: int,
        n_leapfrog: int,
        step_size,
        reference: AbstractReference | None = None,
        momentum: str | AbstractMomentum = "laplace",
        burn_in: int = 0,
        shift: float = math.pi / 16,
        preconditioner: str | Preconditioner | None = None,
    ):
        dim = check_positive_int("dim", dim)
        self.n_flow_steps = check_positive_int("n_flow_steps", n_flow_steps)
        n_leapfrog = check_positive_int("n_leapfrog", n_leapfrog)
        self.burn_in = check_burn_in(burn_in, self.n_flow_steps)
        momentum = as_momentum(momentum)
        if reference is None:
            reference = GaussianReference(jnp.zeros(dim, jnp.result_type(float)))
        if not isinstance(reference, AbstractReference):
            raise TypeError(f"reference must be an AbstractReference, got {type(reference).__name__}")
        x0 = reference.mean if isinstance(reference, (GaussianReference, FullRankGaussianReference)) else reference.sample(jax.random.PRNGKey(0))
        if x0.shape != (dim,):
            raise ValueError(f"reference must be on R^{dim} (dim), got points of shape {x0.shape}")
        if not bool(jnp.all(jnp.isfinite(x0))):
            raise ValueError(f"reference must have finite parameters, got mean {np.asarray(x0)!r}")
        dtype = x0.dtype
        step_size = jnp.asarray(step_size, dtype)
        if step_size.ndim > 1 or step_size.shape not in ((), (dim,)):
            raise ValueError(f"step_size must be a scalar or have shape ({dim},), got shape {step_size.shape}")
        check_positive("step_size", step_size)
        if isinstance(preconditioner, str):
            if preconditioner != "reference":
                raise ValueError(f"unknown preconditioner {preconditioner!r}; expected None, 'reference' or a Preconditioner")
            preconditioner = Preconditioner.from_reference(reference)
        if preconditioner is not None:
            if not isinstance(preconditioner, Preconditioner):
                raise TypeError(f"preconditioner must be None, 'reference' or a Preconditioner, got {type(preconditioner).__name__}")
            if preconditioner.loc.shape != (dim,):
                raise ValueError(f"preconditioner must be on R^{dim} (dim), got loc of shape {preconditioner.loc.shape}")
        check_logdensity(logdensity_fn, x0)
        self.reference = reference
        self.flow_map = HamiltonianMap(
            logdensity_fn,
            momentum,
            jnp.log(jnp.broadcast_to(step_size, (dim,))),
            n_leapfrog,
            float(shift),
            preconditioner,
        )

    # ------------------------------------------------------------------ pieces
    @property
    def dim(self) -> int:
        return self.flow_map.log_step_size.shape[0]

    @property
    def step_size(self) -> Float[Array, " d"]:
        return self.flow_map.step_size

    @property
    def momentum(self) -> AbstractMomentum:
        return self.flow_map.momentum

    @property
    def grad_evals_per_step(self) -> int:
        """Gradient evaluations of ``log π`` per map step."""
        return self.flow_map.n_leapfrog + 1

    def _dtype(self):
        return self.flow_map.log_step_size.dtype

    def _sample_reference(self, key):
        kx, kr, ku = jax.random.split(key, 3)
        x = self.reference.sample(kx)
        rho = self.momentum.sample(kr, x.shape, self._dtype())
        u = jax.random.uniform(ku, (), self._dtype())
        return x, rho, u

    def _log_ref(self, state):
        x, rho, _ = state
        return self.reference.log_prob(x) + jnp.sum(self.momentum.log_prob(rho))

    def _log_target(self, state):
        x, rho, _ = state
        return self.flow_map.logdensity_fn(x) + jnp.sum(self.momentum.log_prob(rho))

    # ------------------------------------------------------------------ sampling
    def sample_augmented(self, key: PRNGKeyArray, n: int, *, draws_per_trajectory: int = 1):
        r"""``n`` draws ``(x, ρ, u)`` of ``q_N`` (shapes ``(n, d)``, ``(n, d)``, ``(n,)``); see :meth:`sample`."""
        n = check_positive_int("n", n)
        m = check_draws_per_trajectory(draws_per_trajectory, self.n_flow_steps - self.burn_in)
        return self._sample_augmented(key, n, min(m, n))

    def sample(self, key: PRNGKeyArray, n: int, *, draws_per_trajectory: int = 1) -> Float[Array, "n d"]:
        r"""``n`` draws of the ``x``-marginal of ``q_N`` (one compiled call).

        ``draws_per_trajectory = 1`` (default): i.i.d. draws, ``K ~ Unif{B..N−1}``,
        ``z0 ~ q̄0``, ``T^K z0``. The draws are pushed in 8 chunks sorted by ``K``, so the
        vectorised cost is about ``0.56 n N`` map steps (the mean ``K`` is ``N/2``).

        ``draws_per_trajectory = m > 1``: ``⌈n/m⌉`` reference draws ``z0``, each giving
        the ``m`` states ``T^{k_j} z0`` with ``k_j = B + (K0 + ⌊j (N−B)/m⌋) mod (N−B)``,
        ``K0 ~ Unif{0..N−B−1}`` (a systematic sample of the trajectory with a random
        start). Each ``k_j`` is uniform on ``{B..N−1}``, so **every draw is exactly
        distributed as** ``q_N`` and averages are unbiased; draws of one trajectory are
        correlated like MCMC draws at least ``⌊(N−B)/m⌋`` map steps apart, i.i.d. across
        trajectories (the output lists each trajectory's ``m`` draws together). Cost about
        ``n N / m`` map steps: ``m`` times cheaper.
        """
        return self.sample_augmented(key, n, draws_per_trajectory=draws_per_trajectory)[0]

    @eqx.filter_jit
    def _sample_augmented(self, key, n: int, m: int):
        n_traj, width = -(-n // m), self.n_flow_steps - self.burn_in
        k_start, k_ref = jax.random.split(key)
        if m == 1:
            ks = jax.random.randint(k_start, (n_traj, 1), self.burn_in, self.n_flow_steps)
        else:
            k0 = jax.random.randint(k_start, (n_traj, 1), 0, width)
            ks = self.burn_in + (k0 + (jnp.arange(m) * width) // m) % width
        states = jax.vmap(self._sample_reference)(jax.random.split(k_ref, n_traj))
        out = self._push(states, ks)
        return jax.tree_util.tree_map(lambda a: a.reshape((n_traj * m,) + a.shape[2:])[:n], out)

    def _push(self, states, ks, n_chunks: int = 8):
        """``T^{ks[i, j]} states[i]`` (leaves ``(T, m, ...)``): chunks of trajectories sorted by their last step."""
        n_traj = ks.shape[0]
        c = min(n_chunks, n_traj)
        size = -(-n_traj // c)
        order = jnp.argsort(jnp.max(ks, axis=1))
        idx = jnp.concatenate([order, jnp.full((c * size - n_traj,), order[-1])])  # pad with the longest
        chunks = jax.tree_util.tree_map(lambda a: a[idx].reshape((c, size) + a.shape[1:]), (states, ks))
        out = lax.map(lambda sk: self._push_chunk(*sk), chunks)
        inverse = jnp.argsort(order)
        return jax.tree_util.tree_map(lambda a: a.reshape((c * size,) + a.shape[2:])[:n_traj][inverse], out)

    def _push_chunk(self, s0, kc):
        """Run one chunk of trajectories to its largest step, recording state ``k`` where ``kc == k``."""
        step = jax.vmap(lambda *s: self.flow_map.forward(s)[0])

        def record(t, s, out):
            hit = kc == t  # (size, m)
            return jax.tree_util.tree_map(
                lambda o, a: jnp.where(hit.reshape(hit.shape + (1,) * (a.ndim - 1)), a[:, None], o), out, s)

        def body(carry):
            t, s, out = carry
            s = step(*s)
            return t + 1, s, record(t + 1, s, out)

        out = jax.tree_util.tree_map(lambda a: jnp.zeros((a.shape[0], kc.shape[1]) + a.shape[1:], a.dtype), s0)
        carry = (jnp.zeros((), kc.dtype), s0, record(0, s0, out))
        return lax.while_loop(lambda c: c[0] < jnp.max(kc), body, carry)[2]

    @eqx.filter_jit
    def sample_trajectories(self, key: PRNGKeyArray, n_trajectories: int) -> Float[Array, "m d"]:
        r"""All states ``T^k z0``, ``k = B..N−1``, of ``n_trajectories`` reference draws ``z0``.

        Weighting every state equally represents ``q_N`` exactly in expectation
        (``E_{q_N}[f] = E_{z0}[(1/(N−B)) Σ_k f(T^k z0)]``); draws within a trajectory
        are correlated, as in MCMC. Returns ``(n_trajectories · (N − B), d)`` positions
        for ``n_trajectories · (N − 1)`` map steps.
        """

        def one(key):
            state = self._sample_reference(key)
            states, _ = self.flow_map.trajectory(state, self.n_flow_steps - 1)
            xs = jnp.concatenate([state[0][None], states[0]])
            return xs[self.burn_in:]

        return jax.vmap(one)(jax.random.split(key, n_trajectories)).reshape(-1, self.dim)

    # ------------------------------------------------------------------ densities
    def _log_prob_augmented_one(self, state):
        states, logdets = self.flow_map.trajectory(state, self.n_flow_steps - 1, inverse=True)
        terms = jnp.concatenate([
            self._log_ref(state)[None],
            jax.vmap(lambda s: self._log_ref(s))(states) + jnp.cumsum(logdets),
        ])[self.burn_in:]
        in_support = (state[2] >= 0) & (state[2] < 1)  # the reference is uniform on u in [0, 1)
        return jnp.where(in_support, logsumexp(terms) - math.log(terms.shape[0]), -jnp.inf)

    def _points(self, name: str, x):
        """``x`` as real, finite (when concrete) points of shape ``(..., d)`` in the flow's dtype."""
        check_real_dtype(name, x)
        x = jnp.asarray(x, self._dtype())
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"{name} must have shape (..., {self.dim}), got {x.shape}")
        check_finite(name, x)
        return x

    @eqx.filter_jit
    def log_prob_augmented(self, x, rho, u) -> Float[Array, "..."]:
        r"""Exact ``log q_N(x, ρ, u)``; ``x, ρ`` of shape ``(..., d)``, ``u`` of shape ``(...)``.

        Exact up to the rounding of the inverse map (see the class docstring and
        :meth:`check_round_trip`).
        """
        x = self._points("x", x)
        rho = self._points("rho", rho)
        check_real_dtype("u", u)
        batch = x.shape[:-1]
        flat = (x.reshape(-1, self.dim), jnp.reshape(rho, (-1, self.dim)).astype(x.dtype),
                jnp.reshape(u, (-1,)).astype(x.dtype))
        return jax.vmap(lambda *s: self._log_prob_augmented_one(s))(*flat).reshape(batch)

    def log_prob(self, x, *, key: PRNGKeyArray | None = None, n_samples: int = 64,
                 check: bool = True) -> Float[Array, "..."]:
        r"""Importance-sampling estimate of the ``x``-marginal ``log q_N(x)``, ``x`` of shape ``(..., d)``.

        ``q_N(x) ≈ (1/S) Σ_s q_N(x, ρ_s, u_s)/m(ρ_s)`` with ``(ρ_s, u_s) ~ m ⊗ Unif``
        drawn independently for each point from ``key`` (default ``PRNGKey(0)``, so
        the estimate is deterministic). Cost per point: ``S`` backward passes. Unbiased
        for ``q_N(x)``; its log converges
        as ``n_samples`` grows. Use :meth:`log_prob_augmented` for the exact density.
        With ``check`` (default) it first runs :meth:`check_round_trip`, which warns when
        the inverse map drifts (float32 over long flows).
        """
        n_samples = check_positive_int("n_samples", n_samples)
        x = self._points("x", x)
        if check:
            self.check_round_trip()
        key = jax.random.PRNGKey(0) if key is None else key
        return self._log_prob_marginal(x, key, n_samples)

    @eqx.filter_jit
    def _log_prob_marginal(self, x, key, n_samples):
        def one(xi, k):
            kr, ku = jax.random.split(k)
            rho = self.momentum.sample(kr, (n_samples, self.dim), x.dtype)
            u = jax.random.uniform(ku, (n_samples,), x.dtype)
            log_m = jnp.sum(self.momentum.log_prob(rho), axis=-1)
            lq = jax.vmap(lambda r, v: self._log_prob_augmented_one((xi, r, v)))(rho, u)
            return logsumexp(lq - log_m) - math.log(n_samples)

        flat = x.reshape(-1, self.dim)
        keys = jax.random.split(key, flat.shape[0])
        return jax.vmap(one)(flat, keys).reshape(x.shape[:-1])

    # ------------------------------------------------------------------ ELBO
    def _elbo_one(self, state0):
        n_steps, b = self.n_flow_steps, self.burn_in
        m = n_steps - 1 - b  # backward steps needed; window length m + 1 = N - B
        fmap = self.flow_map
        fwd, fwd_ld = fmap.trajectory(state0, n_steps - 1)
        bwd, bwd_ld = fmap.trajectory(state0, m, inverse=True)
        zero = jnp.zeros((1,), self._dtype())
        # positions p = k + m for k = -m..N-1
        cum = jnp.concatenate([jnp.cumsum(bwd_ld)[::-1], zero, jnp.cumsum(fwd_ld)])
        states = jax.tree_util.tree_map(
            lambda bw, s0, fw: jnp.concatenate([bw[::-1], s0[None], fw]), bwd, state0, fwd
        )
        a = jax.vmap(lambda *s: self._log_ref(s))(*states) + cum
        idx = jnp.arange(m + 1)[:, None] + jnp.arange(m + 1)[None, :]
        pos = jnp.arange(m + 1) + b + m  # positions of z_n, n = B..N-1
        log_q = -cum[pos] + logsumexp(a[idx], axis=1) - math.log(m + 1)
        tail = jax.tree_util.tree_map(lambda s: s[pos], states)
        log_p = jax.vmap(lambda *s: self._log_target(s))(*tail)
        return jnp.mean(log_p - log_q)

    def elbo(self, key: PRNGKeyArray, n: int) -> Float[Array, ""]:
        r"""Unbiased estimate of the augmented ELBO ``E_{q_N}[log π(x) + log m(ρ) − log q_N(x, ρ, u)]``.

        Averages ``n`` independent reference draws; each reuses one trajectory
        ``T^k z0``, ``k = −(N−1−B)..N−1`` (see the module docstring). Uses the inverse
        map: see the class docstring's note on numerics.
        """
        return self._elbo(key, check_positive_int("n", n))

    @eqx.filter_jit
    def _elbo(self, key, n: int):
        states = jax.vmap(self._sample_reference)(jax.random.split(key, n))
        return jnp.mean(jax.vmap(lambda *s: self._elbo_one(s))(*states))

    def fit(
        self,
        key: PRNGKeyArray,
        *,
        steps: int,
        optimizer=None,
        n_samples: int = 4,
        progress_bar: bool = True,
        checkpoint_path: str | None = None,
        checkpoint_every: int = 100,
    ) -> tuple["MixFlow", np.ndarray]:
        r"""Tune ``log ε`` and the reference's parameters by maximising :meth:`elbo` with optax.

        Default optimizer: Adam (1e-2) with gradient clipping. Steps with a
        non-finite ELBO or gradient are skipped. Returns ``(fitted_flow, elbo_history)``.
        With ``checkpoint_path`` the parameters, optimiser state and key are saved
        atomically every ``checkpoint_every`` steps, at the end and on Ctrl-C; a run
        started again with the same configuration resumes where the file left off
        (extending ``steps`` is allowed; another configuration is refused). Warns
        first when the inverse map drifts (:meth:`check_round_trip`).
        """
        n_samples = check_positive_int("n_samples", n_samples)
        check_positive_int("steps", steps)
        check_checkpoint_path("checkpoint_path", checkpoint_path)
        self.check_round_trip()
        fmap = self.flow_map
        fingerprint = {
            "n_flow_steps": self.n_flow_steps, "burn_in": self.burn_in, "n_leapfrog": fmap.n_leapfrog,
            "shift": fmap.shift, "momentum": type(fmap.momentum).__name__, "n_samples": n_samples,
            "reference": type(self.reference).__name__,
            "preconditioner": None if fmap.preconditioner is None else type(fmap.preconditioner).__name__,
        }
        return maximise(key, self, _ELBO(n_samples), steps=steps, optimizer=optimizer,
                        progress_bar=progress_bar, checkpoint_path=checkpoint_path,
                        checkpoint_every=checkpoint_every, fingerprint=fingerprint, desc="MixFlow fit")

    # ------------------------------------------------------------------ diagnostics
    def round_trip_error(self, key: PRNGKeyArray, n: int = 16, n_steps=None, *, relative: bool = False):
        r"""``max_z ‖T^{−k} T^k z − z‖_∞`` over ``n`` reference draws, for ``k`` in ``n_steps``.

        ``n_steps`` defaults to 10 values spread over ``1..N``. Returns
        ``(n_steps, errors)`` as NumPy arrays; growth with ``k`` shows the
        floating-point error of the uncorrected dynamics. The ``u`` error is the
        distance on the circle ``[0, 1)``. With ``relative`` the ``x`` errors are in
        units of the reference's marginal sd (the momentum's are in its own unit scale).
        """
        n = check_positive_int("n", n)
        if n_steps is None:
            n_steps = np.unique(np.linspace(1, self.n_flow_steps, 10).astype(int))
        n_steps = np.asarray(n_steps, dtype=int).reshape(-1)
        if n_steps.size == 0 or np.any(n_steps < 0):
            raise ValueError(f"n_steps must be non-negative integers, got {n_steps!r}")
        scale = getattr(self.reference, "scale", None) if relative else None
        scale = jnp.ones(self.dim, self._dtype()) if scale is None else lax.stop_gradient(scale)
        return n_steps, np.asarray(self._round_trip(key, n, jnp.asarray(n_steps), scale))

    @eqx.filter_jit
    def _round_trip(self, key, n, ks, x_scale):
        states = jax.vmap(self._sample_reference)(jax.random.split(key, n))
        fmap = self.flow_map

        def err(k):
            def one(*s):
                fwd = lax.fori_loop(0, k, lambda _, z: fmap.forward(z)[0], s)
                (x, rho, u) = lax.fori_loop(0, k, lambda _, z: fmap.inverse(z)[0], fwd)
                du = jnp.abs(u - s[2])
                return jnp.max(jnp.stack([jnp.max(jnp.abs(x - s[0]) / x_scale), jnp.max(jnp.abs(rho - s[1])),
                                          jnp.minimum(du, 1 - du)]))

            return jnp.max(jax.vmap(one)(*states))

        return lax.map(err, ks)

    def check_round_trip(self, key: PRNGKeyArray | None = None, *, n: int = 8, tol: float = ROUND_TRIP_TOL) -> float:
        r"""Round-trip error ``T^{−(N−1)} T^{N−1} z − z`` of the longest inverse the density uses; warns above ``tol``.

        Over ``n`` reference draws (``key`` defaults to ``PRNGKey(0)``), in reference-sd
        units (:meth:`round_trip_error` with ``relative=True``). Above ``tol`` a
        ``RuntimeWarning`` says that :meth:`log_prob`, :meth:`log_prob_augmented` and
        :meth:`elbo` (hence :meth:`fit`) evaluate the density at drifted points and are
        unreliable, while :meth:`sample` is not affected. Cost ``2 n (N − 1)`` map steps.
        Returns the error (NaN, without a check, when called under ``jit``/``grad``/``vmap``).
        """
        # under a trace (jit, grad, vmap: even constants come out as tracers) there is no value to check
        if isinstance(jnp.zeros(()), jax.core.Tracer) or any(
                isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(self)):
            return float("nan")
        k = self.n_flow_steps - 1
        if k == 0:
            return 0.0
        key = jax.random.PRNGKey(0) if key is None else key
        err = float(self.round_trip_error(key, n, [k], relative=True)[1][0])
        if not err <= tol:
            warnings.warn(
                f"MixFlow: the inverse map drifts by {err:.3g} reference sd after {k} steps "
                f"(T^-{k} T^{k} z - z, {self._dtype().name}; tolerance {tol:g}). log_prob, log_prob_augmented, "
                "elbo and fit evaluate the density through the inverse map and are unreliable here; sample is "
                "unaffected. Use float64 (jax.enable_x64), fewer flow steps or a smaller step size.",
                RuntimeWarning, stacklevel=2,
            )
        return err
