"""Shared test fixtures: PRNG key, float64 scope, simulated-device subprocesses.

Plain helpers live in ``tests/helpers.py`` (``from helpers import float64, run_with_devices``).
"""

from __future__ import annotations

import jax
import pytest
from helpers import float64, run_with_devices


@pytest.fixture
def key():
    """A fixed PRNG key; tests split it as they need."""
    return jax.random.PRNGKey(0)


@pytest.fixture
def x64():
    """Run the whole test in float64 (scoped: other tests stay float32)."""
    with float64():
        yield


@pytest.fixture
def devices_runner():
    """Fixture giving :func:`helpers.run_with_devices`."""
    return run_with_devices


def pytest_runtest_logreport(report):
    """With ``PROBKIT_FAILED_LOG`` set, append each failing test id to that file.

    CI uses it to tell a failing ``slow`` test from a run stopped at the time limit:
    a test cut short by that limit (``timeout --signal=INT``, which reaches pytest,
    its xdist workers and any notebook kernel) fails with ``KeyboardInterrupt`` and is
    not logged.
    """
    import os

    path = os.environ.get("PROBKIT_FAILED_LOG")
    if path and report.failed and not _interrupted(report):
        with open(path, "a") as f:
            f.write(f"{report.nodeid} ({report.when})\n")


def _interrupted(report) -> bool:
    """Whether a failed report comes from a ``KeyboardInterrupt`` (the CI time limit)."""
    text = str(report.longrepr) if report.longrepr is not None else ""
    return "KeyboardInterrupt" in text
