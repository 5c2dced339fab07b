r"""Sliced-Wasserstein gradient flow of a point cloud (Nguyen & Ho, ICLR 2024, §5).

Particles :math:`x^{(t)} \in \mathbb{R}^{n \times d}` move toward a target cloud by
(stochastic) gradient descent on the estimated :math:`\widehat{SW}_2(x, y)`:

.. math::
    x^{(t+1)} = x^{(t)} - \eta\, n\, \nabla_x \widehat{SW}_2\big(x^{(t)}, y;\ \theta^{(t)}_{1:L}\big),

with fresh directions at every step. The factor :math:`n` makes the step the
Euler step of the particle flow (each point's gradient is :math:`O(1/n)`).
"""

from __future__ import annotations

import jax
from jaxtyping import Array, Float, PRNGKeyArray

from probkit._validate import check_positive, check_positive_int
from probkit.ot._checks import check_samples
from probkit.ot.sliced import sliced_wasserstein


def sw_gradient_flow(
    key: PRNGKeyArray,
    x0: Float[Array, "n d"],
    target: Float[Array, "m d"],
    *,
    steps: int,
    lr: float,
    n_projections: int,
    estimator: str = "mc",
    projections: str = "uniform",
    save_every: int = 1,
    detach_coefficient: bool = False,
    cv_coefficient: float | None = None,
) -> Float[Array, "T n d"]:
    r"""Run ``steps`` SGD steps on :math:`\widehat{SW}_2` and return the trajectory.

    Returns an array of shape ``(steps // save_every + 1, n, d)``: ``x0`` then the
    cloud after every ``save_every`` steps. The loop is a ``lax.scan``.
    ``detach_coefficient`` (control variates only) holds :math:`\hat\alpha` fixed in the
    gradient, see :func:`probkit.ot.sliced_wasserstein`; ``False`` differentiates through it
    as Nguyen & Ho's reference code does. ``cv_coefficient`` fixes the coefficient instead;
    ``estimator="cv_lower", cv_coefficient=1.0`` moves the cloud's mean by the exact
    expected gradient at every step (see :func:`probkit.ot.sliced_wasserstein`).
    """
    x0, target = check_samples(x0, target, names=("x0", "target"))
    steps = check_positive_int("steps", steps)
    save_every = check_positive_int("save_every", save_every)
    check_positive("lr", lr)
    # validates estimator / projections / n_projections once, eagerly
    sliced_wasserstein(key, x0, target, n_projections=n_projections, estimator=estimator, projections=projections,
                       detach_coefficient=detach_coefficient, cv_coefficient=cv_coefficient)
    n = x0.shape[0]

    def loss(x, k):
        return sliced_wasserstein(k, x, target, n_projections=n_projections, estimator=estimator,
                                  projections=projections, detach_coefficient=detach_coefficient,
                                  cv_coefficient=cv_coefficient)

    grad = jax.grad(loss)

    def step(x, k):
        return x - lr * n * grad(x, k), None

    def block(x, keys):
        x, _ = jax.lax.scan(step, x, keys)
        return x, x

    n_saved = steps // save_every
    keys = jax.random.split(key, (n_saved, save_every))
    _, traj = jax.jit(lambda x, ks: jax.lax.scan(block, x, ks))(x0, keys)
    return jax.numpy.concatenate([x0[None], traj], axis=0)
