# %% [markdown]
# # SQUEAK: Nyström features sampled by ridge leverage scores
#
# A Nyström approximation replaces the $n \times n$ kernel matrix $K$ by
# $\tilde K = K_{XS} W^{1/2}(W^{1/2}K_{SS}W^{1/2})^{-1}W^{1/2}K_{SX}$ built from a small dictionary $S$
# of weighted points. Which points? The **ridge leverage score**
#
# $$\tau_i(\gamma) = [K(K + \gamma I)^{-1}]_{ii}, \qquad d_\text{eff}(\gamma) = \textstyle\sum_i \tau_i(\gamma),$$
#
# measures how much point $i$ is needed: a point in a dense cluster has a tiny score, an
# isolated point a score near 1. Sampling by $\tau$ gives, with $O(d_\text{eff})$ points,
#
# $$\lVert (K+\gamma I)^{-1/2}(K - \tilde K)(K+\gamma I)^{-1/2}\rVert_2 \le \varepsilon,$$
#
# but computing $\tau$ exactly costs $O(n^3)$. **SQUEAK** (Calandriello, Lazaric & Valko, 2017)
# estimates the scores from the current dictionary only, in one pass over chunks of the data:
# each chunk joins the dictionary, every point's score is re-estimated on the union, and each
# point's multiplicity $q_i$ (out of $\bar q$ copies) is thinned by a binomial draw. It never
# forms $K$. This notebook checks the guarantee against exact scores, compares SQUEAK with
# uniform sampling at equal size, and fits a scalable GP in NumPyro with SQUEAK features.

# %%
import os
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta

from probkit.kernels import (
    RBF,
    effective_dimension,
    nystrom,
    ridge_leverage_scores,
    squeak,
    uniform_dictionary,
)

jax.config.update("jax_enable_x64", True)  # exact references in float64
QUICK = os.environ.get("PROBKIT_QUICK") == "1"
N = 300 if QUICK else 800
SEEDS = 2 if QUICK else 3
t_start = time.time()

# %% [markdown]
# ## Data with a few tiny clusters
#
# Four big Gaussian clusters and six tiny clusters of three points each, in 2-D. Uniform
# sampling rarely picks a tiny cluster; leverage scores flag exactly those points.

# %%
rng = np.random.default_rng(0)
centres = rng.uniform(0, 10, size=(10, 2))
labels = np.concatenate([rng.integers(0, 4, N - 18), 4 + np.repeat(np.arange(6), 3)])
X = jnp.asarray(centres[labels] + 0.3 * rng.normal(size=(N, 2)))
tiny = labels >= 4

kernel, gamma, eps = RBF(lengthscale=1.0), 1.0, 0.25
K = kernel.gram(X)
tau = ridge_leverage_scores(K, gamma)
d_eff = float(effective_dimension(K, gamma))
print(f"n = {N}, d_eff = {d_eff:.1f}; mean score: big clusters {float(tau[~tiny].mean()):.3f}, "
      f"tiny clusters {float(tau[tiny].mean()):.3f}")

# the exact regularised error of any approximation, from one eigendecomposition of K
lam, V = np.linalg.eigh(np.asarray(K))
R = (V / np.sqrt(np.maximum(lam, 0) + gamma)) @ V.T  # (K + gamma I)^{-1/2}


def reg_error(dictionary):
    E = R @ (np.asarray(K) - np.asarray(nystrom(X, dictionary, kernel).gram())) @ R
    return float(np.max(np.abs(np.linalg.eigvalsh(0.5 * (E + E.T)))))

# %% [markdown]
# ## The accuracy guarantee at $\varepsilon = 0.25$
#
# With the default number of copies $\bar q$ (`default_qbar`) SQUEAK should keep the regularised
# error below $2\varepsilon$ (issue 6's acceptance bound) with a dictionary of a few times
# $d_\text{eff}$ points — far fewer than $n$. `max_dict_size` is the static capacity of the
# dictionary (SQUEAK raises an error asking to increase it if more points survive).

# %%
errs, sizes = [], []
for s in range(SEEDS):
    dic = squeak(jax.random.PRNGKey(s), X, kernel, gamma=gamma, eps=eps, max_dict_size=400, chunk_size=100)
    sizes.append(int(dic.size))
    errs.append(reg_error(dic))
print("dictionary sizes:", sizes, f"(n = {N})")
print("regularised errors:", np.round(errs, 3))
assert max(errs) <= 2 * eps and max(sizes) < (0.8 if QUICK else 0.4) * N

# %% [markdown]
# The dictionary stores the score estimate each point had at its last update. The estimator uses
# the constant $1 - \varepsilon$, so it never over-estimates: for an $\varepsilon$-accurate
# dictionary $\tau_i(1-\varepsilon)/(1+\varepsilon) \le \tilde\tau_i \le \tau_i$ for the scores of
# the final data set (earlier updates saw fewer points, so their scores are larger — the bound
# below is for the final scores; we show the comparison rather than assert it).

# %%
d = dic.compact()
est, exact = np.asarray(d.rls), np.asarray(tau)[np.asarray(d.indices)]
print(f"estimated / exact score for the dictionary points: median {np.median(est / exact):.2f}, "
      f"range [{np.min(est / exact):.2f}, {np.max(est / exact):.2f}]")

# %% [markdown]
# ## SQUEAK against uniform Nyström at the same size
#
# With a small $\bar q = 3$ the dictionary is only about $2 d_\text{eff}$ points. For each seed we
# draw a uniform dictionary of exactly the same size and compare the regularised errors.

# %%
sq_err, un_err, sq_tiny, un_tiny = [], [], [], []
for s in range(SEEDS):
    dq = squeak(jax.random.PRNGKey(s), X, kernel, gamma=gamma, eps=eps, qbar=3, max_dict_size=400, chunk_size=100)
    du = uniform_dictionary(jax.random.PRNGKey(100 + s), X, int(dq.size))
    sq_err.append(reg_error(dq))
    un_err.append(reg_error(du))
    for dd, out in ((dq, sq_tiny), (du, un_tiny)):
        idx = np.asarray(dd.compact().indices)
        out.append(len(set(labels[idx][tiny[idx]])))
ratio = np.mean(un_err) / np.mean(sq_err)
print(f"size {int(dq.size)} (last seed); SQUEAK errors {np.round(sq_err, 3)}; uniform errors {np.round(un_err, 3)}")
print(f"tiny clusters hit (of 6): SQUEAK {sq_tiny}, uniform {un_tiny}")
print(f"uniform's mean error is {ratio:.1f}x SQUEAK's at the same size")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
sel_q = np.asarray(dq.compact().indices)
sel_u = np.asarray(du.compact().indices)
for ax, sel, name in ((axes[0], sel_q, "SQUEAK (qbar = 3)"), (axes[1], sel_u, "uniform")):
    ax.scatter(*np.asarray(X).T, s=4, c="lightgrey")
    ax.scatter(*np.asarray(X)[tiny].T, s=12, c="k", marker="x", label="tiny clusters")
    ax.scatter(*np.asarray(X)[sel].T, s=30, facecolors="none", edgecolors="C3", label=f"{len(sel)} dictionary points")
    ax.set_title(name)
    ax.legend(fontsize=8, loc="lower right")
axes[2].bar(["SQUEAK", "uniform"], [np.mean(sq_err), np.mean(un_err)],
            yerr=[np.std(sq_err), np.std(un_err)], color=["C3", "C0"])
axes[2].axhline(2 * eps, ls=":", c="k", label=r"$2\varepsilon$")
axes[2].set(ylabel=r"$\|(K+\gamma I)^{-1/2}(K-\tilde K)(K+\gamma I)^{-1/2}\|_2$", title=f"mean over {SEEDS} seeds")
axes[2].legend()
plt.tight_layout()
plt.show()

# %%
assert ratio >= 1.5, ratio

# %% [markdown]
# ## A scalable GP regression in NumPyro
#
# `nystrom(X, dictionary, kernel)` returns features $\Phi$ with $\tilde K = \Phi\Phi^\top$, and
# `gp_distribution(noise)` the NumPyro `LowRankMultivariateNormal`
# $\mathcal N(0, \Phi\Phi^\top + \sigma^2 I)$, whose log density costs $O(n m^2)$ by Woodbury instead
# of $O(n^3)$. The dictionary is selected once (with a rough lengthscale); inside the model the
# features are rebuilt for each lengthscale and amplitude, so inference differentiates through them.
# Here NumPyro's SVI with an `AutoDelta` guide finds the MAP hyperparameters (NUTS works the same way,
# at a few hundred times the cost).
#
# The inputs are unevenly spread: 90 % of the points lie in $[0, 5]$, 10 % in $[5, 10]$.

# %%
n_gp = 600 if QUICK else 1500
kx, kn = jax.random.split(jax.random.PRNGKey(42))
x_gp = jnp.where(jax.random.uniform(kx, (n_gp,)) < 0.9,
                 jax.random.uniform(jax.random.fold_in(kx, 1), (n_gp,), minval=0, maxval=5),
                 jax.random.uniform(jax.random.fold_in(kx, 2), (n_gp,), minval=5, maxval=10))[:, None]


def f_true(x):
    return jnp.sin(2 * x) + 0.3 * x


noise_sd = 0.3
y_gp = f_true(x_gp[:, 0]) + noise_sd * jax.random.normal(kn, (n_gp,))

dic_gp = squeak(jax.random.PRNGKey(0), x_gp, RBF(lengthscale=0.5), gamma=noise_sd**2 * 10, eps=0.5,
                max_dict_size=300, chunk_size=150)
print(f"GP dictionary: {int(dic_gp.size)} of {n_gp} points")
print(f"CPU so far {time.process_time():.0f} s")


def gp_model(x, y=None):
    ls = numpyro.sample("lengthscale", dist.LogNormal(0.0, 1.0))
    amp = numpyro.sample("variance", dist.LogNormal(0.0, 1.0))
    noise = numpyro.sample("noise", dist.HalfNormal(1.0))
    approx = nystrom(x, dic_gp, RBF(lengthscale=ls, variance=amp))
    numpyro.sample("y", approx.gp_distribution(noise**2), obs=y)


t0 = time.time()
svi = SVI(gp_model, AutoDelta(gp_model), numpyro.optim.Adam(0.05), Trace_ELBO())
fit = svi.run(jax.random.PRNGKey(1), 150 if QUICK else 400, x_gp, y_gp, progress_bar=False)
post = svi.guide.median(fit.params)
print(f"MAP by SVI on n = {n_gp} with {int(dic_gp.size)} features: {time.time() - t0:.0f} s")
print({k: f"{float(v):.3f}" for k, v in post.items()})

# %% [markdown]
# **Check against the exact GP.** At the MAP hyperparameters, the low-rank log
# marginal likelihood should match the exact one, $\log\mathcal N(y; 0, K + \sigma^2 I)$ from an
# $n \times n$ Cholesky factorisation, within 1 %, and the predictive means should agree.

# %%
ls, amp, noise = (float(post[k]) for k in ("lengthscale", "variance", "noise"))
k_hat = RBF(lengthscale=ls, variance=amp)
approx = nystrom(x_gp, dic_gp, k_hat)
ll_low = float(approx.gp_log_likelihood(y_gp, noise**2))
Kfull = k_hat.gram(x_gp) + noise**2 * jnp.eye(n_gp)
L = jnp.linalg.cholesky(Kfull)
alpha = jax.scipy.linalg.cho_solve((L, True), y_gp)
ll_exact = float(-0.5 * y_gp @ alpha - jnp.sum(jnp.log(jnp.diag(L))) - 0.5 * n_gp * np.log(2 * np.pi))
rel = abs(ll_low - ll_exact) / abs(ll_exact)
print(f"log marginal likelihood: low-rank {ll_low:.2f}, exact {ll_exact:.2f}, relative difference {rel:.2e}")

x_test = jnp.linspace(0, 10, 200)[:, None]
mean_low, var_low = approx.gp_predict(y_gp, noise**2, x_test)
mean_exact = k_hat.gram(x_test, x_gp) @ alpha
rmse_low = float(jnp.sqrt(jnp.mean((mean_low - f_true(x_test[:, 0])) ** 2)))
rmse_exact = float(jnp.sqrt(jnp.mean((mean_exact - f_true(x_test[:, 0])) ** 2)))
print(f"RMSE of the predictive mean to the true f: low-rank {rmse_low:.3f}, exact GP {rmse_exact:.3f}")

# %%
fig, ax = plt.subplots(figsize=(9, 3.8))
ax.scatter(x_gp[:, 0], y_gp, s=2, c="lightgrey", label="data")
sd = jnp.sqrt(var_low)
ax.fill_between(x_test[:, 0], mean_low - 2 * sd, mean_low + 2 * sd, alpha=0.3, color="C3", label="SQUEAK-Nyström GP ±2 sd")
ax.plot(x_test[:, 0], mean_low, c="C3")
ax.plot(x_test[:, 0], mean_exact, "k--", lw=1, label="exact GP mean")
ax.plot(x_test[:, 0], f_true(x_test[:, 0]), c="C2", lw=1, label="true f")
sel = np.asarray(dic_gp.compact().points)[:, 0]
ax.plot(sel, np.full_like(sel, float(y_gp.min()) - 0.3), "|", c="C3", ms=8, label="dictionary")
ax.set(xlabel="x", ylabel="y")
ax.legend(fontsize=8, ncol=3)
plt.tight_layout()
plt.show()

# %%
assert rel < 0.01, rel
assert rmse_low < rmse_exact + 0.05, (rmse_low, rmse_exact)
print(f"notebook ran in {time.time() - t_start:.0f} s wall, {time.process_time():.0f} s CPU")
