"""Summaries of benchmark records: terminal table, CSV, PNG figures and a markdown leaderboard.

The table has one row per (target, sampler), means over the seeds' finished
runs, followed by the cause of each failed run and each budget overrun. The
leaderboard (:func:`leaderboard_markdown`) gives the median and range over
seeds of one metric per target × sampler and a rank summary per sampler;
:func:`write_family_plot` draws one panel per posterior family (the part of a
posterior's name before the ``-``).
"""

from __future__ import annotations

import csv
import json
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
    ("mean_err_max", "mean err", "{:.3f}"),
    ("sd_err_max", "sd err", "{:.3f}"),
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
    "target", "sampler", "seed", "run_key", "failed", "sw2", "sw2_stderr", "mean_err_max", "sd_err_max",
    "bias_x_max", "bias_x_mean", "bias_x2_max", "bias_x2_mean", "grads_to_bias", "ess_bulk", "ess_per_second",
    "ess_per_1k_grads", "grad_evals", "warmup_grad_evals", "budget_overrun", "n_draws", "divergences",
    "wall_time", "compile_time", "total_time", "chains", "draws", "warmup", "budget_grads", "error",
]

#: metrics where lower is better, for the leaderboard's ranks
LOWER_IS_BETTER = {"sw2", "mean_err_max", "sd_err_max", "bias_x2_max", "bias_x_max", "grad_evals", "wall_time"}


def _finite(values) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def _mean(values):
    vals = _finite(values)
    return float(np.mean(vals)) if vals else None


def _groups(records: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["target"], r["sampler"])].append(r)
    return groups


def summarise(records: list[dict]) -> list[dict]:
    """One row per (target, sampler): means over seeds of the finished runs."""
    rows = []
    for (target, sampler), rs in _groups(records).items():
        ok = [r for r in rs if not r.get("failed")]
        row = {"target": target, "sampler": sampler, "runs": len(rs), "failed": len(rs) - len(ok),
               "overruns": sum(1 for r in ok if r.get("budget_overrun"))}
        for col, _, _ in COLUMNS[4:]:
            row[col] = _mean([r.get(col) for r in ok])
        rows.append(row)
    return rows


def _first_line(text: str, width: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else "unknown error"
    return line if len(line) <= width else line[: width - 1] + "…"


def notes(records: list[dict]) -> list[str]:
    """The cause of every failed run, every budget overrun, groups that mix configurations, unavailable metrics."""
    out = []
    for r in records:
        where = f"{r['target']} / {r['sampler']} / seed {r['seed']}"
        if r.get("failed"):
            out.append(f"FAILED {where}: {_first_line(r.get('error'))}")
        elif r.get("budget_overrun"):
            out.append(f"OVER BUDGET {where}: {r.get('grad_evals')} gradient evaluations > "
                       f"--budget-grads {r.get('budget_grads')}")
    for (target, sampler), rs in _groups(records).items():
        configs = {json.dumps([r.get(k) for k in ("chains", "draws", "warmup", "budget_grads", "options")],
                              sort_keys=True) for r in rs}
        seeds = [r["seed"] for r in rs]
        if len(configs) > 1 or len(set(seeds)) < len(seeds):
            out.append(f"MIXED {target} / {sampler}: {len(rs)} records of {len(configs)} configurations "
                       f"(chains, draws, warm-up, budget, options), seeds {sorted(seeds)}: the means mix them")
    unavailable = sorted({(r["target"], tuple(r["unavailable"])) for r in records if r.get("unavailable")})
    for target, metrics in unavailable:
        out.append(f"{target}: reference is a summary (mean, sd): {', '.join(metrics)} unavailable")
    return out


def format_table(records: list[dict]) -> str:
    """The terminal table, then one line per failure / overrun / unavailable metric."""
    rows = summarise(records)
    header = [h for _, h, _ in COLUMNS]
    body = []
    for row in rows:
        cells = []
        for col, _, fmt in COLUMNS:
            v = row.get(col)
            cell = "-" if v is None else fmt.format(v)
            if col == "grad_evals" and row["overruns"]:
                cell += "!"  # over the budget: see the notes
            cells.append(cell)
        body.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body), *notes(records)])


def write_csv(records: list[dict], path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow(r)
    return path


def plot_lines(records: list[dict]) -> dict[str, list[dict]]:
    """The figures' data: per target, one line per (sampler, seed), points in order of gradients.

    Each line is ``{"sampler", "seed", "grads", "sw2", "bias_x2_max"}``; its
    last point is the record's ``sw2`` / ``bias_x2_max`` (the table's value).
    """
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("failed") or not r.get("trace_grads"):
            continue
        order = np.argsort(r["trace_grads"], kind="stable")
        out[r["target"]].append({
            "sampler": r["sampler"], "seed": r["seed"],
            "grads": [r["trace_grads"][i] for i in order],
            "sw2": [r["trace_sw2"][i] for i in order],
            "bias_x2_max": [r["trace_bias_x2_max"][i] for i in order],
        })
    for lines in out.values():
        lines.sort(key=lambda ln: (ln["sampler"], ln["seed"]))
    return dict(out)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def target_figure(target: str, lines: list[dict]):
    """The figure of one target: SW₂ and max E[x²] bias vs gradient evaluations, one line per (sampler, seed)."""
    # the object-oriented API: no pyplot state, no backend switch in the caller's session
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    colours: dict[str, str] = {}
    for ln in lines:
        first = ln["sampler"] not in colours
        c = colours.setdefault(ln["sampler"], f"C{len(colours) % 10}")
        style = dict(color=c, marker="o", ms=3, lw=1, alpha=0.85, label=ln["sampler"] if first else None)
        axes[0].plot(ln["grads"], ln["sw2"], **style)
        axes[1].plot(ln["grads"], ln["bias_x2_max"], **style)
    grads = [g for ln in lines for g in ln["grads"] if g > 0]
    wide = bool(grads) and max(grads) > 10 * min(grads)  # a log axis only over a decade or more
    for ax, ylabel in zip(axes, ["SW2 to reference (standardised)", "max standardised bias of E[x²]"]):
        ax.set_xscale("log" if wide else "linear")
        ax.set_yscale("log")
        ax.set_xlabel("gradient evaluations")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.01, color="k", lw=0.8, ls="--")
    axes[0].legend(fontsize=8, title="one line per seed", title_fontsize=7)
    fig.suptitle(target)
    fig.tight_layout()
    return fig


def write_plots(records: list[dict], out_dir: str | Path) -> list[Path]:
    """PNG figures per target (:func:`target_figure` of :func:`plot_lines`)."""
    out_dir = Path(out_dir)
    paths = []
    for target, lines in plot_lines(records).items():
        path = out_dir / f"{_safe(target)}.png"
        target_figure(target, lines).savefig(path, dpi=100)
        paths.append(path)
    return paths


# ------------------------------------------------------------------- leaderboard


def family(target: str) -> str:
    """A posterior's family: the part of its name before the ``-`` (``kidiq-kidscore_momiq`` → ``kidiq``)."""
    return target.split("-", 1)[0]


def leaderboard(records: list[dict], metric: str = "sw2") -> tuple[list[str], list[str], dict, dict]:
    """``(targets, samplers, cells, ranks)``.

    ``cells[(target, sampler)] = {"median", "min", "max", "n", "failed"}`` over
    seeds (``median`` None when no finished run has the metric); ``ranks`` per
    sampler: ``{"mean_rank", "wins", "targets", "failed_runs"}``, a target's
    rank by median (ties share the best rank, samplers without a value rank last).
    """
    targets = sorted({r["target"] for r in records})
    samplers = list(dict.fromkeys(r["sampler"] for r in records))
    groups = _groups(records)
    cells = {}
    for key, rs in groups.items():
        vals = _finite(r.get(metric) for r in rs if not r.get("failed"))
        cells[key] = {"median": float(np.median(vals)) if vals else None, "min": min(vals) if vals else None,
                      "max": max(vals) if vals else None, "n": len(vals),
                      "failed": sum(1 for r in rs if r.get("failed"))}
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    ranks = {s: {"ranks": [], "wins": 0, "failed_runs": 0} for s in samplers}
    for t in targets:
        present = [s for s in samplers if (t, s) in cells]
        scored = {s: sign * cells[(t, s)]["median"] for s in present if cells[(t, s)]["median"] is not None}
        if not scored:
            continue
        for s in present:
            ranks[s]["failed_runs"] += cells[(t, s)]["failed"]
            if s in scored:
                rank = 1 + sum(1 for v in scored.values() if v < scored[s])
                ranks[s]["wins"] += rank == 1
            else:
                rank = len(present)
            ranks[s]["ranks"].append(rank)
    summary = {s: {"mean_rank": float(np.mean(v["ranks"])) if v["ranks"] else None, "wins": v["wins"],
                   "targets": len(v["ranks"]), "failed_runs": v["failed_runs"]} for s, v in ranks.items()}
    return targets, samplers, cells, summary


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3g}"


def leaderboard_markdown(records: list[dict], metric: str = "sw2") -> str:
    """A markdown leaderboard: median [min, max] over seeds per target × sampler, then ranks per sampler."""
    targets, samplers, cells, summary = leaderboard(records, metric)
    seeds = sorted({r["seed"] for r in records})
    lines = [f"Median [min, max] of `{metric}` over seeds {seeds} "
             f"({'lower' if metric in LOWER_IS_BETTER else 'higher'} is better; best per row in bold; "
             "`n/a`: the reference has no draws for this metric; `✗k`: k failed runs).", ""]
    lines.append("| target | " + " | ".join(samplers) + " |")
    lines.append("|---|" + "---|" * len(samplers))
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    for t in targets:
        meds = {s: cells[(t, s)]["median"] for s in samplers if (t, s) in cells and cells[(t, s)]["median"] is not None}
        best = min(meds, key=lambda s: sign * meds[s]) if meds else None
        row = []
        for s in samplers:
            c = cells.get((t, s))
            if c is None:
                row.append("")
                continue
            if c["median"] is None:
                text = "✗" if c["failed"] else "n/a"
            else:
                text = f"{_fmt(c['median'])} [{_fmt(c['min'])}, {_fmt(c['max'])}]"
                text = f"**{text}**" if s == best else text
            if c["failed"] and c["median"] is not None:
                text += f" ✗{c['failed']}"
            row.append(text)
        lines.append(f"| {t} | " + " | ".join(row) + " |")
    lines += ["", "| sampler | mean rank | wins | targets ranked | failed runs |", "|---|---|---|---|---|"]
    for s in sorted(samplers, key=lambda s: (summary[s]["mean_rank"] is None, summary[s]["mean_rank"] or 0)):
        v = summary[s]
        mr = "–" if v["mean_rank"] is None else f"{v['mean_rank']:.2f}"
        lines.append(f"| {s} | {mr} | {v['wins']} | {v['targets']} | {v['failed_runs']} |")
    return "\n".join(lines) + "\n"


def family_panels(records: list[dict], metric: str = "sw2") -> dict[str, dict[str, dict[str, list[float]]]]:
    """The family figure's data: ``{family: {target: {sampler: [metric per finished seed]}}}``."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in sorted(records, key=lambda r: (r["target"], r["sampler"], r["seed"])):
        v = _finite([r.get(metric)]) if not r.get("failed") else []
        out[family(r["target"])][r["target"]][r["sampler"]].extend(v)
    return {f: {t: dict(s) for t, s in ts.items()} for f, ts in sorted(out.items())}


def write_family_plot(records: list[dict], path: str | Path, metric: str = "sw2") -> Path:
    """One panel per posterior family: per posterior, each sampler's seeds (dots) and median (bar)."""
    from matplotlib.figure import Figure

    panels = family_panels(records, metric)
    samplers = list(dict.fromkeys(r["sampler"] for r in records))
    ncol = min(4, len(panels)) or 1
    nrow = -(-len(panels) // ncol) or 1
    fig = Figure(figsize=(4.2 * ncol, 3.2 * nrow))
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    width = 0.8 / max(len(samplers), 1)
    for ax, (fam, targets) in zip(axes, panels.items()):
        for i, (t, by_sampler) in enumerate(targets.items()):
            for j, s in enumerate(samplers):
                vals = by_sampler.get(s, [])
                x = i - 0.4 + (j + 0.5) * width
                if vals:
                    ax.scatter([x] * len(vals), vals, s=8, color=f"C{j % 10}", zorder=3)
                    ax.hlines(np.median(vals), x - width / 2, x + width / 2, color=f"C{j % 10}", lw=2)
        ax.set_xticks(range(len(targets)))
        ax.set_xticklabels([t.split("-", 1)[-1][:18] for t in targets], rotation=30, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_title(fam, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [axes[0].scatter([], [], color=f"C{j % 10}", label=s) for j, s in enumerate(samplers)]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(samplers), 6), fontsize=8)
    fig.supylabel(f"{metric} (dots: seeds, bar: median)")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path = Path(path)
    fig.savefig(path, dpi=90)
    return path


def write_leaderboard(records: list[dict], out_dir: str | Path,
                      metrics: tuple[str, ...] = ("sw2", "mean_err_max")) -> list[Path]:
    """``OUT/leaderboard.md`` (one section per metric) and, with matplotlib, one family figure per metric."""
    out_dir = Path(out_dir)
    md = out_dir / "leaderboard.md"
    md.write_text("\n".join(f"### {m}\n\n{leaderboard_markdown(records, m)}" for m in metrics))
    paths = [md]
    try:
        for m in metrics:
            paths.append(write_family_plot(records, out_dir / f"leaderboard_families_{m}.png", m))
    except ImportError:
        pass
    return paths
