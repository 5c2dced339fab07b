"""``probkit bench``: list targets and samplers, run benchmarks, re-print and merge reports.

Exit status 2 for bad input, before anything runs: an unknown target, sampler
or sampler option, an option out of range (``--warmup -10``,
``--budget-grads 0``, ``--shard 3/2``), an unreadable, empty or non-finite
reference or data file, a model file that fails to import, reference names
that match no model site, ``--out`` naming a file. 130 when interrupted
(finished records are kept).
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

REFERENCE_FORMAT = """\
reference draws (--reference FILE, posteriordb's format): a JSON list with one
object per chain, each mapping a Stan-style parameter name ("mu", "theta[1]",
"L[2,1]", 1-based) to that chain's list of draws; every chain has the same names
and the same number of finite draws (a single object is one chain; .json.zip is
read too). Names are matched to the model's sample and deterministic sites
(theta[1] is element 0 of site theta). Data files (--data) are JSON objects whose
fields are passed to the model by name."""

SHARDS = """\
sharding: --shard I/N (0 <= I < N) runs the triples at positions I, I+N, ... of the
grid targets x samplers x seeds (in the order given); give every shard the same
lists, e.g. a SLURM array --array=0-9 with --shard $SLURM_ARRAY_TASK_ID/10
--out out/shard$SLURM_ARRAY_TASK_ID, then: probkit bench report out/shard*"""


class _LazyEpilogParser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog is built only when help is printed (the registry imports JAX)."""

    def __init__(self, *args, epilog_fn=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._epilog_fn = epilog_fn

    def format_help(self):
        if self._epilog_fn is not None:
            self.epilog = self._epilog_fn()
        return super().format_help()


def _run_epilog() -> str:
    from .samplers import format_options

    return f"sampler options (--sampler-opt NAME.KEY=VALUE):\n{format_options()}\n\n{REFERENCE_FORMAT}\n\n{SHARDS}"


def add_bench_parser(sub) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("bench", help="benchmark samplers against reference posteriors")
    bsub = p.add_subparsers(dest="bench_command", metavar="ACTION", parser_class=_LazyEpilogParser)
    p.set_defaults(func=_cmd_help(p))

    p_list = bsub.add_parser("list", help="list targets, samplers and presets")
    p_list.set_defaults(func=cmd_list)

    p_s = bsub.add_parser("samplers", help="list samplers (--options: with their options)")
    p_s.add_argument("--options", action="store_true", help="also list each sampler's options")
    p_s.set_defaults(func=cmd_samplers)

    r = bsub.add_parser("run", help="run samplers on targets; append records to OUT/results.jsonl",
                        formatter_class=raw, epilog_fn=_run_epilog)
    r.add_argument("--preset", choices=sorted(PRESETS), help="a ready configuration (quick: ~3 min on 2 cores)")
    r.add_argument("--target", action="append", help="target name (repeat or comma-separate)")
    r.add_argument("--sampler", action="append", help="sampler name (repeat or comma-separate)")
    r.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    r.add_argument("--chains", type=int, help="chains per MCMC run (VI: draws are chains × draws)")
    r.add_argument("--draws", type=int, help="draws per chain")
    r.add_argument("--warmup", type=int, help="MCMC warm-up transitions (default: draws)")
    r.add_argument("--budget-grads", type=int, help="gradient-evaluation budget per run")
    r.add_argument("--sampler-opt", action="append", metavar="NAME.KEY=VALUE",
                   help="sampler option (see below, or: probkit bench samplers --options)")
    r.add_argument("--out", default="bench-out", help="output directory (default: bench-out)")
    r.add_argument("--shard", metavar="I/N", help="run only the I-th of N disjoint slices of the grid (0 <= I < N)")
    r.add_argument("--force", action="store_true", help="re-run finished runs and replace their records")
    r.add_argument("--csv", action="store_true", help="also write OUT/results.csv")
    r.add_argument("--plot", action="store_true", help="also write PNG figures to OUT/")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--model", help="user model: path/to/file.py:function")
    r.add_argument("--data", help="user data JSON (fields passed to the model by name)")
    r.add_argument("--reference", help="user reference draws (posteriordb draws JSON, format below)")
    r.add_argument("--posteriordb", help="path to a posteriordb clone (full reference draws)")
    r.add_argument("--posterior", action="append",
                   help="posterior name(s) in --posteriordb (default: every one with a bundled model)")
    r.set_defaults(func=cmd_run)

    rep = bsub.add_parser("report", help="re-print the table and figures from saved records (merges DIRs)")
    rep.add_argument("dir", nargs="+", help="benchmark output directories (e.g. the shards of one run)")
    rep.add_argument("--out", help="where figures, CSV and leaderboard go (default: the first DIR)")
    rep.add_argument("--csv", action="store_true")
    rep.add_argument("--plot", action="store_true")
    rep.add_argument("--leaderboard", action="store_true",
                     help="write OUT/leaderboard.md (median [min, max] over seeds, ranks) and family figures")
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
    return list(dict.fromkeys(out))


def _fail(message: str) -> int:
    print(f"probkit bench: error: {message}", file=sys.stderr)
    return 2


def cmd_list(args) -> int:
    """Names and one-line descriptions; reads metadata only, builds no target."""
    from .models import MODELS
    from .posteriordb import names as bundled_names
    from .samplers import SAMPLERS
    from .targets import ANALYTIC, describe, posteriordb_names

    pdb = posteriordb_names()
    print(f"targets ({len(ANALYTIC)} analytic, {len(pdb)} posteriordb):")
    for name in [*ANALYTIC, *pdb]:
        print(f"  {name:<48} {describe(name)}")
    missing = [n for n in bundled_names() if n not in MODELS]
    if missing:
        print(f"bundled posteriors without a NumPyro model (not targets): {', '.join(missing)}")
    print("samplers:")
    for name, spec in SAMPLERS.items():
        print(f"  {name:<48} [{spec.kind}] {spec.description}")
    print("presets:")
    for name, preset in PRESETS.items():
        print(f"  {name:<48} {preset}")
    print("sampler options: probkit bench samplers --options")
    return 0


def cmd_samplers(args) -> int:
    from .samplers import SAMPLERS, format_options

    if args.options:
        print(format_options())
    else:
        for name, spec in SAMPLERS.items():
            print(f"  {name:<20} [{spec.kind}] {spec.description}")
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
    if matches:
        raise BenchInputError(f"target {name!r} is ambiguous: {matches}")
    raise BenchInputError(f"unknown target {name!r}; valid targets: {names}")


def _targets(args, preset) -> list:
    from .models import MODELS
    from .posteriordb import names as pdb_names
    from .targets import BenchInputError, posteriordb_clone_target, user_target

    targets = [resolve_target(n) for n in _split(args.target)
               or ([] if (args.model or args.posteriordb) else preset.get("targets", []))]
    posteriors = _split(args.posterior)
    if args.posteriordb:
        if args.model:
            if len(posteriors) != 1:
                raise BenchInputError("--posteriordb with --model needs exactly one --posterior NAME")
            targets.append(posteriordb_clone_target(args.posteriordb, posteriors[0], args.model))
        else:
            try:
                available = pdb_names(args.posteriordb)
            except ValueError as err:
                raise BenchInputError(f"--posteriordb: {err}") from err
            for name in posteriors or [n for n in available if n in MODELS]:
                targets.append(posteriordb_clone_target(args.posteriordb, name))
    elif posteriors:
        raise BenchInputError("--posterior needs --posteriordb PATH")
    elif args.model:
        if not args.reference:
            raise BenchInputError("--model needs --reference draws.json (and usually --data data.json)")
        targets.append(user_target(args.model, args.data, args.reference))
    if not targets:
        raise BenchInputError("no target given: use --target NAME, --model ..., --posteriordb PATH or --preset quick")
    return targets


def cmd_run(args) -> int:
    from .runner import check_out_dir, parse_shard, read_records, request_stop, run_benchmark
    from .samplers import RunConfig, get_sampler, parse_sampler_opts
    from .targets import BenchInputError

    preset = PRESETS.get(args.preset, {}) if args.preset else {}

    def pick(name, default):
        value = getattr(args, name)
        return value if value is not None else preset.get(name, default)

    try:  # cheap checks first, then the targets (which read files)
        shard = parse_shard(args.shard) if args.shard else None
        out = check_out_dir(args.out)
        cfg = RunConfig(chains=pick("chains", 4), draws=pick("draws", 1000), warmup=args.warmup,
                        budget_grads=pick("budget_grads", None), progress_bar=False)
        n_seeds = pick("seeds", 1)
        if n_seeds < 1:
            raise BenchInputError(f"--seeds must be a positive integer, got {n_seeds}")
        samplers = _split(args.sampler) or preset.get("samplers", [])
        if not samplers:
            raise BenchInputError("no sampler given: use --sampler NAME or --preset quick")
        for s in samplers:
            get_sampler(s)
        opts = parse_sampler_opts(args.sampler_opt)
        unused = sorted(set(opts) - set(samplers))
        if unused:
            raise BenchInputError(f"--sampler-opt for sampler(s) {unused} not in --sampler {samplers}")
        targets = _targets(args, preset)
    except BenchInputError as err:
        return _fail(str(err))

    def on_sigint(signum, frame):
        request_stop()  # stops at the next run even if this KeyboardInterrupt gets swallowed
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        run_benchmark(
            targets, samplers, list(range(n_seeds)), out, cfg=cfg, sampler_opts=opts, force=args.force,
            progress_bar=not args.no_progress, shard=shard,
        )
    except BenchInputError as err:
        return _fail(str(err))
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


def _report(records, out: Path, *, csv: bool, plot: bool, leaderboard: bool = False) -> int:
    from .report import format_table, write_csv, write_leaderboard, write_plots

    print(format_table(records))
    if csv:
        print(f"wrote {write_csv(records, out / 'results.csv')}")
    if leaderboard:
        for path in write_leaderboard(records, out):
            print(f"wrote {path}")
    if plot:
        try:
            paths = write_plots(records, out)
        except ImportError as e:
            return _fail(f"--plot needs matplotlib ({e}); install it with: pip install 'probkit[plot]'")
        for path in paths:
            print(f"wrote {path}")
    return 0


def cmd_report(args) -> int:
    from .runner import RESULTS_FILE, check_out_dir, read_records
    from .targets import BenchInputError

    dirs = [Path(d) for d in args.dir]
    try:
        out = check_out_dir(args.out or dirs[0])
    except BenchInputError as err:
        return _fail(str(err))
    records = read_records(dirs)  # merged, one record per run key
    if not records:
        return _fail(f"no records in {', '.join(str(d / RESULTS_FILE) for d in dirs)}")
    out.mkdir(parents=True, exist_ok=True)
    return _report(records, out, csv=args.csv, plot=args.plot, leaderboard=args.leaderboard)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="probkit")
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *(argv or sys.argv[1:])])
    return int(args.func(args) or 0)
