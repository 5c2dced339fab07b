r"""Generic diffrax integrators for generative models (shared by interpolants and diffusion).

All fields act on ONE point: ``field(t, x) -> R^d`` with ``x`` of shape ``(d,)``; the
integrators vmap them over a batch ``x0`` of shape ``(n, d)`` and solve the whole
batch as one system (one shared step size when adaptive).

- :func:`solve_ode`: :math:`dX = f(t, X)\,dt` from ``t0`` to ``t1`` (either direction).
- :func:`solve_sde`: :math:`dX = f(t, X)\,dt + g(t)\,dW` (additive, diagonal noise),
  from ``t0`` to ``t1``. When ``t1 < t0`` the SDE is integrated backward in time:
  with :math:`s = -t`, :math:`dX = -f(-s, X)\,ds + g(-s)\,d\tilde W_s` (Itô in ``s``),
  which is the meaning of a "backward SDE" in the interpolant and diffusion papers.
- :func:`ode_log_prob`: instantaneous change of variables,
  :math:`\tfrac{d}{dt}\log p(X_t, t) = -\nabla\cdot f(t, X_t)`, so for ``x`` at time
  ``t0`` and a known base density at ``t1``,
  :math:`\log p_{t_0}(x) = \log p_{t_1}(X_{t_1}) + \int_{t_0}^{t_1} \nabla\cdot f(t, X_t)\,dt`.
  The divergence is exact (trace of ``jacfwd``) or Hutchinson's
  :math:`\mathbb{E}_v[v^\top J v]` with Rademacher probes held fixed along the path.

Each returns the number of evaluations of ``f`` per point (``nfe``), computed from
diffrax's step counts and the solver's stage count.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, Float, Int, PRNGKeyArray, ScalarLike

from .._validate import as_float_array, check_choice, check_positive, check_positive_int

__all__ = ["solve_ode", "solve_sde", "ode_log_prob", "divergence", "check_field"]

Field = Callable[[ScalarLike, Float[Array, " d"]], Float[Array, " d"]]

_ODE_SOLVERS = {
    "euler": diffrax.Euler,
    "heun": diffrax.Heun,
    "midpoint": diffrax.Midpoint,
    "ralston": diffrax.Ralston,
    "bosh3": diffrax.Bosh3,
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
}
_SDE_SOLVERS = {"euler": diffrax.Euler, "heun": diffrax.Heun, "shark": diffrax.ShARK}
_SDE_DRIFT_EVALS = {"euler": 1, "heun": 2, "shark": 2}


def _ode_solver(name: str):
    if isinstance(name, diffrax.AbstractSolver):
        return name
    check_choice("solver", name, _ODE_SOLVERS)
    return _ODE_SOLVERS[name]()


def _evals_per_step(solver) -> tuple[int, int]:
    """(field evaluations per step, extra evaluations at initialisation)."""
    tableau = getattr(solver, "tableau", None)
    if tableau is None:
        return 1, 0  # Euler
    stages = len(tableau.c) + 1
    return (stages - 1, 1) if tableau.fsal else (stages, 0)


def _check_batch(name: str, x) -> Array:
    return as_float_array(name, x, 2, "a batch of points of shape (n, d)")


def check_field(name: str, field: Field, x: Array, x_name: str) -> None:
    """Require ``field(t, x_i)`` to map one point of the batch ``x`` ``(n, d)`` to shape ``(d,)``.

    Traced abstractly (:func:`jax.eval_shape`, nothing is computed); a field of another
    dimension (e.g. a network built for other data) fails here with a ``ValueError``
    naming ``name`` and ``x_name`` instead of deep inside the solver.
    """
    if not callable(field):
        raise TypeError(f"{name} must be a callable field (t, x) -> R^d, got {type(field).__name__}")
    point = jax.ShapeDtypeStruct(x.shape[1:], x.dtype)
    try:
        out = jax.eval_shape(field, jax.ShapeDtypeStruct((), x.dtype), point)
    except Exception as err:  # noqa: BLE001 - shape errors surface as TypeError/ValueError/IndexError...
        raise ValueError(
            f"{name} cannot be evaluated at one point of {x_name} (shape {point.shape}; "
            f"a network built for another dimension?): {type(err).__name__}: {err}"
        ) from err
    shape = getattr(out, "shape", None)
    if shape != point.shape:
        raise ValueError(
            f"{name} maps a point of {x_name} of shape {point.shape} to "
            f"{shape if shape is not None else type(out).__name__}; a field must return the point's shape"
        )


def _check_times(t0, t1) -> None:
    for name, t in (("t0", t0), ("t1", t1)):
        if jnp.ndim(t) != 0:
            raise ValueError(f"{name} must be a scalar time, got shape {jnp.shape(t)}")
    if not isinstance(t0, jax.core.Tracer) and not isinstance(t1, jax.core.Tracer):
        if float(t0) == float(t1):
            raise ValueError(f"t0 and t1 must differ, got t0 = t1 = {float(t0)}")


def _forward_time(f: Callable, t0, t1):
    """Rewrite ``f`` so that integration runs forward: returns (f_s, s0, s1, sign)."""
    sign = jnp.where(t1 >= t0, 1.0, -1.0)

    def f_s(s, *rest):
        return jax.tree_util.tree_map(lambda v: sign.astype(v.dtype) * v, f(sign * s, *rest))

    return f_s, sign * t0, sign * t1, sign


def _controller(adaptive: bool, rtol: float, atol: float):
    if adaptive:
        check_positive("rtol", rtol)
        check_positive("atol", atol)
        # max norm over the batch: every point meets the tolerance (RMS would average it away)
        return diffrax.PIDController(rtol=rtol, atol=atol, norm=optx.max_norm)
    return diffrax.ConstantStepSize()


def _nfe(solver, stats) -> Int[Array, ""]:
    per_step, init = _evals_per_step(solver)
    return stats["num_steps"] * per_step + init


def solve_ode(
    field: Field,
    x0: Float[Array, "n d"],
    t0: ScalarLike,
    t1: ScalarLike,
    *,
    solver: str | diffrax.AbstractSolver = "tsit5",
    n_steps: int = 100,
    adaptive: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 16384,
) -> tuple[Float[Array, "n d"], Int[Array, ""]]:
    r"""Solve :math:`\dot X = f(t, X)` for a batch from ``t0`` to ``t1`` (``t1 < t0`` allowed).

    Args:
        field: ``(t, x) -> R^d`` for one point.
        x0: starting points ``(n, d)`` at time ``t0``.
        solver: one of ``euler, heun, midpoint, ralston, bosh3, tsit5, dopri5`` or a
            diffrax solver instance.
        n_steps: number of fixed steps (the initial step when ``adaptive``).
        adaptive: PID step-size control with ``rtol``/``atol`` (needs an embedded
            error estimate: ``heun``, ``bosh3``, ``tsit5``, ``dopri5``).

    Returns:
        ``(x1, nfe)``: the points at ``t1`` and the field evaluations per point.
    """
    x0 = _check_batch("x0", x0)
    check_field("field", field, x0, "x0")
    _check_times(t0, t1)
    n_steps = check_positive_int("n_steps", n_steps)
    solver = _ode_solver(solver)
    return _solve_ode_batch(field, x0, t0, t1, solver, n_steps, adaptive, rtol, atol, max_steps)


@eqx.filter_jit
def _solve_ode_batch(field, x0, t0, t1, solver, n_steps, adaptive, rtol, atol, max_steps):
    # jitted on the field (a Module's arrays are traced), so repeated calls do not recompile
    batched = lambda t, y: jax.vmap(field, (None, 0))(t, y)  # noqa: E731
    return _solve_ode_pytree(batched, x0, t0, t1, solver, n_steps, adaptive, rtol, atol, max_steps)


def _solve_ode_pytree(batched_f, y0, t0, t1, solver, n_steps, adaptive, rtol, atol, max_steps):
    dtype = jax.tree_util.tree_leaves(y0)[0].dtype
    t0 = jnp.asarray(t0, dtype)
    t1 = jnp.asarray(t1, dtype)
    f_s, s0, s1, _ = _forward_time(batched_f, t0, t1)
    term = diffrax.ODETerm(lambda s, y, args: f_s(s, y))
    sol = diffrax.diffeqsolve(
        term,
        solver,
        s0,
        s1,
        (s1 - s0) / n_steps,
        y0,
        stepsize_controller=_controller(adaptive, rtol, atol),
        max_steps=max_steps,
        saveat=diffrax.SaveAt(t1=True),
    )
    y = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
    return y, _nfe(solver, sol.stats)


def solve_sde(
    key: PRNGKeyArray,
    drift: Field,
    diffusion: Callable[[ScalarLike], ScalarLike],
    x0: Float[Array, "n d"],
    t0: ScalarLike,
    t1: ScalarLike,
    *,
    solver: str = "euler",
    n_steps: int = 500,
) -> tuple[Float[Array, "n d"], Int[Array, ""]]:
    r"""Solve :math:`dX = f(t, X)\,dt + g(t)\,dW` for a batch with fixed steps.

    Args:
        key: PRNG key of the Brownian motion.
        drift: ``(t, x) -> R^d`` for one point.
        diffusion: ``t -> g(t) >= 0`` (scalar, additive noise on every coordinate).
        x0: starting points ``(n, d)`` at ``t0``; ``t1 < t0`` integrates backward.
        solver: ``euler`` (Euler–Maruyama, Itô), ``heun`` (strong order 1 for additive
            noise) or ``shark`` (diffrax's ShARK additive-noise SRK with space-time
            Lévy area).
        n_steps: number of steps.

    Returns:
        ``(x1, nfe)`` with ``nfe`` the drift evaluations per point.
    """
    x0 = _check_batch("x0", x0)
    _check_times(t0, t1)
    n_steps = check_positive_int("n_steps", n_steps)
    check_choice("solver", solver, _SDE_SOLVERS)
    check_field("drift", drift, x0, "x0")
    if not callable(diffusion):
        raise TypeError(f"diffusion must be callable t -> scalar, got {diffusion!r}")
    return _solve_sde_batch(key, drift, diffusion, x0, t0, t1, solver, n_steps)


@eqx.filter_jit
def _solve_sde_batch(key, drift, diffusion, x0, t0, t1, solver, n_steps):
    n, d = x0.shape
    dtype = x0.dtype
    t0 = jnp.asarray(t0, dtype)
    t1 = jnp.asarray(t1, dtype)
    batched = lambda t, y: jax.vmap(drift, (None, 0))(t, y.reshape(n, d)).reshape(-1)  # noqa: E731
    f_s, s0, s1, sign = _forward_time(batched, t0, t1)
    g_s = lambda s: jnp.asarray(diffusion(sign * s), dtype)  # noqa: E731
    levy = diffrax.SpaceTimeLevyArea if solver == "shark" else diffrax.BrownianIncrement
    bm = diffrax.UnsafeBrownianPath(shape=jax.ShapeDtypeStruct((n * d,), dtype), key=key, levy_area=levy)
    ones = jnp.ones((n * d,), dtype)
    terms = diffrax.MultiTerm(
        diffrax.ODETerm(lambda s, y, args: f_s(s, y)),
        diffrax.ControlTerm(lambda s, y, args: lx.DiagonalLinearOperator(g_s(s) * ones), bm),
    )
    sol = diffrax.diffeqsolve(
        terms,
        _SDE_SOLVERS[solver](),
        s0,
        s1,
        (s1 - s0) / n_steps,
        x0.reshape(-1),
        saveat=diffrax.SaveAt(t1=True),
        max_steps=n_steps + 1,
        adjoint=diffrax.ForwardMode(),
    )
    nfe = sol.stats["num_steps"] * _SDE_DRIFT_EVALS[solver]
    return sol.ys[-1].reshape(n, d), nfe


def divergence(
    field: Field,
    t: ScalarLike,
    x: Float[Array, " d"],
    probes: Float[Array, "k d"] | None = None,
) -> Float[Array, ""]:
    r""":math:`\nabla\cdot f(t, x)`: exact trace of the Jacobian when ``probes`` is None,
    else Hutchinson's :math:`\frac1k\sum_j v_j^\top J v_j` (unbiased for Rademacher or
    standard normal probes)."""
    if probes is None:
        return jnp.trace(jax.jacfwd(field, argnums=1)(t, x))
    jvp = jax.vmap(lambda v: jax.jvp(lambda y: field(t, y), (x,), (v,))[1])(probes)
    return jnp.mean(jnp.sum(jvp * probes, axis=-1))


def ode_log_prob(
    field: Field,
    x: Float[Array, "n d"],
    t0: ScalarLike,
    t1: ScalarLike,
    base_log_prob: Callable[[Float[Array, " d"]], Float[Array, ""]],
    *,
    divergence_method: str = "auto",
    key: PRNGKeyArray | None = None,
    n_probes: int = 1,
    solver: str | diffrax.AbstractSolver = "tsit5",
    n_steps: int = 100,
    adaptive: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 16384,
) -> tuple[Float[Array, " n"], Int[Array, ""]]:
    r"""Log-density at time ``t0`` of points ``x`` transported by the flow of ``field``
    to time ``t1``, where the density is ``base_log_prob`` (for one point).

    :math:`\log p_{t_0}(x) = \log p_{t_1}(X_{t_1}) + \int_{t_0}^{t_1}\nabla\cdot f\,dt`.

    Args:
        divergence_method: ``"exact"`` (Jacobian trace, ``d`` forward passes),
            ``"hutchinson"`` (``n_probes`` Rademacher probes per point, needs ``key``)
            or ``"auto"`` (exact for ``d <= 16``).
        other arguments: as :func:`solve_ode` (adaptive by default).

    Returns:
        ``(log_prob, nfe)``: shape ``(n,)`` and field evaluations per point (one
        divergence evaluation counted as one).
    """
    x = _check_batch("x", x)
    check_field("field", field, x, "x")
    _check_times(t0, t1)
    n_steps = check_positive_int("n_steps", n_steps)
    n_probes = check_positive_int("n_probes", n_probes)
    check_choice("divergence_method", divergence_method, ("auto", "exact", "hutchinson"))
    if not callable(base_log_prob):
        raise TypeError(f"base_log_prob must be callable x -> scalar, got {base_log_prob!r}")
    n, d = x.shape
    method = ("exact" if d <= 16 else "hutchinson") if divergence_method == "auto" else divergence_method
    if method == "hutchinson":
        if key is None:
            raise ValueError("key is required for divergence_method='hutchinson'")
        probes = jax.random.rademacher(key, (n, n_probes, d), dtype=x.dtype)
    else:
        probes = None
    return _ode_log_prob_batch(field, x, t0, t1, base_log_prob, probes, _ode_solver(solver), n_steps, adaptive,
                               rtol, atol, max_steps)


@eqx.filter_jit
def _ode_log_prob_batch(field, x, t0, t1, base_log_prob, probes, solver, n_steps, adaptive, rtol, atol, max_steps):
    n = x.shape[0]

    def one(t, x_i, probes_i):
        return field(t, x_i), divergence(field, t, x_i, probes_i)

    def aug(t, state):
        y, _ = state
        if probes is None:
            dx, div = jax.vmap(lambda y_i: one(t, y_i, None))(y)
        else:
            dx, div = jax.vmap(lambda y_i, p_i: one(t, y_i, p_i))(y, probes)
        return dx, div

    y0 = (x, jnp.zeros((n,), x.dtype))
    (y1, delta), nfe = _solve_ode_pytree(aug, y0, t0, t1, solver, n_steps, adaptive, rtol, atol, max_steps)
    base = jax.vmap(base_log_prob)(y1)
    return base + delta, nfe
