"""Run NumPyro's own autoguide and MCMC tests with probkit's classes added to their parametrisations.

Usage::

    python scripts/run_numpyro_upstream.py NUMPYRO_SRC [--files test/infer/test_mcmc.py ...]
        [--all] [--report results.md] [--timeout S] [-- extra pytest arguments]

``NUMPYRO_SRC`` is a NumPyro source tree of the installed version (a checkout of
NumPyro's repository at the tag of ``numpyro.__version__``; the PyPI sdist of 0.22.0
ships ``test/*.py`` but not ``test/infer``). Nothing is vendored: the test files
are copied into a temporary directory and rewritten there (Python's ``ast``):

- every ``@pytest.mark.parametrize`` over ``auto_class`` (or ``guide_cls``) gets, for each row with
  ``AutoDiagonalNormal`` (NumPyro's generic continuous guide), the same row with
  :class:`probkit.infer.AutoFlow` and :class:`probkit.infer.AutoMixFlow`; every
  parametrize over ``kernel_cls`` gets, for each row with ``NUTS``, a row with
  ``BlackJAXNUTS`` (``BlackJAXKernel(model, "nuts", **NUTS's keywords)``);
- the tests' branches on the class (``kernel_cls is NUTS``, ``kernel_cls in [HMC, NUTS]``)
  treat ``BlackJAXNUTS`` as ``NUTS``; the guides take the generic branches;
- every other test that uses ``NUTS`` (``AutoDiagonalNormal``) directly gets a copy
  ``test_x__BlackJAXNUTS`` (``test_x__AutoFlow``, ``test_x__AutoMixFlow``) with the class replaced.

Only the probkit cases run (``--all`` runs NumPyro's own too), under NumPyro's
pytest configuration (its ``pyproject.toml``: warnings are errors) with two simulated
CPU devices (``--devices``) for the parallel-chain cases, as NumPyro's CI. The report
lists, per probkit class, the passed / failed / skipped cases and, for each
failure, the exception and whether the test reads NumPyro-internal state
(``HMCState`` fields, ``adapt_state``, guide parameter names such as ``auto_loc``):
those are the only failures the issue allows to remain (the exit status is 1 if
any other probkit case fails). Listed apart and not counted against the exit status:
"environment" failures (too few devices, ``funsor`` not installed: NumPyro's own
case fails the same way).

Re-run after a merge with the same command; ``--report`` rewrites the file.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

DEFAULT_FILES = ("test/infer/test_autoguide.py", "test/infer/test_mcmc.py")
PROBKIT_CLASSES = ("AutoFlow", "AutoMixFlow", "BlackJAXNUTS")
SHIM = "_probkit_upstream"
#: NumPyro's class -> the probkit shim treated as that class in the tests' branches
TWINS = {"NUTS": "BlackJAXNUTS"}

SHIM_SOURCE = '''"""probkit classes for NumPyro's upstream tests (written by scripts/run_numpyro_upstream.py)."""
from _pytest.mark.structures import ParameterSet

from probkit.infer import AutoFlow, AutoMixFlow, BlackJAXKernel


class BlackJAXNUTS(BlackJAXKernel):
    """``BlackJAXKernel(model, "nuts", ...)`` called as ``NUTS(model, potential_fn, **kwargs)``."""

    def __init__(self, model=None, potential_fn=None, **kwargs):
        super().__init__(model, "nuts", potential_fn=potential_fn, **kwargs)


def _extra(cls):
    from numpyro.infer import NUTS
    from numpyro.infer.autoguide import AutoDiagonalNormal

    return {AutoDiagonalNormal: [AutoFlow, AutoMixFlow], NUTS: [BlackJAXNUTS]}.get(cls, []) if isinstance(cls, type) else []


def extend(argnames, argvalues):
    """``argvalues`` plus the probkit rows (see the script's docstring)."""
    names = [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
    slots = [i for i, n in enumerate(names) if n in ("auto_class", "guide_cls", "kernel_cls")]
    if not slots:
        return argvalues
    slot, single = slots[0], len(names) == 1
    rows = list(argvalues)
    extra = []
    for row in rows:
        marks, values = (row.marks, list(row.values)) if isinstance(row, ParameterSet) else ((), None)
        if values is None:
            values = [row] if single else list(row)
        for cls in _extra(values[slot]):
            new = list(values)
            new[slot] = cls
            value = new[0] if single else tuple(new)
            extra.append(ParameterSet.param(*([value] if single else new), marks=marks) if marks else value)
    return rows + extra
'''


class _Rewrite(ast.NodeTransformer):
    """Wrap parametrize argvalues in ``extend`` and make ``BlackJAXNUTS`` pass the tests' ``is NUTS`` checks."""

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "parametrize" and len(node.args) >= 2:
            node.args[1] = ast.Call(
                ast.Attribute(ast.Name(SHIM, ast.Load()), "extend", ast.Load()), [node.args[0], node.args[1]], []
            )
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) != 1:
            return node
        op, right = node.ops[0], node.comparators[0]
        twin = lambda name: ast.Attribute(ast.Name(SHIM, ast.Load()), TWINS[name], ast.Load())  # noqa: E731
        if isinstance(op, (ast.Is, ast.Eq, ast.IsNot, ast.NotEq)) and isinstance(right, ast.Name) and right.id in TWINS:
            other = ast.Compare(node.left, [op], [twin(right.id)])
            joint = ast.Or() if isinstance(op, (ast.Is, ast.Eq)) else ast.And()
            return ast.BoolOp(joint, [node, other])
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.List, ast.Tuple, ast.Set)):
            names = [e.id for e in right.elts if isinstance(e, ast.Name) and e.id in TWINS]
            right.elts.extend(twin(n) for n in names)
        return node


#: parametrisation names over the guide / kernel class (their rows get the probkit classes)
CLASS_PARAMETERS = ("auto_class", "guide_cls", "kernel_cls")

#: NumPyro class used directly in a test (not through a parametrisation) -> the probkit copies of that test
DIRECT = {"NUTS": ("BlackJAXNUTS",), "AutoDiagonalNormal": ("AutoFlow", "AutoMixFlow")}


class _Substitute(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_Name(self, node):
        if node.id == self.old and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.Attribute(ast.Name(SHIM, ast.Load()), self.new, ast.Load()), node)
        return node


def _parametrized_over_class(fn: ast.FunctionDef) -> bool:
    return any(name in ast.unparse(d) for d in fn.decorator_list for name in CLASS_PARAMETERS)


def _direct_copies(tree: ast.Module) -> None:
    """After each test that uses ``NUTS`` / ``AutoDiagonalNormal`` directly, its copies with the probkit class."""
    body = []
    for node in tree.body:
        body.append(node)
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")) or _parametrized_over_class(node):
            continue
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        for old, news in DIRECT.items():
            if old in used:
                for new in news:
                    copy = _Substitute(old, new).visit(ast.parse(ast.unparse(node)).body[0])
                    copy.name = f"{node.name}__{new}"
                    body.append(copy)
    tree.body = body


def rewrite(source: str) -> str:
    tree = ast.parse(source)
    _direct_copies(tree)
    tree = _Rewrite().visit(tree)
    tree.body.insert(0, ast.Import([ast.alias(SHIM)]))
    return ast.unparse(ast.fix_missing_locations(tree))


#: failures that only read NumPyro-internal state or parameter names (allowed to remain)
INTERNAL = re.compile(
    r"has no attribute '(adapt_state|mass_matrix_sqrt|inverse_mass_matrix|step_size|trajectory_length|"
    r"potential_energy|z_grad|_sample_fn|_init_state|_potential_fn|_postprocess_fn|num_steps)'|"
    r"KeyError: '(auto_[a-z_]+|_auto_latent)'|"
    r"(object is not subscriptable|has no attribute).*(HMCState|BlackJAXState)"
)


#: failures of the environment (NumPyro's own case fails the same way there): too few devices, funsor missing
ENVIRONMENT = re.compile(
    r"There are not enough devices to run parallel chains|requires device_count|"
    r"No module named 'funsor'|You need to install `funsor`"
)

def classify(text: str) -> str:
    if INTERNAL.search(text):
        return "NumPyro-internal state"
    return "environment" if ENVIRONMENT.search(text) else "behaviour"


def summarise(junit: Path) -> tuple[str, int]:
    """Markdown report from pytest's junit XML; also the number of failures that are not internal-state ones."""
    counts: dict[str, Counter] = defaultdict(Counter)
    failures: dict[str, list] = defaultdict(list)
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("test"):  # pytest's own entries (e.g. the interrupted session), not a test case
            continue
        ids = name[name.find("[") + 1 : -1] if "[" in name else ""
        direct = name.split("[")[0].rsplit("__", 1)[-1]
        cls = direct if direct in PROBKIT_CLASSES else next(
            (c for c in PROBKIT_CLASSES if re.search(rf"(^|-){c}(-|$)", ids)), "numpyro"
        )
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            text = (bad.get("message") or "") + "\n" + (bad.text or "")
            message = (bad.get("message") or "").strip() or ((bad.text or "").strip().splitlines() or [""])[-1]
            counts[cls]["failed"] += 1
            module = case.get("classname", "").rsplit(".", 1)[-1]
            failures[cls].append((f"{module}::{name}", (message.splitlines() or [""])[0][:200], classify(text)))
        elif case.find("skipped") is not None:
            counts[cls]["skipped"] += 1
        else:
            counts[cls]["passed"] += 1
    lines = ["| class | passed | failed | skipped |", "|---|---|---|---|"]
    for cls in sorted(counts):
        c = counts[cls]
        lines.append(f"| {cls} | {c['passed']} | {c['failed']} | {c['skipped']} |")
    behaviour = 0
    for cls in sorted(failures):
        lines += ["", f"### {cls}: failures", "", "| test | error | kind |", "|---|---|---|"]
        for test, message, kind in sorted(failures[cls]):
            behaviour += kind == "behaviour" and cls != "numpyro"
            lines.append(f"| `{test}` | {message.replace('|', '/')} | {kind} |")
    return "\n".join(lines) + "\n", behaviour


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", type=Path, help="NumPyro source tree (with test/infer/)")
    parser.add_argument("--files", nargs="+", default=list(DEFAULT_FILES), help="test files, relative to src")
    parser.add_argument("--all", action="store_true", help="also run NumPyro's own cases")
    parser.add_argument("--report", type=Path, default=None, help="write the markdown report here")
    parser.add_argument("--timeout", type=float, default=None, help="stop pytest after this many seconds")
    parser.add_argument(
        "--devices", type=int, default=2,
        help="simulated CPU devices (XLA_FLAGS, as NumPyro's CI) for the chain_method='parallel' cases; 0: leave XLA_FLAGS",
    )
    args = parser.parse_args(argv)
    missing = [f for f in args.files if not (args.src / f).is_file()]
    if missing:
        print(
            f"{args.src} lacks {missing}: give a NumPyro source tree with its test/infer directory (a checkout of "
            "NumPyro's repository at the installed version's tag; the PyPI sdist of 0.22.0 omits test/infer)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="numpyro-upstream-") as tmp:
        tmp = Path(tmp)
        (tmp / f"{SHIM}.py").write_text(SHIM_SOURCE)
        for rel in args.files:
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(rewrite((args.src / rel).read_text()))
            for parent in Path(rel).parents:  # the upstream conftest files, unchanged
                if (args.src / parent / "conftest.py").is_file():
                    (tmp / parent).mkdir(parents=True, exist_ok=True)
                    shutil.copy(args.src / parent / "conftest.py", tmp / parent / "conftest.py")
        junit = tmp / "junit.xml"
        # SIGINT restored to KeyboardInterrupt: a background shell starts its jobs with SIGINT ignored, and
        # --timeout relies on pytest ending the session (and writing the junit report) on SIGINT
        run_pytest = ("import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "sys.exit(pytest.main(sys.argv[1:]))")
        cmd = [sys.executable, "-c", run_pytest, *[str(tmp / f) for f in args.files], "--rootdir", str(tmp),
               "-p", "no:cacheprovider", "-v", "-o", "addopts=", f"--junitxml={junit}"]
        config = args.src / "pyproject.toml"
        if config.is_file():
            cmd += ["-c", str(config)]
        if not args.all:
            cmd += ["-k", " or ".join(PROBKIT_CLASSES)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp)] + [p for p in sys.path if p]))
        if args.devices:
            flag = f"--xla_force_host_platform_device_count={args.devices}"
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
        proc = subprocess.Popen(cmd + extra, env=env, cwd=tmp)
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            # SIGINT, not a kill: pytest then ends the session and writes the junit report of the finished cases
            proc.send_signal(signal.SIGINT)
            try:  # the interrupt lands when the running test returns to Python (a compiled loop may take minutes)
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print(f"pytest stopped after {args.timeout} s; the report covers the finished cases", file=sys.stderr)
        if not junit.is_file():
            print("pytest wrote no report (collection failed?)", file=sys.stderr)
            return 2
        report, behaviour = summarise(junit)
    import numpyro

    import probkit

    header = (
        f"# NumPyro {numpyro.__version__} upstream tests with probkit's classes\n\n"
        f"Command: `python scripts/run_numpyro_upstream.py {' '.join(sys.argv[1:])}`  \n"
        f"probkit from {Path(probkit.__file__).parent}; files: {', '.join(args.files)}\n\n"
    )
    print(header + report)
    if args.report:
        args.report.write_text(header + report)
    return 1 if behaviour else 0


if __name__ == "__main__":
    sys.exit(main())
