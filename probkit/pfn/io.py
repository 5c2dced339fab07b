"""Saving and loading PFNs: the architecture and the weights in one checked file.

:func:`save` writes a :mod:`probkit._checkpoint` file (atomic: a temporary file renamed
over ``path``) whose ``meta`` holds ``{"format": "probkit-pfn", "version": 2,
"hyperparameters": {...}, "metadata": {...}}``; :func:`load` rebuilds the architecture
from it and reads the leaves, checking their shapes. Files of version 1 (one line of JSON
``{"format": "probkit-pfn", ...}`` then the bytes of ``eqx.tree_serialise_leaves``, as
the shipped ``weights/gp-rbf-1d.eqx``) are still read. Every failure (missing, empty,
truncated, another format, leaves of another shape) is a ``ValueError`` naming the file.
"""

from __future__ import annotations

import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checkpoint import load_checkpoint, save_checkpoint
from .transformer import PFN

_FORMAT = "probkit-pfn"
_VERSION = 2


def save(path: str | os.PathLike, pfn: PFN, *, metadata: dict | None = None) -> None:
    """Write ``pfn`` (architecture + weights) to ``path``; ``metadata`` is stored in the header."""
    if not isinstance(pfn, PFN):
        raise TypeError(f"pfn must be a PFN, got {type(pfn).__name__}")
    header = {"format": _FORMAT, "version": _VERSION, "hyperparameters": pfn.hyperparameters,
              "metadata": metadata or {}}
    save_checkpoint(path, pfn, meta=header)


def _first_line(path: str) -> dict:
    if not os.path.exists(path):
        raise ValueError(f"path {path!r} does not exist")
    with open(path, "rb") as f:
        line = f.readline()
    if not line:
        raise ValueError(f"{path!r} is empty (not a probkit PFN file)")
    try:
        header = json.loads(line.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict):
        raise ValueError(f"{path!r} is not a probkit PFN file (no JSON header line)")
    return header


def read_header(path: str | os.PathLike) -> dict:
    """The PFN header of a saved PFN: ``format``, ``version``, ``hyperparameters``, ``metadata``."""
    path = os.fspath(path)
    header = _first_line(path)
    if header.get("format") == "probkit-checkpoint":
        header = header.get("meta", {})
    if header.get("format") != _FORMAT or not isinstance(header.get("hyperparameters"), dict):
        raise ValueError(f"{path!r} is not a probkit PFN file")
    return header


def load(path: str | os.PathLike) -> PFN:
    """Rebuild a PFN saved with :func:`save` (any version)."""
    path = os.fspath(path)
    hp = read_header(path)["hyperparameters"]
    try:
        # float32 template: the stored leaves were float32 (the default dtype)
        with jax.enable_x64(False):
            template = PFN(jax.random.PRNGKey(0), **hp, borders=jnp.linspace(-1.0, 1.0, hp["n_buckets"] + 1))
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{path!r}: its hyperparameters {hp} do not make a PFN ({err})") from err
    if _first_line(path).get("format") == "probkit-checkpoint":
        return load_checkpoint(path, template)[0]
    try:  # version 1: no leaf shapes in the header; equinox names the first mismatch
        with open(path, "rb") as f:
            f.readline()
            pfn = eqx.tree_deserialise_leaves(f, template)
            trailing = f.read(1)
    except Exception as err:  # noqa: BLE001 - truncated data surfaces as various numpy/equinox errors
        raise ValueError(f"{path!r} is truncated or holds another model ({type(err).__name__}: {err})") from err
    if trailing:
        raise ValueError(f"{path!r} holds more data than a PFN with {hp} (another model?)")
    return pfn
