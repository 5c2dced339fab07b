"""Sliced Wasserstein distances with control variates (Nguyen & Ho, ICLR 2024)."""

from probkit.ot.gradient_flow import sw_gradient_flow
from probkit.ot.max_sliced import max_sliced_wasserstein
from probkit.ot.sliced import sliced_wasserstein
from probkit.ot.wasserstein_1d import wasserstein_1d

__all__ = ["max_sliced_wasserstein", "sliced_wasserstein", "sw_gradient_flow", "wasserstein_1d"]
