"""``probkit bench``: list targets and samplers, run benchmarks, re-print reports.

Exit status 2 for bad input (unknown target or sampler, unreadable reference
or data file, a model file that fails to import, reference names that match no
model site), 130 when interrupted (finished records are kept).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

PRESETS = {
    "quick": {
        "targets": ["gaussian", "banana", "eight_schools-eight_schools_noncentered"],
        "samplers": ["numpyro_nuts", "nuts", "automvn"],
        "seeds": 1,
        "chains": 2,
        "draws": 500,
        "budget_grads": 30_000,
        "plot": True,
    },
}


def add_bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmark samplers against reference posteriors")
    bsub = p.add_subparsers(dest="bench_command", metavar="ACTION")
    p.set_defaults(func=_cmd_help(p))

    p_list = bsub.add_parser("list", help="list targets and samplers")
    p_list.set_defaults(func=cmd_list)

    r = bsub.add_parser("run", help="run samplers on targets; append records to OUT/results.jsonl")
    r.add_argument("--preset", choices=sorted(PRESETS), help="a ready configuration (quick: < 5 min on 2 cores)")
    r.add_argument("--target", action="append", help="target name (repeat or comma-separate)")
    r.add_argument("--sampler", action="append", help="sampler name (repeat or comma-separate)")
    r.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    r.add_argument("--chains", type=int, help="chains per MCMC run (VI: draws are chains × draws)")
    r.add_argument("--draws", type=int, help="draws per chain")
    r.add_argument("--warmup", type=int, help="MCMC warm-up transitions (default: draws)")
    r.add_argument("--budget-grads", type=int, help="gradient-evaluation budget per run")
    r.add_argument("--sampler-opt", action="append", metavar="NAME.KEY=VALUE", help="sampler option")
    r.add_argument("--out", default="bench-out", help="output directory (default: bench-out)")
    r.add_argument("--force", action="store_true", help="re-run triples already recorded")
    r.add_argument("--csv", action="store_true", help="also write OUT/results.csv")
    r.add_argument("--plot", action="store_true", help="also write PNG figures to OUT/")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--model", help="user model: path/to/file.py:function")
    r.add_argument("--data", help="user data JSON (fields passed to the model by name)")
    r.add_argument("--reference", help="user reference draws (posteriordb draws JSON)")
    r.add_argument("--posteriordb", help="path to a posteriordb clone")
    r.add_argument("--posterior", help="posterior name in --posteriordb")
    r.set_defaults(func=cmd_run)

    rep = bsub.add_parser("report", help="re-print the table and figures from saved records")
    rep.add_argument("dir", help="a benchmark output directory")
    rep.add_argument("--csv", action="store_true")
    rep.add_argument("--plot", action="store_true")
    rep.set_defaults(func=cmd_report)


def _cmd_help(parser):
    def run(args):
        parser.print_help()
        return 0

    return run


def _split(values) -> list[str]:
    out = []
    for v in values or []:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _fail(message: str) -> int:
    print(f"probkit bench: error: {message}", file=sys.stderr)
    return 2


def cmd_list(args) -> int:
    from .samplers import SAMPLERS
    from .targets import builtin_names, get_target

    print("targets:")
    for name in builtin_names():
        print(f"  {name:<42} {get_target(name).description}")
    print("samplers:")
    for name, spec in SAMPLERS.items():
        print(f"  {name:<42} [{spec.kind}] {spec.description}")
    print("presets:")
    for name, preset in PRESETS.items():
        print(f"  {name:<42} {preset}")
    return 0


def resolve_target(name: str):
    """A built-in target by exact name, or a posteriordb name by its unique prefix (``eight_schools``)."""
    from .targets import BenchInputError, builtin_names, get_target

    names = builtin_names()
    if name in names:
        return get_target(name)
    matches = [n for n in names if n.startswith(name + "-")]
    if len(matches) == 1:
        return get_target(matches[0])
    raise BenchInputError(f"unknown target {name!r}; valid targets: {names}")


def cmd_run(args) -> int:
    from .runner import read_records, request_stop, run_benchmark
    from .samplers import RunConfig, get_sampler, parse_sampler_opts
    from .targets import BenchInputError, posteriordb_clone_target, user_target

    preset = PRESETS.get(args.preset, {}) if args.preset else {}
    try:
        targets = []
        for name in _split(args.target) or ([] if (args.model or args.posteriordb) else preset.get("targets", [])):
            targets.append(resolve_target(name))
        if args.posteriordb or args.posterior:
            if not (args.posteriordb and args.posterior and args.model):
                raise BenchInputError("--posteriordb needs --posterior NAME and --model file.py:fn")
            targets.append(posteriordb_clone_target(args.posteriordb, args.posterior, args.model))
        elif args.model:
            if not args.reference:
                raise BenchInputError("--model needs --reference draws.json (and usually --data data.json)")
            targets.append(user_target(args.model, args.data, args.reference))
        if not targets:
            raise BenchInputError("no target given: use --target NAME, --model ..., or --preset quick")
        samplers = _split(args.sampler) or preset.get("samplers", [])
        if not samplers:
            raise BenchInputError("no sampler given: use --sampler NAME or --preset quick")
        for s in samplers:
            get_sampler(s)
        opts = parse_sampler_opts(args.sampler_opt)
    except BenchInputError as err:
        return _fail(str(err))

    def pick(name, default):
        value = getattr(args, name)
        return value if value is not None else preset.get(name, default)

    cfg = RunConfig(
        chains=pick("chains", 4),
        draws=pick("draws", 1000),
        warmup=args.warmup,
        budget_grads=pick("budget_grads", None),
        progress_bar=False,
    )
    for name, value in [("--chains", cfg.chains), ("--draws", cfg.draws), ("--seeds", pick("seeds", 1))]:
        if value < 1:
            return _fail(f"{name} must be a positive integer, got {value}")
    seeds = list(range(pick("seeds", 1)))
    out = Path(args.out)

    def on_sigint(signum, frame):
        request_stop()  # stops at the next run even if this KeyboardInterrupt gets swallowed
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        run_benchmark(
            targets, samplers, seeds, out, cfg=cfg, sampler_opts=opts, force=args.force,
            progress_bar=not args.no_progress,
        )
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished records are kept in {out / 'results.jsonl'}", file=sys.stderr)
        # Records are already fsynced. Exit at once: a normal interpreter
        # shutdown can crash while an interrupted XLA computation still holds
        # runtime threads, which would turn exit status 130 into a SIGSEGV.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    names = {t.name for t in targets}
    records = [r for r in read_records(out) if r["target"] in names and r["sampler"] in samplers]
    import importlib.util

    # the preset draws figures when matplotlib is there; an explicit --plot requires it
    preset_plot = preset.get("plot", False) and importlib.util.find_spec("matplotlib") is not None
    return _report(records, out, csv=args.csv, plot=args.plot or preset_plot)


def _report(records, out: Path, *, csv: bool, plot: bool) -> int:
    from .report import format_table, write_csv, write_plots

    print(format_table(records))
    if csv:
        print(f"wrote {write_csv(records, out / 'results.csv')}")
    if plot:
        try:
            paths = write_plots(records, out)
        except ImportError as e:
            return _fail(f"--plot needs matplotlib ({e}); install it with: pip install 'probkit[plot]'")
        for path in paths:
            print(f"wrote {path}")
    return 0


def cmd_report(args) -> int:
    from .runner import RESULTS_FILE, read_records

    out = Path(args.dir)
    records = read_records(out)
    if not records:
        return _fail(f"no records in {out / RESULTS_FILE}")
    return _report(records, out, csv=args.csv, plot=args.plot)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="probkit")
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *(argv or sys.argv[1:])])
    return int(args.func(args) or 0)
