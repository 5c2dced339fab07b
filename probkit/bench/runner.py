"""Run (target, sampler, seed) triples and append one JSON record per run.

Records go to ``OUT/results.jsonl`` as each run finishes (written and fsynced
line by line), so an interrupted benchmark keeps every finished record.

**Run key.** Each record carries ``run_key``, a SHA-256 digest of the
target's fingerprint (model source, data, reference), the sampler, the seed,
chains, draws, warm-up, gradient budget and the sampler options: a re-run
skips a key already *finished*; a changed configuration is a new key. A failed
run is kept as history and retried by the next run; ``force=True`` re-runs
finished keys and replaces their finished records (failures stay as history). :func:`read_records` returns one
current record per key (the last finished one, else the last failure).

**Seeds.** Run ``seed`` of sampler ``s`` uses ``fold_in(PRNGKey(seed),
crc32(s))``: the same in every process (Python's ``hash`` is salted).

**Shards.** ``shard=(i, n)`` runs the triples whose position in the grid
(targets × samplers × seeds, in the order given) is ``i`` modulo ``n``, so
``n`` jobs given the same lists cover the grid once. Give each shard its own
``out_dir`` (a run repairs a torn last line of its file at start, which must
not race another process's append); :func:`read_records` merges several
directories, one record per run key.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
import traceback
import warnings
import zlib
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from ._timing import Stopwatch
from .metrics import compute_metrics
from .samplers import RunConfig, get_sampler
from .targets import BenchInputError, Target, check_reference

RESULTS_FILE = "results.jsonl"
KEY_VERSION = 2


def prng_key(sampler: str, seed: int) -> jax.Array:
    """The PRNG key of run ``seed`` of ``sampler``: ``fold_in(PRNGKey(seed), crc32(sampler))``."""
    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), zlib.crc32(sampler.encode()) & 0x7FFFFFFF)


def run_config(target: Target, sampler: str, seed: int, cfg: RunConfig, opts: dict) -> dict:
    """What determines a run's result: the key's contents (JSON-able)."""
    return {
        "v": KEY_VERSION, "target": target.name, "target_fingerprint": target.fingerprint(), "sampler": sampler,
        "seed": int(seed), "chains": cfg.chains, "draws": cfg.draws, "warmup": cfg.num_warmup,
        "budget_grads": cfg.budget_grads, "options": opts,
    }


def run_key(config: dict) -> str:
    """A stable digest of :func:`run_config`'s dict."""
    text = json.dumps(config, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _record_key(r: dict) -> str:
    return r.get("run_key") or f"legacy:{r.get('target')}|{r.get('sampler')}|{r.get('seed')}"


def _read_lines(path: Path) -> list[dict]:
    records = []
    for lineno, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not {"target", "sampler", "seed"} <= set(rec):
                raise ValueError("not a benchmark record")
        except ValueError as err:
            warnings.warn(f"{path}:{lineno}: skipped an unreadable record ({err})", stacklevel=3)
            continue
        records.append(rec)
    return records


def current_records(records: list[dict]) -> list[dict]:
    """One record per run key, in first-seen order: the last finished one, else the last failure."""
    best: dict[str, dict] = {}
    for r in records:
        k = _record_key(r)
        if k not in best or not r.get("failed") or best[k].get("failed"):
            best[k] = r
    return list(best.values())


def read_records(out_dirs, *, history: bool = False) -> list[dict]:
    """Records in ``OUT/results.jsonl`` of one directory or several (shards), merged.

    Unreadable lines (a torn last line, a hand edit) are skipped with a
    warning. By default one current record per run key
    (:func:`current_records`); ``history=True`` returns every record.
    """
    dirs = [out_dirs] if isinstance(out_dirs, (str, Path)) else list(out_dirs)
    records = []
    for d in dirs:
        path = Path(d) / RESULTS_FILE
        if path.is_file():
            records.extend(_read_lines(path))
    return records if history else current_records(records)


def _repair(path: Path) -> None:
    """End ``path`` with a newline: a complete last record gets one, a torn one is cut off (with a warning)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    try:
        json.loads(tail)
        fix = lambda f: f.write(b"\n")  # noqa: E731
    except ValueError:
        warnings.warn(f"{path}: removed a torn last line ({len(tail)} bytes) left by an interrupted write",
                      stacklevel=3)
        fix = lambda f: f.truncate(cut)  # noqa: E731
    with open(path, "r+b") as f:
        f.seek(0, os.SEEK_END)
        fix(f)
        f.flush()
        os.fsync(f.fileno())


def _append(path: Path, record: dict) -> None:
    """Append one line with a single ``write`` on an ``O_APPEND`` descriptor, then fsync."""
    data = (json.dumps(record, default=_json_default) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path: Path, key: str, record: dict) -> None:
    """Rewrite ``path`` (atomically) with the finished records of ``key`` replaced by ``record``."""
    kept = [r for r in _read_lines(path) if _record_key(r) != key or r.get("failed")] if path.is_file() else []
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        for r in [*kept, record]:
            f.write(json.dumps(r, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def run_one(target: Target, sampler: str, seed: int, cfg: RunConfig, opts: dict) -> dict:
    """Run one sampler on one target with one seed and compute its metrics (``opts`` as given by the user)."""
    spec = get_sampler(sampler)
    resolved = spec.resolve(opts)
    config = run_config(target, sampler, seed, cfg, dict(opts))
    k_run, k_metrics = jax.random.split(prng_key(sampler, seed))
    record = {
        "target": target.name,
        "sampler": sampler,
        "seed": int(seed),
        "run_key": run_key(config),
        "kind": spec.kind,
        "chains": cfg.chains,
        "draws": cfg.draws,
        "warmup": cfg.num_warmup,
        "budget_grads": cfg.budget_grads,
        "options": opts,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, jax {jax.__version__} {jax.default_backend()}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        with Stopwatch() as sw:
            output = spec.run(k_run, target, cfg, resolved)
            jax.block_until_ready(output.draws)
        reference = target.reference() if target.has_draws else None
        metrics = compute_metrics(k_metrics, output.draws, reference, output.grads, iid=output.iid,
                                  moments=None if target.has_draws else target.moments(), planned=cfg.draws)
    except Exception as err:  # noqa: BLE001 - a failed run is a result, recorded as such
        record.update({
            "failed": True,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=5),
        })
        return record
    ess = metrics.get("ess_bulk", float("nan"))
    total = int(output.total_grads)
    record.update({
        "failed": bool(metrics.pop("failed", False)),
        **metrics,
        "n_draws": int(next(iter(output.draws.values())).size),
        "grad_evals": total,
        "warmup_grad_evals": int(output.warmup_grads),
        "budget_overrun": bool(cfg.budget_grads is not None and total > cfg.budget_grads),
        "divergences": int(output.divergences),
        "wall_time": sw.run_time,
        "compile_time": sw.compile_time,
        "total_time": sw.wall,
        "ess_per_second": ess / sw.run_time if sw.run_time > 0 else None,
        "ess_per_1k_grads": 1000.0 * ess / total if total else None,
        "info": output.info,
    })
    return record


_STOP = threading.Event()


def request_stop() -> None:
    """Ask :func:`run_benchmark` to stop before its next run (called from a SIGINT handler)."""
    _STOP.set()


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → ``(I, N)`` with ``0 <= I < N`` (``BenchInputError`` naming ``--shard`` otherwise)."""
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise BenchInputError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise BenchInputError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def shard_grid(grid: list, shard: tuple[int, int] | None) -> list:
    """The ``i``-th of ``n`` disjoint slices of ``grid``: the entries at positions ``i, i + n, i + 2n, ...``."""
    if shard is None:
        return list(grid)
    i, n = shard
    return [g for k, g in enumerate(grid) if k % n == i]


def check_out_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BenchInputError(f"--out {out} is a file, not a directory")
    return out


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
    shard: tuple[int, int] | None = None,
) -> list[dict]:
    """Run every (target, sampler, seed) of the grid (or of its ``shard``) not yet finished in ``out_dir``.

    Everything is checked before the first run (samplers and their options,
    reference draws, ``out_dir``); returns the new records.
    """
    sampler_opts = dict(sampler_opts or {})
    for s in samplers:
        get_sampler(s).resolve(sampler_opts.get(s))
    for t in targets:
        if t.has_draws:
            check_reference(t.reference(), f"target {t.name}")
    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_FILE
    _repair(path)
    grid = shard_grid([(t, s, seed) for t in targets for s in samplers for seed in seeds], shard)
    history = read_records(out, history=True)
    finished = {_record_key(r) for r in history if not r.get("failed")}
    failed = {_record_key(r) for r in history if r.get("failed")}
    keyed = [(t, s, seed, run_key(run_config(t, s, seed, cfg, dict(sampler_opts.get(s, {}))))) for t, s, seed in grid]
    todo = keyed if force else [x for x in keyed if x[3] not in finished]
    if len(todo) < len(keyed):
        print(f"skipping {len(keyed) - len(todo)} finished run(s) recorded in {path} (use --force to re-run)")
    retried = sum(1 for x in todo if x[3] in failed and x[3] not in finished)
    if retried:
        print(f"retrying {retried} failed run(s) recorded in {path}")
    new = []
    bar = tqdm(todo, disable=not progress_bar, desc="bench", unit="run")
    for target, sampler, seed, key in bar:
        if _STOP.is_set():  # a SIGINT whose KeyboardInterrupt was swallowed (e.g. in a gc callback)
            raise KeyboardInterrupt
        bar.set_postfix_str(f"{target.name} / {sampler} / seed {seed}")
        record = run_one(target, sampler, seed, cfg, dict(sampler_opts.get(sampler, {})))
        if key in finished:  # --force: the new record (finished or failed) replaces the finished ones
            _replace(path, key, record)
        else:
            _append(path, record)
        new.append(record)
        # each run compiles its own model and sampler: free them, or a long grid's process keeps growing
        # (a 2-core VM shard reached 5.8 GB after ~35 posteriordb runs; another died in LLVM's allocator)
        jax.clear_caches()
    return new
