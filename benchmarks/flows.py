"""Flow guides side by side: probkit AutoFlow vs NumPyro AutoIAFNormal / AutoBNAFNormal vs flowjax.

Same target, steps, optimizer (optax adam with probkit's default warm-up + cosine schedule)
and ELBO (8 reparametrised particles) for every guide, in one process. probkit runs twice:
its default AutoFlow (spline + affine MAF layers) and an affine MAF of the same size as the
NumPyro IAF and flowjax MAF peers (4 layers, 2 hidden layers of width 32). Reports compile time, per-step time after compilation (fastest of several
scanned blocks of steps, the guides interleaved round-robin), final ELBO (4096-particle estimate) and KL = log Z - ELBO where
log Z is known. Rows are appended to benchmarks/results/flows.md as they finish.

    python benchmarks/flows.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import os
import time

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import lax
from jax.scipy.special import logsumexp
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoBNAFNormal, AutoIAFNormal
from numpyro.optim import optax_to_numpyro
from _timing import interleaved

from probkit.flows import maf
from probkit.infer import AutoFlow
from probkit.infer.fit import default_optimizer

OUT = os.path.join(os.path.dirname(__file__), "results", "flows.md")


def u2_logp(z):
    w1 = jnp.sin(2 * jnp.pi * z[..., 0] / 4)
    return -0.5 * ((z[..., 1] - w1) / 0.4) ** 2 - 0.5 * (z[..., 0] / 2.0) ** 2


def u2_model():
    z = numpyro.sample("z", dist.ImproperUniform(dist.constraints.real_vector, (), (2,)))
    numpyro.factor("U", u2_logp(z))


def u2_logz():
    g = jnp.linspace(-8, 8, 801)
    grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1)
    return float(logsumexp(u2_logp(grid)) + 2 * jnp.log(g[1] - g[0]))


def funnel_model(dim=10):
    v = numpyro.sample("v", dist.Normal(0.0, 3.0))
    numpyro.sample("x", dist.Normal(0.0, jnp.exp(v / 2)).expand([dim - 1]).to_event(1))


def eight_schools():
    from probkit.bench import posteriordb
    from probkit.bench.models import get_model

    name = "eight_schools-eight_schools_noncentered"
    data = posteriordb.load(name).data
    model = get_model(name)
    return lambda: model(**data)


def latent_dim(model):
    from probkit.infer import model_logdensity

    return model_logdensity(model)[1].shape[0]


def guides(model):
    d = latent_dim(model)
    return {
        "probkit AutoFlow (default: spline+affine)": lambda: AutoFlow(model, key=jax.random.PRNGKey(1)),
        "probkit AutoFlow (affine MAF 4x32)": lambda: AutoFlow(model, maf(jax.random.PRNGKey(1), d, 4, width=32)),
        "numpyro AutoIAFNormal (4x32)": lambda: AutoIAFNormal(model, num_flows=4, hidden_dims=[32, 32]),
        "numpyro AutoBNAFNormal": lambda: AutoBNAFNormal(model, num_flows=1, hidden_factors=[8, 8]),
    }


def n_params(params):
    return sum(x.size for x in jax.tree.leaves(params))


def _compiled(fn, carry):
    t0 = time.perf_counter()
    fn = fn.lower(carry).compile()
    return fn, time.perf_counter() - t0


def bench_one(model, make_guide, steps, block):
    """Compile a block of SVI steps; return (compile s, run one block, finish -> (ELBO, n params))."""
    guide = make_guide()
    svi = SVI(model, guide, optax_to_numpyro(default_optimizer(steps)), Trace_ELBO(num_particles=8))
    state = svi.init(jax.random.PRNGKey(0))

    def run(s, n):
        return lax.scan(lambda c, _: svi.update(c), s, None, length=n)

    run_block, compile_s = _compiled(jax.jit(lambda s: run(s, block)), state)

    def finish():
        params = svi.get_params(jax.jit(lambda s: run(s, steps))(state)[0])
        elbo = -float(Trace_ELBO(num_particles=4096).loss(jax.random.PRNGKey(9), params, model, guide))
        return elbo, n_params(params)

    return compile_s, lambda: run_block(state), finish


def bench_flowjax(model, steps, block):
    """flowjax masked_autoregressive_flow (affine, 4 layers, 2 hidden layers of width 32) trained by its ElboLoss."""
    import equinox as eqx
    import paramax
    from flowjax.distributions import Normal
    from flowjax.flows import masked_autoregressive_flow
    from flowjax.train.losses import ElboLoss

    from probkit.infer import model_logdensity

    logdensity, init, _ = model_logdensity(model)
    d = init.shape[0]
    flow = masked_autoregressive_flow(
        jax.random.key(1), base_dist=Normal(jnp.zeros(d)), invert=False, flow_layers=4, nn_width=32, nn_depth=2
    )
    params, static = eqx.partition(flow, eqx.is_inexact_array, is_leaf=lambda x: isinstance(x, paramax.NonTrainable))
    loss = ElboLoss(logdensity, num_samples=8)
    opt = default_optimizer(steps)

    def run(carry, n):
        def step(c, k):
            p, s = c
            val, g = eqx.filter_value_and_grad(loss)(p, static, k)
            u, s = opt.update(g, s, p)
            return (eqx.apply_updates(p, u), s), val

        return lax.scan(step, carry, jax.random.split(jax.random.key(0), n))

    carry = (params, opt.init(params))
    run_block, compile_s = _compiled(jax.jit(lambda c: run(c, block)), carry)

    def finish():
        (p, _), _ = jax.jit(lambda c: run(c, steps))(carry)
        fitted = paramax.unwrap(eqx.combine(p, static))
        x, lq = fitted.sample_and_log_prob(jax.random.key(9), (4096,))
        return float(jnp.mean(jax.vmap(logdensity)(x) - lq)), n_params(p)

    return compile_s, lambda: run_block(carry), finish


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    steps, rounds, block = (1000, 3, 200) if a.quick else (5000, 7, 1000)
    targets = [("U2 banana", u2_model, u2_logz()), ("10-D funnel", funnel_model, 0.0)]
    try:
        targets.append(("eight schools", eight_schools(), None))
    except Exception as e:  # noqa: BLE001 -- the bundled models may be missing
        print("eight schools skipped:", e)
    with open(OUT, "a") as f:
        f.write(f"\n## run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `python benchmarks/flows.py"
                f"{' --quick' if a.quick else ''}` ({steps} steps, adam warm-up+cosine peak 2e-3, 8 particles; "
                f"ms/step: fastest of {rounds} blocks of {block} steps, guides interleaved)\n\n"
                f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other jobs.\n\n"
                "| target | guide | params | compile s | ms/step | ELBO | KL | step-time ratio vs probkit |\n"
                "|---|---|---|---|---|---|---|---|\n")
    for tname, model, logz in targets:
        base = None
        benches = {g: bench_one(model, m, steps, block) for g, m in guides(model).items()}
        benches["flowjax MAF (4x32, ElboLoss)"] = bench_flowjax(model, steps, block)
        # per-step time: the fastest of `rounds` blocks, the guides interleaved round-robin so
        # that a slow spell of the machine hits all of them
        times = interleaved({g: b[1] for g, b in benches.items()}, rounds)
        for gname, (c, _, finish) in benches.items():
            t = times[gname] / block
            elbo, npar = finish()
            base = t if base is None else base
            kl = f"{logz - elbo:.3f}" if logz is not None else "-"
            row = f"| {tname} | {gname} | {npar} | {c:.2f} | {1e3 * t:.3f} | {elbo:.3f} | {kl} | {t / base:.2f} |\n"
            print(row, end="", flush=True)
            with open(OUT, "a") as f:
                f.write(row)


if __name__ == "__main__":
    main()
