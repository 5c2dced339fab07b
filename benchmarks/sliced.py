"""Sliced Wasserstein: probkit vs POT (numpy and JAX backends) and ott-jax, plus estimator variance.

    python benchmarks/sliced.py [--quick] [--probkit-only] [--max-work 1e9] [--out benchmarks/results/sliced.jsonl]

Part 1 (timing): seconds per estimate after compilation, same directions for all
libraries, n x d x L grid; probkit's three estimators are timed round-robin in
the same rounds so that their ratio (the CV overhead) is not skewed by load drift. Part 2 (accuracy): variance and mean absolute error of
SW_2^2 over seeds vs a 10^5-projection reference, for Gaussian clouds with
different/equal means, 8x8 digits (scikit-learn) and 3-D point clouds.
Every finished figure is appended to the JSONL file at once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from _timing import fastest, interleaved
from tqdm import tqdm

from probkit.ot import sliced_wasserstein


def append(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def timing(out, grid, repeats, probkit_only=False):
    for n, d, L in tqdm(grid, desc="timing"):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n, d)).astype(np.float32)
        y = (rng.normal(size=(n, d)) + 0.5).astype(np.float32)
        th = rng.normal(size=(L, d)).astype(np.float32)
        th /= np.linalg.norm(th, axis=1, keepdims=True)
        xj, yj, thj = jnp.asarray(x), jnp.asarray(y), jnp.asarray(th)
        rec = {"part": "timing", "n": n, "d": d, "L": L, "repeats": repeats}
        fns = {}
        for est in ("mc", "cv_lower", "cv_upper"):
            f = jax.jit(lambda a, b, t, est=est: sliced_wasserstein(None, a, b, projections=t, estimator=est))
            fns[est] = lambda f=f: f(xj, yj, thj)
        for est, t in interleaved(fns, repeats).items():
            rec[f"probkit_{est}_s"] = t
        rec["cv_lower_overhead"] = rec["probkit_cv_lower_s"] / rec["probkit_mc_s"] - 1
        rec["cv_upper_overhead"] = rec["probkit_cv_upper_s"] / rec["probkit_mc_s"] - 1
        if probkit_only:
            append(out, rec)
            continue
        import ot
        from ott.tools import sliced as ott_sliced

        ott_f = jax.jit(lambda a, b, t: ott_sliced.sliced_wasserstein(a, b, proj_fn=lambda z: z @ t.T)[0])
        rec["ott_s"] = fastest(lambda: ott_f(xj, yj, thj), repeats=min(repeats, 3))[0]
        if n * L <= 10**7:  # POT-numpy is slow beyond this
            rec["pot_numpy_s"] = fastest(lambda: ot.sliced_wasserstein_distance(x, y, projections=th.T), repeats=min(repeats, 3))[0]
            rec["speedup_vs_pot_numpy"] = rec["pot_numpy_s"] / rec["probkit_mc_s"]
            # POT's JAX backend (jax arrays in; POT's code cannot be jit-compiled: it reads array values)
            rec["pot_jax_s"] = fastest(lambda: ot.sliced_wasserstein_distance(xj, yj, projections=thj.T),
                                       repeats=min(repeats, 3))[0]
            rec["speedup_vs_pot_jax"] = rec["pot_jax_s"] / rec["probkit_mc_s"]
        rec["speedup_vs_ott"] = rec["ott_s"] / rec["probkit_mc_s"]
        append(out, rec)


def datasets(quick):
    rng = np.random.default_rng(1)
    n = 1000
    out = {}
    x = rng.normal(size=(n, 10))
    out["gauss_diff_means"] = (x, rng.normal(size=(n, 10)) + 1.0)
    out["gauss_equal_means"] = (x, rng.normal(size=(n, 10)))
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data / 16.0
    out["digits_0_vs_1"] = (X[digits.target == 0], X[digits.target == 1])
    out["digits_3_vs_8"] = (X[digits.target == 3], X[digits.target == 8])
    t = rng.uniform(0, 2 * np.pi, size=(2, n))
    sphere = rng.normal(size=(n, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    torus = np.stack([(2 + np.cos(t[0])) * np.cos(t[1]), (2 + np.cos(t[0])) * np.sin(t[1]), np.sin(t[0])], 1)
    out["pointcloud_sphere_vs_torus"] = (sphere, torus + np.array([1.0, 0.0, 0.5]))
    return out


def accuracy(out, quick):
    n_seeds = 200 if quick else 500
    n_ref = 20000 if quick else 100000
    for name, (x, y) in tqdm(datasets(quick).items(), desc="accuracy"):
        x = jnp.asarray(x, jnp.float32)
        y = jnp.asarray(y, jnp.float32)
        ref = float(
            sliced_wasserstein(jax.random.PRNGKey(99), x, y, n_projections=n_ref, root=False, projections="qmc")
        )
        for L in (10, 100):
            keys = jax.random.split(jax.random.PRNGKey(0), n_seeds)
            f = jax.jit(jax.vmap(lambda k, L=L: [
                sliced_wasserstein(k, x, y, n_projections=L, estimator=e, root=False)
                for e in ("mc", "cv_lower", "cv_upper")
            ]))
            z = [np.asarray(v, np.float64) for v in f(keys)]
            rec = {"part": "accuracy", "data": name, "L": L, "seeds": n_seeds, "reference_sw2sq": ref}
            for e, v in zip(("mc", "cv_lower", "cv_upper"), z):
                rec[f"{e}_var"] = float(v.var())
                rec[f"{e}_mae"] = float(np.mean(np.abs(v - ref)))
            rec["var_ratio_mc_over_cv_lower"] = rec["mc_var"] / rec["cv_lower_var"]
            rec["var_ratio_mc_over_cv_upper"] = rec["mc_var"] / rec["cv_upper_var"]
            append(out, rec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/sliced.jsonl")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timing rounds; probkit's estimators run round-robin (default 5, POT/ott best of 3)")
    ap.add_argument("--probkit-only", action="store_true",
                    help="time only probkit's estimators (the CV overhead), not POT / ott-jax")
    ap.add_argument("--max-work", type=float, default=None,
                    help="skip grid points with n*d*L above this (e.g. 1e9)")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    append(args.out, {"part": "machine", "processor": platform.processor(), "nproc": os.cpu_count(),
                      "jax": jax.__version__, "quick": args.quick})
    if args.quick:
        grid = [(1000, 3, 100), (10000, 64, 1000), (10000, 784, 100)]
    else:
        grid = [(n, d, L) for n in (1000, 10000, 100000) for d in (3, 64, 784) for L in (10, 100, 1000)]
    if args.max_work is not None:
        grid = [g for g in grid if g[0] * g[1] * g[2] <= args.max_work]
    if not args.skip_timing:
        timing(args.out, grid, repeats=args.repeats or 5, probkit_only=args.probkit_only)
    if not args.skip_accuracy:
        accuracy(args.out, args.quick)


if __name__ == "__main__":
    main()
