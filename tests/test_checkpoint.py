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
