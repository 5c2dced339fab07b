"""MixFlow vs NumPyro NUTS vs probkit AutoFlow vs NumPyro AutoIAFNormal at a matched gradient budget.

    python benchmarks/mixflows.py            # 5 targets x 10 seeds, MixFlow N = 500
    python benchmarks/mixflows.py --targets funnel --first-seed 10 --seeds 3 --mixflow-steps 200
    python benchmarks/mixflows.py --quick    # 2 targets x 3 seeds, smaller budgets
    python benchmarks/mixflows.py --targets correlated,kidiq --methods NUTS,MixFlow,MixFlow-diagonal
    python benchmarks/mixflows.py --sampling-speed --targets correlated,kidiq

For each target and seed, NUTS runs first and its gradient evaluations (warmup +
sampling, from ``num_steps``) set the budget ``G``. The VI guides get all of it:
``min(G, svi_cap)`` SVI steps of ``G // steps`` vectorised particles (one model
gradient per particle and step);
MixFlow gets ``G`` split into its reference fit (``AutoMixFlow.fit`` with
``reference="auto"``: a full-covariance Laplace fit and ADVI, the higher ELBO kept)
and trajectories of ``N − 1`` map steps of ``n_leapfrog + 1`` gradients (every
trajectory state is a draw of ``q_N``); ``MixFlow-diagonal`` is the same with
``metric="diagonal"`` (per-coordinate conditional-sd steps instead of the dense
whitening a full-covariance reference gives, the behaviour before issue 24 item 8).
``correlated`` is a Bayesian linear regression with n = 1000 rows and a posterior
correlation of −0.998 between intercept and slope; its reference draws are exact
(closed-form Gaussian posterior). Metrics: sliced Wasserstein (SW2) to the
reference draws after standardising each coordinate by the reference mean/sd,
max |mean error| and max |sd error| in reference-sd units, wall time. A run
*fails* when it raises, returns non-finite draws or diverges (standardised SW2 > 10). Rows are appended to
``benchmarks/results/mixflows.md`` as they finish.

``--sampling-speed`` (issue 24 item 10) times, per target and in one process, NUTS
(warmup + sampling, in total), ``AutoMixFlow.fit`` with the defaults, and 4000 draws of
``guide.sample_posterior`` three ways: the previous implementation (one vmapped loop of
``K_i`` steps per draw, all lanes running to the largest ``K``), the new i.i.d. path
(``draws_per_trajectory=1``: draws pushed in chunks sorted by ``K``) and the default
(``"auto"``: 50 draws 10 map steps apart per trajectory). First call (with compilation)
and a second call are timed; accuracy and, for the default, the effective sample size
of the draws (batch means over trajectories) are reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoIAFNormal

from probkit.bench import posteriordb
from probkit.bench.models import get_model
from probkit.bench.names import flatten_sites
from probkit.infer import AutoFlow, AutoMixFlow
from probkit.ot import sliced_wasserstein

METHODS = ("NUTS", "MixFlow-diagonal", "MixFlow", "AutoFlow", "AutoIAFNormal")
DIVERGED_SW = 10.0  # standardised SW2 above this counts as a diverged run
REFERENCE_STEPS, ADVI_SAMPLES, N_ELBO = 500, 4, 500  # MixFlow's reference fit (AutoMixFlow.fit)
RESULTS = os.path.join(os.path.dirname(__file__), "results", "mixflows.md")


def banana_model(b=0.1):
    x1 = numpyro.sample("x1", dist.Normal(0.0, 10.0))
    numpyro.sample("x2", dist.Normal(b * x1**2 - 100 * b, 1.0))


def banana_draws(key, n, b=0.1):
    y = np.asarray(jax.random.normal(key, (n, 2))) * np.array([10.0, 1.0])
    return {"x1": y[:, 0], "x2": y[:, 1] + b * y[:, 0] ** 2 - 100 * b}


def funnel_model(d=5):
    v = numpyro.sample("v", dist.Normal(0.0, 3.0))
    numpyro.sample("x", dist.Normal(0.0, jnp.exp(v / 2)).expand([d - 1]).to_event(1))


def funnel_draws(key, n, d=5):
    k1, k2 = jax.random.split(key)
    v = 3.0 * np.asarray(jax.random.normal(k1, (n,)))
    x = np.asarray(jax.random.normal(k2, (n, d - 1))) * np.exp(v / 2)[:, None]
    return {"v": v, **flatten_sites({"x": x})}


def correlated_model(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 10.0))
    b = numpyro.sample("b", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(a + b * x, 1.0), obs=y)


def correlated_target(n=1000):
    """Regression y = 2 + 0.5 x + noise, x in [9, 11]: posterior correlation -0.998; exact draws."""
    x = np.linspace(9.0, 11.0, n)
    y = 2.0 + 0.5 * x + np.asarray(jax.random.normal(jax.random.PRNGKey(5), (n,)))
    design = np.stack([np.ones(n), x], 1)
    cov = np.linalg.inv(design.T @ design + np.eye(2) / 100)
    mean = cov @ design.T @ y
    draws = np.random.default_rng(97).multivariate_normal(mean, cov, size=10000)
    return correlated_model, {"x": jnp.asarray(x), "y": jnp.asarray(y)}, {"a": draws[:, 0], "b": draws[:, 1]}


def targets(quick):
    out = {
        "banana": (banana_model, {}, banana_draws(jax.random.PRNGKey(99), 10000)),
        "eight_schools": None,
        "funnel": (funnel_model, {}, funnel_draws(jax.random.PRNGKey(98), 10000)),
        "kidiq": None,
        "correlated": correlated_target(),
    }
    if quick:
        out = {k: out[k] for k in ("banana", "eight_schools")}
    names = {"eight_schools": "eight_schools-eight_schools_noncentered", "kidiq": "kidiq-kidscore_momiq"}
    for short, full in names.items():
        if short in out:
            post = posteriordb.load(full)
            ref = {k: np.asarray(v).reshape(-1) for k, v in post.reference.items()}
            out[short] = (get_model(full), post.data, ref)
    return out


def metrics(draws: dict, reference: dict, key):
    flat = flatten_sites({k: np.asarray(v) for k, v in draws.items()})
    names = list(reference)
    x = np.stack([np.asarray(flat[n]).reshape(-1) for n in names], 1)
    y = np.stack([reference[n] for n in names], 1)
    if not np.all(np.isfinite(x)):
        return None
    mu, sd = y.mean(0), y.std(0)
    xs, ys = (x - mu) / sd, (y - mu) / sd
    rng = np.random.default_rng(0)
    xs = xs[rng.choice(len(xs), min(len(xs), 4000), replace=False)]
    ys = ys[rng.choice(len(ys), min(len(ys), 4000), replace=False)]
    sw = float(sliced_wasserstein(key, jnp.asarray(xs), jnp.asarray(ys), n_projections=256))
    return {"sw": sw, "mean_err": float(np.max(np.abs(xs.mean(0)))), "sd_err": float(np.max(np.abs(xs.std(0) - 1)))}


def run_nuts(key, model, data, quick):
    mcmc = MCMC(NUTS(model), num_warmup=300 if quick else 500, num_samples=500 if quick else 1000, progress_bar=False)
    mcmc.warmup(key, collect_warmup=True, extra_fields=("num_steps",), **data)
    warm = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps",), **data)
    grads = warm + int(np.sum(mcmc.get_extra_fields()["num_steps"]))
    return mcmc.get_samples(), grads


def run_svi(key, model, data, guide, budget, svi_cap):
    """SVI with the whole budget: ``min(G, svi_cap)`` steps of ``G // steps`` vectorised particles."""
    steps = min(budget, svi_cap)
    particles = max(1, budget // steps)
    svi = SVI(model, guide, optax.adam(1e-2), Trace_ELBO(num_particles=particles, vectorize_particles=True))
    res = svi.run(key, steps, progress_bar=False, **data)
    if not np.isfinite(float(res.losses[-1])):
        raise FloatingPointError("SVI loss is not finite")
    draws = guide.sample_posterior(jax.random.fold_in(key, 1), res.params, sample_shape=(4000,))
    return draws, steps * particles


def run_mixflow(key, model, data, budget, n_flow, n_leap, metric="auto"):
    guide = AutoMixFlow(model, n_flow_steps=n_flow, n_leapfrog=n_leap, step_size=0.3, metric=metric)
    guide.fit(key, reference_steps=REFERENCE_STEPS, advi_samples=ADVI_SAMPLES, n_elbo=N_ELBO,
              progress_bar=False, **data)
    flow = guide.mixflow
    # reference="auto": L-BFGS iterations (at their bound) + Hessian columns, ADVI steps x draws,
    # both candidates' ELBO draws (log densities, counted as gradients), the curvature pass
    fit_grads = guide.reference_grad_evals
    per_traj = (n_flow - 1) * flow.grad_evals_per_step
    n_traj = max(1, (budget - fit_grads) // per_traj)
    with numpyro.handlers.block():
        z = flow.sample_trajectories(jax.random.fold_in(key, 1), int(n_traj))
    draws = guide._unpack_and_constrain(z[:, guide._perm], {})
    return draws, fit_grads + n_traj * per_traj, guide.reference_kind


@eqx.filter_jit
def legacy_sample(flow, key, n):
    """The sampler before issue 24 item 10: each draw a loop of K ~ Unif{B..N-1} steps, vmapped
    (compiled once per flow, like the new one, so that second calls time the sampling alone)."""
    from jax import lax

    def one(key):
        kk, kz = jax.random.split(key)
        k = jax.random.randint(kk, (), flow.burn_in, flow.n_flow_steps)
        return lax.fori_loop(0, k, lambda _, s: flow.flow_map.forward(s)[0], flow._sample_reference(kz))[0]

    return jax.vmap(one)(jax.random.split(key, n))


def batch_means_ess(z, m):
    """Effective sample size of the mean of each column of ``z`` (rows in groups of m per trajectory)."""
    groups = z[: len(z) // m * m].reshape(-1, m, z.shape[1]).mean(1)
    return np.min(z.var(0) / m / groups.var(0)) * len(z)


def sampling_speed(args):
    n_draws = 4000
    all_targets = targets(False)
    chosen = ["correlated", "kidiq"] if args.targets is None else args.targets.split(",")
    cmd = ("python benchmarks/mixflows.py " + " ".join(sys.argv[1:])).strip()
    header = (
        f"\n## Sampling speed {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{cmd}`\n\n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
        "(VM shared with other jobs; wall times are noisy, compare within a row). "
        f"jax {jax.__version__}, numpyro {numpyro.__version__}. AutoMixFlow defaults (N = 500, 10 leapfrog, "
        f"step 0.3, reference \"auto\"); {n_draws} draws of `guide.sample_posterior`; NUTS 500 warmup + 1000 "
        "draws. Time in s: first call (with compilation) / second call. ESS: batch means over trajectories, "
        "min over coordinates.\n\n"
        "| target | NUTS total | MixFlow fit | sampler | time 1st / 2nd | draws/s (2nd) | speed-up vs old (2nd) "
        "| ESS | max mean err (sd) | max sd err (sd) |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    with open(args.results, "a") as f:
        f.write(header)
    print(header, end="")
    for tname in chosen:
        model, data, reference = all_targets[tname]
        jax.clear_caches()
        key = jax.random.PRNGKey(0)
        t0 = time.perf_counter()
        run_nuts(key, model, data, False)
        t_nuts = time.perf_counter() - t0
        t0 = time.perf_counter()
        guide = AutoMixFlow(model)
        guide.fit(key, progress_bar=False, **data)
        t_fit = time.perf_counter() - t0
        flow, perm = guide.mixflow, np.asarray(guide._perm)
        samplers = {
            "old (vmapped per-draw loops)": lambda k: guide._unpack_and_constrain(legacy_sample(flow, k, n_draws)[:, perm], {}),
            "new i.i.d. (draws_per_trajectory=1)": lambda k: guide.sample_posterior(k, {}, sample_shape=(n_draws,),
                                                                                  draws_per_trajectory=1),
            "new default (\"auto\": 50 per trajectory)": lambda k: guide.sample_posterior(k, {}, sample_shape=(n_draws,)),
        }
        old = None
        for name, draw in samplers.items():
            times = []
            for i in range(2):
                t0 = time.perf_counter()
                draws = jax.block_until_ready(draw(jax.random.PRNGKey(10 + i)))
                times.append(time.perf_counter() - t0)
            old = times[1] if old is None else old
            m = metrics(draws, reference, jax.random.PRNGKey(3))
            flat = flatten_sites({k: np.asarray(v) for k, v in draws.items()})
            names = list(reference)
            z = np.stack([np.asarray(flat[k]).reshape(-1) for k in names], 1)
            z = (z - np.array([reference[k].mean() for k in names])) / np.array([reference[k].std() for k in names])
            per = guide._draws_per_trajectory() if name.startswith("new default") else 1
            ess = batch_means_ess(z, per) if per > 1 else n_draws
            row = (f"| {tname} | {t_nuts:.1f} | {t_fit:.1f} | {name} | {times[0]:.1f} / {times[1]:.2f} | "
                   f"{n_draws / times[1]:.0f} | {old / times[1]:.1f}x | {ess:.0f} | {m['mean_err']:.3f} | {m['sd_err']:.3f} |\n")
            print(row, end="", flush=True)
            with open(args.results, "a") as f:
                f.write(row)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--mixflow-steps", type=int, default=None,
                        help="MixFlow's N (default 500; 100 with --quick)")
    parser.add_argument("--mixflow-leapfrog", type=int, default=None,
                        help="MixFlow's leapfrog steps per map step (default 10; 5 with --quick)")
    parser.add_argument("--targets", default=None, help="comma-separated subset of the targets")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--results", default=RESULTS, help="markdown file the rows are appended to")
    parser.add_argument("--methods", default=",".join(METHODS[:1] + METHODS[2:]),
                        help=f"comma-separated subset of {list(METHODS)} (default: all but MixFlow-diagonal)")
    parser.add_argument("--sampling-speed", action="store_true",
                        help="time sample_posterior (old vs new) beside NUTS instead of the budget comparison")
    args = parser.parse_args()
    if args.sampling_speed:
        return sampling_speed(args)
    methods = args.methods.split(",")
    if set(methods) - set(METHODS) or "NUTS" not in methods:
        parser.error(f"--methods: expected NUTS and a subset of {list(METHODS)}, got {methods}")
    quick = args.quick
    seeds = args.seeds or (3 if quick else 10)
    svi_cap = 2000 if quick else 5000
    n_flow = args.mixflow_steps or (100 if quick else 500)
    n_leap = args.mixflow_leapfrog or (5 if quick else 10)
    all_targets = targets(quick)
    chosen = list(all_targets) if args.targets is None else args.targets.split(",")
    unknown = sorted(set(chosen) - set(all_targets))
    if unknown:
        parser.error(f"--targets: unknown {unknown}; expected a subset of {list(all_targets)}")
    cmd = ("python benchmarks/mixflows.py " + " ".join(sys.argv[1:])).strip()
    with open(args.results, "a") as f:
        f.write(
            f"\n## Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{cmd}`\n\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
            "(VM shared with other jobs; wall times are noisy, compare within a row). "
            f"jax {jax.__version__}, numpyro {numpyro.__version__}. SVI steps capped at {svi_cap}; "
            f"MixFlow N = {n_flow}, n_leapfrog = {n_leap}, reference \"auto\" (Laplace full-covariance vs ADVI "
            f"{REFERENCE_STEPS} steps x {ADVI_SAMPLES} draws, higher ELBO over {N_ELBO} draws).\n\n"
            "| target | seed | method | grad evals | SW2 (std.) | max mean err (sd) | max sd err (sd) | wall s | status |\n"
            "|---|---|---|---|---|---|---|---|---|\n"
        )
    summary = {}
    for tname in chosen:
        model, data, reference = all_targets[tname]
        for seed in range(args.first_seed, args.first_seed + seeds):
            # each seed compiles fresh closures; dropping the old executables keeps a long
            # run under the kernel's memory-map limit (LLVM "Cannot allocate memory" otherwise)
            jax.clear_caches()
            key = jax.random.PRNGKey(seed)
            budget = None
            for method in [m for m in METHODS if m in methods]:
                t0 = time.perf_counter()
                status, m, grads, note = "ok", None, 0, ""
                try:
                    if method == "NUTS":
                        draws, grads = run_nuts(key, model, data, quick)
                        budget = grads
                    elif method.startswith("MixFlow"):
                        metric = "diagonal" if method == "MixFlow-diagonal" else "auto"
                        draws, grads, kind = run_mixflow(key, model, data, budget, n_flow, n_leap, metric)
                        note = f" ({kind} reference)"
                    elif method == "AutoFlow":
                        guide = AutoFlow(model, key=jax.random.fold_in(key, 7))
                        draws, grads = run_svi(key, model, data, guide, budget, svi_cap)
                    else:
                        guide = AutoIAFNormal(model, num_flows=2, hidden_dims=[32, 32])
                        draws, grads = run_svi(key, model, data, guide, budget, svi_cap)
                    m = metrics(draws, reference, jax.random.fold_in(key, 3))
                    if m is None:
                        status = "fail (non-finite draws)"
                    elif m["sw"] > DIVERGED_SW:
                        status, m = f"fail (diverged: SW2 {m['sw']:.3g})", None
                except Exception as err:  # a failed run is a result, not a crash
                    status = f"fail ({type(err).__name__})"
                    traceback.print_exc(file=sys.stderr)
                wall = time.perf_counter() - t0
                summary.setdefault((tname, method), []).append((m, status, grads))
                cells = [f"{m[k]:.3f}" for k in ("sw", "mean_err", "sd_err")] if m else ["-"] * 3
                row = f"| {tname} | {seed} | {method} | {grads} | " + " | ".join(cells) + f" | {wall:.1f} | {status}{note if m else ''} |\n"
                print(row, end="", flush=True)
                with open(args.results, "a") as f:
                    f.write(row)
    lines = ["\n### Summary (medians over successful seeds)\n\n",
             "| target | method | median grad evals | median SW2 | SW2 / NUTS SW2 | median max mean err | failures |\n",
             "|---|---|---|---|---|---|---|\n"]
    for (tname, method), runs in summary.items():
        ok = [r for r in runs if r[0] is not None]
        fails = len(runs) - len(ok)
        nuts_ok = [r[0]["sw"] for r in summary[(tname, "NUTS")] if r[0] is not None]
        if ok:
            sw = float(np.median([r[0]["sw"] for r in ok]))
            ratio = sw / float(np.median(nuts_ok)) if nuts_ok else float("nan")
            me = float(np.median([r[0]["mean_err"] for r in ok]))
            g = int(np.median([r[2] for r in ok]))
            lines.append(f"| {tname} | {method} | {g} | {sw:.3f} | {ratio:.2f} | {me:.3f} | {fails}/{len(runs)} |\n")
        else:
            lines.append(f"| {tname} | {method} | - | - | - | - | {fails}/{len(runs)} |\n")
    print("".join(lines))
    with open(args.results, "a") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
