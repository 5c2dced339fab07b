"""posteriordb ``nes<year>-nes`` (ARM ch. 4: party identification, one NES survey year each; Stan: nes.stan)."""

from ._regression import as_real, flat_regression


def nes(partyid7, real_ideo, race_adj, educ1, gender, income, age_discrete, **unused_data):
    """partyid7 ~ N(β₁ + β₂ ideo + β₃ race + β₄₋₆ age dummies + β₇ educ + β₈ gender + β₉ income, σ).

    Age enters as a factor: indicators of ``age_discrete`` = 2, 3, 4 (30-44,
    45-64, 65+; level 1 the baseline). Flat priors on ``beta`` and ``sigma > 0``.
    """
    age = as_real(age_discrete)
    age30_44, age45_64, age65up = ((age == level).astype(float) for level in (2, 3, 4))
    predictors = [real_ideo, race_adj, age30_44, age45_64, age65up, educ1, gender, income]
    flat_regression("partyid7", partyid7, predictors)
