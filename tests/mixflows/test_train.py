"""MixFlow.fit checkpoints (issue 26): atomic, fingerprinted, resumable bit for bit, even after SIGKILL mid-write."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from probkit._checkpoint import read_checkpoint_header

# the same flow in this process and in the subprocess
SETUP = """
import jax, jax.numpy as jnp
from probkit.mixflows import GaussianReference, MixFlow
flow = MixFlow(lambda x: -0.5 * jnp.sum(x**2), 2, n_flow_steps=4, n_leapfrog=2, step_size=0.05,
               reference=GaussianReference(jnp.array([2.0, -2.0]), 0.3))
FIT = dict(n_samples=2, progress_bar=False, checkpoint_every=2)
"""


@functools.lru_cache(maxsize=None)  # one flow for both tests: its fit step compiles once
def _setup():
    scope = {}
    exec(SETUP, scope)
    return scope["flow"], scope["FIT"]


def _params(flow):
    return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(flow)])


def test_resume_is_bit_identical_and_refuses_another_configuration(tmp_path):
    flow, fit = _setup()
    key = jax.random.PRNGKey(0)
    straight, hist = flow.fit(key, steps=6, **fit)
    path = tmp_path / "ck.eqx"
    _, first = flow.fit(key, steps=3, checkpoint_path=path, **fit)
    assert read_checkpoint_header(path)["meta"]["step"] == 3
    resumed, hist2 = flow.fit(key, steps=6, checkpoint_path=path, **fit)  # extends steps
    np.testing.assert_array_equal(_params(resumed), _params(straight))
    np.testing.assert_array_equal(hist2, hist)
    np.testing.assert_array_equal(first, hist[:3])
    with pytest.raises(ValueError, match=r"ck.eqx.*another configuration.*n_samples"):
        flow.fit(key, steps=8, checkpoint_path=path, **{**fit, "n_samples": 3})
    with pytest.raises(ValueError, match=r"ck.eqx.*another configuration.*seed"):
        flow.fit(jax.random.PRNGKey(1), steps=8, checkpoint_path=path, **fit)
    with pytest.raises(ValueError, match=r"ck.eqx.*past steps=4"):
        flow.fit(key, steps=4, checkpoint_path=path, **fit)
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    with pytest.raises(ValueError, match=r"ck.eqx.*truncated"):
        flow.fit(key, steps=8, checkpoint_path=path, **fit)


def test_sigkill_during_a_checkpoint_write_resumes_from_the_last_good_one(tmp_path):
    """A subprocess is killed (SIGKILL) while writing its second checkpoint (step 4): the file
    still holds step 2, and resuming from it gives exactly the uninterrupted run."""
    path, marker = tmp_path / "ck.eqx", tmp_path / "writing"
    child = SETUP + textwrap.dedent(f"""
        import os, time
        real_replace, calls = os.replace, []
        def slow_replace(src, dst):  # the temporary file is written; stall before the rename
            calls.append(src)
            if len(calls) == 2:
                open({str(marker)!r}, "w").close()
                time.sleep(600)
            real_replace(src, dst)
        os.replace = slow_replace
        flow.fit(jax.random.PRNGKey(0), steps=6, checkpoint_path={str(path)!r}, **FIT)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", child], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached its second checkpoint"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the write really was under way
    assert read_checkpoint_header(path)["meta"]["step"] == 2
    flow, fit = _setup()
    resumed, hist = flow.fit(jax.random.PRNGKey(0), steps=6, checkpoint_path=path, **fit)
    straight, hist_straight = flow.fit(jax.random.PRNGKey(0), steps=6, **fit)
    np.testing.assert_array_equal(_params(resumed), _params(straight))
    np.testing.assert_array_equal(hist, hist_straight)
