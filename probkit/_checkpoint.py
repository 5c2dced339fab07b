"""Checkpoint files shared by every training loop: atomic writes, checked reads.

A checkpoint is one file: a JSON header line, then the bytes of
:func:`equinox.tree_serialise_leaves`::

    {"format": "probkit-checkpoint", "version": 1, "fingerprint": {...},
     "meta": {...}, "leaves": [[shape, dtype], ...]}\\n
    <leaves>

- :func:`save_checkpoint` writes a temporary file in the same folder, fsyncs it
  and renames it over ``path`` (:func:`os.replace` is atomic on POSIX), so a
  kill at any moment leaves either the previous good file or the new one. The
  temporary of a killed write (``<name>.<pid>.<random>.tmp``) is removed by the
  next save or load of that checkpoint (:func:`remove_stale_temporaries`).
- :func:`load_checkpoint` raises a ``ValueError`` naming the file when it is
  empty, truncated, not a checkpoint, holds leaves of other shapes than the
  template, or was written under another configuration (``fingerprint``).
- :func:`check_checkpoint_path` checks the folder before training starts.
- :func:`save_on_interrupt` saves once more when the loop is interrupted (SIGINT).
- :func:`save_training_state` / :func:`load_training_state`: a training loop's
  state and loss history (its length is the step reached, so ``steps`` may grow);
  :func:`describe` / :func:`digest` turn a configuration (optimiser, prior, loss
  closure) into a fingerprint that is stable across processes.

``meta`` holds what may legitimately change between runs (the step reached,
the loss history, which lets a resumed run extend ``steps``); ``fingerprint``
holds what must not (model shape, prior, optimiser settings, seed).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from typing import Any, Callable

import equinox as eqx
import jax
import numpy as np

_FORMAT = "probkit-checkpoint"
_VERSION = 1


def _leaf_specs(tree) -> list[list]:
    return [[list(np.shape(x)), str(np.asarray(x).dtype)] for x in jax.tree_util.tree_leaves(tree) if eqx.is_array_like(x)]


def check_checkpoint_path(name: str, path: str | os.PathLike | None) -> str | None:
    """Require ``path`` (if given) to be a file path in an existing, writable folder.

    Returns ``os.fspath(path)`` (or ``None``); raises ``ValueError`` naming ``name``.
    """
    if path is None:
        return None
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}") from None
    if os.path.isdir(path):
        raise ValueError(f"{name}={path!r} is a directory; expected a file path")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{name}={path!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{name}={path!r}: folder {folder!r} is not writable")
    return path


def _temporary_name(path: str) -> re.Pattern:
    """Names of ``path``'s temporaries: ``<name>.<pid>.<random>.tmp`` (``<name>.<random>.tmp`` before the pid)."""
    return re.compile(re.escape(os.path.basename(path)) + r"\.(?:(\d+)\.)?[a-z0-9_]{8}\.tmp")


def _running(pid: int) -> bool:
    if pid == os.getpid():  # ours, and this process is not writing it now (one writer per checkpoint)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporaries that interrupted writes of ``path`` left in its folder.

    Only files named as :func:`save_checkpoint` names them, and only those of a process
    that no longer runs (or of this one); a write under way in another process is left
    alone. Returns the removed paths.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = _temporary_name(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or (match.group(1) is not None and _running(int(match.group(1)))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
    return removed


def _jsonable(obj: Any):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return np.asarray(obj).tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def save_checkpoint(path: str | os.PathLike, tree, *, meta: dict | None = None, fingerprint: dict | None = None) -> None:
    """Write ``tree`` (with ``meta`` and ``fingerprint``) to ``path`` atomically."""
    path = os.fspath(path)
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "fingerprint": _jsonable(fingerprint or {}),
        "meta": _jsonable(meta or {}),
        "leaves": _leaf_specs(tree),
    }
    buf = io.BytesIO()
    buf.write((json.dumps(header, allow_nan=True) + "\n").encode())
    eqx.tree_serialise_leaves(buf, tree)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_checkpoint_header(path: str | os.PathLike) -> dict:
    """The header of a checkpoint file; ``ValueError`` naming the file if it is not one."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            line = f.readline()
    except OSError as err:
        raise ValueError(f"cannot read checkpoint {path!r}: {err}") from err
    if not line:
        raise ValueError(f"checkpoint {path!r} is empty")
    try:
        header = json.loads(line.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{path!r} is not a probkit checkpoint (no probkit-checkpoint header; truncated or another format)")
    return header


def load_checkpoint(path: str | os.PathLike, like, *, fingerprint: dict | None = None) -> tuple[Any, dict]:
    """Read the checkpoint at ``path`` into the structure of ``like``; return ``(tree, meta)``.

    Raises ``ValueError`` naming the file when it is empty or truncated, when its
    leaves differ from ``like``'s (the first difference is named), or when its
    stored fingerprint differs from ``fingerprint`` (the differing keys are named).
    """
    path = os.fspath(path)
    remove_stale_temporaries(path)
    header = read_checkpoint_header(path)
    if fingerprint is not None:
        want, got = _jsonable(fingerprint), header.get("fingerprint", {})
        diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
        if diff:
            details = "; ".join(f"{k}: checkpoint {got.get(k)!r}, now {want.get(k)!r}" for k in diff)
            raise ValueError(
                f"checkpoint {path!r} was written under another configuration ({details}); "
                "use another checkpoint path or delete the file to start afresh"
            )
    stored, expected = header.get("leaves", []), _leaf_specs(like)
    if len(stored) != len(expected):
        raise ValueError(f"checkpoint {path!r} holds {len(stored)} arrays, expected {len(expected)} for this model")
    for i, (s, e) in enumerate(zip(stored, expected)):
        if list(s[0]) != list(e[0]) or s[1] != e[1]:
            raise ValueError(
                f"checkpoint {path!r}: array {i} has shape {tuple(s[0])} and dtype {s[1]}, "
                f"expected shape {tuple(e[0])} and dtype {e[1]} (a checkpoint of another model?)"
            )
    try:
        with open(path, "rb") as f:
            f.readline()
            tree = eqx.tree_deserialise_leaves(f, like)
    except Exception as err:  # noqa: BLE001 - truncated data surfaces as various numpy/equinox errors
        raise ValueError(f"checkpoint {path!r} is truncated or corrupt ({type(err).__name__}: {err})") from err
    return tree, header.get("meta", {})


@contextlib.contextmanager
def save_on_interrupt(save: Callable[[], None]):
    """On ``KeyboardInterrupt`` inside the block, call ``save()`` and re-raise."""
    try:
        yield
    except KeyboardInterrupt:
        save()
        raise


# ---- training loops: configuration fingerprints and resumable state --------------------


def describe(obj: Any, *, values: bool = True, _depth: int = 0, _seen: frozenset = frozenset()):
    """A JSON-able description of a configuration object, stable across processes.

    Modules and dataclasses by their fields, functions by their qualified name with
    their closure, defaults and ``functools.partial`` arguments (so an optax optimiser
    is described by its hyperparameters and a loss closure by what it captured),
    NumPyro distributions by their attributes, arrays by shape, dtype and (``values``)
    a digest of their bytes. Never a ``repr`` (which may hold memory addresses).
    """
    import dataclasses
    import functools
    import hashlib
    import types

    if _depth > 12 or id(obj) in _seen:
        return f"<{type(obj).__qualname__}>"
    seen = _seen | {id(obj)}

    def sub(v):
        return describe(v, values=values, _depth=_depth + 1, _seen=seen)

    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, jax.Array)) or (hasattr(obj, "shape") and hasattr(obj, "dtype")):
        if isinstance(obj, jax.core.Tracer):
            return f"<traced {obj.dtype}{list(obj.shape)}>"
        if isinstance(obj, jax.Array) and jax.dtypes.issubdtype(obj.dtype, jax.dtypes.prng_key):
            obj = jax.random.key_data(obj)
        arr = np.asarray(obj)
        out = f"{arr.dtype}{list(arr.shape)}"
        if values or not np.issubdtype(arr.dtype, np.inexact):
            out += ":" + hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]
        return out
    if isinstance(obj, dict):
        return {str(k): sub(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        if hasattr(obj, "_fields"):  # NamedTuple (optax GradientTransformation, states)
            return {"type": type(obj).__qualname__, **{f: sub(getattr(obj, f)) for f in obj._fields}}
        return [sub(v) for v in obj]
    if isinstance(obj, functools.partial):
        return {"partial": sub(obj.func), "args": sub(obj.args), "keywords": sub(obj.keywords)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # eqx.Module
        fields = {f.name: sub(getattr(obj, f.name, None)) for f in dataclasses.fields(obj)}
        return {"type": f"{type(obj).__module__}.{type(obj).__qualname__}", **fields}
    wrapped = getattr(obj, "__wrapped__", None)
    if wrapped is not None and callable(obj):  # jax.jit, functools.wraps
        return sub(wrapped)
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        fn = obj.__func__ if isinstance(obj, types.MethodType) else obj
        out = {"function": f"{fn.__module__}.{fn.__qualname__}"}
        if isinstance(obj, types.MethodType):
            out["self"] = sub(obj.__self__)
        if fn.__closure__:
            names = fn.__code__.co_freevars
            cells = {}
            for name, cell in zip(names, fn.__closure__):
                try:
                    cells[name] = sub(cell.cell_contents)
                except ValueError:  # empty cell
                    cells[name] = "<empty>"
            out["closure"] = cells
        if fn.__defaults__:
            out["defaults"] = sub(fn.__defaults__)
        if fn.__kwdefaults__:
            out["kwdefaults"] = sub(fn.__kwdefaults__)
        return out
    if isinstance(obj, (types.BuiltinFunctionType, type)):
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):  # plain objects (e.g. NumPyro distributions)
        return {"type": f"{type(obj).__module__}.{type(obj).__qualname__}", **sub(state)}
    return f"<{type(obj).__module__}.{type(obj).__qualname__}>"


def digest(obj: Any, *, values: bool = True) -> str:
    """``"<type>:<hash>"`` of :func:`describe` (short enough for an error message)."""
    import hashlib

    text = json.dumps(describe(obj, values=values), sort_keys=True, default=str)
    return f"{type(obj).__qualname__}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def save_training_state(path: str | os.PathLike, state, losses, *, fingerprint: dict) -> None:
    """Write a training loop's ``state`` (parameters, optimiser state) and its loss history.

    ``losses`` holds one value per finished step (its length is the step reached), so
    a run resumed with a larger ``steps`` extends it.
    """
    losses = np.asarray(losses, np.float32)
    save_checkpoint(path, (state, losses), meta={"step": int(losses.shape[0])}, fingerprint=fingerprint)


def load_training_state(path: str | os.PathLike | None, like, *, fingerprint: dict, steps: int):
    """Where a training run of ``steps`` steps starts: ``(state, losses, start)``.

    ``losses`` has shape ``(steps,)``, the history of the ``start`` finished steps and NaN
    after. Without ``path``, or when the file does not exist: ``(like, NaN..., 0)``.
    Raises ``ValueError`` naming the file when it is empty, truncated, of another model
    (leaf shapes of ``like``), of another configuration (``fingerprint``) or further than
    ``steps`` (the run would have to go back).
    """
    losses = np.full((steps,), np.nan, np.float32)
    if path is not None:
        remove_stale_temporaries(path)
    if path is None or not os.path.exists(path):
        return like, losses, 0
    path = os.fspath(path)
    done = read_checkpoint_header(path).get("meta", {}).get("step")
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        raise ValueError(f"checkpoint {path!r} is not a training checkpoint (no step count in its header)")
    if done > steps:
        raise ValueError(
            f"checkpoint {path!r} has reached step {done}, beyond steps={steps}; pass steps >= {done} "
            "to resume (or another checkpoint path)"
        )
    (state, history), _ = load_checkpoint(path, (like, np.zeros(done, np.float32)), fingerprint=fingerprint)
    losses[:done] = history
    return state, losses, done
