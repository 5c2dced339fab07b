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

import math
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_choice, check_positive, check_positive_int
from ._train import maximise
from .hamiltonian import HamiltonianMap
from .momentum import MOMENTA, AbstractMomentum
from .reference import AbstractReference, FullRankGaussianReference, GaussianReference


def _as_momentum(momentum) -> AbstractMomentum:
    if isinstance(momentum, AbstractMomentum):
        return momentum
    if not isinstance(momentum, str):
        raise TypeError(f"momentum must be a string or an AbstractMomentum, got {type(momentum).__name__}")
    check_choice("momentum", momentum, MOMENTA)
    return MOMENTA[momentum]()


def _check_logdensity(logdensity_fn: Callable, x0: Array) -> None:
    """Raise ``ValueError`` unless ``logdensity_fn`` gives a finite scalar and gradient at ``x0``."""
    if not callable(logdensity_fn):
        raise TypeError(f"logdensity_fn must be callable, got {type(logdensity_fn).__name__}")
    value, grad = jax.value_and_grad(logdensity_fn)(x0)
    if jnp.shape(value) != ():
        raise ValueError(f"logdensity_fn must return a scalar, got shape {jnp.shape(value)}")
    if not (np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))):
        raise ValueError(
            "logdensity_fn must be finite with a finite gradient at the starting point "
            f"(the reference mean {np.asarray(x0)!r}); got log density {float(value)!r}"
        )


class MixFlow(eqx.Module):
    r"""Mixed variational flow on uncorrected Hamiltonian dynamics (Xu, Chen, Campbell 2023).

    **Arguments.** ``logdensity_fn``: unnormalised ``log π`` of one point in
    ``R^dim``; ``n_flow_steps``: ``N``; ``n_leapfrog``: leapfrog steps per map
    step; ``step_size``: ``ε`` (scalar or per-coordinate, positive);
    ``reference``: a :class:`AbstractReference` on ``x`` (default ``N(0, I)``);
    ``momentum``: ``"laplace"``, ``"gaussian"`` or an :class:`AbstractMomentum`;
    ``burn_in``: ``B``, the mixture uses ``T^n``, ``n = B..N−1``.

    ``sample`` draws from the ``x``-marginal of ``q_N``; ``log_prob_augmented`` is
    the exact augmented density; ``log_prob`` the importance-sampling estimate of
    the ``x``-marginal; ``elbo`` the unbiased augmented ELBO estimate. Each map
    step costs ``n_leapfrog + 1`` gradient evaluations.
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
    ):
        dim = check_positive_int("dim", dim)
        self.n_flow_steps = check_positive_int("n_flow_steps", n_flow_steps)
        n_leapfrog = check_positive_int("n_leapfrog", n_leapfrog)
        self.burn_in = check_positive_int("burn_in", burn_in, minimum=0)
        if self.burn_in >= self.n_flow_steps:
            raise ValueError(f"burn_in must be < n_flow_steps={n_flow_steps}, got {burn_in}")
        if reference is None:
            reference = GaussianReference(jnp.zeros(dim, jnp.result_type(float)))
        if not isinstance(reference, AbstractReference):
            raise TypeError(f"reference must be an AbstractReference, got {type(reference).__name__}")
        x0 = reference.mean if isinstance(reference, (GaussianReference, FullRankGaussianReference)) else reference.sample(jax.random.PRNGKey(0))
        if x0.shape != (dim,):
            raise ValueError(f"reference must be on R^{dim} (dim), got points of shape {x0.shape}")
        dtype = x0.dtype
        step_size = jnp.asarray(step_size, dtype)
        if step_size.ndim > 1 or step_size.shape not in ((), (dim,)):
            raise ValueError(f"step_size must be a scalar or have shape ({dim},), got shape {step_size.shape}")
        check_positive("step_size", step_size)
        _check_logdensity(logdensity_fn, x0)
        self.reference = reference
        self.flow_map = HamiltonianMap(
            logdensity_fn,
            _as_momentum(momentum),
            jnp.log(jnp.broadcast_to(step_size, (dim,))),
            n_leapfrog,
            float(shift),
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
    @eqx.filter_jit
    def sample_augmented(self, key: PRNGKeyArray, n: int):
        """``n`` i.i.d. draws ``(x, ρ, u)`` of ``q_N`` (shapes ``(n, d)``, ``(n, d)``, ``(n,)``)."""

        def one(key):
            kk, kz = jax.random.split(key)
            k = jax.random.randint(kk, (), self.burn_in, self.n_flow_steps)
            state = self._sample_reference(kz)
            return lax.fori_loop(0, k, lambda _, s: self.flow_map.forward(s)[0], state)

        return jax.vmap(one)(jax.random.split(key, n))

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """``n`` i.i.d. draws of the ``x``-marginal of ``q_N`` (one compiled call)."""
        n = check_positive_int("n", n)
        return self.sample_augmented(key, n)[0]

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

    @eqx.filter_jit
    def log_prob_augmented(self, x, rho, u) -> Float[Array, "..."]:
        r"""Exact ``log q_N(x, ρ, u)``; ``x, ρ`` of shape ``(..., d)``, ``u`` of shape ``(...)``."""
        x = jnp.asarray(x, self._dtype())
        batch = x.shape[:-1]
        flat = (x.reshape(-1, self.dim), jnp.reshape(rho, (-1, self.dim)).astype(x.dtype),
                jnp.reshape(u, (-1,)).astype(x.dtype))
        return jax.vmap(lambda *s: self._log_prob_augmented_one(s))(*flat).reshape(batch)

    def log_prob(self, x, *, key: PRNGKeyArray | None = None, n_samples: int = 64) -> Float[Array, "..."]:
        r"""Importance-sampling estimate of the ``x``-marginal ``log q_N(x)``, ``x`` of shape ``(..., d)``.

        ``q_N(x) ≈ (1/S) Σ_s q_N(x, ρ_s, u_s)/m(ρ_s)`` with ``(ρ_s, u_s) ~ m ⊗ Unif``
        drawn independently for each point from ``key`` (default ``PRNGKey(0)``, so
        the estimate is deterministic). Cost per point: ``S`` backward passes. Unbiased for ``q_N(x)``; its log converges
        as ``n_samples`` grows. Use :meth:`log_prob_augmented` for the exact density.
        """
        n_samples = check_positive_int("n_samples", n_samples)
        x = jnp.asarray(x, self._dtype())
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {x.shape}")
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

    @eqx.filter_jit
    def elbo(self, key: PRNGKeyArray, n: int) -> Float[Array, ""]:
        r"""Unbiased estimate of the augmented ELBO ``E_{q_N}[log π(x) + log m(ρ) − log q_N(x, ρ, u)]``.

        Averages ``n`` independent reference draws; each reuses one trajectory
        ``T^k z0``, ``k = −(N−1−B)..N−1`` (see the module docstring).
        """
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
        """
        n_samples = check_positive_int("n_samples", n_samples)
        return maximise(key, self, lambda f, k: f.elbo(k, n_samples), steps=steps, optimizer=optimizer,
                        progress_bar=progress_bar, checkpoint_path=checkpoint_path,
                        checkpoint_every=checkpoint_every, desc="MixFlow fit")

    # ------------------------------------------------------------------ diagnostics
    def round_trip_error(self, key: PRNGKeyArray, n: int = 16, n_steps=None):
        r"""``max_z ‖T^{−k} T^k z − z‖_∞`` over ``n`` reference draws, for ``k`` in ``n_steps``.

        ``n_steps`` defaults to 10 values spread over ``1..N``. Returns
        ``(n_steps, errors)`` as NumPy arrays; growth with ``k`` shows the
        floating-point error of the uncorrected dynamics.
        """
        n = check_positive_int("n", n)
        if n_steps is None:
            n_steps = np.unique(np.linspace(1, self.n_flow_steps, 10).astype(int))
        n_steps = np.asarray(n_steps, dtype=int).reshape(-1)
        if n_steps.size == 0 or np.any(n_steps < 0):
            raise ValueError(f"n_steps must be non-negative integers, got {n_steps!r}")
        return n_steps, np.asarray(self._round_trip(key, n, jnp.asarray(n_steps)))

    @eqx.filter_jit
    def _round_trip(self, key, n, ks):
        states = jax.vmap(self._sample_reference)(jax.random.split(key, n))
        fmap = self.flow_map

        def err(k):
            def one(*s):
                fwd = lax.fori_loop(0, k, lambda _, z: fmap.forward(z)[0], s)
                back = lax.fori_loop(0, k, lambda _, z: fmap.inverse(z)[0], fwd)
                return jnp.max(jnp.stack([jnp.max(jnp.abs(b - a)) for a, b in zip(s, back)]))

            return jnp.max(jax.vmap(one)(*states))

        return lax.map(err, ks)
