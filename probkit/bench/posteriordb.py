"""Read posteriors from a posteriordb tree (the bundled subset or a user's clone).

The layout is posteriordb's own::

    posterior_database/
      posteriors/<name>.json                       {model_name, data_name, reference_posterior_name, ...}
      models/stan/<model>.stan, models/info/<model>.info.json
      data/data/<data>.json.zip, data/info/<data>.info.json
      reference_posteriors/draws/draws/<ref>.json.zip   list (one per chain) of {param: [draws]}
      reference_posteriors/draws/info/<ref>.info.json

``root`` may point at the repository clone or at its ``posterior_database`` folder.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BUNDLED_ROOT = Path(__file__).resolve().parent.parent / "data" / "posteriordb"


@dataclass
class Posterior:
    """One posteriordb posterior.

    ``reference`` maps a parameter name (``"theta[1]"``) to an array of shape
    ``(chains, draws)``; ``data`` is the data dict with lists turned into arrays.
    """

    name: str
    data: dict
    reference: dict[str, np.ndarray] | None
    stan_code: str | None
    info: dict
    model_name: str = ""
    data_name: str = ""
    reference_info: dict = field(default_factory=dict)

    def reference_matrix(self, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Reference draws as ``(names, array (chains*draws, len(names)))``."""
        if self.reference is None:
            raise ValueError(f"posterior {self.name!r} has no reference draws")
        names = list(self.reference) if names is None else names
        return names, np.stack([self.reference[n].reshape(-1) for n in names], axis=1)


def _db(root: str | Path | None) -> Path:
    base = BUNDLED_ROOT if root is None else Path(root)
    if (base / "posterior_database").is_dir():
        base = base / "posterior_database"
    if not (base / "posteriors").is_dir():
        raise ValueError(
            f"root={str(root)!r} is not a posteriordb tree: expected a 'posteriors' folder "
            f"in {base}"
        )
    return base


def _read_json(path: Path, *, what: str):
    """Read ``path`` or ``path`` + '.zip' (posteriordb zips its data and draws)."""
    candidates = [path, path.with_name(path.name + ".zip")] if path.suffix != ".zip" else [path]
    for p in candidates:
        if p.is_file():
            try:
                if p.suffix == ".zip":
                    with zipfile.ZipFile(p) as zf:
                        members = [m for m in zf.namelist() if m.endswith(".json")]
                        if not members:
                            raise ValueError("no .json member in the archive")
                        return json.loads(zf.read(members[0]))
                return json.loads(p.read_text())
            except (ValueError, zipfile.BadZipFile, UnicodeDecodeError) as err:
                raise ValueError(f"malformed {what} file {p}: {err}") from err
    raise FileNotFoundError(f"missing {what} file {candidates[-1]}")


def names(root: str | Path | None = None) -> list[str]:
    """Names of the posteriors under ``root`` that have reference draws."""
    db = _db(root)
    out = []
    for p in sorted((db / "posteriors").glob("*.json")):
        meta = json.loads(p.read_text())
        ref = meta.get("reference_posterior_name")
        if ref and _ref_draws_path(db, ref).exists():
            out.append(meta.get("name", p.stem))
    return out


def _ref_draws_path(db: Path, ref: str) -> Path:
    return db / "reference_posteriors" / "draws" / "draws" / f"{ref}.json.zip"


def parse_draws(raw, *, source: str) -> dict[str, np.ndarray]:
    """Parse posteriordb draws (a list of chains, each ``{name: [draws]}``).

    Returns ``{name: array (chains, draws)}``; raises ``ValueError`` naming
    ``source`` when the structure is not that.
    """
    if isinstance(raw, dict):  # a single chain
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(c, dict) for c in raw):
        raise ValueError(
            f"malformed draws file {source}: expected a list of chains, each a dict "
            "mapping parameter names to lists of draws"
        )
    keys = list(raw[0])
    out = {}
    for k in keys:
        try:
            chains = [np.asarray(c[k], dtype=float) for c in raw]
            arr = np.stack(chains)
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(
                f"malformed draws file {source}: parameter {k!r} is missing or ragged "
                f"across chains ({err})"
            ) from err
        if arr.ndim != 2:
            raise ValueError(f"malformed draws file {source}: parameter {k!r} is not a list of numbers")
        out[k] = arr
    return out


def load_draws(path: str | Path) -> dict[str, np.ndarray]:
    """Read a posteriordb-format draws file (``.json`` or ``.json.zip``)."""
    path = Path(path)
    return parse_draws(_read_json(path, what="reference draws"), source=str(path))


def _arrays(data: dict) -> dict:
    return {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in data.items()}


def load(name: str, root: str | Path | None = None) -> Posterior:
    """Load posterior ``name`` (e.g. ``"eight_schools-eight_schools_noncentered"``).

    Returns a :class:`Posterior` with the data dict, the reference draws
    (``{param: (chains, draws)}``), the Stan code and the posterior's info.
    """
    db = _db(root)
    meta_path = db / "posteriors" / f"{name}.json"
    if not meta_path.is_file():
        available = names(root)
        raise ValueError(f"unknown posterior {name!r}; available: {available}")
    meta = _read_json(meta_path, what="posterior info")
    data = _arrays(_read_json(db / "data" / "data" / f"{meta['data_name']}.json", what="data"))
    stan_path = db / "models" / "stan" / f"{meta['model_name']}.stan"
    stan_code = stan_path.read_text() if stan_path.is_file() else None
    ref_name = meta.get("reference_posterior_name")
    reference, ref_info = None, {}
    if ref_name:
        reference = load_draws(_ref_draws_path(db, ref_name))
        info_path = db / "reference_posteriors" / "draws" / "info" / f"{ref_name}.info.json"
        if info_path.is_file():
            ref_info = _read_json(info_path, what="reference info")
    return Posterior(
        name=name,
        data=data,
        reference=reference,
        stan_code=stan_code,
        info=meta,
        model_name=meta["model_name"],
        data_name=meta["data_name"],
        reference_info=ref_info,
    )
