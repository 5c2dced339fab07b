"""Run (target, sampler, seed) triples and append one JSON record per finished run.

Records go to ``OUT/results.jsonl`` as each run finishes (written and fsynced
line by line), so an interrupted benchmark keeps every finished record; a
re-run skips the triples already recorded unless ``force=True``.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import traceback
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from ._timing import Stopwatch
from .metrics import compute_metrics
from .samplers import RunConfig, get_sampler
from .targets import Target

RESULTS_FILE = "results.jsonl"


def read_records(out_dir: str | Path) -> list[dict]:
    """Every complete record in ``OUT/results.jsonl`` (a torn last line is ignored)."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _append(path: Path, record: dict) -> None:
    line = json.dumps(record, default=_json_default) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def _key(target: str, sampler: str, seed: int) -> tuple:
    return (target, sampler, int(seed))


def run_one(target: Target, sampler: str, seed: int, cfg: RunConfig, opts: dict) -> dict:
    """Run one sampler on one target with one seed and compute its metrics."""
    spec = get_sampler(sampler)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), hash(sampler) % (2**31))
    k_run, k_metrics = jax.random.split(key)
    record = {
        "target": target.name,
        "sampler": sampler,
        "seed": int(seed),
        "kind": spec.kind,
        "chains": cfg.chains,
        "draws": cfg.draws,
        "budget_grads": cfg.budget_grads,
        "options": opts,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, jax {jax.__version__} {jax.default_backend()}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        with Stopwatch() as sw:
            output = spec.run(k_run, target, cfg, opts)
            jax.block_until_ready(output.draws)
        metrics = compute_metrics(k_metrics, output.draws, target.reference(), output.grads, iid=output.iid)
    except Exception as err:  # noqa: BLE001 - a failed run is a result, recorded as such
        record.update({
            "failed": True,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=5),
        })
        return record
    ess = metrics.get("ess_bulk", float("nan"))
    record.update({
        "failed": bool(metrics.pop("failed", False)),
        **metrics,
        "grad_evals": int(output.total_grads),
        "warmup_grad_evals": int(output.warmup_grads),
        "divergences": int(output.divergences),
        "wall_time": sw.run_time,
        "compile_time": sw.compile_time,
        "total_time": sw.wall,
        "ess_per_second": ess / sw.run_time if sw.run_time > 0 else None,
        "ess_per_1k_grads": 1000.0 * ess / output.total_grads if output.total_grads else None,
        "info": output.info,
    })
    return record


_STOP = threading.Event()


def request_stop() -> None:
    """Ask :func:`run_benchmark` to stop before its next run (called from a SIGINT handler)."""
    _STOP.set()


def run_benchmark(
    targets: list[Target],
    samplers: list[str],
    seeds: list[int],
    out_dir: str | Path,
    *,
    cfg: RunConfig,
    sampler_opts: dict | None = None,
    force: bool = False,
    progress_bar: bool = True,
) -> list[dict]:
    """Run every (target, sampler, seed) not yet recorded in ``out_dir``; return all new records."""
    for s in samplers:
        get_sampler(s)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_FILE
    done = set() if force else {_key(r["target"], r["sampler"], r["seed"]) for r in read_records(out)}
    todo = [(t, s, seed) for t in targets for s in samplers for seed in seeds if _key(t.name, s, seed) not in done]
    skipped = len(targets) * len(samplers) * len(seeds) - len(todo)
    if skipped:
        print(f"skipping {skipped} finished run(s) recorded in {path} (use --force to re-run)")
    new = []
    bar = tqdm(todo, disable=not progress_bar, desc="bench", unit="run")
    for target, sampler, seed in bar:
        if _STOP.is_set():  # a SIGINT whose KeyboardInterrupt was swallowed (e.g. in a gc callback)
            raise KeyboardInterrupt
        bar.set_postfix_str(f"{target.name} / {sampler} / seed {seed}")
        record = run_one(target, sampler, seed, cfg, (sampler_opts or {}).get(sampler, {}))
        _append(path, record)
        new.append(record)
    return new
