"""Fokker-Planck regularised score-based diffusion (issue 10; Deveney et al., 2023), CPU scale.

The paper's experiment: a log-density network u(t, x) = h(t, x)/sigma(t) (score = grad_x u)
is trained on 2-D data under a VP SDE with denoising score matching (sigma^2 weighting)
plus w_R times the Fokker-Planck penalty at collocation points uniform on a box, for
w_R in {0, 0.1, 1, 10}. The penalty is probkit's default: the score residual
sigma * grad_x R[u], normalised by sigma^2 / g^2 (see probkit/generative/diffusion_training.py;
the plain log-density residual collapses the score to the flat solution u = c(t)).
For each model we draw n samples with the probability-flow ODE (Tsit5, adaptive) and
with the reverse SDE (Euler-Maruyama) from the SAME prior draws, and report

  W2^2(ODE, truth), W2^2(SDE, truth), W2^2(ODE, SDE)

with the exact W2^2 between the empirical samples (POT ``ot.emd2``, squared Euclidean
cost; POT is used here only) and SW_2 from ``probkit.ot.sliced_wasserstein``
(control-variate estimator). The floor W2^2(truth, truth') between two independent
data samples of size n is reported too: with n samples no W2^2 below it is meaningful.

Data: "blob" (9 Gaussians, sd 0.2, on the grid {-2, 0, 2}^2), "circles" (two circles,
radii 2 and 1, noise sd 0.05) and "checkerboard" (probkit.generative.datasets).
Every w_R uses the same initialisation, data stream and training budget.

Goal (paper's direction): the ODE-SDE W2^2 falls >= 3x from w_R = 0 to 10 and the
ODE-truth W2^2 is lower at w_R in {0.1, 1} than at 0.

Earlier runs with the plain log-density residual diverged for every w_R > 0; the diagnosis
is kept in benchmarks/results/fokker_planck.md.

Usage: python benchmarks/fokker_planck.py [--quick] [--data blob,circles,checkerboard]
Rows are appended to benchmarks/results/fokker_planck.md as each run finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import ot

from probkit.generative import (
    VPSDE,
    LogDensityNet,
    datasets,
    probability_flow_ode,
    reverse_sde,
    train_score_model,
)
from probkit.ot import sliced_wasserstein

WEIGHTS = (0.0, 0.1, 1.0, 10.0)
PAPER_ODE_SDE = {"blob": (0.0152, 0.0029), "circles": (0.0175, 0.0022), "checkerboard": (0.0355, 0.0027)}


def blob(key, n):
    """9 isotropic Gaussians (sd 0.2) centred on {-2, 0, 2}^2, equal weights."""
    k1, k2 = jax.random.split(key)
    g = jnp.array([-2.0, 0.0, 2.0])
    centres = jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)
    return centres[jax.random.randint(k1, (n,), 0, 9)] + 0.2 * jax.random.normal(k2, (n, 2))


def circles(key, n):
    """Two concentric circles of radii 2 and 1 (half the points each), noise sd 0.05."""
    k1, k2, k3 = jax.random.split(key, 3)
    r = jnp.where(jax.random.bernoulli(k1, 0.5, (n,)), 2.0, 1.0)
    th = jax.random.uniform(k2, (n,), minval=0.0, maxval=2 * jnp.pi)
    return r[:, None] * jnp.stack([jnp.cos(th), jnp.sin(th)], 1) + 0.05 * jax.random.normal(k3, (n, 2))


DATA = {"blob": blob, "circles": circles, "checkerboard": datasets.checkerboard}


def w2sq(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    a = np.full(len(x), 1 / len(x))
    b = np.full(len(y), 1 / len(y))
    return float(ot.emd2(a, b, ot.dist(x, y), numItermax=10_000_000))


def sw2(key, x, y):
    return float(sliced_wasserstein(key, x, y, n_projections=200, estimator="cv_lower"))


def run(name, w, cfg, key):
    sample = DATA[name]
    sde = VPSDE()
    k_init, k_train, k_eval = jax.random.split(key, 3)
    model = LogDensityNet(k_init, 2, sde=sde, width=cfg["width"], depth=cfg["depth"])
    opt = optax.adam(optax.cosine_decay_schedule(cfg["lr"], cfg["steps"], alpha=0.1))
    t0 = time.perf_counter()
    model, losses = train_score_model(k_train, model, sde, sample, steps=cfg["steps"], batch_size=cfg["batch"],
                                      fp_weight=w, n_collocation=cfg["n_colloc"], optimizer=opt,
                                      progress_bar=cfg["progress"])
    jax.block_until_ready(losses)
    train_s = time.perf_counter() - t0
    ks = jax.random.split(k_eval, 5)
    n = cfg["n"]
    x_T = sde.prior_sample(ks[0], (n, 2))
    t0 = time.perf_counter()
    x_ode, nfe_ode = probability_flow_ode(None, model, sde, x_T, adaptive=True, rtol=1e-4, atol=1e-4, return_nfe=True)
    ode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    x_sde, nfe_sde = reverse_sde(ks[1], model, sde, x_T, n_steps=cfg["sde_steps"], return_nfe=True)
    sde_s = time.perf_counter() - t0
    truth = sample(ks[2], n)
    row = {"data": name, "w_R": w, "train_s": round(train_s, 1), "final_loss": float(jnp.mean(losses[-100:])),
           "nfe_ode": int(nfe_ode), "nfe_sde": int(nfe_sde), "ode_s": round(ode_s, 1), "sde_s": round(sde_s, 1),
           "w2_ode_truth": w2sq(x_ode, truth), "w2_sde_truth": w2sq(x_sde, truth), "w2_ode_sde": w2sq(x_ode, x_sde),
           "sw_ode_truth": sw2(ks[3], x_ode, truth), "sw_sde_truth": sw2(ks[3], x_sde, truth),
           "sw_ode_sde": sw2(ks[3], x_ode, x_sde)}
    if w == WEIGHTS[0]:
        row["w2_floor"] = w2sq(truth, sample(ks[4], n))
    return row


def fmt(r):
    floor = f"{r['w2_floor']:.4f}" if "w2_floor" in r else ""
    return (f"| {r['data']} | {r['w_R']:g} | {r['w2_ode_truth']:.4f} | {r['w2_sde_truth']:.4f} | "
            f"{r['w2_ode_sde']:.4f} | {r['sw_ode_truth']:.3f} | {r['sw_sde_truth']:.3f} | {r['sw_ode_sde']:.3f} | "
            f"{floor} | {r['nfe_ode']} / {r['nfe_sde']} | {r['train_s']:.0f} |")


def verdict(rows):
    by = {r["w_R"]: r for r in rows}
    gap0, gap10 = by[0.0]["w2_ode_sde"], by[10.0]["w2_ode_sde"]
    ratio = gap0 / max(gap10, 1e-12)
    better = [by[w]["w2_ode_truth"] < by[0.0]["w2_ode_truth"] for w in (0.1, 1.0)]
    name = rows[0]["data"]
    p0, p10 = PAPER_ODE_SDE[name]
    return (f"- **{name}**: ODE-SDE W2^2 {gap0:.4f} -> {gap10:.4f} (w_R 0 -> 10), ratio {ratio:.1f}x "
            f"(goal >= 3x: {'met' if ratio >= 3 else 'NOT met'}; paper {p0} -> {p10}, {p0 / p10:.1f}x); "
            f"ODE-truth lower than at w_R=0 at w_R=0.1: {better[0]}, at w_R=1: {better[1]}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default="blob,circles,checkerboard")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "fokker_planck.md"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    if args.quick:
        cfg = dict(steps=3000, batch=256, n_colloc=256, width=64, depth=3, lr=2e-3, n=4000, sde_steps=500)
    else:
        cfg = dict(steps=4000, batch=512, n_colloc=512, width=128, depth=3, lr=2e-3, n=4000, sde_steps=1000)
    cfg["progress"] = not args.no_progress
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    cmd = "python benchmarks/fokker_planck.py" + (" --quick" if args.quick else "") + (
        f" --data {args.data}" if args.data != ap.get_default("data") else "")
    with open(args.out, "a") as f:
        f.write(f"\n### run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{cmd}`\n\n"
                f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs shared with other jobs, "
                f"jax {jax.__version__}, POT {ot.__version__}; scale: "
                f"{json.dumps({k: v for k, v in cfg.items() if k != 'progress'})}; VP SDE (beta 0.1..20), "
                "LogDensityNet(sde=sde) (u = h/sigma), penalty: normalised score residual (probkit default), "
                "box collocation, ODE Tsit5 adaptive rtol=atol=1e-4, SDE Euler-Maruyama.\n\n"
                "| data | w_R | W2² ODE-truth | W2² SDE-truth | W2² ODE-SDE | SW2 ODE-truth | SW2 SDE-truth | "
                "SW2 ODE-SDE | W2² floor (truth-truth) | NFE ODE / SDE | train s |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n")
    for i, name in enumerate(args.data.split(",")):
        rows = []
        for w in WEIGHTS:
            row = run(name, w, cfg, jax.random.PRNGKey(10 + i))
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as f:
                f.write(fmt(row) + "\n")
        with open(args.out, "a") as f:
            f.write("\n" + verdict(rows) + "\n")
            if i + 1 < len(args.data.split(",")):
                f.write("| data | w_R | W2² ODE-truth | W2² SDE-truth | W2² ODE-SDE | SW2 ODE-truth | SW2 SDE-truth | "
                        "SW2 ODE-SDE | W2² floor | NFE ODE / SDE | train s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")


if __name__ == "__main__":
    main()
