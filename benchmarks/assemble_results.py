"""Assemble ``benchmarks/RESULTS.md`` from the per-benchmark result files.

    python benchmarks/assemble_results.py

``benchmarks/results/SUMMARY.md`` (goals met / not met, written by hand from the
figures) comes first, then every ``benchmarks/results/<name>.md`` verbatim, in
the order of the project's issues. Each results file records its own commands
and machine; nothing here recomputes a number.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["sliced", "sw_gradient_flow", "flows", "blackjax_kernels", "mixflows", "squeak", "grf",
         "interpolants", "fokker_planck", "pfn"]
#: results files not written by ``benchmarks/<name>.py``: the tool that writes each
SOURCES = {
    "posteriordb": "scripts/verify_posteriordb.py",
    "bench_posteriordb": "probkit bench run / report",
    "numpyro_upstream": "scripts/run_numpyro_upstream.py",
}


def source(name: str) -> str:
    """What produced ``benchmarks/results/<name>.md``."""
    if name in SOURCES:
        return SOURCES[name]
    if (HERE / f"{name}.py").is_file():
        return f"benchmarks/{name}.py"
    raise SystemExit(f"benchmarks/results/{name}.md: no benchmarks/{name}.py; add its source to SOURCES")


def main() -> None:
    results = HERE / "results"
    files = {p.stem: p for p in results.glob("*.md") if p.stem != "SUMMARY"}
    names = [n for n in ORDER if n in files] + sorted(set(files) - set(ORDER))
    parts = [
        "# probkit benchmark results\n",
        "Assembled by `python benchmarks/assemble_results.py` from `benchmarks/results/*.md`; "
        "each section names the command that produced it and the machine it ran on.\n",
    ]
    summary = results / "SUMMARY.md"
    if summary.exists():
        parts.append(summary.read_text().strip() + "\n")
    for name in names:
        text = files[name].read_text().strip()
        # demote the section's own headings by one level under its file heading
        text = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
        parts.append(f"## `{name}` ({source(name)})\n\n{text}\n")
    (HERE / "RESULTS.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'RESULTS.md'} ({len(names)} benchmarks)")


if __name__ == "__main__":
    main()
