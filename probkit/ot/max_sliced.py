r"""Max-sliced Wasserstein distance by projected gradient ascent on the sphere.

.. math::
    \max\text{-}SW_p(\mu, \nu) = \max_{\theta \in S^{d-1}} W_p(\theta_\# \mu, \theta_\# \nu).

Starting from ``n_restarts`` directions (uniform on the sphere, plus the
normalised mean difference), each is updated by Riemannian gradient ascent on
:math:`f(\theta) = W_p^p(\theta_\#\mu, \theta_\#\nu)`: project the gradient on the
tangent space, :math:`g_\perp = g - (g^\top\theta)\theta`, step, renormalise
(retraction). The best final direction is returned. :math:`f` is non-concave, so
this finds a local maximum; the restarts guard against poor ones.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from probkit._validate import check_positive, check_positive_int
from probkit.ot._checks import check_p, check_samples, check_weights
from probkit.ot._projections import DIRECTIONS
from probkit.ot.wasserstein_1d import power_of_two_scale, safe_root, wpp_quantile, wpp_uniform


def max_sliced_wasserstein(
    key: PRNGKeyArray,
    x: Float[Array, "n d"],
    y: Float[Array, "m d"],
    *,
    p: float = 2,
    x_weights: Float[Array, " n"] | None = None,
    y_weights: Float[Array, " m"] | None = None,
    steps: int = 200,
    lr: float = 0.1,
    n_restarts: int = 4,
    return_direction: bool = False,
):
    r"""Max-sliced :math:`W_p` (and optionally the maximising unit direction).

    ``lr`` is relative: the step is ``lr * g_perp / ||g_perp||`` scaled by the decaying
    factor :math:`1/\sqrt{1 + t/10}`, so it does not depend on the scale of the data.
    Returns :math:`W_p` at the best direction found, or ``(value, theta)``. The data are
    rescaled by a power of two internally, so any finite scale of the dtype works.
    """
    p = check_p(p)
    x, y = check_samples(x, y)
    a = check_weights("x_weights", x_weights, x.shape[0], x.dtype)
    b = check_weights("y_weights", y_weights, y.shape[0], x.dtype)
    steps = check_positive_int("steps", steps)
    n_restarts = check_positive_int("n_restarts", n_restarts)
    check_positive("lr", lr)
    return _max_sliced(key, x, y, a, b, p=p, steps=steps, lr=lr, n_restarts=n_restarts,
                       return_direction=bool(return_direction))


@functools.partial(jax.jit, static_argnames=("p", "steps", "n_restarts", "return_direction"))
def _max_sliced(key, x, y, a, b, *, p, steps, lr, n_restarts, return_direction):
    d = x.shape[1]
    scale = power_of_two_scale(x, y)  # the ascent is scale-free; compute on x/s, y/s
    x, y = x / scale, y / scale

    def objective(theta):
        xp, yp = x @ theta, y @ theta
        if a is None and b is None:
            return wpp_uniform(xp, yp, p)
        aa = jnp.full(xp.shape, 1.0 / xp.shape[0], x.dtype) if a is None else a
        bb = jnp.full(yp.shape, 1.0 / yp.shape[0], x.dtype) if b is None else b
        return wpp_quantile(xp, yp, aa, bb, p)

    value_and_grad = jax.value_and_grad(objective)
    dm = (jnp.mean(x, 0) if a is None else a @ x) - (jnp.mean(y, 0) if b is None else b @ y)
    norm = jnp.linalg.norm(dm)
    init = DIRECTIONS["uniform"](key, n_restarts, d, x.dtype)
    init = init.at[0].set(jnp.where(norm > 0, dm / jnp.where(norm > 0, norm, 1.0), init[0]))

    def ascend(theta0):
        def step(theta, t):
            _, g = value_and_grad(theta)
            g_perp = g - (g @ theta) * theta
            gn = jnp.linalg.norm(g_perp)
            move = jnp.where(gn > 0, g_perp / jnp.where(gn > 0, gn, 1.0), 0.0)
            theta = theta + lr / jnp.sqrt(1.0 + t / 10.0) * move
            return theta / jnp.linalg.norm(theta), None

        theta, _ = jax.lax.scan(step, theta0, jnp.arange(steps, dtype=x.dtype))
        return objective(theta), theta

    values, thetas = jax.lax.map(ascend, init)
    best = jnp.argmax(values)
    value = scale * safe_root(values[best], p)
    return (value, thetas[best]) if return_direction else value
