"""probkit._checkpoint: atomic writes and checked reads (issue 26)."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from probkit._checkpoint import (
    check_checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    save_on_interrupt,
)


def _tree(n=3):
    return {"w": jnp.arange(n, dtype=jnp.float32), "step": jnp.asarray(7, jnp.int32)}


def test_round_trip_with_meta(tmp_path):
    path = tmp_path / "ck.eqx"
    save_checkpoint(path, _tree(), meta={"losses": [1.0, 2.5]}, fingerprint={"seed": 0})
    tree, meta = load_checkpoint(path, _tree(), fingerprint={"seed": 0})
    np.testing.assert_array_equal(tree["w"], np.arange(3))
    assert int(tree["step"]) == 7 and meta == {"losses": [1.0, 2.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.eqx"]  # no temporary file left behind


@pytest.mark.parametrize("content", [b"", b"garbage\n", None])
def test_empty_truncated_or_foreign_file_names_the_file(tmp_path, content):
    path = tmp_path / "ck.eqx"
    save_checkpoint(path, _tree())
    if content is None:  # truncated: the header survives, the leaves do not
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 10])
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="ck.eqx"):
        load_checkpoint(path, _tree())


def test_other_shapes_and_other_configuration_are_refused(tmp_path):
    path = tmp_path / "ck.eqx"
    save_checkpoint(path, _tree(3), fingerprint={"d_model": 32, "seed": 0})
    with pytest.raises(ValueError, match=r"ck.eqx.*shape \(3,\).*expected shape \(4,\)"):
        load_checkpoint(path, _tree(4))
    with pytest.raises(ValueError, match="d_model: checkpoint 32, now 64"):
        load_checkpoint(path, _tree(3), fingerprint={"d_model": 64, "seed": 0})


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.eqx"
    save_checkpoint(path, _tree(), meta={"v": 1})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, _tree(), meta={"v": 2})
    monkeypatch.undo()
    _, meta = load_checkpoint(path, _tree())
    assert meta == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.eqx"]


def test_check_checkpoint_path(tmp_path):
    assert check_checkpoint_path("checkpoint_path", None) is None
    assert check_checkpoint_path("checkpoint_path", tmp_path / "a.eqx") == str(tmp_path / "a.eqx")
    with pytest.raises(ValueError, match="checkpoint_path.*does not exist"):
        check_checkpoint_path("checkpoint_path", tmp_path / "missing" / "a.eqx")
    with pytest.raises(ValueError, match="checkpoint_path.*is a directory"):
        check_checkpoint_path("checkpoint_path", tmp_path)
    with pytest.raises(TypeError, match="checkpoint_path"):
        check_checkpoint_path("checkpoint_path", 3)


def test_save_on_interrupt():
    saved = []
    with pytest.raises(KeyboardInterrupt):
        with save_on_interrupt(lambda: saved.append(1)):
            raise KeyboardInterrupt
    with save_on_interrupt(lambda: saved.append(2)):
        pass
    assert saved == [1]


KILLED_WRITE = """
import numpy as np
from probkit._checkpoint import save_checkpoint
for v in range(2):
    save_checkpoint({path!r}, {{"w": np.full(3, v, np.float32)}}, meta={{"v": v}})
"""


@pytest.mark.slow
def test_temporary_of_a_killed_write_is_removed_by_the_next_load(tmp_path):
    """SIGKILL halfway through the second write leaves the first file and a half-written
    temporary; the next load returns the first file and deletes the temporary."""
    from checkpoint_helpers import kill_during_checkpoint_write

    path = tmp_path / "ck.eqx"
    kill_during_checkpoint_write(KILLED_WRITE.format(path=str(path)), save_number=2)
    assert sorted(p.name.endswith(".tmp") for p in tmp_path.iterdir()) == [False, True]
    tree, meta = load_checkpoint(path, {"w": np.zeros(3, np.float32)})
    assert meta == {"v": 0}
    np.testing.assert_array_equal(tree["w"], np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.eqx"]


def test_save_removes_only_stale_temporaries_of_its_checkpoint(tmp_path):
    """Removed: temporaries of ``ck.eqx`` from a finished process, from this one, and the
    pid-less names of earlier versions. Kept: a write under way in a running process
    (the parent), another checkpoint's temporaries and files of other names."""
    import subprocess

    done = subprocess.Popen(["true"])
    done.wait()
    stale = [f"ck.eqx.{done.pid}.k3j_x9q2.tmp", f"ck.eqx.{os.getpid()}.abcdefgh.tmp", "ck.eqx.zz8_1q0w.tmp"]
    kept = [f"ck.eqx.{os.getppid()}.abcdefgh.tmp", f"other.eqx.{done.pid}.abcdefgh.tmp", "ck.eqx.bak",
            "ck.eqx.abc.tmp", "xck.eqx.zz8_1q0w.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"half")
    save_checkpoint(tmp_path / "ck.eqx", _tree())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["ck.eqx"])
