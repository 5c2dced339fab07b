"""Sampler benchmark: posteriordb and analytic targets, metrics and the CLI."""

from . import posteriordb
from .models import get_model

__all__ = ["get_model", "posteriordb"]
