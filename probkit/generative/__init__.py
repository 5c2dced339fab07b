"""probkit.generative: time-conditioned networks, stochastic interpolants, ODE/SDE
sampling and likelihoods with diffrax.

Shared building blocks (also used by score-based diffusion):

- :mod:`~probkit.generative.nets`: :class:`TimeMLP`, :class:`ScalarTimeMLP`;
- :mod:`~probkit.generative.training`: :func:`fit`, a generic optax loop;
- :mod:`~probkit.generative.sampling`: :func:`solve_ode`, :func:`solve_sde`,
  :func:`ode_log_prob` (generic diffrax integrators for one-point fields).

Stochastic interpolants (Albergo, Boffi & Vanden-Eijnden): :class:`Interpolant`,
schedules :func:`linear`, :func:`trig`, :func:`encoder_decoder`, :func:`one_sided`,
losses, :func:`train_interpolant`, and the samplers :func:`sample_ode`,
:func:`sample_sde` (forward/backward, any ε ≥ 0) and :func:`log_prob`. The samplers
take any field ``(t, x) -> R^d`` (for a diffusion, pass its probability-flow field and
score with ε = g²/2). Exact Gaussian-mixture fields: :class:`GaussianMixtureFields`.
Toy data: :mod:`~probkit.generative.datasets`. NumPyro: :class:`InterpolantDistribution`.
"""

from . import datasets
from .exact import GaussianMixtureFields
from .interpolant import (
    Interpolant,
    encoder_decoder,
    gamma_quadratic,
    gamma_sqrt,
    gamma_zero,
    linear,
    one_sided,
    trig,
)
from .interpolant_losses import VelocityFromV, interpolant_loss, make_interpolant_loss
from .interpolant_sampling import log_prob, noise_scaled_eps, sample_ode, sample_sde, standard_normal_log_prob
from .interpolant_training import train_interpolant
from .nets import FourierTimeEmbedding, ScalarTimeMLP, TimeMLP
from .numpyro_bridge import InterpolantDistribution
from .sampling import divergence, ode_log_prob, solve_ode, solve_sde
from .training import fit

__all__ = [
    "FourierTimeEmbedding",
    "GaussianMixtureFields",
    "Interpolant",
    "InterpolantDistribution",
    "ScalarTimeMLP",
    "TimeMLP",
    "VelocityFromV",
    "datasets",
    "divergence",
    "encoder_decoder",
    "fit",
    "gamma_quadratic",
    "gamma_sqrt",
    "gamma_zero",
    "interpolant_loss",
    "linear",
    "log_prob",
    "make_interpolant_loss",
    "noise_scaled_eps",
    "ode_log_prob",
    "one_sided",
    "sample_ode",
    "sample_sde",
    "solve_ode",
    "solve_sde",
    "standard_normal_log_prob",
    "train_interpolant",
    "trig",
]
