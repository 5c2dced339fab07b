"""Benchmark targets: a NumPyro model, its data and reference draws.

Three kinds:

- analytic targets with exact i.i.d. draws (Gaussians, banana, Neal's funnel,
  a Gaussian mixture), written as NumPyro models;
- the bundled posteriordb posteriors (reference draws from posteriordb);
- a user's own model file with data and reference draws (posteriordb format),
  or a posterior read from a posteriordb clone.

Reference draws are a dict ``{stan_name: array (n,)}`` matched by name to the
model's sample and deterministic sites (``theta[1]`` ↔ site ``theta``); files
use posteriordb's draws format (see :mod:`probkit.bench.posteriordb`). A
posterior with summaries only (posteriordb's ``mcycle_gp-accel_gp``) is a
target whose :meth:`Target.moments` come from its summaries: it is scored by
mean and sd errors, and the draw-based metrics (SW₂, E[x²] bias) are reported
as unavailable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from . import posteriordb
from .models import MODELS
from .names import flatten_sites, match_reference, model_sites


class BenchInputError(ValueError):
    """Bad benchmark input (unknown name, bad file); the CLI exits with status 2."""


@dataclass
class Target:
    """A model with data and reference draws (or, for summaries-only posteriors, reference moments)."""

    name: str
    model: Callable
    data: dict
    description: str
    _reference: dict | None = None
    _exact: Callable | None = None  # key, n -> {name: (n,)}
    n_reference: int = 10_000
    kind: str = "analytic"
    source: str = ""
    extra: dict = field(default_factory=dict)
    _summary: dict | None = None  # {name: (mean, sd)} when there are no draws
    _fingerprint: str | None = None

    @property
    def has_draws(self) -> bool:
        return self._reference is not None or self._exact is not None

    def reference(self) -> dict[str, np.ndarray]:
        """Reference draws ``{name: (n,)}`` (exact draws for analytic targets)."""
        if self._reference is None:
            if self._exact is None:
                raise BenchInputError(f"target {self.name!r} has no reference draws (summaries only)")
            self._reference = {k: np.asarray(v) for k, v in self._exact(jax.random.PRNGKey(20231), self.n_reference).items()}
        return self._reference

    def moments(self) -> dict[str, tuple[float, float]]:
        """Reference ``{name: (mean, sd)}``: from the draws, else from the summaries (sd NaN if unresolved)."""
        if self.has_draws:
            return {k: (float(np.mean(v)), float(np.std(v))) for k, v in self.reference().items()}
        return dict(self._summary)

    def reference_names(self) -> list[str]:
        return list(self.reference()) if self.has_draws else list(self._summary)

    def fingerprint(self) -> str:
        """A stable digest of the model's source, the data and the reference (part of the run key)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            try:
                h.update(inspect.getsource(self.model).encode())
            except (OSError, TypeError):
                h.update(getattr(self.model, "__qualname__", repr(self.model)).encode())
            for k in sorted(self.data):
                h.update(k.encode())
                v = self.data[k]
                h.update(np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode())
            if self._exact is not None and self._reference is None:
                h.update(f"exact:{self.n_reference}".encode())  # regenerated from a fixed key
            else:
                ref = self.reference() if self.has_draws else self._summary
                for k in ref:
                    h.update(k.encode())
                    h.update(np.ascontiguousarray(ref[k], dtype="<f8").tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def exact_draws(self, key, n: int) -> dict[str, np.ndarray]:
        """Fresh exact draws (analytic targets only)."""
        if self._exact is None:
            raise ValueError(f"target {self.name!r} has no exact sampler")
        return {k: np.asarray(v) for k, v in self._exact(key, n).items()}


# ----------------------------------------------------------------- analytic

ANALYTIC_DESCRIPTIONS = {
    "gaussian": "standard Gaussian, d = 10, exact draws",
    "ill_gaussian": "diagonal Gaussian, d = 10, scales 0.1..10 (condition number 1e4), exact draws",
    "banana": "2-D banana (b = 0.1), exact draws",
    "funnel10": "Neal's funnel, d = 10, exact draws",
    "funnel50": "Neal's funnel, d = 50, exact draws",
    "mixture": "2-D two-component Gaussian mixture, exact draws",
}


def _vector_names(site: str, x: jax.Array) -> dict:
    return flatten_sites({site: x})


def _gaussian_target(name, scales, description):
    scales = jnp.asarray(scales, dtype=jnp.float32)
    d = scales.shape[0]

    def model():
        numpyro.sample("x", dist.Normal(jnp.zeros(d), scales).to_event(1))

    def exact(key, n):
        return _vector_names("x", jax.random.normal(key, (n, d)) * scales)

    return Target(name, model, {}, description, _exact=exact)


def banana_model(b: float = 0.1):
    """The banana of METHODS §3: x = (y₁, y₂ + b y₁² − 100 b), y ~ N(0, diag(100, 1))."""

    def model():
        x1 = numpyro.sample("x1", dist.Normal(0.0, 10.0))
        numpyro.sample("x2", dist.Normal(b * x1**2 - 100.0 * b, 1.0))

    def exact(key, n):
        y = jax.random.normal(key, (n, 2)) * jnp.array([10.0, 1.0])
        return {"x1": y[:, 0], "x2": y[:, 1] + b * y[:, 0] ** 2 - 100.0 * b}

    return model, exact


def funnel_model(d: int):
    """Neal's funnel in d dimensions: v ~ N(0, 3), x_i | v ~ N(0, e^{v/2}), i < d."""

    def model():
        v = numpyro.sample("v", dist.Normal(0.0, 3.0))
        numpyro.sample("x", dist.Normal(jnp.zeros(d - 1), jnp.exp(v / 2)).to_event(1))

    def exact(key, n):
        kv, kx = jax.random.split(key)
        v = 3.0 * jax.random.normal(kv, (n,))
        x = jax.random.normal(kx, (n, d - 1)) * jnp.exp(v / 2)[:, None]
        return {"v": v, **_vector_names("x", x)}

    return model, exact


def mixture_model():
    """Equal mixture of N((−2, 0), 0.7² I) and N((2, 0), 0.7² I) in 2-D."""
    locs = jnp.array([[-2.0, 0.0], [2.0, 0.0]])
    scale = 0.7

    def model():
        mix = dist.MixtureSameFamily(
            dist.Categorical(probs=jnp.array([0.5, 0.5])),
            dist.Normal(locs, scale).to_event(1),
        )
        numpyro.sample("x", mix)

    def exact(key, n):
        kc, kz = jax.random.split(key)
        c = jax.random.bernoulli(kc, 0.5, (n,)).astype(jnp.int32)
        return _vector_names("x", locs[c] + scale * jax.random.normal(kz, (n, 2)))

    return model, exact


def _analytic_targets() -> dict[str, Callable[[], Target]]:
    def banana():
        model, exact = banana_model(0.1)
        return Target("banana", model, {}, ANALYTIC_DESCRIPTIONS["banana"], _exact=exact)

    def funnel(d):
        def make():
            model, exact = funnel_model(d)
            return Target(f"funnel{d}", model, {}, ANALYTIC_DESCRIPTIONS[f"funnel{d}"], _exact=exact)

        return make

    def mixture():
        model, exact = mixture_model()
        return Target("mixture", model, {}, ANALYTIC_DESCRIPTIONS["mixture"], _exact=exact)

    return {
        "gaussian": lambda: _gaussian_target("gaussian", np.ones(10), ANALYTIC_DESCRIPTIONS["gaussian"]),
        "ill_gaussian": lambda: _gaussian_target(
            "ill_gaussian", np.logspace(-1, 1, 10), ANALYTIC_DESCRIPTIONS["ill_gaussian"]
        ),
        "banana": banana,
        "funnel10": funnel(10),
        "funnel50": funnel(50),
        "mixture": mixture,
    }


ANALYTIC = _analytic_targets()


def check_reference(ref: dict, source: str) -> None:
    """Reference draws must be non-empty and finite (``BenchInputError`` naming ``source`` and the parameter)."""
    if not ref:
        raise BenchInputError(f"{source}: no reference draws")
    for k, v in ref.items():
        v = np.asarray(v)
        if v.size == 0:
            raise BenchInputError(f"{source}: parameter {k!r} has no draws")
        if not np.all(np.isfinite(v)):
            raise BenchInputError(f"{source}: parameter {k!r} has {int(np.sum(~np.isfinite(v)))} non-finite draws")


def _posteriordb_target(name: str, root=None, model=None, source="bundled") -> Target:
    try:
        post = posteriordb.load(name, root=root)
    except (ValueError, FileNotFoundError) as err:
        raise BenchInputError(str(err)) from err
    model = MODELS[name] if model is None else model
    where = f"posteriordb {'(bundled)' if root is None else root} posterior {name}"
    data = model_data(model, post.data)
    if post.reference is not None:
        ref = {k: v.reshape(-1) for k, v in post.reference.items()}
        check_reference(ref, where)
        n = len(next(iter(ref.values())))
        return Target(name, model, data, f"posteriordb {name} ({n} reference draws)", _reference=ref,
                      kind="posteriordb", source=source)
    if post.summary:
        return Target(name, model, data, f"posteriordb {name} (summaries only: mean and sd errors)",
                      kind="posteriordb", source=source, _summary=post.summary)
    raise BenchInputError(f"{where}: no reference draws or summaries")


def posteriordb_names() -> list[str]:
    """The bundled posteriordb posteriors with a registered NumPyro model (the posteriordb targets)."""
    return [n for n in posteriordb.names() if n in MODELS]


def builtin_names() -> list[str]:
    """Names of the built-in targets (analytic, then bundled posteriordb)."""
    return list(ANALYTIC) + posteriordb_names()


def describe(name: str) -> str:
    """A one-line description of built-in target ``name`` without building it (reads metadata only)."""
    if name in ANALYTIC_DESCRIPTIONS:
        return ANALYTIC_DESCRIPTIONS[name]
    meta = posteriordb.posterior_meta(name)
    dim = sum(int(v) for v in meta.get("dimensions", {}).values())
    kind = posteriordb.reference_kind(meta)
    ref = "reference draws" if kind == "draws" else "summaries only (mean/sd errors)"
    return f"posteriordb, {dim} parameters, {ref}"


def get_target(name: str) -> Target:
    """A built-in target by name; unknown names raise :class:`BenchInputError`."""
    if name in ANALYTIC:
        return ANALYTIC[name]()
    if name in MODELS and name in posteriordb.names():
        return _posteriordb_target(name)
    raise BenchInputError(f"unknown target {name!r}; valid targets: {builtin_names()}")


# --------------------------------------------------------------- user input


def load_model_file(spec: str) -> Callable:
    """Import ``path/to/file.py:fn`` and return ``fn``; errors become BenchInputError."""
    if ":" not in spec:
        raise BenchInputError(f"--model must look like path/to/file.py:function, got {spec!r}")
    path_str, fn_name = spec.rsplit(":", 1)
    path = Path(path_str)
    if not path.is_file():
        raise BenchInputError(f"model file {path} does not exist")
    module_name = f"_probkit_user_model_{abs(hash(str(path.resolve())))}"
    try:
        spec_ = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec_)
        sys.modules[module_name] = module
        spec_.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - report any import failure to the user
        raise BenchInputError(f"model file {path} failed to import: {type(err).__name__}: {err}") from err
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise BenchInputError(f"model file {path} has no function {fn_name!r}")
    return fn


def model_data(model: Callable, data: dict) -> dict:
    """Keep the data fields ``model`` takes by name (all of them if it has ``**kwargs``); lists → arrays."""
    data = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in data.items()}
    params = inspect.signature(model).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return data
    return {k: v for k, v in data.items() if k in params}


def _read_json_file(path: Path, what: str) -> object:
    try:
        return posteriordb._read_json(path, what=what)
    except (ValueError, FileNotFoundError) as err:
        raise BenchInputError(str(err)) from err


def check_reference_names(target: Target, source: str) -> None:
    """Every reference name must match a sample or deterministic site of the model."""
    try:
        values = model_sites(target.model, target.data)
    except Exception as err:  # noqa: BLE001
        raise BenchInputError(f"model {target.name!r} failed on its data: {type(err).__name__}: {err}") from err
    sites = flatten_sites(jax.device_get(values), sample_ndim=0)
    try:
        match_reference(dict.fromkeys(target.reference_names()), sites, source=source)
    except ValueError as err:
        raise BenchInputError(str(err)) from err


def user_target(model_spec: str, data_path: str | None, reference_path: str) -> Target:
    """A target from ``--model file.py:fn --data data.json --reference draws.json``."""
    model = load_model_file(model_spec)
    data = {}
    if data_path is not None:
        raw = _read_json_file(Path(data_path), "data")
        if not isinstance(raw, dict):
            raise BenchInputError(f"data file {data_path} must hold a JSON object of named fields")
        data = model_data(model, raw)
    try:
        ref = posteriordb.load_draws(reference_path)
    except (ValueError, FileNotFoundError) as err:
        raise BenchInputError(f"--reference: {err}") from err
    name = Path(model_spec.rsplit(":", 1)[0]).stem + ":" + model_spec.rsplit(":", 1)[1]
    target = Target(
        name, model, data, f"user model {model_spec}",
        _reference={k: v.reshape(-1) for k, v in ref.items()}, kind="user", source=str(reference_path),
    )
    check_reference_names(target, source=f"reference file {reference_path}")
    return target


def posteriordb_clone_target(root: str, posterior: str, model_spec: str | None = None) -> Target:
    """A posterior read from a posteriordb clone (full reference draws), with the bundled or the user's model.

    Without ``model_spec`` the bundled NumPyro model registered for ``posterior`` is used.
    """
    if model_spec is None:
        if posterior not in MODELS:
            raise BenchInputError(
                f"--posterior {posterior}: no bundled NumPyro model; pass --model file.py:function "
                f"(bundled models: {sorted(MODELS)})"
            )
        model = MODELS[posterior]
    else:
        model = load_model_file(model_spec)
    try:
        target = _posteriordb_target(posterior, root=root, model=model, source=str(root))
    except BenchInputError as err:
        raise BenchInputError(f"--posteriordb {root}: {err}") from err
    check_reference_names(target, source=f"posteriordb {root} posterior {posterior}")
    return target


def reference_matrix(target: Target) -> tuple[list[str], np.ndarray]:
    """``(names, array (n, d))`` of the reference draws."""
    ref = target.reference()
    names = list(ref)
    return names, np.stack([np.asarray(ref[n], dtype=float) for n in names], axis=1)


__all__ = [
    "ANALYTIC",
    "BenchInputError",
    "Target",
    "builtin_names",
    "check_reference",
    "describe",
    "get_target",
    "load_model_file",
    "model_data",
    "posteriordb_clone_target",
    "posteriordb_names",
    "reference_matrix",
    "user_target",
]

