# %% [markdown]
# # Benchmarking samplers with `probkit bench`
#
# `probkit bench` runs samplers and variational methods on posteriors with trusted
# reference draws and measures how close they get, at what cost:
#
# * **SW₂**: sliced Wasserstein distance to the reference draws, coordinates
#   standardised by the reference sd (probkit.ot's control-variate estimator);
# * **bias**: standardised squared bias of E[x] and E[x²], and the gradient
#   evaluations until it stays below 0.01;
# * **cost**: ESS per second and per 1000 gradient evaluations, gradient
#   evaluations, wall time with compile time separate.
#
# Targets are analytic (exact draws), bundled posteriordb posteriors, or your own
# model with reference draws. This notebook drives it from Python and from the
# command line. `PROBKIT_QUICK=1` shrinks the runs.

# %%
import os, subprocess, sys, tempfile
import jax
import numpy as np
import matplotlib.pyplot as plt
from probkit import bench
from probkit.ot import sliced_wasserstein

QUICK = os.environ.get("PROBKIT_QUICK") == "1"
DRAWS = 200 if QUICK else 1000
out_dir = tempfile.mkdtemp(prefix="probkit-bench-")
print("targets:", bench.builtin_names())
print("samplers:", sorted(bench.SAMPLERS))

# %% [markdown]
# ## From Python
#
# Run NumPyro's NUTS and a full-rank Gaussian VI baseline (`automvn`) on the
# standard Gaussian and on eight schools. Each finished run is appended to
# `results.jsonl`; running the cell again skips what is already there.

# %%
targets = [bench.get_target("gaussian"), bench.get_target("eight_schools-eight_schools_noncentered")]
cfg = bench.RunConfig(chains=2, draws=DRAWS, budget_grads=20_000)
bench.run_benchmark(targets, ["numpyro_nuts", "automvn"], seeds=[0], out_dir=out_dir, cfg=cfg, progress_bar=False)
records = bench.read_records(out_dir)
print(bench.format_table(records))

# %% [markdown]
# Each record also holds the metric along the run (`trace_grads`, `trace_sw2`),
# so we can see how the distance falls with the gradient evaluations spent.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, target in zip(axes, [t.name for t in targets]):
    for r in records:
        if r["target"] == target:
            ax.plot(r["trace_grads"], r["trace_sw2"], "o-", label=r["sampler"])
    ax.set(xscale="log", yscale="log", xlabel="gradient evaluations", ylabel="SW₂ to reference", title=target[:30])
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# **Claim.** On the standard Gaussian, NUTS's SW₂ to the reference draws is no
# larger than the SW₂ between two independent sets of exact draws of the same
# size, plus 0.05: the metric does not penalise a correct sampler.

# %%
gauss = targets[0]
nuts = next(r for r in records if r["target"] == "gaussian" and r["sampler"] == "numpyro_nuts")
names = list(gauss.reference())
n = cfg.chains * cfg.draws
exact = gauss.exact_draws(jax.random.PRNGKey(7), n)
x = np.stack([exact[k] for k in names], 1)
ref = np.stack([gauss.reference()[k] for k in names], 1)
ref = ref[np.linspace(0, len(ref) - 1, n).astype(int)]
baseline = float(sliced_wasserstein(jax.random.PRNGKey(0), x.astype(np.float32), ref.astype(np.float32),
                                    n_projections=200, estimator="cv_lower"))
print(f"NUTS SW2 = {nuts['sw2']:.3f}, exact-vs-exact SW2 = {baseline:.3f}")
assert nuts["sw2"] <= baseline + 0.05

# %% [markdown]
# ## From the command line
#
# The same benchmark is one command. `--plot` writes PNG figures, `--csv` a table;
# `probkit bench report DIR` re-prints them from the saved records. Your own model:
# `--model file.py:fn --data data.json --reference draws.json` (posteriordb draws
# format); names such as `theta[1]` are matched to the model's sites, and
# `--sampler-opt nuts.target_accept=0.9` passes options to a sampler.

# %%
cmd = [sys.executable, "-m", "probkit", "bench", "run", "--target", "banana", "--sampler", "numpyro_nuts,automvn",
       "--chains", "2", "--draws", str(DRAWS), "--budget-grads", "20000", "--out", out_dir, "--plot", "--no-progress"]
print(" ".join(cmd[2:]))
print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)

# %%
from IPython.display import Image
Image(os.path.join(out_dir, "banana.png"))

# %%
print(subprocess.run([sys.executable, "-m", "probkit", "bench", "report", out_dir],
                     capture_output=True, text=True, check=True).stdout)
