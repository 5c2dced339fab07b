"""Separate JAX compilation time from run time, by JAX's own monitoring events."""

from __future__ import annotations

import threading
import time

from jax import monitoring

# lowering and XLA compilation; tracing is left out because nested traces
# (a jit inside a traced function) would be counted twice
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_state = threading.local()
_registered = False


def _listener(event: str, duration: float, **_):
    timers = getattr(_state, "timers", None)
    if timers and event in _COMPILE_EVENTS:
        for t in timers:
            t.compile_time += duration


class Stopwatch:
    """Context manager: ``wall`` (total seconds), ``compile_time`` and ``run_time = wall − compile``."""

    def __init__(self):
        self.compile_time = 0.0
        self.wall = 0.0

    def __enter__(self):
        global _registered
        if not _registered:
            monitoring.register_event_duration_secs_listener(_listener)
            _registered = True
        if not hasattr(_state, "timers"):
            _state.timers = []
        _state.timers.append(self)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._start
        _state.timers.remove(self)
        return False

    @property
    def run_time(self) -> float:
        return max(self.wall - self.compile_time, 0.0)
