"""Test helpers importable from any test module: ``from helpers import float64, run_with_devices``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap

import jax
import pytest


@contextlib.contextmanager
def float64():
    """Run a block in float64 without switching it on for the whole session."""
    with jax.enable_x64(True):
        yield


def run_with_devices(code: str, n_devices: int = 4, timeout: float = 600) -> str:
    """Run ``code`` in a fresh Python with ``n_devices`` simulated CPU devices.

    Returns its stdout; a non-zero exit fails the test with the subprocess's stderr.
    """
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n_devices}"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"subprocess with {n_devices} devices failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture
def fast_compile(request):
    """XLA optimisation passes off for short runs, whose time is mostly compilation (numbers unaffected).

    Not for tests marked slow, whose long runs are faster optimised. Use it module-wide with
    ``from helpers import fast_compile`` and ``pytestmark = pytest.mark.usefixtures("fast_compile")``."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)
