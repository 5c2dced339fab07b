"""Stan's unconstraining transforms where NumPyro's default differs.

NumPyro maps ``positive_ordered_vector`` through ``exp ∘ ordered`` (the log of
the vector is ordered); Stan uses ``y₁ = exp(x₁)``, ``y_k = y_{k−1} + exp(x_k)``.
The two give the same constrained density but different unconstrained
coordinates, so a model that must match Stan point by point on unconstrained
space (log density and gradient) declares :data:`stan_positive_ordered_vector`.
"""

import jax.numpy as jnp
from numpyro.distributions import constraints
from numpyro.distributions.transforms import ParameterFreeTransform, biject_to


class _StanPositiveOrderedVector(constraints._PositiveOrderedVector):
    """Positive, increasing vectors, unconstrained as Stan does (:class:`StanPositiveOrderedTransform`)."""


stan_positive_ordered_vector = _StanPositiveOrderedVector()


class StanPositiveOrderedTransform(ParameterFreeTransform):
    r"""Stan's ``positive_ordered`` map :math:`y = \operatorname{cumsum}(e^{x})`, :math:`\log|J| = \sum_k x_k`."""

    domain = constraints.real_vector
    codomain = stan_positive_ordered_vector

    def __call__(self, x):
        return jnp.cumsum(jnp.exp(x), axis=-1)

    def _inverse(self, y):
        return jnp.log(jnp.concatenate([y[..., :1], y[..., 1:] - y[..., :-1]], axis=-1))

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        return jnp.sum(x, axis=-1)


@biject_to.register(_StanPositiveOrderedVector)
def _transform_to_stan_positive_ordered(constraint):
    return StanPositiveOrderedTransform()
