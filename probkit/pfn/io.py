"""Saving and loading PFNs: a JSON header with the hyperparameters, then the leaves.

File layout: one line of JSON (``{"format": "probkit-pfn", "version": 1, "hyperparameters": {...}}``)
followed by the bytes of ``eqx.tree_serialise_leaves``. ``load`` rebuilds the architecture
from the header and reads the leaves into it.
"""

from __future__ import annotations

import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp

from .transformer import PFN

_FORMAT = "probkit-pfn"
_VERSION = 1


def save(path: str | os.PathLike, pfn: PFN, *, metadata: dict | None = None) -> None:
    """Write ``pfn`` (architecture + weights) to ``path``; ``metadata`` is stored in the header."""
    if not isinstance(pfn, PFN):
        raise TypeError(f"pfn must be a PFN, got {type(pfn).__name__}")
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "hyperparameters": pfn.hyperparameters,
        "metadata": metadata or {},
    }
    with open(path, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, pfn)


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a saved PFN."""
    with open(path, "rb") as f:
        line = f.readline()
    try:
        header = json.loads(line.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{os.fspath(path)!r} is not a probkit PFN file") from e
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a probkit PFN file")
    return header


def load(path: str | os.PathLike) -> PFN:
    """Rebuild a PFN saved with :func:`save`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"path {path!r} does not exist")
    header = read_header(path)
    hp = header["hyperparameters"]
    # float32 template: the stored leaves were float32 (the default dtype)
    with jax.enable_x64(False):
        template = PFN(jax.random.PRNGKey(0), **hp, borders=jnp.linspace(-1.0, 1.0, hp["n_buckets"] + 1))
    with open(path, "rb") as f:
        f.readline()
        return eqx.tree_deserialise_leaves(f, template)
