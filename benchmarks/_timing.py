"""Timing helpers shared by the benchmarks.

Every figure is the *fastest* of several runs after one warm-up run (which also compiles):
on a shared machine the minimum is the least noisy estimate of the cost itself. Peers timed
against each other are run round-robin (:func:`interleaved`), so a slow spell of the machine
hits all of them alike.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax


def fastest(fn: Callable, *args, repeats: int = 3) -> tuple[float, Any]:
    """(fastest wall time in seconds of ``repeats`` calls ``fn(*args)`` after a warm-up call,
    the last call's output)."""
    out = jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best, out


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Fastest wall time of each zero-argument callable over ``repeats`` round-robin rounds,
    after one warm-up call of each."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(fn())
            times[k] = min(times[k], time.perf_counter() - t)
    return times
