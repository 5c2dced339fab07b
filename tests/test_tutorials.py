"""Execute every tutorial notebook top to bottom in quick mode (PROBKIT_QUICK=1)."""

import os
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
# the notebooks that take over ~90 s of CPU in quick mode run with the slow checks (CI runs them when
# they fit in its budget); the others run in the default suite
SLOW_NOTEBOOKS = {"00_overview", "01_flow_guides", "03_pfn", "04_squeak_nystrom", "08_fokker_planck_diffusion",
                  "09_benchmarking_samplers"}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW_NOTEBOOKS else []) for p in NOTEBOOKS],
)
def test_notebook_executes(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PROBKIT_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell


def test_notebooks_are_committed_with_outputs():
    nbformat = pytest.importorskip("nbformat")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{path.name} is not executed"
        assert any(o.get("output_type") == "display_data" for c in code for o in c.get("outputs", [])), (
            f"{path.name} has no figure"
        )
