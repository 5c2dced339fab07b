"""posteriordb ``kidiq-*`` (ARM ch. 3; Stan: kidscore_momiq.stan, kidscore_momhs.stan, kidscore_momhsiq.stan, kidscore_interaction.stan).

Each program has flat ``beta`` and ``sigma ~ cauchy(0, 2.5)`` on σ > 0, a
half-Cauchy up to the constant log 2.
"""

import numpyro.distributions as dist

from ._regression import as_real, flat_regression


def kidscore_momiq(kid_score, mom_iq, **unused_data):
    """Linear regression kid_score ~ N(β₁ + β₂ mom_iq, σ); flat β, σ ~ Cauchy⁺(0, 2.5)."""
    flat_regression("kid_score", kid_score, [mom_iq], sigma_prior=dist.HalfCauchy(2.5))


def kidscore_momhs(kid_score, mom_hs, **unused_data):
    """kid_score ~ N(β₁ + β₂ mom_hs, σ); flat β, σ ~ Cauchy⁺(0, 2.5)."""
    flat_regression("kid_score", kid_score, [mom_hs], sigma_prior=dist.HalfCauchy(2.5))


def kidscore_momhsiq(kid_score, mom_iq, mom_hs, **unused_data):
    """kid_score ~ N(β₁ + β₂ mom_hs + β₃ mom_iq, σ); flat β, σ ~ Cauchy⁺(0, 2.5)."""
    flat_regression("kid_score", kid_score, [mom_hs, mom_iq], sigma_prior=dist.HalfCauchy(2.5))


def kidscore_interaction(kid_score, mom_iq, mom_hs, **unused_data):
    """kid_score ~ N(β₁ + β₂ mom_hs + β₃ mom_iq + β₄ mom_hs·mom_iq, σ); flat β, σ ~ Cauchy⁺(0, 2.5)."""
    mom_hs, mom_iq = as_real(mom_hs), as_real(mom_iq)
    flat_regression("kid_score", kid_score, [mom_hs, mom_iq, mom_hs * mom_iq], sigma_prior=dist.HalfCauchy(2.5))
