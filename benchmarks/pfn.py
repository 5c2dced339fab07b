"""PFN benchmark (issue 5): pretrained PFN vs oracle GP vs NUTS-marginalised GP.

Fresh datasets from the prior of ``probkit.pfn.pretrained("gp-rbf-1d")`` (1-D, 2-50 train
points, 20 queries each). Mean query NLL (nats) for

* PFN: one forward pass of the pretrained model;
* oracle: exact GP posterior predictive with each dataset's true hyperparameters, and the
  oracle's mass per bucket on the PFN's borders (the lowest NLL its head can reach);
* NUTS-GP: NumPyro NUTS over (lengthscale, outputscale, noise) with the same hyperpriors
  and the exact GP marginal likelihood; the predictive is the mixture over posterior draws.

plus wall time per dataset for PFN and NUTS-GP (same process). NUTS-GP is run on the first
``--n-nuts`` datasets only (CPU budget); PFN and oracle NLLs are also given on that subset,
and all three differences by train-set size (where the PFN loses to NUTS-GP, and how far
even the exact Bayesian predictive stays from the oracle that knows the hyperparameters).
Results are appended to ``benchmarks/results/pfn.md`` as each part finishes.

    python benchmarks/pfn.py            # 500 datasets, NUTS on 100
    python benchmarks/pfn.py --quick    # 100 datasets, NUTS on 8
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402
from jax.scipy.stats import norm  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

from probkit.pfn import FullSupportBarDistribution, pretrained, pretrained_prior  # noqa: E402
from probkit.pfn.gp_prior import gp_covariance  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "pfn.md")
MAX_TRAIN, N_QUERY = 50, 20


def append(text: str) -> None:
    with open(RESULTS, "a") as f:
        f.write(text + "\n")
    print(text, flush=True)


def gaussian_nll(y, mean, var):
    return 0.5 * (jnp.log(2 * jnp.pi * var) + (y - mean) ** 2 / var)


def make_datasets(key, n):
    prior = pretrained_prior("gp-rbf-1d")
    k_data, k_n = jax.random.split(key)
    x, y, theta = prior.sample_with_hyperparameters(k_data, n, MAX_TRAIN + N_QUERY)
    n_train = np.asarray(jax.random.randint(k_n, (n,), 2, MAX_TRAIN + 1))
    mask = np.arange(MAX_TRAIN)[None, :] < n_train[:, None]
    return prior, x, y, theta, n_train, jnp.asarray(mask)


def gp_model(prior, x, y, mask):
    """NumPyro GP with the pretrained prior's hyperpriors; padded points removed exactly."""
    hp = prior.hyperprior
    ls = numpyro.sample("lengthscale", hp["lengthscale"])
    os_ = numpyro.sample("outputscale", hp["outputscale"])
    sn = numpyro.sample("noise", hp["noise"])
    both = mask[:, None] & mask[None, :]
    k = jnp.where(both, gp_covariance("rbf", x, x, ls, os_), 0.0)
    k = k + jnp.diag(jnp.where(mask, sn**2 + prior.jitter, 1.0))
    chol = jnp.linalg.cholesky(k)
    yv = jnp.where(mask, y, 0.0)
    a = jax.scipy.linalg.solve_triangular(chol, yv, lower=True)
    n = jnp.sum(mask)
    ll = -0.5 * jnp.sum(a**2) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * n * jnp.log(2 * jnp.pi)
    numpyro.factor("marginal_likelihood", ll)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-datasets", type=int, default=None)
    ap.add_argument("--n-nuts", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=12345)
    args = ap.parse_args(argv)
    n_data = args.n_datasets or (100 if args.quick else 500)
    n_nuts = args.n_nuts or (8 if args.quick else 100)

    cpu = platform.processor() or platform.machine()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    append(
        f"\n## PFN benchmark run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Command: `python benchmarks/pfn.py {'--quick ' if args.quick else ''}"
        f"--n-datasets {n_data} --n-nuts {n_nuts} --warmup {args.warmup} --samples {args.samples}`  \n"
        f"Machine: {cpu}, nproc={nproc}, a 2-core CPU VM shared with other jobs (timings noisy; "
        f"ratios are from one process). jax {jax.__version__}, numpyro {numpyro.__version__}.  \n"
        f"Datasets: {n_data} fresh draws from the gp-rbf-1d prior, 2-{MAX_TRAIN} train points "
        f"(uniform), {N_QUERY} queries each; NUTS-GP on the first {n_nuts} "
        f"({args.warmup} warm-up + {args.samples} draws, 1 chain).\n"
    )

    prior, x, y, theta, n_train, mask = make_datasets(jax.random.PRNGKey(args.seed), n_data)
    x_tr, y_tr = x[:, :MAX_TRAIN], y[:, :MAX_TRAIN]
    x_q, y_q = x[:, MAX_TRAIN:], y[:, MAX_TRAIN:]

    # ---- PFN --------------------------------------------------------------------------
    pfn = pretrained("gp-rbf-1d")
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    pred = pfn(f32(x_tr), f32(y_tr), f32(x_q), train_mask=mask)
    pfn_nll = -np.asarray(pred.log_prob(f32(y_q)))  # (N, 20)
    one = lambda i: pfn(f32(x_tr[i]), f32(y_tr[i]), f32(x_q[i]), train_mask=mask[i]).logits  # noqa: E731
    one(0).block_until_ready()
    n_time = min(50, n_data)
    t0 = time.perf_counter()
    for i in range(n_time):
        one(i).block_until_ready()
    pfn_time = (time.perf_counter() - t0) / n_time
    t0 = time.perf_counter()
    pfn(f32(x_tr), f32(y_tr), f32(x_q), train_mask=mask).logits.block_until_ready()
    pfn_batch_time = (time.perf_counter() - t0) / n_data

    # ---- oracle -------------------------------------------------------------------------
    mean, var = jax.vmap(
        lambda a, b, c, m, t: prior.predictive(a, b, c, train_mask=m, **t)
    )(x_tr, y_tr, x_q, mask, theta)
    oracle_nll = np.asarray(gaussian_nll(y_q, mean, var))
    # the oracle's mass per bucket of the PFN's (full-support) head: the best such a head can do
    below = norm.cdf((jnp.asarray(pfn.borders[1:-1], mean.dtype) - mean[..., None]) / jnp.sqrt(var)[..., None])
    edges = jnp.concatenate([jnp.zeros_like(below[..., :1]), below, jnp.ones_like(below[..., :1])], -1)
    masses = jnp.maximum(jnp.diff(edges, axis=-1), 1e-300)
    binned = FullSupportBarDistribution(jnp.asarray(pfn.borders, mean.dtype), jnp.log(masses))
    floor_nll = -np.asarray(binned.log_prob(y_q))
    append(
        f"| arm | datasets | mean query NLL (nats) | s.e. | time per dataset |\n|---|---|---|---|---|\n"
        f"| PFN (pretrained) | {n_data} | {pfn_nll.mean():.4f} | {pfn_nll.mean(1).std() / np.sqrt(n_data):.4f} "
        f"| {pfn_time * 1e3:.2f} ms (one dataset per call); {pfn_batch_time * 1e3:.3f} ms (batched) |\n"
        f"| oracle GP (true hyperparameters) | {n_data} | {oracle_nll.mean():.4f} | "
        f"{oracle_nll.mean(1).std() / np.sqrt(n_data):.4f} | - |\n"
        f"| oracle on the PFN's {pfn.n_buckets} buckets (the floor of its head) | {n_data} | "
        f"{floor_nll.mean():.4f} | {floor_nll.mean(1).std() / np.sqrt(n_data):.4f} | - |\n"
        f"PFN - oracle on all {n_data}: {pfn_nll.mean() - oracle_nll.mean():+.4f} nats "
        f"(paired s.e. {(pfn_nll - oracle_nll).mean(1).std() / np.sqrt(n_data):.4f})\n"
    )

    # ---- NUTS-GP -------------------------------------------------------------------------
    kernel = NUTS(lambda a, b, m: gp_model(prior, a, b, m))
    mcmc = MCMC(kernel, num_warmup=args.warmup, num_samples=args.samples, progress_bar=False,
                jit_model_args=True)
    pred_fn = jax.jit(jax.vmap(
        lambda a, b, c, m, ls, os_, sn: prior.predictive(a, b, c, train_mask=m, lengthscale=ls,
                                                          outputscale=os_, noise=sn),
        in_axes=(None, None, None, None, 0, 0, 0),
    ))
    nuts_nll, times = [], []
    for i in range(n_nuts):
        t0 = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(1000 + i), x_tr[i], y_tr[i], mask[i])
        s = mcmc.get_samples()
        m_s, v_s = pred_fn(x_tr[i], y_tr[i], x_q[i], mask[i], s["lengthscale"], s["outputscale"], s["noise"])
        lp = -gaussian_nll(y_q[i][None], m_s, v_s)  # (S, 20)
        nll = -(logsumexp(lp, axis=0) - jnp.log(lp.shape[0]))
        nll = np.asarray(nll)
        times.append(time.perf_counter() - t0)
        nuts_nll.append(nll)
    nuts_nll = np.stack(nuts_nll)
    t_nuts = float(np.mean(times[1:])) if n_nuts > 1 else times[0]
    sub = slice(0, n_nuts)
    d_nuts = (pfn_nll[sub] - nuts_nll).mean(1)
    d_orc = (pfn_nll[sub] - oracle_nll[sub]).mean(1)
    append(
        f"On the NUTS subset ({n_nuts} datasets):\n\n"
        f"| arm | mean query NLL | time per dataset |\n|---|---|---|\n"
        f"| PFN | {pfn_nll[sub].mean():.4f} | {pfn_time * 1e3:.2f} ms |\n"
        f"| NUTS-GP (numpyro) | {nuts_nll.mean():.4f} | {t_nuts:.2f} s (first, with compile: {times[0]:.2f} s) |\n"
        f"| oracle GP | {oracle_nll[sub].mean():.4f} | - |\n\n"
        f"- PFN - NUTS-GP: {d_nuts.mean():+.4f} nats (paired s.e. {d_nuts.std() / np.sqrt(n_nuts):.4f}); "
        f"goal <= +0.02: {'met' if d_nuts.mean() <= 0.02 else 'NOT met'}\n"
        f"- PFN - oracle (all {n_data}): {pfn_nll.mean() - oracle_nll.mean():+.4f} nats; goal within 0.1: "
        f"{'met' if abs(pfn_nll.mean() - oracle_nll.mean()) <= 0.1 else 'NOT met'}; on the subset {d_orc.mean():+.4f}\n"
        f"- NUTS-GP - oracle on the subset: {(nuts_nll - oracle_nll[sub]).mean():+.4f} nats\n"
        f"- speed-up NUTS-GP / PFN per dataset: {t_nuts / pfn_time:.0f}x (one dataset per call), "
        f"{t_nuts / pfn_batch_time:.0f}x (batched PFN); goal >= 200x: "
        f"{'met' if t_nuts / pfn_time >= 200 else 'NOT met'}\n"
    )
    rows = ["| train points | datasets (all / NUTS subset) | PFN - oracle | NUTS-GP - oracle | PFN - NUTS-GP |",
            "|---|---|---|---|---|"]
    per_pfn, per_orc, per_nuts = pfn_nll.mean(1), oracle_nll.mean(1), nuts_nll.mean(1)
    for lo, hi in ((2, 5), (6, 10), (11, 20), (21, 35), (36, MAX_TRAIN)):
        a = (n_train >= lo) & (n_train <= hi)
        b = a[sub]
        d = per_pfn[sub][b] - per_nuts[b]
        nuts_cells = (f"{(per_nuts[b] - per_orc[sub][b]).mean():+.4f} | {d.mean():+.4f} ± "
                      f"{d.std() / np.sqrt(b.sum()):.4f}") if b.any() else "- | -"
        rows.append(f"| {lo}-{hi} | {a.sum()} / {b.sum()} | {(per_pfn - per_orc)[a].mean():+.4f} | {nuts_cells} |")
    append("By train-set size (mean query NLL differences, nats; ± is the paired s.e.):\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
