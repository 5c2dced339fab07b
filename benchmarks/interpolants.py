"""Stochastic-interpolant benchmark (issue 9), CPU scale.

Tasks: checkerboard, 8 Gaussians and rings from N(0, I) (one-sided linear interpolant,
velocity b only; the SDE score comes from b), and two-sided two moons -> checkerboard
(linear interpolant with gamma = sqrt(t(1-t)); b and the denoiser eta trained jointly,
score = -eta/gamma). Every task gets the same training budget.

For each task: SW_2 (probkit.ot, control-variate estimator "cv_lower", 500 projections)
between n generated and n fresh data points for the ODE (Heun, 100 steps) and the SDE
(Euler-Maruyama, 400 steps with --quick, 500 otherwise) with eps(t) = eps * c(t) / max c (c = noise coefficient,
``noise_scaled_eps``) for eps in {0.1, 0.5, 1}; the reference SW_2 between two
independent data samples of size n; the goal SW_2 <= 1.5 * reference + 0.02; held-out
negative log-likelihood by the probability-flow ODE (one-sided tasks; exact divergence);
training steps per second. There is no installed JAX peer for interpolants, so the
yardstick is the data-to-data SW.

Usage: python benchmarks/interpolants.py [--quick] [--out benchmarks/results/interpolants.md]
Rows are appended to the results file as each task finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import optax

from probkit.generative import (
    TimeMLP,
    datasets,
    linear,
    log_prob,
    noise_scaled_eps,
    one_sided,
    sample_ode,
    sample_sde,
    train_interpolant,
)
from probkit.ot import sliced_wasserstein

EPS = (0.1, 0.5, 1.0)


def sw2(key, x, y):
    return float(sliced_wasserstein(key, x, y, n_projections=500, estimator="cv_lower"))


def run_task(name, cfg, key):
    k_init, k_train, k_s = jax.random.split(key, 3)
    n = cfg["n"]
    if name == "moons->checkerboard":
        it = linear()
        src, tgt = datasets.two_moons, datasets.checkerboard
        ka, kb = jax.random.split(k_init)
        model = (TimeMLP(ka, 2, width=cfg["width"], depth=cfg["depth"]), TimeMLP(kb, 2, width=cfg["width"], depth=cfg["depth"]))
        target = "velocity+denoiser"
    else:
        it = one_sided("linear")
        src, tgt = None, datasets.TWO_D[name]
        model = TimeMLP(k_init, 2, width=cfg["width"], depth=cfg["depth"])
        target = "velocity"
    sched = optax.cosine_decay_schedule(cfg["lr"], cfg["steps"], alpha=0.05)
    # compile + a few steps first so that the rate excludes compilation
    train_interpolant(k_train, model, it, src, tgt, steps=2, batch_size=cfg["batch"], progress_bar=False, target=target)
    t0 = time.perf_counter()
    model, losses = train_interpolant(k_train, model, it, src, tgt, steps=cfg["steps"], batch_size=cfg["batch"],
                                      optimizer=optax.adam(sched), progress_bar=cfg["progress"], target=target)
    jax.block_until_ready(losses)
    train_s = time.perf_counter() - t0  # includes one compilation of the scanned step
    b, eta = (model if isinstance(model, tuple) else (model, None))
    ks = jax.random.split(k_s, 8)
    x_start = jax.random.normal(ks[0], (n, 2)) if src is None else src(ks[0], n)
    data, data2 = tgt(ks[1], n), tgt(ks[2], n)
    row = {"task": name, "n": n, "steps": cfg["steps"], "batch": cfg["batch"], "width": cfg["width"],
           "depth": cfg["depth"], "train_s": round(train_s, 1), "steps_per_s": round(cfg["steps"] / train_s, 1),
           "final_loss": float(jnp.mean(losses[-100:]))}
    row["sw_data_data"] = sw2(ks[3], data, data2)
    row["goal"] = 1.5 * row["sw_data_data"] + 0.02
    t0 = time.perf_counter()
    x_ode, nfe = sample_ode(None, b, x_start, solver="heun", n_steps=cfg["ode_steps"], return_nfe=True)
    row["sw_ode"], row["nfe_ode"], row["ode_s"] = sw2(ks[3], x_ode, data), int(nfe), round(time.perf_counter() - t0, 1)
    score = None if eta is None else (lambda t, x: it.score_from_denoiser(t, eta(t, x)))
    for eps in EPS:
        t0 = time.perf_counter()
        x_sde = sample_sde(ks[4], b, x_start, noise_scaled_eps(it, eps), score=score, interpolant=it,
                           n_steps=cfg["sde_steps"])
        row[f"sw_sde_{eps}"] = sw2(ks[3], x_sde, data)
        row[f"sde_{eps}_s"] = round(time.perf_counter() - t0, 1)
    if src is None:
        held_out = tgt(ks[5], cfg["n_nll"])
        lp = log_prob(b, held_out, rtol=1e-4, atol=1e-4)
        row["nll"] = float(-jnp.mean(lp))
    row["goal_met"] = all(row[k] <= row["goal"] for k in row if k.startswith("sw_") and k != "sw_data_data")
    return row


def fmt(row):
    sde = " / ".join(f"{row[f'sw_sde_{e}']:.3f}" for e in EPS)
    nll = f"{row['nll']:.3f}" if "nll" in row else "—"
    return (f"| {row['task']} | {row['sw_data_data']:.3f} | {row['goal']:.3f} | {row['sw_ode']:.3f} | {sde} | "
            f"{nll} | {row['steps_per_s']:.0f} | {'yes' if row['goal_met'] else 'no'} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "interpolants.md"))
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--tasks", default="checkerboard,eight_gaussians,rings,moons->checkerboard")
    args = ap.parse_args()
    if args.quick:
        cfg = dict(n=5000, steps=3000, batch=512, width=128, depth=3, lr=2e-3, ode_steps=100, sde_steps=400, n_nll=1000)
    else:
        cfg = dict(n=20000, steps=8000, batch=1024, width=128, depth=3, lr=2e-3, ode_steps=100, sde_steps=500, n_nll=2000)
    cfg["progress"] = not args.no_progress
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "a") as f:
        f.write(f"\n### run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
                f"`python benchmarks/interpolants.py{' --quick' if args.quick else ''}`\n\n"
                f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs), "
                f"jax {jax.__version__}; scale: {json.dumps({k: v for k, v in cfg.items() if k != 'progress'})}\n\n"
                "| task | SW2 data-data | goal (1.5x+0.02) | SW2 ODE | SW2 SDE eps=0.1 / 0.5 / 1 | held-out NLL | train steps/s | goal met |\n"
                "|---|---|---|---|---|---|---|---|\n")
    for i, name in enumerate(args.tasks.split(",")):
        row = run_task(name, cfg, jax.random.PRNGKey(100 + i))
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(fmt(row) + "\n")
            f.write(f"<!-- {json.dumps(row)} -->\n")


if __name__ == "__main__":
    main()
