# %% [markdown]
# # probkit in one page
#
# probkit is a JAX library for probabilistic inference and kernel methods:
# every model is an Equinox module, every routine is `jit`-compatible, and
# everything composes with NumPyro. This page runs one small example of each
# part, each with a number it checks; the other notebooks go deeper.
#
# | part | what | notebook |
# |---|---|---|
# | `probkit.flows`, `probkit.infer.AutoFlow` | normalizing flows, flow guides for NumPyro | 01 |
# | `probkit.mixflows`, `AutoMixFlow` | mixed variational flows on Hamiltonian dynamics | 02 |
# | `probkit.pfn` | prior-data fitted networks (Bayesian prediction in one forward pass) | 03 |
# | `probkit.kernels` (SQUEAK, Nyström) | leverage-score Nyström kernel approximation | 04 |
# | `probkit.kernels` (graph random features) | unbiased sub-cubic graph kernels | 05 |
# | `probkit.ot` | sliced Wasserstein with control variates | 06 |
# | `probkit.generative` | stochastic interpolants: ODE/SDE sampling, likelihoods | 07 |
# | `probkit.generative` (diffusion) | Fokker-Planck-regularised score diffusion | see 08 |
# | `probkit.bench`, `probkit bench` | benchmarking samplers against reference posteriors | 09 |

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

QUICK = os.environ.get("PROBKIT_QUICK") == "1"
panels = {}  # title -> function(ax) drawing that section's result; all shown at the end

# %% [markdown]
# ## Flows
#
# A `Flow(base, bijection)` has `sample`, `log_prob` and
# `sample_and_log_prob`; constructors build stacks of layers. Here a RealNVP
# flow at random initial weights: its density integrates to 1 on a grid,
# by the change-of-variables formula $\log q(y) = \log q_0(f^{-1}(y)) - \log|\det J_f|$.

# %%
from probkit.flows import realnvp

flow = realnvp(jax.random.PRNGKey(0), 2, n_layers=4)
g = jnp.linspace(-7, 7, 281)
grid = jnp.stack(jnp.meshgrid(g, g), -1).reshape(-1, 2)
dens = jnp.exp(flow.log_prob(grid))
mass = float(dens.sum() * (g[1] - g[0]) ** 2)
x = flow.sample(jax.random.PRNGKey(1), (2000,))


def _panel_flows(ax):
    ax.contourf(g, g, dens.reshape(281, 281), 20)
    ax.scatter(*x[:300].T, s=2, c="w")
    ax.set(title=f"RealNVP density, mass on grid {mass:.4f}", xlim=(-4, 4), ylim=(-4, 4))


panels['flows'] = _panel_flows
print(f"integral of exp(log_prob) on the grid: {mass:.4f}")
assert abs(mass - 1) < 5e-3

# %% [markdown]
# ## MixFlows
#
# `MixFlow(logdensity_fn, dim, n_flow_steps=N, ...)` averages $N$ applications
# of an uncorrected Hamiltonian map to a reference $q_0$: no training, and it
# gets closer to the target as $N$ grows. Target: a correlated Gaussian
# ($\rho = 0.95$); reference: $N(0, I)$.

# %%
from probkit.mixflows import MixFlow
from probkit.ot import sliced_wasserstein

cov = jnp.array([[1.0, 0.95], [0.95, 1.0]])
prec = jnp.linalg.inv(cov)
logdensity = lambda x: -0.5 * x @ prec @ x  # noqa: E731
exact = jax.random.multivariate_normal(jax.random.PRNGKey(2), jnp.zeros(2), cov, (2000,))
mix = MixFlow(logdensity, 2, n_flow_steps=100, n_leapfrog=10, step_size=0.05)
x_mix = mix.sample(jax.random.PRNGKey(3), 2000)
x_ref = jax.random.normal(jax.random.PRNGKey(4), (2000, 2))
sw = lambda a: float(sliced_wasserstein(jax.random.PRNGKey(5), a, exact, n_projections=128))  # noqa: E731
sw_mix, sw_ref = sw(x_mix), sw(x_ref)


def _panel_mixflows(ax):
    ax.scatter(*exact[:500].T, s=2, alpha=0.5, label="exact")
    ax.scatter(*x_mix[:500].T, s=2, alpha=0.5, label="MixFlow N=100")
    ax.set(title=f"MixFlow: SW2 {sw_mix:.3f} vs reference {sw_ref:.3f}")
    ax.legend(markerscale=4)


panels['mixflows'] = _panel_mixflows
print(f"SW2 to exact draws: MixFlow {sw_mix:.3f}, reference N(0, I) {sw_ref:.3f}")
assert sw_mix < sw_ref / 3

# %% [markdown]
# ## PFN
#
# `pretrained("gp-rbf-1d")` is a small transformer trained on GP regression
# datasets (RBF kernel with hyperpriors): given train points it returns the
# predictive distribution at query points in one forward pass. On 32 fresh
# datasets from its prior, its 90 % intervals should cover about 90 % of
# held-out points.

# %%
from probkit.pfn import pretrained, pretrained_prior

pfn = pretrained("gp-rbf-1d")
xd, yd = pretrained_prior("gp-rbf-1d").sample(jax.random.PRNGKey(6), 32, 40)
xs = jnp.linspace(0, 1, 60)[:, None]
queries = jnp.concatenate([xd[:, 20:], jnp.broadcast_to(xs, (32, 60, 1))], axis=1)  # held-out + plot grid
pred = pfn(xd[:, :20], yd[:, :20], queries)  # 32 datasets, one forward pass
lo, hi, mid = pred.quantile(0.05), pred.quantile(0.95), pred.mean()
coverage = float(jnp.mean((yd[:, 20:] >= lo[:, :20]) & (yd[:, 20:] <= hi[:, :20])))


def _panel_pfn(ax):
    ax.fill_between(xs[:, 0], lo[0, 20:], hi[0, 20:], alpha=0.3)
    ax.plot(xs[:, 0], mid[0, 20:])
    ax.plot(xd[0, :20, 0], yd[0, :20], "k.")
    ax.set(title=f"PFN predictive, 90% interval coverage {coverage:.2f}")


panels['pfn'] = _panel_pfn
print(f"coverage of the PFN's 90% intervals on {yd[:, 20:].size} held-out points: {coverage:.3f}")
assert 0.85 <= coverage <= 0.95

# %% [markdown]
# ## SQUEAK Nyström
#
# `squeak` samples a Nyström dictionary by approximate ridge leverage scores in
# one pass, never forming the $n \times n$ kernel matrix. On clustered data
# (one big cluster, a few small ones) leverage sampling keeps the rare points
# that uniform sampling misses. Error (exact, small $n$): $\|(K + \gamma I)^{-1/2}(K - \tilde K)(K + \gamma I)^{-1/2}\|_2$.

# %%
from probkit.kernels import RBF, nystrom, regularized_error, squeak, uniform_dictionary

k1, k2 = jax.random.split(jax.random.PRNGKey(7))
centers = jnp.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0], [-6.0, 3.0]])
sizes = [300, 25, 25, 25, 25]
kernel, gamma = RBF(lengthscale=1.0), 0.1
with jax.enable_x64(True):  # Nyström on a nearly low-rank kernel needs float64
    X = jnp.concatenate([c + 0.7 * jax.random.normal(k, (s, 2), jnp.float64) for c, s, k in
                         zip(centers, sizes, jax.random.split(k1, 5))])
    K = kernel.gram(X)
    d_sq = squeak(k2, X, kernel, gamma=gamma, eps=0.5)
    m = int(d_sq.size)
    err_sq = float(regularized_error(K, nystrom(X, d_sq, kernel).gram(), gamma))
    err_un = np.median([float(regularized_error(K, nystrom(X, uniform_dictionary(k, X, m), kernel).gram(), gamma))
                        for k in jax.random.split(jax.random.PRNGKey(8), 3)])
    sel = np.asarray(d_sq.compact().indices)


def _panel_squeak(ax):
    ax.scatter(*X.T, s=2, c="0.7")
    ax.scatter(*X[sel].T, s=8, c="C3", label=f"SQUEAK dictionary ({m} points)")
    ax.set(title=f"SQUEAK error {err_sq:.3f} vs uniform {err_un:.3f}")
    ax.legend(fontsize=8)


panels['squeak'] = _panel_squeak
print(f"dictionary size {m}: regularised error SQUEAK {err_sq:.3f}, uniform (median of 3) {err_un:.3f}")
assert err_sq < err_un / 2

# %% [markdown]
# ## Graph random features
#
# `graph_random_features` estimates the regularised Laplacian kernel
# $(I + \sigma^2 \tilde L)^{-2}$ from random walks: $K \approx \Phi\Phi'^\top$,
# unbiased, without the $O(N^3)$ eigendecomposition. Here a 20×20 grid graph
# with 100 walks per node, against the exact kernel.

# %%
import networkx as nx

from probkit.kernels import graph_random_features, regularized_laplacian_kernel

A = jnp.asarray(nx.to_numpy_array(nx.grid_2d_graph(20, 20)))
K_exact = regularized_laplacian_kernel(A, sigma=1.0, d=2)
phi, phi2 = graph_random_features(jax.random.PRNGKey(9), A, n_walks=100, p_halt=0.5, sigma=1.0)
K_grf = phi @ phi2.T
rel = float(jnp.linalg.norm(K_grf - K_exact) / jnp.linalg.norm(K_exact))


def _panel_grf(ax):
    ax.plot(np.asarray(K_exact[210]), label="exact row")
    ax.plot(np.asarray(K_grf[210]), lw=0.8, label="GRF estimate")
    ax.set(title=f"GRF on a 20×20 grid: rel. Frobenius error {rel:.3f}", xlabel="node")
    ax.legend(fontsize=8)


panels['grf'] = _panel_grf
print(f"relative Frobenius error of the GRF kernel: {rel:.3f}")
assert rel < 0.15

# %% [markdown]
# ## Sliced Wasserstein with control variates
#
# `sliced_wasserstein(key, x, y, n_projections=L, estimator=...)`: the
# control-variate estimators subtract a Gaussian-fit surrogate whose mean over
# directions is known in closed form. Two 10-D clouds with different means,
# $L = 10$ directions, over 100 repetitions:

# %%
from probkit.ot import sliced_wasserstein  # noqa: F811 (already imported above)

kx, ky = jax.random.split(jax.random.PRNGKey(10))
xa = jax.random.normal(kx, (500, 10))
yb = jax.random.normal(ky, (500, 10)) + 1.0
reps = {}
for est in ("mc", "cv_lower", "cv_upper"):
    f = jax.jit(lambda k, est=est: sliced_wasserstein(k, xa, yb, n_projections=10, estimator=est, root=False))
    reps[est] = np.asarray(jax.vmap(f)(jax.random.split(jax.random.PRNGKey(11), 100)))
var_ratio = {e: reps["mc"].var() / reps[e].var() for e in ("cv_lower", "cv_upper")}


def _panel_sliced(ax):
    ax.boxplot([reps[e] for e in reps], tick_labels=list(reps))
    ax.set(title="SW₂² estimates, L = 10 (100 repeats)")


panels['sliced'] = _panel_sliced
print({e: f"mean {v.mean():.3f}, sd {v.std():.4f}" for e, v in reps.items()})
print("variance reduction vs mc:", {e: round(float(v), 1) for e, v in var_ratio.items()})
assert var_ratio["cv_lower"] > 10

# %% [markdown]
# ## Stochastic interpolants
#
# A one-sided linear interpolant $x_t = (1-t)x_0 + t x_1$ from $x_0 \sim N(0, I)$
# to data $x_1$ has velocity $b(t, x) = E[x_1 - x_0 \mid x_t = x]$. For a Gaussian
# mixture target it is known exactly (`GaussianMixtureFields`), which lets us
# check the samplers without training: `sample_ode` pushes noise to data, and
# `log_prob` integrates $\nabla\cdot b$ along the probability-flow ODE to give
# $\log\rho_1(x)$. (Notebook 07 trains the velocity with a network.)

# %%
from probkit.generative import GaussianMixtureFields, datasets, log_prob, one_sided, sample_ode

w, means, covs = datasets.eight_gaussians_mixture()
fields = GaussianMixtureFields(one_sided("linear"), w, means, covs)
x_gen = sample_ode(jax.random.PRNGKey(12), fields.velocity, 1000, dim=2, n_steps=50)
x_data = datasets.eight_gaussians(jax.random.PRNGKey(13), 1000)
lp_ode = log_prob(fields.velocity, x_data[:100], n_steps=50, adaptive=False)
lp_exact = jax.vmap(lambda v: fields.log_prob(1.0, v))(x_data[:100])
lp_err = float(jnp.max(jnp.abs(lp_ode - lp_exact)))
sw_gen = float(sliced_wasserstein(jax.random.PRNGKey(14), x_gen, x_data, n_projections=128))


def _panel_interpolants(ax):
    ax.scatter(*x_data.T, s=2, alpha=0.4, label="data")
    ax.scatter(*x_gen.T, s=2, alpha=0.4, label="ODE samples")
    ax.set(title=f"interpolant ODE: SW2 {sw_gen:.3f}, max |Δlog p| {lp_err:.1e}")
    ax.legend(markerscale=4, fontsize=8)


panels['interpolants'] = _panel_interpolants
print(f"SW2(ODE samples, data) = {sw_gen:.3f}; max |log p_ODE - log p_exact| = {lp_err:.2e}")
assert sw_gen < 0.15 and lp_err < 0.05

# %% [markdown]
# ## Score-based diffusion with the Fokker-Planck regulariser
#
# See notebook 08 (`08_fokker_planck_diffusion.ipynb`).
#
# ## Benchmarking samplers
#
# `probkit.bench` runs samplers on targets with exact or reference draws and
# records SW₂ to the reference, bias, ESS and cost along the run, from Python
# (`bench.run_benchmark`) or as one command:
# `probkit bench run --target gaussian --sampler numpyro_nuts,automvn --seeds 3 --out DIR`
# (notebook 09 runs it). Its metrics work on any draws: here exact draws of the
# 10-D `gaussian` target, and the same draws with the scale inflated by 20 %, as
# a sampler with a too-wide posterior would give.

# %%
from probkit import bench

target = bench.get_target("gaussian")
good = target.exact_draws(jax.random.PRNGKey(15), 2000)
wide = {k: 1.2 * v for k, v in good.items()}
scores = {}
for label, draws in [("exact draws", good), ("20 % too wide", wide)]:
    chains = {k: np.asarray(v)[None] for k, v in draws.items()}  # (chains=1, draws)
    scores[label] = bench.compute_metrics(jax.random.PRNGKey(16), chains, target.reference(), np.array([2000]), iid=True)
    print(f"{label:14s} SW2 = {scores[label]['sw2']:.3f} ± {scores[label]['sw2_stderr']:.3f}, "
          f"max bias of E[x²] = {scores[label]['bias_x2_max']:.3f}")


def _panel_bench(ax):
    labels = list(scores)
    ax.bar(labels, [scores[k]["sw2"] for k in labels], yerr=[2 * scores[k]["sw2_stderr"] for k in labels])
    ax.set(ylabel="SW2 to reference draws", title="bench metrics on the 10-D gaussian target")


panels["bench"] = _panel_bench
assert scores["exact draws"]["sw2"] < scores["20 % too wide"]["sw2"] / 3

# %% [markdown]
# ## All eight results

# %%
fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
for ax, draw in zip(axes.ravel(), panels.values()):
    draw(ax)
fig.tight_layout()
plt.show()
