"""Ready-made flows: a standard-normal base and a scanned stack of identical layers."""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from ._base import AbstractBijection
from ._utils import check_dim
from .autoregressive import MaskedAutoregressive
from .chain import Chain, Scan
from .coupling import AffineCoupling
from .flow import Flow, StandardNormal
from .planar import Planar
from .radial import Radial
from .spline import SplineTransformer
from .transformer import AffineTransformer, ChainTransformer


def _stacked(key, dim: int, n_layers: int, make: Callable[[PRNGKeyArray], AbstractBijection], permute: bool) -> Flow:
    dim = check_dim("dim", dim)
    if permute and dim > 1:
        from .permute import Permute

        reverse = np.arange(dim)[::-1]
        layer = lambda k: Chain([make(k), Permute(reverse)])  # noqa: E731
    else:
        layer = make
    return Flow(StandardNormal(dim), Scan.from_fn(key, n_layers, layer))


def planar_flow(key: PRNGKeyArray, dim: int, n_layers: int = 8, *, scale: float = 0.1) -> Flow:
    """``n_layers`` :class:`Planar` layers on a standard normal base."""
    return _stacked(key, dim, n_layers, lambda k: Planar(k, dim, scale=scale), permute=False)


def radial_flow(key: PRNGKeyArray, dim: int, n_layers: int = 8, *, scale: float = 0.1) -> Flow:
    """``n_layers`` :class:`Radial` layers on a standard normal base."""
    return _stacked(key, dim, n_layers, lambda k: Radial(k, dim, scale=scale), permute=False)


def realnvp(key: PRNGKeyArray, dim: int, n_layers: int = 4, *, width: int = 32, depth: int = 2, activation=jax.nn.tanh) -> Flow:
    """RealNVP: :class:`AffineCoupling` layers, each followed by a coordinate reversal."""
    make = lambda k: AffineCoupling(k, dim, width=width, depth=depth, activation=activation)  # noqa: E731
    return _stacked(key, dim, n_layers, make, permute=True)


def maf(key: PRNGKeyArray, dim: int, n_layers: int = 4, *, width: int = 32, depth: int = 2, activation=jax.nn.tanh) -> Flow:
    """Masked autoregressive flow with affine transformers (reversal between layers)."""
    make = lambda k: MaskedAutoregressive(k, dim, AffineTransformer(), width=width, depth=depth, activation=activation)  # noqa: E731
    return _stacked(key, dim, n_layers, make, permute=True)


def neural_spline_flow(
    key: PRNGKeyArray,
    dim: int,
    n_layers: int = 4,
    *,
    n_bins: int = 8,
    bound: float = 4.0,
    width: int = 32,
    depth: int = 2,
    activation=jax.nn.tanh,
    affine: bool = False,
    out_scale: float = 1.0,
) -> Flow:
    """Neural spline flow: autoregressive rational-quadratic spline layers (reversal between layers).

    Each layer is a :class:`MaskedAutoregressive` with a :class:`SplineTransformer`
    of ``n_bins`` bins on ``[-bound, bound]`` (identity outside). With ``affine=True``
    each spline is followed by a conditional :class:`AffineTransformer` (same MADE), so a
    layer can also shift and rescale a coordinate by any amount, which a bounded spline
    cannot (e.g. the scale ``exp(v/2)`` of Neal's funnel). ``out_scale`` multiplies the
    conditioners' outputs (see :class:`MADE`): below 1 it slows the transformers' change
    under Adam, which keeps a spline from overshooting at large learning rates.
    """
    spline = SplineTransformer(n_bins=n_bins, bound=bound)
    if affine:
        spline = ChainTransformer((spline, AffineTransformer()))
    make = lambda k: MaskedAutoregressive(k, dim, spline, width=width, depth=depth, activation=activation,  # noqa: E731
                                          out_scale=out_scale)
    return _stacked(key, dim, n_layers, make, permute=True)
