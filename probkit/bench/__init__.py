"""Sampler benchmark: posteriordb and analytic targets, metrics, runner and CLI.

Python use mirrors ``probkit bench run``::

    from probkit import bench
    target = bench.get_target("eight_schools-eight_schools_noncentered")
    bench.run_benchmark([target], ["numpyro_nuts"], seeds=[0], out_dir="out",
                        cfg=bench.RunConfig(chains=4, draws=1000))
    print(bench.format_table(bench.read_records("out")))

Reference draws use posteriordb's format (documented in
:mod:`probkit.bench.posteriordb`); the bundled posteriordb subset holds
thinned draws (:func:`probkit.bench.posteriordb.bundle_info`).
"""

from . import posteriordb
from .metrics import compute_metrics
from .models import get_model
from .report import (
    format_table,
    leaderboard_markdown,
    plot_lines,
    summarise,
    write_csv,
    write_leaderboard,
    write_plots,
)
from .runner import prng_key, read_records, run_benchmark, run_one, shard_grid
from .samplers import SAMPLERS, RunConfig, format_options, get_sampler
from .targets import BenchInputError, Target, builtin_names, get_target, posteriordb_clone_target, user_target

__all__ = [
    "SAMPLERS",
    "BenchInputError",
    "RunConfig",
    "Target",
    "builtin_names",
    "compute_metrics",
    "format_options",
    "format_table",
    "get_model",
    "get_sampler",
    "get_target",
    "leaderboard_markdown",
    "plot_lines",
    "posteriordb",
    "posteriordb_clone_target",
    "prng_key",
    "read_records",
    "run_benchmark",
    "run_one",
    "shard_grid",
    "summarise",
    "user_target",
    "write_csv",
    "write_leaderboard",
    "write_plots",
]
