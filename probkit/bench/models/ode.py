r"""posteriordb ``hudson_lynx_hare-lotka_volterra`` and ``one_comp_mm_elim_abs-one_comp_mm_elim_abs``.

Stan solves these ODEs with ``integrate_ode_rk45`` (rtol 1e-5, atol 1e-3, at
most 500 steps) and ``integrate_ode_bdf`` (CVODES, rtol = atol = 1e-6). Here
diffrax's 8th-order Dormand–Prince method solves them with a PID step-size
controller at rtol = atol = 1e-10 in float64 (1e-6 in float32, the tightest
that single precision sustains), and gradients come from differentiating the
discrete solve (``RecursiveCheckpointAdjoint``). The NumPyro log density is
therefore that of the exact ODE solution to ~1e-10, while Stan's carries its
own, looser, solver error: the two differ by a small non-constant amount (see
``scripts/verify_posteriordb.py`` results for the measured size). Stan rejects
a draw whose solve fails (too many steps, non-finite state); here a failed or
non-finite solve gives log density −inf, never NaN.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

MAX_STEPS = 2048


def _tolerance(dtype) -> float:
    return 1e-10 if jnp.finfo(dtype).eps < 1e-12 else 1e-6


def solve_ode(vector_field, y0, t0, ts, args, *, rtol=None, atol=None, max_steps=MAX_STEPS, return_stats=False):
    r"""Solve :math:`\dot y = f(t, y, \text{args})`, :math:`y(t_0) = y_0`, at the times ``ts``.

    Returns ``(ys, ok)``: ``ys`` of shape ``(len(ts), *y0.shape)`` and ``ok``,
    a boolean scalar that is false when the solver did not succeed (too many
    steps, step size collapse) or the solution is not finite (and diffrax's
    ``stats`` third with ``return_stats=True``).
    """
    y0 = jnp.asarray(y0)
    ts = jnp.asarray(ts, dtype=y0.dtype)
    tol = _tolerance(y0.dtype)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Dopri8(),
        t0=jnp.asarray(t0, dtype=y0.dtype),
        t1=ts[-1],
        dt0=None,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        # steps land on the save times: diffrax's dense interpolant between steps is
        # not error-controlled (~1e-8 relative for Dopri8 at rtol 1e-10)
        stepsize_controller=diffrax.ClipStepSizeController(
            diffrax.PIDController(rtol=tol if rtol is None else rtol, atol=tol if atol is None else atol), step_ts=ts
        ),
        max_steps=max_steps,
        # one checkpoint per step: the states are tiny, and recomputation would cost ~5x
        adjoint=diffrax.RecursiveCheckpointAdjoint(checkpoints=max_steps),
        throw=False,
    )
    ok = (sol.result == diffrax.RESULTS.successful) & jnp.all(jnp.isfinite(sol.ys))
    if return_stats:
        return sol.ys, ok, sol.stats
    return sol.ys, ok


def _reject_unless(ok, name):
    """Log density −inf where ``ok`` is false (a zero factor otherwise)."""
    numpyro.factor(name, jnp.where(ok, 0.0, -jnp.inf))


def _lotka_volterra_log(t, w, theta):
    # log-state w = (log u, log v): d log u/dt = α − β v, d log v/dt = −γ + δ u
    alpha, beta, gamma, delta = theta
    return jnp.stack([alpha - beta * jnp.exp(w[1]), -gamma + delta * jnp.exp(w[0])])


def lotka_volterra(N, ts, y_init, y, **unused_data):
    r"""Predator–prey populations z(t) = (u, v): u' = (α − βv)u, v' = (−γ + δu)v.

    θ = (α, β, γ, δ) > 0 with α, γ ~ N(1, 0.5), β, δ ~ N(0.05, 0.05); z_init ~
    LogNormal(log 10, 1); σ ~ LogNormal(−1, 1); y_init_k ~ LogNormal(log z_init_k, σ_k),
    y_{n,k} ~ LogNormal(log z_k(t_n), σ_k). The ODE is solved for log z (positive
    by construction, the same solution).
    """
    ts = jnp.asarray(ts, dtype=float)
    y_init = jnp.asarray(y_init, dtype=float)
    y = jnp.asarray(y, dtype=float)
    theta = numpyro.sample("theta", dist.ImproperUniform(constraints.positive, (), (4,)))
    z_init = numpyro.sample("z_init", dist.LogNormal(jnp.log(10.0), 1.0).expand([2]).to_event(1))
    sigma = numpyro.sample("sigma", dist.LogNormal(-1.0, 1.0).expand([2]).to_event(1))
    # no truncation terms: Stan's `~` on a bounded parameter drops them (constants)
    numpyro.factor("theta_prior", dist.Normal(jnp.array([1.0, 0.05, 1.0, 0.05]), jnp.array([0.5, 0.05, 0.5, 0.05])).log_prob(theta).sum())
    log_z, ok = solve_ode(_lotka_volterra_log, jnp.log(z_init), 0.0, ts, theta)
    numpyro.deterministic("z", jnp.where(ok, jnp.exp(log_z), jnp.nan))
    _reject_unless(ok, "ode_solve_ok")
    log_z = jnp.where(ok, log_z, 0.0)
    numpyro.sample("y_init", dist.LogNormal(jnp.log(z_init), sigma).to_event(1), obs=y_init)
    numpyro.sample("y", dist.LogNormal(log_z, sigma).to_event(2), obs=y)


def _one_comp(t, c, args):
    k_a, K_m, V_m, D, V = args
    dose = jnp.where(t > 0, jnp.exp(-k_a * t) * D * k_a / V, 0.0)
    elim = (V_m / V) * c / (K_m + c)
    return dose - elim


def one_comp_mm_elim_abs(t0, D, V, N_t, times, C_hat, **unused_data):
    r"""One-compartment pharmacokinetics, first-order absorption, Michaelis–Menten elimination.

    C' = 1[t > 0] e^{−k_a t} D k_a / V − (V_m / V) C / (K_m + C), C(t₀) = 0;
    k_a, K_m, V_m, σ ~ Cauchy⁺(0, 1); Ĉ_n ~ LogNormal(log C(t_n), σ). A solution
    that is not positive at a measurement time is rejected (Stan's lognormal
    throws on a non-finite location).
    """
    times = jnp.asarray(times, dtype=float)
    C_hat = jnp.asarray(C_hat, dtype=float)
    k_a = numpyro.sample("k_a", dist.HalfCauchy(1.0))
    K_m = numpyro.sample("K_m", dist.HalfCauchy(1.0))
    V_m = numpyro.sample("V_m", dist.HalfCauchy(1.0))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(1.0))
    c0 = jnp.zeros((1,), dtype=times.dtype)
    args = (k_a, K_m, V_m, jnp.asarray(D, dtype=times.dtype), jnp.asarray(V, dtype=times.dtype))
    C, ok = solve_ode(_one_comp, c0, t0, times, args)
    ok = ok & jnp.all(C > 0)
    numpyro.deterministic("C", jnp.where(ok, C, jnp.nan))
    _reject_unless(ok, "ode_solve_ok")
    C = jnp.where(ok, C, 1.0)
    numpyro.sample("C_hat", dist.LogNormal(jnp.log(C[:, 0]), sigma).to_event(1), obs=C_hat)
