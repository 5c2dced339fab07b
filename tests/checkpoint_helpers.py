"""Kill a training run in the middle of a checkpoint write (for the resume tests of every trainer).

``from checkpoint_helpers import kill_during_checkpoint_write``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

_HOOK = '''
import os as _os, time as _time, types as _types
import probkit._checkpoint as _ck

_count = [0]


class _HalfWriter:
    """Writes half of the bytes, tells the parent, and hangs until it is killed."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        _os.fsync(self.f.fileno())
        open({marker!r}, "w").close()
        _time.sleep(600)

    def __getattr__(self, name):
        return getattr(self.f, name)


def _fdopen(fd, *args, **kwargs):
    f = _os.fdopen(fd, *args, **kwargs)
    _count[0] += 1
    return _HalfWriter(f) if _count[0] == {save_number} else f


# only probkit._checkpoint sees the hooked os.fdopen
_ck.os = _types.ModuleType("os")
_ck.os.__dict__.update(_os.__dict__)
_ck.os.fdopen = _fdopen
'''


def kill_during_checkpoint_write(code: str, *, save_number: int, timeout: float = 300) -> None:
    """Run ``code`` in a fresh Python and SIGKILL it halfway through its ``save_number``-th
    checkpoint write (:func:`probkit._checkpoint.save_checkpoint`: the temporary file holds
    half of the new bytes, the rename has not happened)."""
    with tempfile.TemporaryDirectory() as tmp:
        marker = os.path.join(tmp, "writing")
        script = _HOOK.format(marker=marker, save_number=save_number) + textwrap.dedent(code)
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, text=True)
        try:
            deadline = time.monotonic() + timeout
            while not os.path.exists(marker):
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    pytest.fail(f"the run ended before checkpoint write {save_number}:\n{out}\n{err}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no checkpoint write {save_number} within {timeout} s")
                time.sleep(0.05)
        finally:
            proc.kill()  # SIGKILL
            proc.communicate()
