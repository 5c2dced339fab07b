"""NumPyro wrappers: a probkit bijection as a ``numpyro`` transform, a Flow as a distribution."""

from __future__ import annotations

import jax
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform

from ._base import AbstractBijection
from .flow import Flow, _batched


class BijectionTransform(Transform):
    """A probkit :class:`AbstractBijection` as a ``numpyro`` :class:`Transform` on real vectors.

    ``call_with_intermediates`` returns the forward log-det, so a
    ``TransformedDistribution`` scores its own samples without inverting.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, bijection: AbstractBijection):
        if not isinstance(bijection, AbstractBijection):
            raise TypeError(f"bijection must be an AbstractBijection, got {type(bijection).__name__}")
        self.bijection = bijection

    def __call__(self, x):
        return self.call_with_intermediates(x)[0]

    def call_with_intermediates(self, x):
        return _batched(self.bijection.transform_and_log_det, x)

    def _inverse(self, y):
        return _batched(self.bijection.inverse_and_log_det, y)[0]

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        if intermediates is not None:
            return intermediates
        return _batched(self.bijection.transform_and_log_det, x)[1]

    def tree_flatten(self):
        leaves, treedef = jax.tree.flatten(self.bijection)
        return tuple(leaves), treedef

    @classmethod
    def tree_unflatten(cls, treedef, leaves):
        return cls(jax.tree.unflatten(treedef, leaves))

    def __eq__(self, other):
        return isinstance(other, BijectionTransform) and other.bijection is self.bijection

    def __hash__(self):
        return id(self.bijection)


def to_numpyro(flow: Flow) -> dist.TransformedDistribution:
    """``flow`` as a ``numpyro.distributions.TransformedDistribution`` (event shape ``(D,)``)."""
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a probkit.flows.Flow, got {type(flow).__name__}")
    return dist.TransformedDistribution(flow.base.to_numpyro(), BijectionTransform(flow.bijection))
