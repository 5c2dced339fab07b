"""Graph random features vs the exact O(N^3) regularised Laplacian kernel (issue 7).

    python benchmarks/grf.py [--quick]

Measures, side by side in one process: time to GRF features (jit, compile excluded) vs the
exact kernel (dense inverse, jnp/LAPACK), relative Frobenius error at m = 16, 64 for GRF and
q-GRF, time scaling in N at fixed m (sparse features), and kernel k-means accuracy on a
planted-partition graph with GRF vs exact kernel. Rows are appended to
benchmarks/results/grf.md as they finish.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
from _timing import fastest
from scipy.optimize import linear_sum_assignment

from probkit.kernels import (
    RegularizedLaplacianSeries,
    as_graph,
    graph_random_features,
    kernel_kmeans,
    laplacian,
    regularized_laplacian_kernel,
)

OUT = os.path.join(os.path.dirname(__file__), "results", "grf.md")


def emit(line: str) -> None:
    print(line, flush=True)
    with open(OUT, "a") as f:
        f.write(line + "\n")


def exact_kernel(a, sigma):
    lap = laplacian(a)
    inv = jnp.linalg.inv(jnp.eye(lap.shape[0], dtype=lap.dtype) + sigma**2 * lap)
    return inv @ inv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sections", nargs="*", default=["speed", "scaling", "kmeans", "sigma"],
                    choices=["speed", "scaling", "kmeans", "sigma"])
    args = ap.parse_args()
    sizes = [500, 1000, 2000] if args.quick else [1000, 2000, 4000]
    sigma = 1.0
    secs = "" if len(args.sections) == 4 else " --sections " + " ".join(args.sections)
    emit(f"\n## run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
         f"`python benchmarks/grf.py{' --quick' if args.quick else ''}{secs}`")
    emit(f"machine: {platform.processor() or platform.machine()}, nproc={os.cpu_count()}, shared 2-core CPU VM "
         f"(other jobs running; timings noisy), jax {jax.__version__}, float32")
    if "speed" in args.sections:
        speed(sizes, sigma)
    if "scaling" in args.sections:
        scaling(args.quick)
    if "kmeans" in args.sections:
        kmeans(args.quick)
    if "sigma" in args.sections:
        sigma_sweep()


def speed(sizes, sigma):
    emit("\n| graph | N | exact kernel s | GRF m=64 features s | speed-up | rel. err GRF m=16 | GRF m=64 | q-GRF m=16 | q-GRF m=64 |")
    emit("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        g_nx = nx.random_geometric_graph(n, np.sqrt(8.0 / (np.pi * n)), seed=0)  # mean degree ~8
        a = jnp.asarray(nx.to_numpy_array(g_nx), jnp.float32)
        g = as_graph(a)
        t_exact = fastest(jax.jit(lambda a: exact_kernel(a, sigma)), a, repeats=2)[0]
        k = np.asarray(jax.jit(lambda a: exact_kernel(a, sigma))(a))
        errs = {}
        t_grf = None
        for variant in ("grf", "qgrf"):
            for m in (16, 64):
                f = jax.jit(lambda key, g, m=m, v=variant: graph_random_features(key, g, n_walks=m, sigma=sigma, variant=v))
                if variant == "grf" and m == 64:
                    t_grf = fastest(f, jax.random.PRNGKey(0), g, repeats=2)[0]
                phi, phi2 = f(jax.random.PRNGKey(1), g)
                kh = np.asarray(phi @ phi2.T)
                errs[(variant, m)] = np.linalg.norm(kh - k) / np.linalg.norm(k)
        emit(f"| RGG | {n} | {t_exact:.3f} | {t_grf:.3f} | {t_exact / t_grf:.1f}x | {errs[('grf', 16)]:.3f} | "
             f"{errs[('grf', 64)]:.3f} | {errs[('qgrf', 16)]:.3f} | {errs[('qgrf', 64)]:.3f} |")



def scaling(quick):
    emit("\nScaling, sparse features (BCOO), m = 16, grid graphs (bounded degree), compile excluded, "
         "best of 15:\n")
    emit("| N | time s | time(N)/time(N/2) |")
    emit("|---|---|---|")
    prev, ns, ts = None, [], []
    for side in ([32, 45, 64] if quick else [32, 45, 64, 90, 128, 181, 256]):
        g = as_graph(nx.grid_2d_graph(side, side))
        n = g.n_nodes
        f = jax.jit(lambda key, g: graph_random_features(key, g, n_walks=16, dense=False, max_walk_length=24))
        t = fastest(f, jax.random.PRNGKey(0), g, repeats=15)[0]
        emit(f"| {n} | {t:.3f} | {'' if prev is None else f'{t / prev:.2f}'} |")
        prev = t
        ns.append(n)
        ts.append(t)
    slope = np.polyfit(np.log(ns), np.log(ts), 1)[0]
    emit(f"\nLeast-squares exponent of time ~ N^a over all sizes: a = {slope:.2f} (linear: 1).")


class _UncheckedSeries(RegularizedLaplacianSeries):
    """The same series without a growth rate: bypasses the p_halt check (the old behaviour)."""

    def growth_rate(self):
        return None


def sigma_sweep():
    """Rel. Frobenius error of Phi Phi'^T vs the exact kernel across sigma: default p_halt vs 0.5."""
    emit("\nError across sigma (issue 24.5), m = 64, GRF, rel. Frobenius error of Phi Phi'^T; default "
         "p_halt = min(0.5, 1/(1+sigma^2)) vs the old default 0.5 (infinite variance for sigma > 1):\n")
    emit("| graph | sigma | default p_halt | rel. err (default) | rel. err (p_halt 0.5) |")
    emit("|---|---|---|---|---|")
    graphs = {"grid 30x30": nx.grid_2d_graph(30, 30), "G(400, 0.02)": nx.gnp_random_graph(400, 0.02, seed=0)}
    for name, g_nx in graphs.items():
        g = as_graph(np.asarray(nx.to_numpy_array(g_nx), np.float32))
        for sigma in (0.5, 1.0, 2.0, 4.0):
            k = np.asarray(regularized_laplacian_kernel(g, sigma))

            def err(**kw):
                phi, phi2 = graph_random_features(jax.random.PRNGKey(0), g, n_walks=64, **kw)
                return np.linalg.norm(np.asarray(phi @ phi2.T) - k) / np.linalg.norm(k)

            p = min(0.5, 1.0 / (1.0 + sigma**2))
            emit(f"| {name} | {sigma} | {p:.3f} | {err(sigma=sigma):.3f} | "
                 f"{err(kernel=_UncheckedSeries(sigma=sigma), p_halt=0.5):.3f} |")


def kmeans(quick):
    # sigma = 3: s = sigma^2/(1+sigma^2) = 0.9; the estimator's variance is finite only for
    # p_halt < 1 - s^2 = 0.19 (p_halt = 0.5 gave rel. Frobenius error 3.3, k-means accuracy 0.70).
    # The default p_halt = min(0.5, 1/(1 + sigma^2)) = 0.1 (graph_random_features docstring).
    p_halt = 1.0 / (1.0 + 3.0**2)
    emit(f"\nKernel k-means on a planted partition graph (4 blocks, p_in 0.3, p_out 0.01), sigma = 3, "
         f"default p_halt = {p_halt:.2f}, accuracy (Hungarian matching):\n")
    blocks = 50 if quick else 100
    g_nx = nx.planted_partition_graph(4, blocks, 0.3, 0.01, seed=0)
    truth = np.repeat(np.arange(4), blocks)
    a = jnp.asarray(nx.to_numpy_array(g_nx), jnp.float32)

    def acc(labels):
        c = np.zeros((4, 4))
        np.add.at(c, (truth, np.asarray(labels)), 1)
        r, col = linear_sum_assignment(-c)
        return c[r, col].sum() / len(truth)

    k = exact_kernel(a, 3.0)
    a_exact = acc(kernel_kmeans(jax.random.PRNGKey(0), (k, jnp.eye(k.shape[0])), 4).labels)
    row = f"exact kernel: {a_exact:.3f}"
    for variant in ("grf", "qgrf"):
        phi = graph_random_features(jax.random.PRNGKey(1), a, n_walks=64, sigma=3.0, variant=variant)
        err = float(jnp.linalg.norm(phi[0] @ phi[1].T - k) / jnp.linalg.norm(k))
        row += f"; {variant} m=64: {acc(kernel_kmeans(jax.random.PRNGKey(0), phi, 4).labels):.3f} (rel. err {err:.3f})"
    emit(row)


if __name__ == "__main__":
    main()
