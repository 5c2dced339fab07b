r"""Sliced Wasserstein distance with plain Monte Carlo and control-variate estimators.

.. math::
    SW_p^p(\mu, \nu) = \mathbb{E}_{\theta \sim \mathrm{Unif}(S^{d-1})}
    \big[ W_p^p(\theta_\# \mu, \theta_\# \nu) \big].

With :math:`L` directions and :math:`W_l = W_p^p(\theta_{l\#}\mu, \theta_{l\#}\nu)`
(exact 1-D distances, :mod:`probkit.ot.wasserstein_1d`):

- ``"mc"``: :math:`\hat Z = \frac1L \sum_l W_l` (unbiased);
- ``"cv_lower"`` / ``"cv_upper"`` (``p = 2`` only): :math:`\hat Z = \bar W - \hat\alpha(\bar G - \mathbb{E}G)`
  with the Gaussian-fit control variates of Nguyen & Ho (ICLR 2024), see
  :mod:`probkit.ot._control_variates` (consistent; bias :math:`O(1/L)`).

The projections are processed in chunks (``lax.map``), so memory is
:math:`O(\text{chunk} \cdot (n + m))` rather than :math:`O(L (n + m))`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from probkit._validate import check_choice, check_positive_int, check_real
from probkit.ot._checks import check_directions, check_p, check_samples, check_weights
from probkit.ot._control_variates import CONTROL_VARIATES, cv_estimate, mc_estimate
from probkit.ot._projections import DIRECTIONS
from probkit.ot.wasserstein_1d import power_of_two_scale, safe_root, wpp_quantile, wpp_uniform

ESTIMATORS = ("mc", "cv_lower", "cv_upper")
_CHUNK_ELEMENTS = 2**22  # projected values held at once per chunk (x and y together)


def default_chunk(n_projections: int, n_points: int) -> int:
    """Projections per chunk: about ``2**22`` projected values, split evenly."""
    cap = max(1, min(n_projections, _CHUNK_ELEMENTS // max(n_points, 1)))
    n_chunks = -(-n_projections // cap)
    return -(-n_projections // n_chunks)


def _wmean(v: Float[Array, "n ..."], w: Float[Array, " n"] | None) -> Float[Array, "..."]:
    """Mean over the first axis, weighted by ``w`` (``None``: uniform).

    An elementwise product and a reduction rather than ``w @ v``: under ``vmap``
    a matrix-vector product over the projections makes XLA transpose them first.
    """
    if w is None:
        return jnp.mean(v, axis=0)
    return jnp.sum(w.reshape(w.shape + (1,) * (v.ndim - 1)) * v, axis=0)


def _use_covariance(dim: int, n_projections: int) -> bool:
    r"""Projected variances from the :math:`d \times d` covariances (``True``) or per slice.

    :math:`\theta^\top\Sigma\theta` from :math:`\Sigma` costs :math:`O((n + L) d^2)` in matrix
    products; from the projections :math:`O(Ln)` memory-bound elementwise work, which a
    matrix product beats by roughly an order of magnitude per operation.
    """
    return dim * dim <= 16 * n_projections


def slice_stats(
    x: Float[Array, "n d"],
    y: Float[Array, "m d"],
    a: Float[Array, " n"] | None,
    b: Float[Array, " m"] | None,
    thetas: Float[Array, "L d"],
    *,
    p: float,
    need_var: bool,
    chunk_size: int,
):
    r"""Per-slice :math:`W_l`, :math:`\theta_l^\top(m_1 - m_2)` and :math:`\theta_l^\top(\Sigma_1+\Sigma_2)\theta_l`.

    ``a``/``b`` ``None`` means uniform weights (two sorts and a static merge of the
    breakpoints); given weights use the exact quantile form. Also returns
    :math:`\lVert m_1 - m_2\rVert^2` and :math:`\operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2`.

    The moments add one pass over ``x`` and ``y`` for the means, :math:`O(Ld)` for the
    projected means, and for the variances either :math:`\Sigma = \sum_i a_i (x_i - m)(x_i - m)^\top`
    (small ``d``, see :func:`_use_covariance`) or
    :math:`\theta^\top\Sigma\theta = \sum_i a_i (x_i^\top\theta - \theta^\top m)^2` reduced from the
    projections already made for the sort, in the same chunk.
    """
    uniform = a is None and b is None
    if not uniform:
        a = jnp.full((x.shape[0],), 1.0 / x.shape[0], x.dtype) if a is None else a
        b = jnp.full((y.shape[0],), 1.0 / y.shape[0], x.dtype) if b is None else b
    mx = _wmean(x, a)
    my = _wmean(y, b)
    dm = mx - my
    per_slice_var = need_var and not _use_covariance(x.shape[1], thetas.shape[0])

    def one(args):
        theta, cx, cy = args
        xp = x @ theta
        yp = y @ theta
        w = wpp_uniform(xp, yp, p) if uniform else wpp_quantile(xp, yp, a, b, p)
        if not per_slice_var:
            return w, jnp.zeros((), x.dtype)
        return w, _wmean(jnp.square(xp - cx), a) + _wmean(jnp.square(yp - cy), b)

    centres = (thetas @ mx, thetas @ my) if per_slice_var else (None, None)
    w, var_sum = jax.lax.map(one, (thetas, *centres), batch_size=chunk_size)
    trace_sum = None
    if need_var:
        xc, yc = x - mx, y - my
        if per_slice_var:
            trace_sum = jnp.sum(_wmean(jnp.square(xc), a)) + jnp.sum(_wmean(jnp.square(yc), b))
        else:
            wx = xc / x.shape[0] if a is None else a[:, None] * xc
            wy = yc / y.shape[0] if b is None else b[:, None] * yc
            cov_sum = wx.T @ xc + wy.T @ yc
            var_sum = jnp.sum((thetas @ cov_sum) * thetas, axis=1)
            trace_sum = jnp.trace(cov_sum)
    return w, thetas @ dm, var_sum, dm @ dm, trace_sum


@functools.partial(
    jax.jit,
    static_argnames=(
        "n_projections", "p", "estimator", "projections", "chunk_size", "root", "return_stderr", "detach_coefficient",
        "cv_coefficient",
    ),
)
def _sliced(
    key, x, y, a, b, thetas, *, n_projections, p, estimator, projections, chunk_size, root, return_stderr,
    detach_coefficient, cv_coefficient,
):
    d = x.shape[1]
    if thetas is None:
        thetas = DIRECTIONS[projections](key, n_projections, d, x.dtype)
    thetas = thetas.astype(x.dtype)
    scale = power_of_two_scale(x, y)  # SW_p is 1-homogeneous: compute on x/s, y/s
    x, y = x / scale, y / scale
    cv = CONTROL_VARIATES.get(estimator)
    need_var = cv is not None and cv.needs_variance
    w, proj_dm, var_sum, dm2, trace_sum = slice_stats(
        x, y, a, b, thetas, p=p, need_var=need_var, chunk_size=chunk_size
    )
    if cv is None:
        z, var_z = mc_estimate(w)
    else:
        g, g_mean = cv.values(proj_dm, var_sum), cv.expectation(dm2, trace_sum, d)
        z, var_z = cv_estimate(w, g, g_mean, detach_coefficient=detach_coefficient, coefficient=cv_coefficient)
    z = jnp.maximum(z, 0.0)
    se = jnp.sqrt(var_z)
    if not root:
        zp = scale**p
        return (zp * z, zp * se) if return_stderr else zp * z
    est = safe_root(z, p)
    if not return_stderr:
        return scale * est
    # delta method d(z^{1/p}) = z^{1/p - 1}/p dz, capped by se^{1/p} where z -> 0
    delta = se * est / (p * jnp.where(z > 0, z, 1.0))
    se_root = jnp.where(z > 0, jnp.minimum(delta, safe_root(se, p)), safe_root(se, p))
    return scale * est, scale * se_root


def sliced_wasserstein(
    key: PRNGKeyArray | None,
    x: Float[Array, "n d"],
    y: Float[Array, "m d"],
    *,
    n_projections: int | None = None,
    p: float = 2,
    estimator: str = "mc",
    x_weights: Float[Array, " n"] | None = None,
    y_weights: Float[Array, " m"] | None = None,
    projections: str | Float[Array, "L d"] = "uniform",
    return_stderr: bool = False,
    root: bool = True,
    chunk_size: int | None = None,
    detach_coefficient: bool = False,
    cv_coefficient: float | None = None,
):
    r"""Sliced Wasserstein-:math:`p` distance between two (weighted) point clouds.

    Args:
        key: PRNG key for the directions (may be ``None`` when ``projections`` is an array).
        x, y: samples, shapes ``(n, d)`` and ``(m, d)`` (1-D arrays are ``d = 1``).
        n_projections: number of directions :math:`L` (taken from ``projections`` when
            that is an array).
        p: order :math:`p \ge 1`; the control-variate estimators need ``p = 2``.
        estimator: ``"mc"``, ``"cv_lower"`` or ``"cv_upper"`` (see module docstring).
        x_weights, y_weights: probability vectors (``None``: uniform).
        projections: ``"uniform"`` (i.i.d.), ``"orthogonal"`` (orthogonal blocks),
            ``"qmc"`` (randomly shifted Sobol), or an ``(L, d)`` array of unit directions.
        return_stderr: also return the standard error of the returned value.
        root: return :math:`\widehat{SW}_p = \max(\hat Z, 0)^{1/p}` (default); ``False``
            returns :math:`\max(\hat Z, 0)`, the estimate of :math:`SW_p^p`.
        chunk_size: projections processed at once (default: about :math:`2^{22}/(n+m)`).
        detach_coefficient: control variates only: hold the fitted coefficient
            :math:`\hat\alpha` constant under differentiation (``stop_gradient``; the value is
            unchanged), so the gradient is :math:`\nabla\bar W - \hat\alpha\nabla(\bar G - \mathbb{E}G)`,
            a control-variate estimate of :math:`\nabla SW_2^2`. Default ``False``
            differentiates :math:`\hat\alpha` too, as Nguyen & Ho's code does.
        cv_coefficient: control variates only: use this fixed :math:`\alpha` instead of the
            fitted :math:`\hat\alpha` (``None``, default). :math:`\bar W - \alpha(\bar G - \mathbb{E}G)` is
            unbiased for every fixed :math:`\alpha`. With ``"cv_lower"`` and :math:`\alpha = 1` the
            *gradient* has no translation noise: moving every point of ``x`` by :math:`t` changes
            :math:`W_l` at rate :math:`2\theta_l\theta_l^\top\Delta m`, exactly
            :math:`\nabla_t G_l`, so the common-translation part of
            :math:`\nabla(\bar W - \bar G + \mathbb{E}G)` is the exact :math:`2\Delta m/d`
            whatever the directions. Prefer it for gradient flows: the fitted :math:`\hat\alpha`
            scales like :math:`\lVert\Delta m\rVert^{-2}` once the means agree and then adds noise.

    Returns:
        The estimate, or ``(estimate, stderr)``. The stderr of :math:`\hat Z` is
        :math:`s_W/\sqrt L` for ``"mc"`` and the regression prediction error for the
        control variates (needs :math:`L \ge 2`, resp. :math:`\ge 3`); for the root it is
        carried over by the delta method, :math:`\mathrm{se}(\hat Z)\,\hat Z^{1/p-1}/p`,
        capped at :math:`\mathrm{se}(\hat Z)^{1/p}` near :math:`\hat Z = 0`.

    Valid for any finite data of the dtype: the clouds are divided by a power of two
    near their largest entry and the result is scaled back (exact; float32 data at
    scales of 1e-20 or 1e18 give the same relative accuracy as at scale 1).

    jit / vmap / grad compatible (differentiable in ``x``, ``y`` and the weights).
    Bad values (NaN or inf in the data, weights that are negative or do not sum to 1,
    projection rows that are not unit vectors) raise a ``ValueError`` on concrete inputs
    and an :func:`equinox.error_if` error under ``jit``.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    p = check_p(p)
    if estimator != "mc" and p != 2.0:
        raise ValueError(f"estimator={estimator!r} is derived for p=2 only, got p={p}; use estimator='mc'")
    x, y = check_samples(x, y)
    n, d = x.shape
    a = check_weights("x_weights", x_weights, n, x.dtype)
    b = check_weights("y_weights", y_weights, y.shape[0], x.dtype)
    thetas = None
    if isinstance(projections, str):
        check_choice("projections", projections, tuple(DIRECTIONS))
        if n_projections is None:
            raise ValueError("n_projections is required (an integer >= 1)")
        n_projections = check_positive_int("n_projections", n_projections)
        if key is None:
            raise ValueError("key is required when projections is a string")
    else:
        thetas = check_directions("projections", projections, d, x.dtype)
        if n_projections is not None and n_projections != thetas.shape[0]:
            raise ValueError(
                f"n_projections={n_projections} does not match projections with {thetas.shape[0]} rows"
            )
        n_projections = thetas.shape[0]
        projections = "array"
    if cv_coefficient is not None:
        if estimator == "mc":
            raise ValueError("cv_coefficient applies to the control variates only, not estimator='mc'")
        if detach_coefficient:
            raise ValueError("detach_coefficient applies to the fitted coefficient; cv_coefficient fixes it")
        cv_coefficient = check_real("cv_coefficient", cv_coefficient)
    fitted = estimator != "mc" and cv_coefficient is None
    if return_stderr and n_projections < (3 if fitted else 2):
        raise ValueError(
            f"return_stderr needs n_projections >= {3 if fitted else 2} "
            f"for estimator={estimator!r}, got {n_projections}"
        )
    if chunk_size is None:
        chunk_size = default_chunk(n_projections, n + y.shape[0])
    else:
        chunk_size = min(check_positive_int("chunk_size", chunk_size), n_projections)
    return _sliced(
        key,
        x,
        y,
        a,
        b,
        thetas,
        n_projections=n_projections,
        p=p,
        estimator=estimator,
        projections=projections,
        chunk_size=chunk_size,
        root=bool(root),
        return_stderr=bool(return_stderr),
        detach_coefficient=bool(detach_coefficient),
        cv_coefficient=cv_coefficient,
    )
