"""Build a tutorial notebook from its percent-format source and execute it.

    python scripts/build_tutorial.py tutorials/src/01_flow_guides.py [--quick] [--no-execute]

The source is a Python file whose cells start with ``# %%`` (code) or
``# %% [markdown]`` (markdown; each line starts with ``# ``). The notebook is
written to ``tutorials/<same stem>.ipynb``, executed in full mode (the committed
outputs) unless ``--quick`` (PROBKIT_QUICK=1) or ``--no-execute`` is given.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

_CELL = re.compile(r"^# %%(.*)$", re.MULTILINE)


def parse(source: str) -> list[tuple[str, str]]:
    """Split a percent-format script into ``(kind, text)`` cells."""
    marks = list(_CELL.finditer(source))
    if not marks:
        raise ValueError("source has no '# %%' cell markers")
    cells = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(source)
        body = source[m.end() : end].strip("\n")
        if "[markdown]" in m.group(1):
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines()]
            cells.append(("markdown", "\n".join(lines).strip("\n")))
        elif body.strip():
            cells.append(("code", body))
    return cells


def build(src: Path, *, execute: bool = True, quick: bool = False, timeout: int = 3600) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, text in parse(src.read_text()):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        nb.cells.append(cell)
    out = src.resolve().parent.parent / f"{src.stem}.ipynb"
    if execute:
        os.environ.pop("MPLBACKEND", None)  # inline figures in the kernel
        os.environ.pop("PROBKIT_QUICK", None)
        if quick:
            os.environ["PROBKIT_QUICK"] = "1"
        t0 = time.time()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(out.parent)}}).execute()
        print(f"executed {out.name} in {time.time() - t0:.0f} s", file=sys.stderr)
    nbformat.write(nb, out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sources", nargs="+", type=Path)
    p.add_argument("--quick", action="store_true", help="execute with PROBKIT_QUICK=1")
    p.add_argument("--no-execute", action="store_true")
    a = p.parse_args()
    for src in a.sources:
        print(build(src, execute=not a.no_execute, quick=a.quick))


if __name__ == "__main__":
    main()
