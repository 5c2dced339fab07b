"""SQUEAK / DISQUEAK vs exact RLS, uniform Nystrom and scikit-learn's Nystroem (issue 6).

    python benchmarks/squeak.py [--quick] [--sizes 2000 4000 ...] [--exact-max 8000] [--error-max 4000]
                                [--capacity 1024] [--gp-n 20000] [--skip-gp] [--skip-scaling]
                                [--gradient-sizes 1000 2000 4000 8000]

In one process (4 simulated CPU devices for DISQUEAK): for each n, SQUEAK time (jit, compile
excluded) and peak memory (XLA's compiled memory analysis: arguments + outputs + temporaries),
DISQUEAK on 4 devices, exact ridge leverage scores (eigendecomposition, up to --exact-max),
uniform Nystrom and scikit-learn's ``Nystroem`` at SQUEAK's dictionary size; the exact
regularised error ||(K+gI)^-1/2 (K - K~)(K+gI)^-1/2||_2 of each (up to --error-max: each error
needs two float64 eigendecompositions of an n x n matrix). Then a
NumPyro GP regression with SQUEAK Nystrom features (NUTS over lengthscale, variance, noise)
vs an exact GP on a subset, and (``--gradient-sizes``) the cost of one log-likelihood gradient
of the low-rank GP (compact and padded SQUEAK dictionary) side by side with the exact GP on
the same n. Rows are appended to benchmarks/results/squeak.md as they finish.

The ridge grows with n, gamma = n / 2000 (kernel ridge regression's gamma = n * lambda at fixed
lambda; ``--gamma`` fixes it instead): the eigenvalues of K grow like n, so at a fixed gamma the
effective dimension, hence every leverage-score dictionary, grows with n and no method can be
linear in n; at gamma = n * lambda the statistical problem, and d_eff, stay put as n grows.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _timing import fastest  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

from probkit.kernels import (  # noqa: E402
    RBF,
    disqueak,
    nystrom,
    regularized_error,
    ridge_leverage_scores,
    squeak,
    uniform_dictionary,
)
from probkit.kernels._datasets import clustered  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results", "squeak.md")
EPS, LS, D = 0.25, 2.0, 3


def emit(line: str) -> None:
    print(line, flush=True)
    with open(OUT, "a") as f:
        f.write(line + "\n")


def peak_bytes(fn, *args) -> int:
    m = jax.jit(fn).lower(*args).compile().memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def sklearn_error(X, K, m, seed, gamma):
    from sklearn.kernel_approximation import Nystroem

    ny = Nystroem(kernel="rbf", gamma=1.0 / (2 * LS**2), n_components=m, random_state=seed)
    Z = ny.fit_transform(np.asarray(X, np.float64))
    return float(regularized_error(K, jnp.asarray(Z @ Z.T, K.dtype), gamma))


def scaling(sizes, exact_max, error_max, cap, gamma_fixed=None, lam=1.0 / 2000, qbar=None):
    """``gamma = lam * n`` (kernel ridge regression's scaling, d_eff bounded in n) unless ``gamma_fixed``.

    With the default ``qbar`` (which grows like log n) a step costs about (m + c)^3 for a
    dictionary of m points and chunks of c, and m grows with qbar; a fixed ``qbar`` isolates
    the dependence on n.
    """
    k = RBF(lengthscale=LS)
    mesh = Mesh(np.array(jax.devices()[:4]), ("data",))
    emit(f"\nSQUEAK / DISQUEAK, clustered data d = {D} (4 big + 6 tiny clusters), RBF(lengthscale {LS}), "
         f"gamma = {f'{gamma_fixed}' if gamma_fixed else f'n * {lam:g} (n/{1 / lam:g})'}, eps = {EPS} (SQUEAK) / {EPS} (DISQUEAK), {'default qbar' if qbar is None else f'qbar = {qbar}'}, capacity {cap}, chunk {cap // 3}, float32. "
         "SQUEAK s: fastest of 5 runs, DISQUEAK of 3, exact RLS one run (after compilation). "
         "Errors are the exact regularised error ||(K+gI)^-1/2 (K-K~)(K+gI)^-1/2||_2 (float64); "
         "uniform and sklearn at SQUEAK's dictionary size.\n")
    emit("| n | qbar | dict size | SQUEAK s | t(n)/t(n/2) | peak MiB | n x n f32 MiB | peak/(n^2 f32) | "
         "DISQUEAK 4 dev s | exact RLS s | exact/SQUEAK | err SQUEAK | err DISQUEAK | err uniform | err sklearn |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    times = []
    for n in sizes:
        GAMMA = gamma_fixed or lam * n
        X, _ = clustered(jax.random.PRNGKey(1), n, D)
        key = jax.random.PRNGKey(0)
        run_sq = lambda key, X: squeak(key, X, k, gamma=GAMMA, eps=EPS, qbar=qbar, max_dict_size=cap, chunk_size=cap // 3)  # noqa: E731
        sq = jax.jit(run_sq)
        t_sq, dic = fastest(sq, key, X, repeats=5)
        mem = peak_bytes(run_sq, key, X)
        dis = lambda key, X: disqueak(key, X, k, gamma=GAMMA, eps=EPS, qbar=qbar, mesh=mesh, max_dict_size=cap, chunk_size=cap // 3)
        t_dis, ddic = fastest(dis, key, X, repeats=3)
        size = int(dic.size)
        nn = n * n * 4
        row = (f"| {n} | {dic.qbar} | {size} | {t_sq:.2f} | {f'{t_sq / times[-1]:.2f}' if times else ''} | "
               f"{mem / 2**20:.1f} | {nn / 2**20:.0f} | {mem / nn:.3f} | {t_dis:.2f} |")
        times.append(t_sq)
        if n <= exact_max:
            t_ex, _ = fastest(jax.jit(lambda X: ridge_leverage_scores(k.gram(X), GAMMA)), X, repeats=1)
            row += f" {t_ex:.2f} | {t_ex / t_sq:.1f}x |"
        else:
            row += " | |"
        if n <= error_max:
            with jax.enable_x64(True):
                X64 = jnp.asarray(X, jnp.float64)
                K = k.gram(X64)

                def err(d):
                    d = jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, d)
                    return float(regularized_error(K, nystrom(X64, d, k).gram(), GAMMA))

                e_sq, e_dis = err(dic), err(ddic)
                e_un = err(uniform_dictionary(jax.random.PRNGKey(2), X64, size))
                e_sk = sklearn_error(X64, K, size, 2, GAMMA)
            row += f" {e_sq:.3f} | {e_dis:.3f} | {e_un:.3f} | {e_sk:.3f} |"
        else:
            row += " | | | |"
        emit(row)
    if len(times) > 2:
        slope = np.polyfit(np.log(sizes[1:]), np.log(times[1:]), 1)[0]
        emit(f"\nSQUEAK time ~ n^{slope:.2f} (least-squares fit over n = {sizes[1]}..{sizes[-1]})")


def gp_benchmark(n, n_exact, gamma, qbar, seed=0, warmup=150, samples=150, exact_steps=None, which="both"):
    """NUTS on a GP regression with SQUEAK Nystrom features vs an exact GP on a subset.

    The dictionary is sampled once (pilot lengthscale 0.7) with ridge ``gamma`` and ``qbar``
    copies per point; the model rebuilds the Nystrom features from it for every sampled
    lengthscale and variance, so each gradient costs O(n m^2) for a dictionary of size m.
    """
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    rng = np.random.default_rng(seed)
    f = lambda x: np.sin(3 * x[:, 0]) + 0.5 * np.cos(2 * x[:, 1]) + 0.3 * x[:, 2]
    Xall = rng.uniform(-2, 2, size=(n + 2000, 3)).astype(np.float32)
    yall = (f(Xall) + 0.1 * rng.normal(size=len(Xall))).astype(np.float32)
    X, y, Xt, yt = jnp.asarray(Xall[:n]), jnp.asarray(yall[:n]), jnp.asarray(Xall[n:]), yall[n:]
    k0 = RBF(lengthscale=0.7)
    t0 = time.perf_counter()
    dic = squeak(jax.random.PRNGKey(seed), X, k0, gamma=gamma, eps=0.25, qbar=qbar, max_dict_size=1024)
    t_dic = time.perf_counter() - t0  # compact by default

    def model(X, y):
        ls = numpyro.sample("lengthscale", dist.LogNormal(0.0, 1.0))
        var = numpyro.sample("variance", dist.LogNormal(0.0, 1.0))
        noise = numpyro.sample("noise", dist.LogNormal(-2.0, 1.0))
        ny = nystrom(X, dic, RBF(lengthscale=ls, variance=var))
        numpyro.sample("y", ny.gp_distribution(noise**2), obs=y)

    def run(model, X, y, steps=None):
        nw, ns = (warmup, samples) if steps is None else (steps, steps)
        mcmc = MCMC(NUTS(model, max_tree_depth=6), num_warmup=nw, num_samples=ns, progress_bar=False)
        t = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed + 1), X, y, extra_fields=("num_steps",))
        draws = jax.block_until_ready(mcmc.get_samples())  # the run is dispatched asynchronously
        t = time.perf_counter() - t
        # num_steps covers the kept draws only; warm-up gradients are estimated at the same rate.
        grads = float(np.sum(mcmc.get_extra_fields()["num_steps"])) * (nw + ns) / ns
        return draws, t, grads

    Xs, ys = X[:n_exact], y[:n_exact]

    def exact_model(X, y):
        ls = numpyro.sample("lengthscale", dist.LogNormal(0.0, 1.0))
        var = numpyro.sample("variance", dist.LogNormal(0.0, 1.0))
        noise = numpyro.sample("noise", dist.LogNormal(-2.0, 1.0))
        K = RBF(lengthscale=ls, variance=var).gram(X) + (noise**2 + 1e-5) * jnp.eye(X.shape[0])
        numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(X.shape[0]), K), obs=y)

    def pred_sq(ls, var, noise):
        return nystrom(X, dic, RBF(lengthscale=ls, variance=var)).gp_predict(y, noise**2, Xt)[0]

    def pred_ex(ls, var, noise):
        kk = RBF(lengthscale=ls, variance=var)
        A = kk.gram(Xs) + (noise**2 + 1e-5) * jnp.eye(n_exact)
        return kk.gram(Xt, Xs) @ jnp.linalg.solve(A, ys)

    def row(label, features, dict_s, model, X, y, steps, predict):
        """NUTS, then the posterior-mean prediction over all draws; one table row."""
        post, t_nuts, grads = run(model, X, y, steps)
        t = time.perf_counter()
        mean = jax.block_until_ready(
            jnp.mean(jax.lax.map(lambda p: predict(*p), (post["lengthscale"], post["variance"], post["noise"])), 0))
        t_pred = time.perf_counter() - t
        rmse = float(np.sqrt(np.mean((np.asarray(mean) - yt) ** 2)))
        emit(f"| {label} | {X.shape[0]} | {features} | {dict_s} | {t_nuts:.1f} | {grads:.0f} | "
             f"{1e3 * t_nuts / grads:.1f} | {t_pred:.1f} | {rmse:.4f} |")

    ex = "the same" if exact_steps is None else f"{exact_steps} + {exact_steps} for the exact GP"
    emit(f"\nNumPyro GP regression, f(x) = sin 3x1 + 0.5 cos 2x2 + 0.3 x3 + N(0, 0.1^2), x ~ U[-2,2]^3, "
         f"2000 test points; NUTS {warmup} warm-up + {samples} draws ({ex}), max tree depth 6, "
         "lengthscale/variance/noise sampled; gradients = leapfrog steps (warm-up estimated at the "
         "sampling rate):\n")
    emit("| model | n train | features | dictionary s | NUTS s (incl. compile) | gradients | ms / gradient | prediction s (all draws) | test RMSE (posterior mean) |")
    emit("|---|---|---|---|---|---|---|---|---|")
    if which in ("squeak", "both"):
        row(f"SQUEAK Nystrom low-rank GP (gamma {gamma}, eps 0.25, qbar {qbar})", int(dic.size), f"{t_dic:.1f}",
            model, X, y, None, pred_sq)
    if which in ("exact", "both"):
        row("exact GP (subset)", "-", "-", exact_model, Xs, ys, exact_steps, pred_ex)


def gradient_cost(sizes, gamma, qbar, capacity=1024, seed=0):
    """ms per log-likelihood gradient (lengthscale, variance, noise): low-rank vs exact GP.

    Same data as :func:`gp_benchmark`. Low-rank: Nystrom features rebuilt from the SQUEAK
    dictionary and the Woodbury likelihood, O(n m^2), with the default compact dictionary
    and with the padded one (``compact=False``, ``capacity`` slots). Exact: the n x n gram
    and its Cholesky factor, O(n^3). jit, compile excluded, fastest of 3 (interleaved).
    """
    import numpyro.distributions as dist
    from _timing import interleaved

    emit(f"\nLog-likelihood gradient cost, low-rank (SQUEAK Nystrom, gamma {gamma}, eps 0.25, qbar {qbar}) "
         f"vs exact GP on the same n (jit, compile excluded, fastest of 3 round-robin, float32):\n")
    emit("| n | dictionary m (capacity) | low-rank compact ms | low-rank padded ms | exact ms | exact / compact | padded / compact |")
    emit("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(seed)
    f = lambda x: np.sin(3 * x[:, 0]) + 0.5 * np.cos(2 * x[:, 1]) + 0.3 * x[:, 2]
    for n in sizes:
        Xn = rng.uniform(-2, 2, size=(n, 3)).astype(np.float32)
        X = jnp.asarray(Xn)
        y = jnp.asarray((f(Xn) + 0.1 * rng.normal(size=n)).astype(np.float32))
        padded = squeak(jax.random.PRNGKey(seed), X, RBF(lengthscale=0.7), gamma=gamma, eps=0.25,
                        qbar=qbar, max_dict_size=capacity, compact=False)
        dic = squeak(jax.random.PRNGKey(seed), X, RBF(lengthscale=0.7), gamma=gamma, eps=0.25,
                     qbar=qbar, max_dict_size=capacity)
        theta = jnp.log(jnp.array([0.7, 1.0, 0.1], jnp.float32))

        def lowrank(d):
            def ll(t):
                ls, var, noise = jnp.exp(t)
                return nystrom(X, d, RBF(lengthscale=ls, variance=var)).gp_log_likelihood(y, noise**2)
            g = jax.jit(jax.value_and_grad(ll))
            return lambda: g(theta)

        def exact_ll(t):
            ls, var, noise = jnp.exp(t)
            K = RBF(lengthscale=ls, variance=var).gram(X) + (noise**2 + 1e-5) * jnp.eye(n)
            return dist.MultivariateNormal(jnp.zeros(n), K).log_prob(y)

        g_exact = jax.jit(jax.value_and_grad(exact_ll))
        t = interleaved({"compact": lowrank(dic), "padded": lowrank(padded), "exact": lambda: g_exact(theta)}, 3)
        emit(f"| {n} | {int(dic.size)} ({padded.capacity}) | {1e3 * t['compact']:.1f} | {1e3 * t['padded']:.1f} | "
             f"{1e3 * t['exact']:.1f} | {t['exact'] / t['compact']:.1f} | {t['padded'] / t['compact']:.1f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="*")
    ap.add_argument("--exact-max", type=int)
    ap.add_argument("--error-max", type=int)
    ap.add_argument("--gamma", type=float, help="fixed ridge (default: gamma = n / 2000, see scaling())")
    ap.add_argument("--qbar", type=int, help="fixed copies per point in the scaling table (default: default_qbar(n, eps))")
    ap.add_argument("--gp-n", type=int)
    ap.add_argument("--gp-exact-n", type=int)
    ap.add_argument("--capacity", type=int, default=1024)
    ap.add_argument("--gp-steps", type=int, help="NUTS warm-up and draws each")
    ap.add_argument("--gp-exact-steps", type=int, help="NUTS warm-up and draws each for the exact GP")
    ap.add_argument("--gp-gamma", type=float, default=3.0, help="SQUEAK ridge for the GP dictionary")
    ap.add_argument("--gp-qbar", type=int, default=2, help="SQUEAK copies per point for the GP dictionary")
    ap.add_argument("--gp-which", choices=("both", "squeak", "exact"), default="both",
                    help="which GP to run (the dictionary is always built)")
    ap.add_argument("--gradient-sizes", type=int, nargs="*",
                    help="only the gradient-cost table (low-rank vs exact GP) at these n")
    ap.add_argument("--skip-gp", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    args = ap.parse_args()
    sizes = args.sizes or ([1000, 2000, 4000] if args.quick else [2000, 4000, 8000, 16000, 32000, 64000])
    exact_max = args.exact_max or (2000 if args.quick else 8000)
    error_max = args.error_max or (2000 if args.quick else 4000)
    cmd = "python benchmarks/squeak.py" + (" --quick" if args.quick else "")
    for name in ("sizes", "exact_max", "error_max", "gamma", "qbar", "capacity", "gp_n", "gp_exact_n", "gp_steps", "gp_exact_steps", "gp_gamma", "gp_qbar"):
        v = getattr(args, name)
        if v:
            cmd += f" --{name.replace('_', '-')} " + (" ".join(map(str, v)) if isinstance(v, list) else str(v))
    cmd += f" --gp-which {args.gp_which}" * (args.gp_which != "both")
    cmd += " --skip-scaling" * args.skip_scaling + " --skip-gp" * args.skip_gp
    if args.gradient_sizes:
        cmd += " --gradient-sizes " + " ".join(map(str, args.gradient_sizes))
    emit(f"\n## run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{cmd}`")
    emit(f"machine: {platform.machine()}, nproc={os.cpu_count()}, 2-core CPU VM shared with other jobs "
         f"(timings noisy), jax {jax.__version__}, 4 simulated CPU devices")
    if args.gradient_sizes:
        gradient_cost(args.gradient_sizes, args.gp_gamma, args.gp_qbar, args.capacity)
        return
    if not args.skip_scaling:
        scaling(sizes, exact_max, error_max, args.capacity, gamma_fixed=args.gamma, qbar=args.qbar)
    if not args.skip_gp:
        gp_benchmark(args.gp_n or (2000 if args.quick else 20000), args.gp_exact_n or (300 if args.quick else 3000),
                     args.gp_gamma, args.gp_qbar,
                     warmup=args.gp_steps or (100 if args.quick else 300),
                     samples=args.gp_steps or (100 if args.quick else 300),
                     exact_steps=args.gp_exact_steps, which=args.gp_which)


if __name__ == "__main__":
    main()
