"""Sampler benchmark: posteriordb and analytic targets, metrics, runner and CLI.

Python use mirrors ``probkit bench run``::

    from probkit import bench
    target = bench.get_target("eight_schools-eight_schools_noncentered")
    bench.run_benchmark([target], ["numpyro_nuts"], seeds=[0], out_dir="out",
                        cfg=bench.RunConfig(chains=4, draws=1000))
    print(bench.format_table(bench.read_records("out")))
"""

from . import posteriordb
from .metrics import compute_metrics
from .models import get_model
from .report import format_table, summarise, write_csv, write_plots
from .runner import read_records, run_benchmark, run_one
from .samplers import SAMPLERS, RunConfig, get_sampler
from .targets import BenchInputError, Target, builtin_names, get_target, user_target

__all__ = [
    "SAMPLERS",
    "BenchInputError",
    "RunConfig",
    "Target",
    "builtin_names",
    "compute_metrics",
    "format_table",
    "get_model",
    "get_sampler",
    "get_target",
    "posteriordb",
    "read_records",
    "run_benchmark",
    "run_one",
    "summarise",
    "user_target",
    "write_csv",
    "write_plots",
]
