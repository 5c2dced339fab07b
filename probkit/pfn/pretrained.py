r"""Pretrained PFNs shipped with probkit.

``"gp-rbf-1d"``: trained (``scripts/train_pretrained_pfn.py``) on the 1-D GP prior

.. math::
    x \sim U[0, 1],\quad \ell \sim \mathrm{LogNormal}(-1.5, 0.5),\quad
    \sigma_f^2 \sim \mathrm{LogNormal}(0, 0.5),\quad \sigma_n \sim \mathrm{LogNormal}(-2.3, 0.5),

    y \mid x, \theta \sim \mathcal N\big(0,\ \sigma_f^2 e^{-(x_i - x_j)^2 / 2\ell^2} + \sigma_n^2 I\big),

with 1–50 train points (sequences of 60 points): d_model 64, 4 layers, 4 heads, a full-support
bar-distribution head of 428 buckets (98 inner prior-quantile buckets each split in 4 by
:func:`~probkit.pfn.rebucket`, and tail buckets of 5·10⁻⁴ prior mass), trained in three stages
on about 3.4 M datasets (``scripts/train_pretrained_pfn.py`` records the commands). It is
valid where data look like draws from this prior: inputs in [0, 1] (rescale x), y on the
scale of a unit-variance GP (do not standardise y differently from the prior), lengthscales
around 0.1–0.6, noise sd around 0.04–0.27, and at most ~50 train points. Outside that range
it is an extrapolation.
"""

from __future__ import annotations

import os

import numpyro.distributions as dist

from .._validate import check_choice
from .gp_prior import GPPrior
from .io import load
from .transformer import PFN

_WEIGHTS = os.path.join(os.path.dirname(__file__), "weights")

# the architecture at initialisation (stage 1); stage 3 refined the head to 428 buckets
GP_RBF_1D_ARCH = dict(x_dim=1, n_buckets=100, d_model=64, n_layers=4, n_heads=4)


def gp_rbf_1d_prior() -> GPPrior:
    """The prior the ``"gp-rbf-1d"`` model was trained on (see module docstring)."""
    return GPPrior(
        "rbf",
        hyperprior={
            "lengthscale": dist.LogNormal(-1.5, 0.5),
            "outputscale": dist.LogNormal(0.0, 0.5),
            "noise": dist.LogNormal(-2.3, 0.5),
        },
    )


_MODELS = {"gp-rbf-1d": ("gp-rbf-1d.eqx", gp_rbf_1d_prior)}


def names() -> list[str]:
    """Names accepted by :func:`pretrained`."""
    return sorted(_MODELS)


def pretrained(name: str) -> PFN:
    """Load a shipped PFN by name (see the module docstring for each model's prior)."""
    check_choice("pretrained model name", name, _MODELS)
    path = os.path.join(_WEIGHTS, _MODELS[name][0])
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights for {name!r} are missing from the installation ({path})")
    return load(path)


def pretrained_prior(name: str) -> GPPrior:
    """The prior a shipped PFN was trained on."""
    check_choice("pretrained model name", name, _MODELS)
    return _MODELS[name][1]()
