#!/usr/bin/env python
r"""Verify probkit's NumPyro posteriordb models against Stan (exactly) and the reference draws (statistically).

**Exact check** (default). For each posterior the Stan program is compiled
with pystan 3 (``pip install -e ".[stan]"``; offline with the system g++,
cached in ``~/.cache/httpstan``) and, in float64, at ``--points`` points of
NumPyro's unconstrained space: half of them random reference draws mapped to
it (*bulk*; when every latent site is named in the reference draws), the rest
*random*, ``z = z₀ + s ε`` (``ε ~ N(0, I)``, ``z₀`` NumPyro's init point,
``s = --scale``). Each group is checked against its own log-density scale
(far random points have a huge ``|log p|``, which would hide an error in a
prior):

1. ``θ = postprocess(z)`` (NumPyro's constrained values and deterministics),
   ``u = transform_inits(θ)`` (Stan's unconstrained vector of the same point);
2. **same transforms** (``u`` is a permutation ``P`` of ``z`` at every point:
   real, log for a lower bound, logit-affine for bounds, ordered; NumPyro's
   and Stan's bijections agree coordinate-wise): the log densities on the
   unconstrained spaces must differ by a constant,
   ``d(z) = log p_NumPyro(z) − log p_Stan(u, adjust_transform=True)``, and
   ``∇_z log p_NumPyro = Pᵀ ∇_u log p_Stan``;
3. **different transforms** (e.g. ``positive_ordered``, where NumPyro uses
   ``exp ∘ ordered`` and Stan ``cumsum ∘ exp``): the Jacobian-free
   (constrained-scale) densities are compared, ``d(z) = log p_NumPyro(θ) −
   log p_Stan(u, adjust_transform=False)``, and the gradients by the chain rule
   through ``G = ∂u/∂z``: ``∇_z log p_NumPyro(θ(z)) = Gᵀ ∇_u log p_Stan(u)``,
   ``G`` by central finite differences of ``z ↦ transform_inits(postprocess(z))``.
   The unconstrained densities are also compared through the change of
   variables, ``log p_NumPyro(z) − log p_Stan(u) − log|det G|`` (recorded as
   ``density_jacobian_rel_dev``).

Pass: ``max_i |d_i − median d| / max(1, median |log p|, |log p_i|) ≤ 1e-6``
(a far point with ``|log p_i| ~ 1e17`` carries a rounding error ~ ``eps |log p_i|``
in ``d_i``, so each point is also judged on its own scale) and, per point,
``max_k |∇_k − ∇ᵀ_k| / max(1, max_k |∇ᵀ_k|) ≤ 1e-6``; Stan's transformed
parameters (``write_array``) must equal the NumPyro deterministics of the
same name (relative 1e-8, recorded). Stan is called through httpstan's
compiled services module directly (no HTTP round trip).

**Statistical check** (``--nuts`` / ``--nuts-only``): NumPyro NUTS, 4 chains ×
1000 warm-up / 1000 draws, against posteriordb's reference draws (the full
ones from ``--root``, else the bundled thinned ones) or, for a summaries-only
posterior (``mcycle_gp-accel_gp``), the mean / sd summaries: pass when every
reference parameter has ``|mean − mean_ref| ≤ 0.1 sd_ref`` and
``|sd / sd_ref − 1| ≤ 0.1``.

One JSON record per posterior, written atomically to
``benchmarks/results/posteriordb/<name>.json`` (a ``--nuts-only`` run keeps
the record's exact check and vice versa); ``--table`` writes
``benchmarks/results/posteriordb.md`` from all records there.
``--record`` writes Stan's log density and gradient at ``--record-points``
points to ``tests/bench/stan_points/<name>.json`` for the default test
(``tests/bench/test_stan_verify.py``), which needs no Stan.
``--note TEXT`` stores an explanation (exceptions, known posteriordb issues)
in the record; it is kept by later runs and shown in the table.

Exit status 1 when any check fails, 2 for bad arguments.

Usage::

    nice -n 10 python scripts/verify_posteriordb.py                       # all registered models
    nice -n 10 python scripts/verify_posteriordb.py arK-arK --nuts --record
    python scripts/verify_posteriordb.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from probkit.bench import posteriordb as pdb  # noqa: E402
from probkit.bench.models import MODELS  # noqa: E402
from probkit.bench.metrics import gradient_error, offset_deviation  # noqa: E402
from probkit.bench.names import flatten_sites  # noqa: E402
from probkit.bench.targets import model_data  # noqa: E402

SHARED_ROOT = Path("/work/shared/data/posteriordb/posterior_database")
RESULTS = REPO / "benchmarks" / "results" / "posteriordb"
TABLE = REPO / "benchmarks" / "results" / "posteriordb.md"
POINTS_DIR = REPO / "tests" / "bench" / "stan_points"
DENSITY_TOL = 1e-6
GRAD_TOL = 1e-6
TPARAM_TOL = 1e-8
MEAN_TOL = 0.1
SD_TOL = 0.1
# ``--tight-ode``: the Stan programs whose ODE solver tolerances are looser than the check
# (posteriordb's lotka_volterra: rk45 at rtol 1e-5, atol 1e-3), with the tolerances set to
# probkit's (rtol = atol = 1e-10) so that the comparison tests the model, not Stan's solver error
# so that the comparison tests the model, not Stan's solver error. Points where the solution
# (site ``z``) falls below 1e4 × the absolute tolerance are left out: there log z, which the
# lognormal likelihood reads, is resolved by neither solver to better than ~1e-4 (found at
# far random points, z down to 1e-62, never in the posterior bulk, where z > 1).
TIGHT_ODE = {
    "hudson_lynx_hare-lotka_volterra": ("1e-5, 1e-3, 5e2", "1e-10, 1e-10, 1e8", "z", 1e-6),
}


# ------------------------------------------------------------------ helpers


def write_json_atomic(path: Path, obj) -> None:
    """Write ``obj`` to ``path`` through a temporary file and ``os.replace`` (never a torn file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True, allow_nan=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_record(name: str, out: Path = RESULTS) -> dict:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def versions() -> dict:
    import jax as _jax
    import numpyro

    out = {"jax": _jax.__version__, "numpyro": numpyro.__version__}
    try:
        import httpstan
        import stan

        out["pystan"] = stan.__version__
        out["httpstan"] = httpstan.__version__
        ver = Path(httpstan.__file__).parent / "include" / "stan" / "version.hpp"
        parts = {}
        for line in ver.read_text().splitlines():
            for key in ("STAN_MAJOR", "STAN_MINOR", "STAN_PATCH"):
                if line.startswith(f"#define {key} "):
                    parts[key] = line.split()[-1]
        out["stan"] = ".".join(parts.get(k, "?") for k in ("STAN_MAJOR", "STAN_MINOR", "STAN_PATCH"))
    except (ImportError, OSError):
        pass
    return out


def default_root() -> Path:
    return SHARED_ROOT if SHARED_ROOT.is_dir() else pdb.BUNDLED_ROOT


def raw_data(name: str, root) -> dict:
    """The posterior's data exactly as posteriordb's JSON has it (lists, ints), for Stan."""
    db = pdb._db(root)
    meta = pdb.posterior_meta(name, root)
    return pdb._read_json(db / "data" / "data" / f"{meta['data_name']}.json", what="data")


# ------------------------------------------------------------------ Stan side


class StanModel:
    """A compiled Stan program with its data: log density, gradient, transforms (httpstan services)."""

    def __init__(self, code: str, data: dict):
        import httpstan.models
        import stan

        t0 = time.time()
        try:
            posterior = stan.build(code, data=data, random_seed=1)
        except Exception as err:  # noqa: BLE001 - stanc/compile hiccups: retry once
            print(f"  stan.build failed ({type(err).__name__}: {err}); retrying once", file=sys.stderr)
            posterior = stan.build(code, data=data, random_seed=1)
        self.build_s = time.time() - t0
        self.posterior = posterior
        self.data = posterior.data
        self.services = httpstan.models.import_services_extension_module(posterior.model_name)
        self.param_names = list(posterior.param_names)
        self.dims = [list(d) for d in posterior.dims]
        self.dim_of = dict(zip(self.param_names, self.dims))
        self.parameters: list[str] | None = None  # the parameters block, known after the first unconstrain
        self.tparams: list[str] = []

    def _size(self, name: str) -> int:
        dim = self.dim_of[name]
        return int(np.prod(dim)) if dim else 1

    def _context(self, values: dict, names) -> dict:
        ctx = {}
        for name in names:
            if name not in values:
                raise KeyError(
                    f"Stan parameter {name!r} has no NumPyro sample or deterministic site of that name "
                    f"(NumPyro sites: {sorted(values)})"
                )
            v = np.asarray(values[name], dtype=float)
            dim = self.dim_of[name]
            if v.size != self._size(name):
                raise ValueError(f"{name!r}: NumPyro shape {v.shape}, Stan dims {dim}")
            ctx[name] = v.reshape(dim).tolist() if dim else float(v.reshape(()))
        return ctx

    def unconstrain(self, values: dict) -> np.ndarray:
        """Stan's unconstrained vector of the point ``values`` (NumPyro's constrained sites by Stan name)."""
        if self.parameters is None:
            # transform_inits reads the parameters block only; give it every Stan name NumPyro has
            # (with the right size), then split param_names by write_array's lengths
            names = [n for n in self.param_names
                     if n in values and np.asarray(values[n]).size == self._size(n)]
            try:
                u = self.services.transform_inits(self.data, self._context(values, names))
            except Exception as err:  # noqa: BLE001
                raise KeyError(f"Stan's transform_inits failed ({err}); NumPyro sites: {sorted(values)}") from err
            n_par = len(self.services.write_array(self.data, u, False, False))
            n_tp = len(self.services.write_array(self.data, u, True, False)) - n_par
            self.parameters, count = [], 0
            for name in self.param_names:
                if count < n_par:
                    self.parameters.append(name)
                elif count < n_par + n_tp:
                    self.tparams.append(name)
                count += self._size(name)
        ctx = self._context(values, self.parameters)
        return np.asarray(self.services.transform_inits(self.data, ctx), dtype=float)

    def log_prob(self, u, adjust: bool) -> float:
        return float(self.services.log_prob(self.data, [float(x) for x in u], adjust))

    def grad(self, u, adjust: bool) -> np.ndarray:
        return np.asarray(self.services.log_prob_grad(self.data, [float(x) for x in u], adjust), dtype=float)

    def tparam_values(self, u) -> dict[str, np.ndarray]:
        flat = np.asarray(self.services.write_array(self.data, [float(x) for x in u], True, False), dtype=float)
        out, i = {}, 0
        for name in self.parameters + self.tparams:
            dim = self.dim_of[name]
            size = self._size(name)
            # write_array is column-major (Stan's order); reshape accordingly
            block = flat[i : i + size]
            out[name] = block.reshape(dim, order="F") if dim else block[0]
            i += size
        return {k: out[k] for k in self.tparams}


# ------------------------------------------------------------------ NumPyro side


class NumPyroModel:
    """NumPyro's log density on its unconstrained space, its constrained-scale density and postprocess (float64)."""

    def __init__(self, model, data: dict):
        from numpyro.infer.util import constrain_fn, log_density

        from probkit.infer import model_logdensity

        self.model = model
        self.data = model_data(self.model, data)
        logdensity, init, postprocess = model_logdensity(self.model, **self.data)
        self.init = np.asarray(init, dtype=float)
        self.dim = int(logdensity.dim)
        self.unravel = unravel = logdensity.unravel
        model, kw = self.model, self.data

        def constrained_logp(z):
            params = constrain_fn(model, (), kw, unravel(z))
            return log_density(model, (), kw, params)[0]

        self.value_and_grad = jax.jit(jax.value_and_grad(logdensity))
        self.constrained_value_and_grad = jax.jit(jax.value_and_grad(constrained_logp))
        self.postprocess = jax.jit(postprocess)


def bulk_points(npm: "NumPyroModel", ref: dict | None, n: int, rng) -> tuple[np.ndarray, str]:
    """``n`` reference draws mapped to NumPyro's unconstrained space (points in the posterior bulk).

    Every latent site must be in the reference by name (``beta[2]``); otherwise
    (e.g. a reparameterised site) no bulk points, and the returned note says why.
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import unconstrain_fn

    if n == 0:
        return np.zeros((0, npm.dim)), "none requested"
    if ref is None:
        return np.zeros((0, npm.dim)), "none: no reference draws (summaries only)"
    proto = {k: np.asarray(v) for k, v in jax.device_get(npm.postprocess(jnp.asarray(npm.init))).items()}
    sites = list(npm.unravel(jnp.asarray(npm.init)))
    names_of = {s_: list(flatten_sites({s_: proto[s_]}, sample_ndim=0)) for s_ in sites}
    missing = [s_ for s_, ns in names_of.items() if any(k not in ref for k in ns)]
    if missing:
        return np.zeros((0, npm.dim)), f"none: latent sites {missing} not in the reference draws"
    flat_ref = {k: v.reshape(-1) for k, v in ref.items()}
    idx = rng.choice(next(iter(flat_ref.values())).size, size=n, replace=False)
    out = []
    for i in idx:
        params = {s_: np.array([flat_ref[k][i] for k in ns]).reshape(proto[s_].shape) for s_, ns in names_of.items()}
        u = unconstrain_fn(npm.model, (), npm.data, params)
        out.append(np.asarray(ravel_pytree(u)[0]))
    return np.stack(out), f"{n} reference draws"


def stan_bulk_points(stan_model: "StanModel", ref: dict, perm: np.ndarray, n: int, rng) -> tuple[np.ndarray, str]:
    """``n`` reference draws mapped by Stan's ``transform_inits`` and the permutation ``z[perm] = u``.

    For models whose NumPyro sites are not all named in the reference (a
    reparameterised site) but whose unconstrained coordinates equal Stan's.
    """
    import itertools

    if stan_model.parameters is None:
        return np.zeros((0, len(perm))), "none: Stan parameters unknown"
    names_of = {}
    for p in stan_model.parameters:
        dim = stan_model.dim_of[p]
        names_of[p] = [p] if not dim else [
            f"{p}[{','.join(str(i + 1) for i in idx)}]" for idx in itertools.product(*(range(d) for d in dim))]
    missing = [k for ns in names_of.values() for k in ns if k not in ref]
    if missing:
        return np.zeros((0, len(perm))), f"none: Stan parameters {missing[:5]} not in the reference draws"
    flat_ref = {k: v.reshape(-1) for k, v in ref.items()}
    out = []
    for i in rng.choice(next(iter(flat_ref.values())).size, size=n, replace=False):
        values = {p: np.array([flat_ref[k][i] for k in ns]).reshape(stan_model.dim_of[p] or ())
                  for p, ns in names_of.items()}
        u = stan_model.unconstrain(values)
        z = np.empty_like(u)
        z[perm] = u
        out.append(z)
    return np.stack(out), f"{n} reference draws mapped through Stan's transform"


def _permutation(zs: np.ndarray, us: np.ndarray) -> np.ndarray | None:
    """``perm`` with ``u[i] == z[perm[i]]`` at every point (same transforms), else ``None``."""
    if zs.shape != us.shape:
        return None
    perm = []
    for i in range(us.shape[1]):
        ok = np.all(np.abs(us[:, i : i + 1] - zs) <= 1e-7 * (1 + np.abs(zs)), axis=0)
        js = np.flatnonzero(ok)
        if len(js) != 1:
            return None
        perm.append(int(js[0]))
    return np.asarray(perm) if len(set(perm)) == len(perm) else None


def _fd_jacobian(u_of, z: np.ndarray) -> np.ndarray:
    cols = []
    for j in range(z.shape[0]):
        h = 1e-5 * (1.0 + abs(z[j]))
        zp, zm = z.copy(), z.copy()
        zp[j] += h
        zm[j] -= h
        cols.append((u_of(zp) - u_of(zm)) / (2 * h))
    return np.stack(cols, axis=1)


def tighten_ode(name: str, code: str) -> str:
    """``code`` with the ODE tolerances of :data:`TIGHT_ODE` (``name`` must be listed there)."""
    if name not in TIGHT_ODE:
        raise ValueError(f"--tight-ode: {name} has no ODE tolerances to tighten (known: {sorted(TIGHT_ODE)})")
    old, new = TIGHT_ODE[name][:2]
    if code.count(old) != 1:
        raise ValueError(f"--tight-ode: the tolerances {old!r} occur {code.count(old)} times in {name}'s program")
    return code.replace(old, new)


def exact_check(name: str, root, n_points: int, scale: float, seed: int, record_points: int = 0,
                tight_ode: bool = False):
    """The exact comparison of posterior ``name``; returns ``(result dict, recorded points or None)``."""
    t0 = time.time()
    post = pdb.load(name, root=root)
    if post.stan_code is None:
        raise FileNotFoundError(f"{name}: no Stan program in {root}")
    npm = NumPyroModel(MODELS[name], post.data)
    code, resolved = post.stan_code, None
    if tight_ode:
        code = tighten_ode(name, post.stan_code)
        _, _, site, floor = TIGHT_ODE[name]

        def resolved(values):
            low = float(np.min(np.abs(values[site])))
            return None if low >= floor else f"ODE solution {site} reaches {low:.1e} < {floor:g} (1e4 x atol)"

    stan_model = StanModel(code, raw_data(name, root))
    result, points = compare(name, npm, stan_model, post.reference, n_points, scale, seed, record_points, t0,
                             resolved)
    if tight_ode:
        result["stan_program"] = "ODE tolerances {!r} replaced by {!r}".format(*TIGHT_ODE[name][:2])
    return result, points


def compare(name: str, npm: "NumPyroModel", stan_model: StanModel, ref: dict | None, n_points: int, scale: float,
            seed: int, record_points: int = 0, t0: float | None = None, resolved=None):
    """Compare ``npm`` with ``stan_model`` at ``n_points`` points (bulk ones from the reference draws ``ref``).

    ``resolved(constrained values)``, if given, returns why a point cannot be compared (or ``None``).
    """
    t0 = time.time() if t0 is None else t0
    t_build = time.time()

    def constrained(z):
        return {k: np.asarray(v) for k, v in jax.device_get(npm.postprocess(jnp.asarray(z))).items()}

    def u_of(z):
        return stan_model.unconstrain(constrained(z))

    rng = np.random.default_rng(seed)
    skipped: list[str] = []

    def evaluable(zs_, label):
        us_, keep_ = [], []
        for i, z in enumerate(zs_):
            try:
                why = resolved(constrained(z)) if resolved is not None else None
                if why:
                    skipped.append(f"{label} point {i}: {why}")
                    continue
                u = u_of(z)
                lp = stan_model.log_prob(u, True)
                lp_np = float(npm.value_and_grad(jnp.asarray(z))[0])
                if np.isfinite(lp) and np.isfinite(lp_np):
                    us_.append(u)
                    keep_.append(i)
                    continue
                skipped.append(f"{label} point {i}: non-finite log density (Stan {lp}, NumPyro {lp_np})")
            except (RuntimeError, ValueError) as err:
                skipped.append(f"{label} point {i}: {type(err).__name__}: {str(err)[:200]}")
        return zs_[keep_], np.asarray(us_).reshape(len(keep_), -1)

    n_bulk = n_points // 2 if ref is not None else 0
    rand = npm.init[None, :] + scale * rng.standard_normal((n_points - n_bulk, npm.dim))
    rand[0] = npm.init
    rand, rand_u = evaluable(rand, "random")
    if not len(rand):
        raise RuntimeError(f"{name}: no random point evaluable; {skipped[:3]}")
    perm = _permutation(rand, rand_u)
    bulk, bulk_note = bulk_points(npm, ref, n_bulk, rng)
    if not len(bulk) and n_bulk and perm is not None:
        bulk, note2 = stan_bulk_points(stan_model, ref, perm, n_bulk, rng)
        bulk_note = f"{note2} ({bulk_note.removeprefix('none: ')})"
    bulk, bulk_u = evaluable(bulk, "bulk") if len(bulk) else (np.zeros((0, npm.dim)), np.zeros((0, len(rand_u[0]))))
    if n_bulk and not len(bulk):  # no bulk points: all of them random
        extra, extra_u = evaluable(npm.init[None, :] + scale * rng.standard_normal((n_bulk, npm.dim)), "random")
        rand, rand_u = np.concatenate([rand, extra]), np.concatenate([rand_u, extra_u])
        perm = _permutation(rand, rand_u)
    zs, us = np.concatenate([bulk, rand]), np.concatenate([bulk_u, rand_u])
    groups = np.array(["bulk"] * len(bulk) + ["random"] * len(rand))
    if len(zs) < min(10, n_points):
        raise RuntimeError(f"{name}: only {len(zs)} of {n_points} points evaluable; {skipped[:3]}")
    if perm is not None and _permutation(zs, us) is None:
        perm = None  # the bulk points disagree: compare as different transforms
    mode = "same_transforms" if perm is not None else "different_transforms"

    diffs, logps, gerrs, jac_diffs, tp_errs, recorded = [], [], [], [], [], []
    for k, (z, u) in enumerate(zip(zs, us)):
        zj = jnp.asarray(z)
        if perm is not None:
            lp_np, g_np = npm.value_and_grad(zj)
            lp_st = stan_model.log_prob(u, True)
            g_st = stan_model.grad(u, True)
            g_ref = np.empty_like(g_st)
            g_ref[perm] = g_st  # ∇_z = Pᵀ ∇_u
        else:
            lp_np, g_np = npm.constrained_value_and_grad(zj)
            lp_st = stan_model.log_prob(u, False)
            G = _fd_jacobian(u_of, z)
            g_ref = G.T @ stan_model.grad(u, False)
            lp_adj = float(npm.value_and_grad(zj)[0])
            jac_diffs.append(lp_adj - stan_model.log_prob(u, True) - np.linalg.slogdet(G)[1])
        lp_np, g_np = float(lp_np), np.asarray(g_np)
        diffs.append(lp_np - lp_st)
        logps.append(lp_np)
        gerrs.append(gradient_error(g_np, g_ref))
        values = constrained(z)
        for tp, val in stan_model.tparam_values(u).items():
            if tp in values:
                a = np.asarray(values[tp], dtype=float).reshape(np.shape(val))
                tp_errs.append(float(np.max(np.abs(a - val)) / max(1.0, float(np.max(np.abs(val))))))
        if record_points and (k < record_points - 1 or k == len(zs) - 1):
            recorded.append({"z": z.tolist(), "logp_stan": lp_st, "grad_stan": g_ref.tolist(), "group": str(groups[k])})
    diffs, logps, gerrs = np.asarray(diffs), np.asarray(logps), np.asarray(gerrs)
    # each group relative to its own log density scale (far random points have huge |log p|)
    by_group = {g: {"points": int(np.sum(groups == g)),
                    "density_rel_dev": offset_deviation(diffs[groups == g], logps[groups == g]),
                    "grad_rel_err": float(gerrs[groups == g].max()),
                    "median_abs_logp": float(np.median(np.abs(logps[groups == g])))}
                for g in ("bulk", "random") if np.any(groups == g)}
    rel = max(v["density_rel_dev"] for v in by_group.values())
    gmax = float(gerrs.max())
    missing_tp = [t for t in stan_model.tparams if t not in constrained(zs[0])]
    result = {
        "mode": mode,
        "points": int(len(zs)),
        "points_skipped": skipped,
        "scale": scale,
        "seed": seed,
        "dim": npm.dim,
        "density_rel_dev": rel,
        "groups": by_group,
        "bulk_points": bulk_note,
        "offset_median": float(np.median(diffs)),
        "grad_rel_err": gmax,
        "tparams_rel_err": float(max(tp_errs)) if tp_errs else None,
        "tparams_missing": missing_tp,
        "pass": bool(rel <= DENSITY_TOL and gmax <= GRAD_TOL and (not tp_errs or max(tp_errs) <= TPARAM_TOL)),
        "build_s": round(stan_model.build_s, 2),
        "check_s": round(time.time() - t_build, 2),
        "total_s": round(time.time() - t0, 2),
    }
    if jac_diffs:
        result["density_jacobian_rel_dev"] = offset_deviation(np.asarray(jac_diffs), logps)
    points = None
    if record_points:
        points = {
            "posterior": name,
            "mode": mode,
            "density": "unconstrained" if perm is not None else "constrained",
            "dim": npm.dim,
            "tolerance": {"density": DENSITY_TOL, "grad": GRAD_TOL},
            "versions": versions(),
            "points": recorded,
        }
    return result, points


# ------------------------------------------------------------------ NUTS


def reference_moments(name: str, root) -> tuple[dict[str, tuple[float, float]], str, int | None]:
    """``({param: (mean, sd)}, source, number of draws)`` from the reference draws (``root``'s full ones if
    present) or the summaries (number ``None``: posteriordb computed them from many draws)."""
    for r, label in ((root, str(root)), (None, "bundled")):
        try:
            post = pdb.load(name, root=r)
        except (ValueError, FileNotFoundError):
            continue
        if post.reference is not None:
            n = next(iter(post.reference.values())).size
            return ({k: (float(v.mean()), float(v.std())) for k, v in post.reference.items()},
                    f"reference draws ({label}, {n})", int(n))
        if post.summary:
            return dict(post.summary), f"mean/sd summaries ({label})", None
    raise FileNotFoundError(f"{name}: no reference draws or summaries")


def nuts_check(name: str, root, *, chains: int, warmup: int, draws: int, seed: int, chain_method: str) -> dict:
    from numpyro.diagnostics import effective_sample_size, summary
    from numpyro.infer import MCMC, NUTS

    t0 = time.time()
    post = pdb.load(name, root=root, draws=False)
    model = MODELS[name]
    data = model_data(model, post.data)
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method=chain_method, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), **data, extra_fields=("diverging",))
    grouped = jax.device_get(mcmc.get_samples(group_by_chain=True))
    n_div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    flat = flatten_sites({k: np.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in grouped.items()})
    by_chain = flatten_sites({k: np.asarray(v) for k, v in grouped.items()}, sample_ndim=2)
    moments, source, n_ref = reference_moments(name, root)
    inv_ref = 0.0 if n_ref is None else 1.0 / n_ref
    missing = [p for p in moments if p not in flat]
    per_param = {}
    for p, (m_ref, sd_ref) in moments.items():
        if p not in flat:
            continue
        x = np.asarray(flat[p], dtype=float)
        stats = next(iter(summary(np.asarray(by_chain[p]), group_by_chain=True).values()))
        entry = {"mean": float(x.mean()), "sd": float(x.std()), "ref_mean": m_ref, "ref_sd": sd_ref,
                 "n_eff": float(stats["n_eff"]), "r_hat": float(stats["r_hat"])}
        if np.isfinite(sd_ref) and sd_ref > 0:
            entry["mean_err_sd"] = abs(entry["mean"] - m_ref) / sd_ref
            entry["sd_ratio"] = entry["sd"] / sd_ref
            # Monte Carlo standard errors (NUTS's ESS, the reference draws taken as independent):
            # mean error in reference sd, and the sd ratio by the delta method, var(s)/σ² ≈ (κ − 1)/(4n)
            kurt = float(np.mean((x - x.mean()) ** 4) / max(x.var() ** 2, 1e-300))
            chains_x = np.asarray(by_chain[p], dtype=float)
            entry["n_eff_sq"] = float(effective_sample_size((chains_x - chains_x.mean()) ** 2))  # ESS of the variance
            entry["kurtosis"] = kurt
            entry["mean_err_mcse"] = float(np.sqrt(1.0 / max(entry["n_eff"], 1.0) + inv_ref) * entry["sd"] / sd_ref)
            entry["sd_ratio_mcse"] = float(entry["sd_ratio"] * np.sqrt(
                max(kurt - 1.0, 0.0) / 4.0 * (1.0 / max(entry["n_eff_sq"], 1.0) + inv_ref)))
        per_param[p] = entry
    scored = {p: e for p, e in per_param.items() if "mean_err_sd" in e}
    worst_mean = max(scored, key=lambda p: scored[p]["mean_err_sd"]) if scored else None
    worst_sd = max(scored, key=lambda p: abs(scored[p]["sd_ratio"] - 1)) if scored else None
    max_mean = scored[worst_mean]["mean_err_sd"] if scored else float("nan")
    max_sd = abs(scored[worst_sd]["sd_ratio"] - 1) if scored else float("nan")
    # worst deviation in units of its Monte Carlo standard error (≤ 3: consistent with a correct sampler)
    max_z = max((max(e["mean_err_sd"] / e["mean_err_mcse"], abs(e["sd_ratio"] - 1) / max(e["sd_ratio_mcse"], 1e-300))
                 for e in scored.values()), default=float("nan"))
    return {
        "chains": chains, "warmup": warmup, "draws": draws, "seed": seed, "chain_method": chain_method,
        "reference": source,
        "params_compared": len(scored),
        "params_without_sd": sorted(set(per_param) - set(scored)),
        "params_missing": missing,
        "max_mean_err_sd": max_mean, "worst_mean_param": worst_mean,
        "max_sd_ratio_dev": max_sd, "worst_sd_param": worst_sd,
        "max_dev_in_mcse": float(max_z),
        "min_n_eff": min(e["n_eff"] for e in per_param.values()) if per_param else None,
        "max_r_hat": max(e["r_hat"] for e in per_param.values()) if per_param else None,
        "divergences": n_div,
        "pass": bool(scored and not missing and max_mean <= MEAN_TOL and max_sd <= SD_TOL),
        "time_s": round(time.time() - t0, 2),
        "per_param": per_param,
    }


# ------------------------------------------------------------------ table


def _fmt(x, spec=".1e"):
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def write_table(path: Path = TABLE, results: Path = RESULTS) -> str:
    rows = []
    for f in sorted(results.glob("*.json")):
        rec = json.loads(f.read_text())
        ex, nu = rec.get("exact") or {}, rec.get("nuts") or {}
        if ex.get("error"):
            exact_cell = "error"
        elif ex:
            exact_cell = ("pass" if ex.get("pass") else "**FAIL**")
            if ex.get("stan_program"):
                exact_cell += " (Stan's ODE tolerances tightened)"
        else:
            exact_cell = "not run"
        if nu.get("error"):
            nuts_cell = "error"
        elif nu:
            nuts_cell = "pass" if nu.get("pass") else "**FAIL**"
            if not nu.get("pass") and nu.get("max_dev_in_mcse", np.inf) <= 3:
                nuts_cell = "fail, within 3 MC s.e."
        else:
            nuts_cell = "not run"
        mode = {"same_transforms": "same", "different_transforms": "constrained"}.get(ex.get("mode"), "–")
        worst = ""
        if nu.get("worst_mean_param"):
            worst = f"{nu['worst_mean_param']} / {nu.get('worst_sd_param')}"
        notes = [rec.get("note") or ""]
        for part, r in (("exact", ex), ("NUTS", nu)):
            if r.get("error"):
                notes.append(f"{part} error: {r['error'][:160]}")
        for p, e in (nu.get("per_param") or {}).items():
            if "sd_ratio" in e and (abs(e["sd_ratio"] - 1) > SD_TOL or e["mean_err_sd"] > MEAN_TOL):
                notes.append(
                    f"{p}: mean err {e['mean_err_sd']:.3f} ± {e.get('mean_err_mcse', float('nan')):.3f} sd, "
                    f"sd ratio {e['sd_ratio']:.3f} ± {e.get('sd_ratio_mcse', float('nan')):.3f} "
                    f"(MC s.e.; kurtosis {e.get('kurtosis', float('nan')):.1f})")
        if nu.get("params_missing"):
            notes.append(f"reference names without a site: {nu['params_missing'][:5]}")
        note = "; ".join(n for n in notes if n).replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| {rec['posterior']} | {exact_cell} | {mode} | {_fmt(ex.get('density_rel_dev'))} | "
            f"{_fmt(ex.get('grad_rel_err'))} | {ex.get('dim', '–')} | {nuts_cell} | "
            f"{_fmt(nu.get('max_mean_err_sd'), '.3f')} | {_fmt(nu.get('max_sd_ratio_dev'), '.3f')} | "
            f"{worst or '–'} | {_fmt(nu.get('min_n_eff'), '.0f')} | {nu.get('divergences', '–')} | {note} |"
        )
    lines = [
        "# posteriordb models: exact check against Stan, NUTS against the reference",
        "",
        "Written by `python scripts/verify_posteriordb.py --table` from the records in",
        "`benchmarks/results/posteriordb/` (see the script's docstring for the method).",
        "",
        f"- exact: NumPyro log density minus Stan's constant to {DENSITY_TOL:g} relative (density dev, relative "
        f"to max(1, median |log p|, |log p_i|)) and gradients equal to {GRAD_TOL:g} (grad err, relative to max(1, max |∇|)) "
        "at random float64 points; transform `same`: NumPyro's and Stan's unconstraining bijections agree "
        "coordinate-wise and the unconstrained densities are compared, `constrained`: they differ and the "
        "Jacobian-free densities are compared (gradients through the finite-difference Jacobian of the change "
        "of variables).",
        f"- NUTS: 4 chains x 1000 warm-up / 1000 draws; pass when every reference parameter has "
        f"|mean error| <= {MEAN_TOL} reference sd and sd within {SD_TOL:.0%} (worst: the parameters with the "
        "largest mean error / sd deviation; min ESS over parameters). A failure whose deviations are all within "
        "3 Monte Carlo standard errors (NUTS's ESS and the reference's draw count; for the sd by the delta method "
        "with the draws' kurtosis) is marked as such: heavy tails make the sd estimate noisy.",
        "",
        "| posterior | exact | transform | density dev | grad err | dim | NUTS | max mean err / sd | "
        "max sd dev | worst (mean / sd) | min ESS | div | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return text


# ------------------------------------------------------------------ main


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="posterior names (default: every posterior with a registered model)")
    ap.add_argument("--root", default=None, help=f"posteriordb tree (default {SHARED_ROOT} if present, else the bundled subset)")
    ap.add_argument("--points", type=int, default=50, help="random points of the exact check (default 50)")
    ap.add_argument("--scale", type=float, default=1.0, help="sd of the random offsets from NumPyro's init point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nuts", action="store_true", help="also run the NUTS check")
    ap.add_argument("--nuts-only", action="store_true", help="only the NUTS check")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chain-method", default="sequential", choices=["sequential", "vectorized", "parallel"])
    ap.add_argument("--record", action="store_true", help=f"write Stan points for the default test to {POINTS_DIR}")
    ap.add_argument("--record-points", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS), help="folder of the per-posterior records (default %(default)s)")
    ap.add_argument("--points-dir", default=str(POINTS_DIR), help="folder of the --record files (default %(default)s)")
    ap.add_argument("--note", default=None, help="explanation stored in the record(s) and shown in the table")
    ap.add_argument("--tight-ode", action="store_true",
                    help=f"build the Stan program with probkit's ODE tolerances (for {sorted(TIGHT_ODE)})")
    ap.add_argument("--table", action="store_true", help=f"write {TABLE.relative_to(REPO)} from the records")
    args = ap.parse_args(argv)
    for opt in ("points", "chains", "warmup", "draws", "record_points"):
        if getattr(args, opt) < (1 if opt != "warmup" else 0):
            ap.error(f"--{opt.replace('_', '-')} must be positive, got {getattr(args, opt)}")
    if not (args.scale > 0):
        ap.error(f"--scale must be positive, got {args.scale}")
    if args.tight_ode and (not args.names or any(n not in TIGHT_ODE for n in args.names)):
        ap.error(f"--tight-ode applies to {sorted(TIGHT_ODE)} only; name them explicitly")
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        ap.error(f"no registered NumPyro model for {unknown}; registered: {sorted(MODELS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = Path(args.root) if args.root else default_root()
    only_table = args.table and not args.names and not args.nuts and not args.nuts_only and not args.record
    names = args.names or ([] if only_table else sorted(MODELS))
    out, points_dir = Path(args.out), Path(args.points_dir)
    if out.exists() and not out.is_dir():
        print(f"--out {out} is not a folder", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        rec = read_record(name, out)
        rec.update({"posterior": name, "root": str(root), "versions": versions()})
        if args.note is not None:
            rec["note"] = args.note
        if not args.nuts_only:
            print(f"[exact] {name}", flush=True)
            try:
                exact, points = exact_check(name, root, args.points, args.scale, args.seed,
                                            args.record_points if args.record else 0, args.tight_ode)
            except Exception as err:  # noqa: BLE001 - recorded, the run goes on
                exact, points = {"pass": False, "error": f"{type(err).__name__}: {err}"}, None
            rec["exact"] = exact
            if points is not None:
                write_json_atomic(points_dir / f"{name}.json", points)
            print(f"\n  {exact.get('mode')} density dev {exact.get('density_rel_dev')} grad err "
                  f"{exact.get('grad_rel_err')} tparams {exact.get('tparams_rel_err')} pass {exact['pass']} "
                  f"{exact.get('error', '')}", flush=True)
            if not exact["pass"]:
                failed.append(f"{name} (exact)")
        if args.nuts or args.nuts_only:
            print(f"[nuts] {name}", flush=True)
            try:
                nuts = nuts_check(name, root, chains=args.chains, warmup=args.warmup, draws=args.draws,
                                  seed=args.seed, chain_method=args.chain_method)
            except Exception as err:  # noqa: BLE001
                nuts = {"pass": False, "error": f"{type(err).__name__}: {err}"}
            rec["nuts"] = nuts
            print(f"\n  max mean err {nuts.get('max_mean_err_sd')} ({nuts.get('worst_mean_param')}) "
                  f"max sd dev {nuts.get('max_sd_ratio_dev')} ({nuts.get('worst_sd_param')}) "
                  f"min ESS {nuts.get('min_n_eff')} div {nuts.get('divergences')} {nuts.get('time_s')} s "
                  f"pass {nuts['pass']} {nuts.get('error', '')}", flush=True)
            if not nuts["pass"]:
                failed.append(f"{name} (NUTS)")
        write_json_atomic(out / f"{name}.json", rec)
    if args.table:
        table = TABLE if out == RESULTS else out / "posteriordb.md"
        write_table(table, out)
        print(f"wrote {table}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
