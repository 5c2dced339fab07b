"""Summaries of benchmark records: terminal table, CSV and PNG figures."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

COLUMNS = [
    ("target", "target", "{}"),
    ("sampler", "sampler", "{}"),
    ("runs", "runs", "{}"),
    ("failed", "fail", "{}"),
    ("sw2", "SW2", "{:.3f}"),
    ("sw2_stderr", "±se", "{:.3f}"),
    ("bias_x2_max", "max bias x²", "{:.2g}"),
    ("grads_to_bias", "grads→bias<.01", "{:.3g}"),
    ("ess_per_second", "ESS/s", "{:.3g}"),
    ("ess_per_1k_grads", "ESS/1k grads", "{:.3g}"),
    ("grad_evals", "grads", "{:.3g}"),
    ("divergences", "div", "{:.3g}"),
    ("wall_time", "wall s", "{:.2f}"),
    ("compile_time", "compile s", "{:.2f}"),
]

CSV_FIELDS = [
    "target", "sampler", "seed", "failed", "sw2", "sw2_stderr", "bias_x_max", "bias_x_mean",
    "bias_x2_max", "bias_x2_mean", "grads_to_bias", "ess_bulk", "ess_per_second",
    "ess_per_1k_grads", "grad_evals", "warmup_grad_evals", "divergences", "wall_time",
    "compile_time", "total_time", "chains", "draws", "budget_grads", "error",
]


def _mean(values):
    vals = [v for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarise(records: list[dict]) -> list[dict]:
    """One row per (target, sampler): means over seeds of the finished runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["target"], r["sampler"])].append(r)
    rows = []
    for (target, sampler), rs in groups.items():
        ok = [r for r in rs if not r.get("failed")]
        row = {"target": target, "sampler": sampler, "runs": len(rs), "failed": len(rs) - len(ok)}
        for col, _, _ in COLUMNS[4:]:
            row[col] = _mean([r.get(col) for r in ok])
        rows.append(row)
    return rows


def format_table(records: list[dict]) -> str:
    rows = summarise(records)
    header = [h for _, h, _ in COLUMNS]
    body = []
    for row in rows:
        cells = []
        for col, _, fmt in COLUMNS:
            v = row.get(col)
            cells.append("-" if v is None else fmt.format(v))
        body.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])


def write_csv(records: list[dict], path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow(r)
    return path


def write_plots(records: list[dict], out_dir: str | Path) -> list[Path]:
    """PNG figures per target: SW₂ vs gradient evaluations and max E[x²] bias vs gradients."""
    # the object-oriented API: no pyplot state, no backend switch in the caller's session
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    paths = []
    by_target: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if not r.get("failed") and r.get("trace_grads"):
            by_target[r["target"]].append(r)
    for target, rs in by_target.items():
        fig = Figure(figsize=(10, 4))
        axes = fig.subplots(1, 2)
        colours = {}
        for r in rs:
            c = colours.setdefault(r["sampler"], f"C{len(colours) % 10}")
            label = r["sampler"] if r["seed"] == min(x["seed"] for x in rs if x["sampler"] == r["sampler"]) else None
            style = dict(color=c, marker="o", label=label)
            axes[0].plot(r["trace_grads"], r["trace_sw2"], **style)
            axes[1].plot(r["trace_grads"], r["trace_bias_x2_max"], **style)
        for ax, ylabel in zip(axes, ["SW2 to reference (standardised)", "max standardised bias of E[x²]"]):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("gradient evaluations")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        axes[1].axhline(0.01, color="k", lw=0.8, ls="--")
        axes[0].legend(fontsize=8)
        fig.suptitle(target)
        fig.tight_layout()
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in target)
        path = out_dir / f"{safe}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths
