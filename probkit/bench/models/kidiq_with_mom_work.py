"""posteriordb ``kidiq_with_mom_work-*`` (ARM ch. 3-4; Stan: kidscore_interaction_{c,c2,z}.stan, kidscore_mom_work.stan).

Flat priors on ``beta`` and on ``sigma > 0``; the centred, re-centred and
standardised predictors are the programs' transformed data.
"""

from ._regression import as_real, flat_regression, sample_sd


def kidscore_interaction_c(kid_score, mom_hs, mom_iq, **unused_data):
    """kid_score ~ N(β₁ + β₂ h + β₃ q + β₄ h q, σ), h, q the mean-centred mom_hs, mom_iq."""
    mom_hs, mom_iq = as_real(mom_hs), as_real(mom_iq)
    c_hs, c_iq = mom_hs - mom_hs.mean(), mom_iq - mom_iq.mean()
    flat_regression("kid_score", kid_score, [c_hs, c_iq, c_hs * c_iq])


def kidscore_interaction_c2(kid_score, mom_hs, mom_iq, **unused_data):
    """As :func:`kidscore_interaction_c` with h = mom_hs − 0.5, q = mom_iq − 100."""
    c2_hs, c2_iq = as_real(mom_hs) - 0.5, as_real(mom_iq) - 100.0
    flat_regression("kid_score", kid_score, [c2_hs, c2_iq, c2_hs * c2_iq])


def kidscore_interaction_z(kid_score, mom_hs, mom_iq, **unused_data):
    """As :func:`kidscore_interaction_c` with h, q standardised by 2 sd (sd with N − 1)."""
    mom_hs, mom_iq = as_real(mom_hs), as_real(mom_iq)
    z_hs = (mom_hs - mom_hs.mean()) / (2.0 * sample_sd(mom_hs))
    z_iq = (mom_iq - mom_iq.mean()) / (2.0 * sample_sd(mom_iq))
    flat_regression("kid_score", kid_score, [z_hs, z_iq, z_hs * z_iq])


def kidscore_mom_work(kid_score, mom_work, **unused_data):
    """kid_score ~ N(β₁ + Σ_{j=2..4} β_j [mom_work = j], σ): mom_work as a factor, level 1 the baseline."""
    mom_work = as_real(mom_work)
    flat_regression("kid_score", kid_score, [(mom_work == level).astype(float) for level in (2, 3, 4)])
