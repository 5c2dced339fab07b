"""The ``probkit`` command line: ``--version``, ``info`` and ``bench``."""

from __future__ import annotations

import argparse
import sys

from ._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="probkit", description="probkit command line")
    parser.add_argument("--version", action="version", version=f"probkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="versions, JAX backend and devices")
    p_info.add_argument("--json", action="store_true", help="print as JSON")
    from .bench.cli import add_bench_parser

    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        import json

        from ._info import format_info, info

        report = info()
        print(json.dumps(report, indent=2) if args.json else format_info(report))
        return 0
    if args.command == "bench":
        return int(args.func(args) or 0)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
