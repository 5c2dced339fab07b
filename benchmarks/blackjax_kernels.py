"""BlackJAXKernel vs direct blackjax vs NumPyro NUTS: ESS/s, ESS per gradient, wrapper overhead.

For each posterior (eight schools, kidiq, diamonds) three NUTS runs with the
same chains / warm-up / draws, side by side in one process:

- ``probkit``: ``MCMC(BlackJAXKernel(model, "nuts"), chain_method="vectorized")``;
- ``blackjax``: the same algorithm called directly: ``model_logdensity``,
  ``blackjax.window_adaptation(blackjax.nuts)`` vmapped over chains, then a
  ``lax.scan`` of ``blackjax.nuts`` steps (one jitted function);
- ``numpyro``: ``MCMC(NUTS(model), chain_method="vectorized")``.

Each method runs twice; the reported wall time is the second run (compiled
code cached), the first run's time is shown as ``wall+compile``. ESS is
ArviZ's bulk ESS, minimum over the posteriordb reference parameters
(constrained, Stan-named). Gradient evaluations include warm-up.
Wrapper overhead (goal ≤ 5 %) is measured at the kernel level: compiled
``BlackJAXKernel.sample`` vs ``blackjax.nuts`` steps on identical trajectories,
minimum of interleaved repeats (diamonds, whose NUTS transitions cost ~1000
gradients each: 200 + 200 draws, 100 timed transitions, 3 repeats).

Run: ``python benchmarks/blackjax_kernels.py [--quick] [--posteriors eight_schools,kidiq,diamonds]``
(on a shared machine pin it to one core: ``taskset -c 1 python ...``); each
row is appended to ``benchmarks/results/blackjax_kernels.md`` as soon as it
finishes, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import arviz as az
import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS

from probkit.bench import posteriordb
from probkit.bench.models import get_model
from probkit.bench.names import flatten_sites
from probkit.infer import BlackJAXKernel, model_logdensity

RESULTS = Path(__file__).resolve().parent / "results" / "blackjax_kernels.md"
POSTERIORS = ["eight_schools-eight_schools_noncentered", "kidiq-kidscore_momiq", "diamonds-diamonds"]
#: (warm-up, draws, timed transitions, repeats) for posteriors whose NUTS is slow; others: from the options
SLOW = {"diamonds-diamonds": (200, 200, 100, 3)}


def min_ess(draws: dict, names: list[str]) -> float:
    """Minimum bulk ESS over ``names``; draws ``{name: (chains, n)}``."""
    return float(min(az.ess(np.asarray(draws[n]), method="bulk") for n in names))


def run_probkit(key, model, data, chains, warmup, samples, kernel_steps, kernel_reps):
    mcmc = MCMC(
        BlackJAXKernel(model, "nuts"), num_warmup=warmup, num_samples=samples, num_chains=chains,
        chain_method="vectorized", progress_bar=False,
    )

    def once(k):
        t = time.perf_counter()
        mcmc.run(k, **data)
        out = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        # tuning (+ initial gradient) and the transitions' gradient evaluations
        grads = int(np.sum(mcmc.last_state.warmup_grad_evals)) + int(np.sum(mcmc.get_extra_fields()["num_grad_evals"]))
        return time.perf_counter() - t, flatten_sites(jax.device_get(out), sample_ndim=2), grads

    return once(key), once(jax.random.fold_in(key, 7)), kernel_overhead(mcmc, data, kernel_steps, kernel_reps)


def kernel_overhead(mcmc, data: dict, n: int, reps: int) -> tuple[dict[str, tuple[float, float]], bool]:
    """Steady-state seconds for ``n`` transitions: ``BlackJAXKernel.sample`` vs ``blackjax.nuts`` steps.

    Both start from the run's last state (4 chains) and use the same keys, so
    they compute identical trajectories; both are compiled before timing, and
    the minimum over ``reps`` interleaved repeats is reported. Two pairs:

    - ``"position"``: only the final position is kept (``z`` vs blackjax's
      position; the direct steps discard blackjax's info, so XLA drops the
      acceptance and step-count accumulators from its trajectory loops);
    - ``"statistics"``: both also keep the transition statistics (the kernel's
      whole state vs blackjax's state and its last info: acceptance rate,
      integration steps, divergence, energy), the same outputs on both sides.

    Also returns whether both reach the same final positions (identical
    trajectories; rounding differences can make a long ill-conditioned run diverge).
    """
    kernel, state = mcmc.sampler, mcmc.last_state
    algo = kernel._algorithm
    logdensity_fn = kernel._target.logdensity((), data)  # what the kernel builds from the model arguments

    def wrapped(state):
        return jax.lax.scan(lambda s, _: (kernel.sample(s, (), data), None), state, None, length=n)[0]

    def direct_one(sampler_state, params, key):
        def step(carry, _):
            s, k, _ = carry
            k, k_step = jax.random.split(k)
            s, info = blackjax.nuts.build_kernel()(
                k_step, s, logdensity_fn, params["step_size"], params["inverse_mass_matrix"],
                algo.max_num_doublings,
            )
            return (s, k, (info.acceptance_rate, info.num_integration_steps, info.is_divergent, info.energy)), None

        dtype = sampler_state.position.dtype
        stats = (jnp.zeros((), dtype), jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.zeros((), dtype))
        return jax.lax.scan(step, (sampler_state, key, stats), None, length=n)[0]

    args = (state.sampler_state, state.params, state.rng_key)
    pairs = {
        "position": (
            (jax.jit(lambda s: wrapped(s).z), (state,)),
            (jax.jit(jax.vmap(lambda *a: direct_one(*a)[0].position)), args),
        ),
        "statistics": (
            (jax.jit(wrapped), (state,)),
            (jax.jit(jax.vmap(lambda *a: (lambda c: (c[0], c[2]))(direct_one(*a)))), args),
        ),
    }
    runs = [run for pair in pairs.values() for run in pair]
    outs = [jax.block_until_ready(fn(*a)) for fn, a in runs]  # compile
    z_flat = jax.vmap(lambda z: ravel_pytree(z)[0])(outs[0])
    same = bool(np.allclose(z_flat, outs[1], rtol=1e-4, atol=1e-5))  # identical trajectories (up to rounding)
    times = [[] for _ in runs]
    for _ in range(reps):  # interleaved repeats; the minimum is the least disturbed by other jobs
        for j, (fn, a) in enumerate(runs):
            t = time.perf_counter()
            jax.block_until_ready(fn(*a))
            times[j].append(time.perf_counter() - t)
    times = [min(t) for t in times]
    return {name: (times[2 * j], times[2 * j + 1]) for j, name in enumerate(pairs)}, same


def run_blackjax(key, model, data, chains, warmup, samples, *_):
    logdensity_fn, median, postprocess = model_logdensity(model, **data)

    def one_chain(k):
        k_init, k_warm, k_run = jax.random.split(k, 3)
        z0 = jax.random.uniform(k_init, median.shape, median.dtype, -2.0, 2.0)
        z0 = jnp.where(jnp.isfinite(logdensity_fn(z0)), z0, median)
        warm = blackjax.window_adaptation(blackjax.nuts, logdensity_fn)
        (state, params), info = warm.run(k_warm, z0, warmup)
        nuts = blackjax.nuts(logdensity_fn, **params)

        def step(s, kk):
            s, i = nuts.step(kk, s)
            return s, (s.position, i.num_integration_steps)

        _, (zs, steps) = jax.lax.scan(step, state, jax.random.split(k_run, samples))
        grads = 1 + jnp.sum(info.info.num_integration_steps) + jnp.sum(steps)
        return jax.vmap(postprocess)(zs), grads

    fn = jax.jit(jax.vmap(one_chain))

    def once(k):
        t = time.perf_counter()
        out, grads = jax.block_until_ready(fn(jax.random.split(k, chains)))
        return time.perf_counter() - t, flatten_sites(jax.device_get(out), sample_ndim=2), int(np.sum(grads))

    return once(key), once(jax.random.fold_in(key, 7)), None


def run_numpyro(key, model, data, chains, warmup, samples, *_):
    mcmc = MCMC(
        NUTS(model), num_warmup=warmup, num_samples=samples, num_chains=chains,
        chain_method="vectorized", progress_bar=False,
    )

    def once(k):
        t = time.perf_counter()
        mcmc.warmup(k, collect_warmup=True, extra_fields=("num_steps",), **data)
        warm_grads = int(np.sum(mcmc.get_extra_fields()["num_steps"]))
        mcmc.run(jax.random.fold_in(k, 1), extra_fields=("num_steps",), **data)
        out = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        grads = warm_grads + int(np.sum(mcmc.get_extra_fields()["num_steps"]))
        return time.perf_counter() - t, flatten_sites(jax.device_get(out), sample_ndim=2), grads

    return once(key), once(jax.random.fold_in(key, 7)), None


METHODS = {"blackjax": run_blackjax, "probkit": run_probkit, "numpyro": run_numpyro}


def header(args, cmd: str) -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    affinity = ",".join(map(str, sorted(os.sched_getaffinity(0)))) if hasattr(os, "sched_getaffinity") else "?"
    return (
        f"\n## Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
        f"Command: `{cmd}`  \n"
        f"Machine: {platform.processor() or platform.machine()}, nproc={os.cpu_count()}, CPUs used: {affinity}, "
        f"2-core CPU VM **shared with other jobs** (load average {load} at the start; timings noisy; "
        f"ratios from one process); jax {jax.__version__}, blackjax {blackjax.__version__}  \n"
        f"NUTS, {args.chains} chains vectorized, (warm-up + draws) per chain as in the first column; "
        "wall+compile = first run; wall = second run: direct blackjax reuses its compiled function, while "
        "NumPyro's `MCMC.run` (probkit and numpyro rows) re-compiles its sampling loop on every run "
        "(`progress_bar=False`), so their second-run wall still contains that compilation. "
        "Kernel-level overhead = compiled steady state of `BlackJAXKernel.sample` vs `blackjax.nuts` steps "
        "from the run's last state with the same keys (identical trajectories), minimum of interleaved repeats "
        "(transitions × repeats in the column); *position*: only the final position kept (blackjax's info "
        "discarded, so XLA drops its acceptance/step-count accumulators); *statistics*: both keep the "
        "transition statistics too (the kernel's state vs blackjax's state and info).\n\n"
        "| posterior | method | wall+compile s | wall s | grad evals | min ESS | ESS/s | ESS/grad ×1e3 "
        "| max \\|mean err\\|/sd | wall / blackjax | kernel-level overhead |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run: 2 posteriors, short chains")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--posteriors", default=None,
        help="comma-separated subset of eight_schools, kidiq, diamonds (default: all; --quick: the first two)",
    )
    parser.add_argument(
        "--kernel-reps", type=int, default=40,
        help="repeats of the kernel-level timing (diamonds: 3); many repeats find quiet moments of a shared machine",
    )
    args = parser.parse_args()
    cmd = " ".join(["python benchmarks/blackjax_kernels.py", *sys.argv[1:]])
    args.warmup, args.samples = (300, 300) if args.quick else (1000, 1000)
    posteriors = POSTERIORS[:2] if args.quick else POSTERIORS
    if args.posteriors:
        wanted = args.posteriors.split(",")
        unknown = [w for w in wanted if not any(p.split("-")[0] == w for p in POSTERIORS)]
        if unknown:
            parser.error(f"unknown posteriors {unknown}; choose from {[p.split('-')[0] for p in POSTERIORS]}")
        posteriors = [p for p in POSTERIORS if p.split("-")[0] in wanted]
    # diamonds: NUTS trees of ~2^8-2^10 steps over 5000×24 data; fewer draws and repeats keep the run in minutes
    sizes = {
        name: SLOW.get(name, (args.warmup, args.samples, args.samples, args.kernel_reps)) for name in posteriors
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# BlackJAXKernel benchmark\n\nGoal (issue 11): wrapper overhead ≤ 5 % of wall time against "
            "direct blackjax.\n"
        )
    with RESULTS.open("a") as f:
        f.write(header(args, cmd))
    for name in posteriors:
        post = posteriordb.load(name)
        model, names = get_model(name), list(post.reference)
        walls = {}
        warmup, samples, kernel_steps, kernel_reps = sizes[name]
        for method, run in METHODS.items():
            (t_first, _, _), (t, draws, grads), kernel_times = run(
                jax.random.PRNGKey(0), model, post.data, args.chains, warmup, samples, kernel_steps, kernel_reps
            )
            ess = min_ess(draws, names)
            err = max(abs(np.mean(draws[n]) - post.reference[n].mean()) / post.reference[n].std() for n in names)
            walls[method] = t
            ratio = f"{t / walls['blackjax']:.3f}"
            kernel = "–"
            if kernel_times is not None:
                kernel_times, same = kernel_times
                kernel = "; ".join(
                    f"{what}: {k_pk:.3f} / {k_bj:.3f} s = {100 * (k_pk / k_bj - 1):+.1f} %"
                    for what, (k_pk, k_bj) in kernel_times.items()
                ) + f" ({kernel_steps} × {kernel_reps}{'' if same else ', final positions differ'})"
            row = (
                f"| {name.split('-')[0]} ({warmup}+{samples}) | {method} | {t_first:.2f} | {t:.2f} | {grads} "
                f"| {ess:.0f} | {ess / t:.1f} | {1e3 * ess / grads:.2f} | {err:.3f} | {ratio} | {kernel} |\n"
            )
            print(row, end="", flush=True)
            with RESULTS.open("a") as f:  # at once: an interrupted run keeps the rows it finished
                f.write(row)
    with RESULTS.open("a") as f:
        f.write(f"\nLoad average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}.\n")


if __name__ == "__main__":
    main()
