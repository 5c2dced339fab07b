"""Read posteriors from a posteriordb tree (the bundled subset or a user's clone).

The layout is posteriordb's own::

    posterior_database/
      posteriors/<name>.json                       {model_name, data_name, reference_posterior_name, ...}
      models/stan/<model>.stan, models/info/<model>.info.json
      data/data/<data>.json.zip, data/info/<data>.info.json
      reference_posteriors/draws/draws/<ref>.json.zip   list (one per chain) of {param: [draws]}
      reference_posteriors/draws/info/<ref>.info.json
      reference_posteriors/summary_statistics/mean_value/mean_value/<ref>.json
      reference_posteriors/summary_statistics/mean_squared_value/mean_squared_value/<ref>.json

``root`` may point at the repository clone or at its ``posterior_database`` folder.

**Reference draws format** (``--reference`` files and posteriordb's draws):
a JSON list with one object per chain, each mapping a Stan-style parameter
name (``"mu"``, ``"theta[1]"``, ``"L[2,1]"``; 1-based indices) to the list of
that chain's draws, every chain with the same names and the same number of
finite draws. A single object is read as one chain; ``.json.zip`` archives are
read as well. **Summaries** (``mean_value`` / ``mean_squared_value``) are JSON
objects ``{"names": [...], "mean_value": [...]}`` (resp.
``"mean_squared_value"``), one entry per parameter.

**The bundled subset** (``probkit/data/posteriordb``, :data:`BUNDLED_ROOT`)
holds the posteriors the benchmark registers, built by :func:`write_subset`
from a posteriordb clone: data, Stan code and info files verbatim, the
summaries verbatim (posteriordb computes them from all reference draws), and
the reference draws **thinned**: every chain (10 in posteriordb) keeps every
``thin``-th of its draws (``per_chain`` = 500 of 1000: 5000 draws per
posterior), each value rounded to a multiple of ``10^(floor(log10 sd) - 5)``
(an error below 5e-6 reference sd). ``BUNDLE.json`` next to the tree records
these settings per posterior; :func:`bundle_info` reads it.
"""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BUNDLED_ROOT = Path(__file__).resolve().parent.parent / "data" / "posteriordb"
BUNDLE_FILE = "BUNDLE.json"
_SUMMARIES = ("mean_value", "mean_squared_value")


@dataclass
class Posterior:
    """One posteriordb posterior.

    ``reference`` maps a parameter name (``"theta[1]"``) to an array of shape
    ``(chains, draws)``, or is ``None`` when posteriordb has no draws for it;
    ``summary`` maps a parameter name to its reference ``(mean, sd)`` from
    posteriordb's summary statistics (``None`` when absent); ``data`` is the
    data dict with lists turned into arrays.
    """

    name: str
    data: dict
    reference: dict[str, np.ndarray] | None
    stan_code: str | None
    info: dict
    model_name: str = ""
    data_name: str = ""
    reference_info: dict = field(default_factory=dict)
    summary: dict[str, tuple[float, float]] | None = None

    def reference_matrix(self, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Reference draws as ``(names, array (chains*draws, len(names)))``."""
        if self.reference is None:
            raise ValueError(f"posterior {self.name!r} has no reference draws (summaries only)")
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


def _exists(path: Path) -> bool:
    return path.is_file() or path.with_name(path.name + ".zip").is_file()


def _ref_draws_path(db: Path, ref: str) -> Path:
    return db / "reference_posteriors" / "draws" / "draws" / f"{ref}.json.zip"


def _summary_path(db: Path, ref: str, stat: str) -> Path:
    return db / "reference_posteriors" / "summary_statistics" / stat / stat / f"{ref}.json"


def posterior_meta(name: str, root: str | Path | None = None) -> dict:
    """The small ``posteriors/<name>.json`` record (model, data and reference names, dimensions)."""
    db = _db(root)
    path = db / "posteriors" / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown posterior {name!r}; available: {names(root)}")
    return _read_json(path, what="posterior info")


def reference_kind(meta: dict, root: str | Path | None = None) -> str | None:
    """``"draws"``, ``"summaries"`` (posteriordb's mean / mean-square summaries only) or ``None``."""
    db, ref = _db(root), meta.get("reference_posterior_name")
    if not ref:
        return None
    if _exists(_ref_draws_path(db, ref)):
        return "draws"
    if all(_exists(_summary_path(db, ref, s)) for s in _SUMMARIES):
        return "summaries"
    return None


def names(root: str | Path | None = None) -> list[str]:
    """Names of the posteriors under ``root`` with a reference (draws, or summaries only)."""
    db = _db(root)
    out = []
    for p in sorted((db / "posteriors").glob("*.json")):
        meta = json.loads(p.read_text())
        if reference_kind(meta, root) is not None:
            out.append(meta.get("name", p.stem))
    return out


def parse_draws(raw, *, source: str) -> dict[str, np.ndarray]:
    """Parse posteriordb draws (a list of chains, each ``{name: [draws]}``).

    Returns ``{name: array (chains, draws)}``; raises ``ValueError`` naming
    ``source`` when the structure is not that, a chain is empty or a draw is
    not finite.
    """
    if isinstance(raw, dict):  # a single chain
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(c, dict) for c in raw) or not raw[0]:
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
        if arr.shape[1] == 0:
            raise ValueError(f"draws file {source}: parameter {k!r} has no draws")
        bad = int(np.sum(~np.isfinite(arr)))
        if bad:
            raise ValueError(f"draws file {source}: parameter {k!r} has {bad} non-finite (NaN/inf) draws")
        out[k] = arr
    return out


def load_draws(path: str | Path) -> dict[str, np.ndarray]:
    """Read a posteriordb-format draws file (``.json`` or ``.json.zip``)."""
    path = Path(path)
    return parse_draws(_read_json(path, what="reference draws"), source=str(path))


def load_summary(db: Path, ref: str) -> dict[str, tuple[float, float]] | None:
    """``{name: (mean, sd)}`` from the mean / mean-square summaries, ``None`` if absent.

    ``sd = sqrt(E[x²] − E[x]²)``. posteriordb rounds ``E[x²]`` to about 10
    significant digits (absolute error up to ~5e-10 max(1, E[x²])), so where
    that error exceeds 1e-3 of the variance (a mean far from 0 in sd units,
    e.g. diamonds' ``Intercept``) the sd is NaN rather than a wrong number.
    """
    paths = {s: _summary_path(db, ref, s) for s in _SUMMARIES}
    if not all(_exists(p) for p in paths.values()):
        return None
    m, m2 = (_read_json(paths[s], what=f"{s} summary") for s in _SUMMARIES)
    try:
        names_, mean, msq = m["names"], np.asarray(m["mean_value"], float), np.asarray(m2["mean_squared_value"], float)
        if list(m2["names"]) != list(names_) or mean.shape != msq.shape or mean.shape != (len(names_),):
            raise ValueError("names and values do not line up")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed summary files for {ref!r} in {paths['mean_value'].parent}: {err}") from err
    var = msq - mean**2
    resolved = np.isfinite(var) & (var > 0) & (5e-10 * np.maximum(np.abs(msq), 1.0) <= 1e-3 * var)
    sd = np.where(resolved, np.sqrt(np.where(resolved, var, 1.0)), np.nan)
    return {n: (float(mu), float(s)) for n, mu, s in zip(names_, mean, sd)}


def _arrays(data: dict) -> dict:
    return {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in data.items()}


def load(name: str, root: str | Path | None = None, *, draws: bool = True) -> Posterior:
    """Load posterior ``name`` (e.g. ``"eight_schools-eight_schools_noncentered"``).

    Returns a :class:`Posterior` with the data dict, the reference draws
    (``{param: (chains, draws)}``, ``None`` when posteriordb has none or
    ``draws=False``), the summaries, the Stan code and the posterior's info.
    """
    db = _db(root)
    meta = posterior_meta(name, root)
    data = _arrays(_read_json(db / "data" / "data" / f"{meta['data_name']}.json", what="data"))
    stan_path = db / "models" / "stan" / f"{meta['model_name']}.stan"
    stan_code = stan_path.read_text() if stan_path.is_file() else None
    ref_name = meta.get("reference_posterior_name")
    reference, ref_info, summary = None, {}, None
    if ref_name:
        if draws and _exists(_ref_draws_path(db, ref_name)):
            reference = load_draws(_ref_draws_path(db, ref_name))
        summary = load_summary(db, ref_name)
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
        summary=summary,
    )


def bundle_info() -> dict:
    """The bundled subset's ``BUNDLE.json``: source, thinning and rounding, per-posterior draw counts."""
    return json.loads((BUNDLED_ROOT / BUNDLE_FILE).read_text())


# ------------------------------------------------------------ building the subset


def _round_to_sd(chains: np.ndarray, sd_digits: int) -> list[list[float]]:
    """Round to a multiple of ``10^(floor(log10 sd) − sd_digits)`` (7 significant digits if sd = 0)."""
    sd = float(chains.std())
    if sd > 0 and np.isfinite(sd):
        nd = sd_digits - math.floor(math.log10(sd))
        return [[round(float(x), nd) for x in c] for c in chains]
    return [[float(f"{x:.7g}") for x in c] for c in chains]


def _write_zip(path: Path, member: str, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(member, text)


def write_subset(
    src: str | Path, dst: str | Path, posteriors: list[str] | None = None, *,
    per_chain: int = 500, sd_digits: int = 5,
) -> dict:
    """Copy ``posteriors`` (default: all with a reference) from the tree ``src`` to ``dst``, draws thinned.

    Data, Stan code, info and summary files are copied verbatim; each chain of
    the reference draws keeps every ``thin = n // per_chain``-th draw (at most
    ``per_chain``), values rounded by ``sd_digits`` (see the module docstring).
    Writes and returns the manifest ``dst/BUNDLE.json``.
    """
    sdb, dst = _db(src), Path(dst)
    ddb = dst / "posterior_database"
    posteriors = names(src) if posteriors is None else posteriors
    manifest = {
        "source": "posteriordb (https://github.com/stan-dev/posteriordb), BSD-3-Clause, see LICENCE.md",
        "thinning": f"each chain keeps every thin-th draw, at most {per_chain} per chain",
        "rounding": f"each value rounded to a multiple of 10^(floor(log10 sd) - {sd_digits}), sd over all kept draws",
        "per_chain": per_chain, "sd_digits": sd_digits, "posteriors": {},
    }

    def copy(rel: Path):
        for p in (sdb / rel, (sdb / rel).with_name(rel.name + ".zip")):
            if p.is_file():
                (ddb / p.relative_to(sdb)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, ddb / p.relative_to(sdb))

    for name in posteriors:
        meta = posterior_meta(name, src)
        ref = meta.get("reference_posterior_name")
        copy(Path("posteriors") / f"{name}.json")
        copy(Path("models/stan") / f"{meta['model_name']}.stan")
        copy(Path("models/info") / f"{meta['model_name']}.info.json")
        copy(Path("data/data") / f"{meta['data_name']}.json")
        copy(Path("data/info") / f"{meta['data_name']}.info.json")
        entry = {"reference": reference_kind(meta, src)}
        if ref:
            copy(Path("reference_posteriors/draws/info") / f"{ref}.info.json")
            for stat in _SUMMARIES:
                copy(Path("reference_posteriors/summary_statistics") / stat / stat / f"{ref}.json")
                copy(Path("reference_posteriors/summary_statistics") / stat / "info" / f"{ref}.info.json")
        if entry["reference"] == "draws":
            draws = load_draws(_ref_draws_path(sdb, ref))
            n_chains, n = next(iter(draws.values())).shape
            thin = max(n // per_chain, 1)
            kept = {k: v[:, ::thin][:, :per_chain] for k, v in draws.items()}
            rounded = {k: _round_to_sd(v, sd_digits) for k, v in kept.items()}
            chains = [{k: rounded[k][c] for k in kept} for c in range(n_chains)]
            _write_zip(_ref_draws_path(ddb, ref), f"{ref}.json", json.dumps(chains, separators=(",", ":")))
            entry.update({"chains": n_chains, "draws_per_chain": int(next(iter(kept.values())).shape[1]),
                          "source_draws_per_chain": int(n), "thin": thin})
        manifest["posteriors"][name] = entry
    (dst / BUNDLE_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
