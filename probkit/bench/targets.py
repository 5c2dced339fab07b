"""Benchmark targets: a NumPyro model, its data and reference draws.

Three kinds:

- analytic targets with exact i.i.d. draws (Gaussians, banana, Neal's funnel,
  a Gaussian mixture), written as NumPyro models;
- the bundled posteriordb posteriors (reference draws from posteriordb);
- a user's own model file with data and reference draws (posteriordb format),
  or a posterior read from a posteriordb clone.

Reference draws are a dict ``{stan_name: array (n,)}`` matched by name to the
model's sample and deterministic sites (``theta[1]`` ↔ site ``theta``).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
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
from .names import flatten_sites, match_reference


class BenchInputError(ValueError):
    """Bad benchmark input (unknown name, bad file); the CLI exits with status 2."""


@dataclass
class Target:
    """A model with data and a way to get reference draws."""

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

    def reference(self) -> dict[str, np.ndarray]:
        """Reference draws ``{name: (n,)}`` (exact draws for analytic targets)."""
        if self._reference is None:
            assert self._exact is not None
            self._reference = {k: np.asarray(v) for k, v in self._exact(jax.random.PRNGKey(20231), self.n_reference).items()}
        return self._reference

    def exact_draws(self, key, n: int) -> dict[str, np.ndarray]:
        """Fresh exact draws (analytic targets only)."""
        if self._exact is None:
            raise ValueError(f"target {self.name!r} has no exact sampler")
        return {k: np.asarray(v) for k, v in self._exact(key, n).items()}


# ----------------------------------------------------------------- analytic


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
        return Target("banana", model, {}, "2-D banana (b = 0.1), exact draws", _exact=exact)

    def funnel(d):
        def make():
            model, exact = funnel_model(d)
            return Target(f"funnel{d}", model, {}, f"Neal's funnel, d = {d}, exact draws", _exact=exact)

        return make

    def mixture():
        model, exact = mixture_model()
        return Target("mixture", model, {}, "2-D two-component Gaussian mixture, exact draws", _exact=exact)

    return {
        "gaussian": lambda: _gaussian_target("gaussian", np.ones(10), "standard Gaussian, d = 10"),
        "ill_gaussian": lambda: _gaussian_target(
            "ill_gaussian",
            np.logspace(-1, 1, 10),
            "diagonal Gaussian, d = 10, scales 0.1..10 (condition number 1e4)",
        ),
        "banana": banana,
        "funnel10": funnel(10),
        "funnel50": funnel(50),
        "mixture": mixture,
    }


ANALYTIC = _analytic_targets()


def _posteriordb_target(name: str, root=None, model=None, source="bundled") -> Target:
    post = posteriordb.load(name, root=root)
    model = MODELS[name] if model is None else model
    ref = {k: v.reshape(-1) for k, v in (post.reference or {}).items()}
    if not ref:
        raise BenchInputError(f"posterior {name!r} has no reference draws")
    data = model_data(model, post.data)
    return Target(name, model, data, f"posteriordb {name}", _reference=ref, kind="posteriordb", source=source)


def builtin_names() -> list[str]:
    """Names of the built-in targets (analytic, then bundled posteriordb)."""
    return list(ANALYTIC) + posteriordb.names()


def get_target(name: str) -> Target:
    """A built-in target by name; unknown names raise :class:`BenchInputError`."""
    if name in ANALYTIC:
        return ANALYTIC[name]()
    if name in MODELS:
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
    from ..infer import model_logdensity

    try:
        _, z0, postprocess = model_logdensity(target.model, **target.data)
    except Exception as err:  # noqa: BLE001
        raise BenchInputError(f"model {target.name!r} failed on its data: {type(err).__name__}: {err}") from err
    sites = flatten_sites(jax.device_get(postprocess(z0)), sample_ndim=0)
    try:
        match_reference(target.reference(), sites, source=source)
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
        raise BenchInputError(str(err)) from err
    name = Path(model_spec.rsplit(":", 1)[0]).stem + ":" + model_spec.rsplit(":", 1)[1]
    target = Target(
        name, model, data, f"user model {model_spec}",
        _reference={k: v.reshape(-1) for k, v in ref.items()}, kind="user", source=str(reference_path),
    )
    check_reference_names(target, source=f"reference file {reference_path}")
    return target


def posteriordb_clone_target(root: str, posterior: str, model_spec: str) -> Target:
    """A posterior read from a posteriordb clone, with the user's NumPyro model."""
    model = load_model_file(model_spec)
    try:
        target = _posteriordb_target(posterior, root=root, model=model, source=str(root))
    except (ValueError, FileNotFoundError) as err:
        raise BenchInputError(str(err)) from err
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
    "get_target",
    "load_model_file",
    "model_data",
    "posteriordb_clone_target",
    "reference_matrix",
    "user_target",
]

