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

Score-based diffusion (Song et al.; Fokker–Planck regularisation of Deveney et al.):
forward SDEs :class:`VPSDE` (OU: :meth:`VPSDE.ou`), :class:`VESDE`, :class:`SubVPSDE`;
models :class:`ScoreNet`, :class:`LogDensityNet`, exact :class:`GaussianScore`;
:func:`dsm_loss`, :func:`fokker_planck_residual`, :func:`score_fokker_planck_residual`, :func:`train_score_model`
(``fp_weight`` = w_R); samplers :func:`reverse_sde` (Euler–Maruyama or
predictor–corrector), :func:`probability_flow_ode` and :func:`diffusion_log_prob`
(named apart from the interpolant samplers ``sample_sde``/``sample_ode``, which take
a velocity field rather than a score and an SDE).
"""

from . import datasets
from .diffusion_losses import dsm_loss, fokker_planck_residual, sample_collocation, score_fokker_planck_residual
from .diffusion_sampling import diffusion_log_prob, probability_flow_ode, reverse_sde
from .diffusion_training import train_score_model
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
from .score_models import AbstractLogDensityModel, AbstractScoreModel, GaussianScore, LogDensityNet, ScoreNet
from .sde import VESDE, VPSDE, AbstractSDE, SubVPSDE
from .training import fit

__all__ = [
    "AbstractLogDensityModel",
    "AbstractSDE",
    "AbstractScoreModel",
    "GaussianScore",
    "LogDensityNet",
    "ScoreNet",
    "SubVPSDE",
    "VESDE",
    "VPSDE",
    "diffusion_log_prob",
    "dsm_loss",
    "fokker_planck_residual",
    "score_fokker_planck_residual",
    "probability_flow_ode",
    "reverse_sde",
    "sample_collocation",
    "train_score_model",
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
