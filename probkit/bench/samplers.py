"""The sampler registry: each entry runs one method on a target within a budget.

Every sampler returns a :class:`SamplerOutput`: draws by Stan-style name with
shape ``(chains, n)``, and gradient-evaluation counts. Gradient evaluations are
**summed over chains** and include warm-up / tuning / optimisation:

- NumPyro NUTS / HMC: the leapfrog steps of every transition (``num_steps``),
  warm-up included;
- blackjax kernels: :class:`probkit.infer.BlackJAXKernel`'s per-transition
  counter, tuning included;
- VI (AutoFlow, AutoIAF, AutoBNAF, AutoMVN, MixFlow): one model gradient per
  ELBO particle per optimisation step (MixFlow: its ELBO's leapfrog steps and
  the leapfrog steps spent drawing the returned samples).

MCMC runs sample in blocks after warm-up and stop early once the budget
(``--budget-grads``) is spent; VI spends the budget on optimisation steps.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import numpy as np

from .names import flatten_sites
from .targets import BenchInputError, Target


@dataclass
class RunConfig:
    """Shared run settings: chains, draws per chain, warm-up, gradient budget."""

    chains: int = 4
    draws: int = 1000
    warmup: int | None = None
    budget_grads: int | None = None
    progress_bar: bool = False

    @property
    def num_warmup(self) -> int:
        return self.draws if self.warmup is None else self.warmup


@dataclass
class SamplerOutput:
    """Draws ``{name: (chains, n)}``; ``grads[i]`` = gradient evaluations spent once draw i of every chain exists."""

    draws: dict[str, np.ndarray]
    grads: np.ndarray
    total_grads: int
    warmup_grads: int = 0
    divergences: int = 0
    iid: bool = False
    info: dict = field(default_factory=dict)


@dataclass
class SamplerSpec:
    name: str
    kind: str  # "mcmc" or "vi"
    description: str
    run: Callable[[jax.Array, Target, RunConfig, dict], SamplerOutput]


SAMPLERS: dict[str, SamplerSpec] = {}


def register(name: str, kind: str, description: str):
    def deco(fn):
        SAMPLERS[name] = SamplerSpec(name, kind, description, fn)
        return fn

    return deco


def get_sampler(name: str) -> SamplerSpec:
    if name not in SAMPLERS:
        raise BenchInputError(f"unknown sampler {name!r}; valid samplers: {sorted(SAMPLERS)}")
    return SAMPLERS[name]


def parse_sampler_opts(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["nuts.step_size=0.1", "autoflow.lr=1e-3"]`` → ``{"nuts": {"step_size": 0.1}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise BenchInputError(f"--sampler-opt must look like sampler.key=value, got {item!r}")
        lhs, rhs = item.split("=", 1)
        sampler, key = lhs.split(".", 1)
        get_sampler(sampler)
        try:
            value = ast.literal_eval(rhs)
        except (ValueError, SyntaxError):
            value = rhs
        out.setdefault(sampler, {})[key] = value
    return out


# ------------------------------------------------------------------ MCMC


def _flat_draws(samples: dict) -> dict[str, np.ndarray]:
    return flatten_sites(jax.device_get(samples), sample_ndim=2)


def run_mcmc_kernel(
    key, target: Target, cfg: RunConfig, kernel, *, grad_field: str, divergence_field: str | None
) -> SamplerOutput:
    """Run an ``MCMCKernel`` with vectorized chains: warm-up, then blocks of draws within the budget."""
    from numpyro.infer import MCMC

    n_blocks = -(-cfg.draws // 250)
    block = -(-cfg.draws // n_blocks)  # blocks of equal size (one compilation) covering cfg.draws
    fields = (grad_field,) + ((divergence_field,) if divergence_field else ())
    mcmc = MCMC(
        kernel,
        num_warmup=cfg.num_warmup,
        num_samples=block,
        num_chains=cfg.chains,
        chain_method="vectorized",
        progress_bar=cfg.progress_bar,
    )
    k_warm, k_run = jax.random.split(key)
    mcmc.warmup(k_warm, extra_fields=fields, collect_warmup=True, **target.data)
    warm_fields = mcmc.get_extra_fields()
    warmup_grads = int(np.sum(warm_fields.get(grad_field, 0)))
    draws, grads, divergences, spent = [], [], 0, warmup_grads
    n_done = 0
    while n_done < cfg.draws:
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.run(jax.random.fold_in(k_run, n_done), extra_fields=fields, **target.data)
        samples = _flat_draws(mcmc.get_samples(group_by_chain=True))
        extra = mcmc.get_extra_fields(group_by_chain=True)
        g = np.asarray(extra[grad_field]).reshape(cfg.chains, -1).sum(axis=0)
        grads.append(spent + np.cumsum(g))
        spent = int(grads[-1][-1])
        if divergence_field:
            divergences += int(np.sum(extra[divergence_field]))
        draws.append(samples)
        n_done += block
        if cfg.budget_grads is not None and spent >= cfg.budget_grads:
            break
    merged = {k: np.concatenate([d[k] for d in draws], axis=1)[:, : cfg.draws] for k in draws[0]}
    return SamplerOutput(
        draws=merged,
        grads=np.concatenate(grads)[: cfg.draws],
        total_grads=spent,
        warmup_grads=warmup_grads,
        divergences=divergences,
    )


def _numpyro_kernel(algo):
    def run(key, target, cfg, opts):
        from numpyro.infer import HMC, NUTS

        opts = dict(opts)
        if algo == "NUTS":
            kernel = NUTS(target.model, **opts)
        else:
            opts.setdefault("num_steps", 16)
            kernel = HMC(target.model, **opts)
        return run_mcmc_kernel(key, target, cfg, kernel, grad_field="num_steps", divergence_field="diverging")

    return run


register("numpyro_nuts", "mcmc", "NumPyro NUTS (window adaptation)")(_numpyro_kernel("NUTS"))
register("numpyro_hmc", "mcmc", "NumPyro HMC, 16 leapfrog steps (window adaptation)")(_numpyro_kernel("HMC"))


def _blackjax(algorithm):
    def run(key, target, cfg, opts):
        from ..infer import BlackJAXKernel

        kernel = BlackJAXKernel(target.model, algorithm, **opts)
        return run_mcmc_kernel(
            key, target, cfg, kernel,
            grad_field=BlackJAXKernel.GRAD_FIELD,
            divergence_field=BlackJAXKernel.DIVERGENCE_FIELD if algorithm in ("nuts", "hmc") else None,
        )

    return run


for _algo, _desc in [
    ("nuts", "blackjax NUTS via probkit.infer.BlackJAXKernel"),
    ("hmc", "blackjax HMC via probkit.infer.BlackJAXKernel"),
    ("mala", "blackjax MALA via probkit.infer.BlackJAXKernel"),
    ("barker", "blackjax Barker proposal via probkit.infer.BlackJAXKernel"),
    ("mclmc", "blackjax MCLMC (unadjusted) via probkit.infer.BlackJAXKernel"),
    ("adjusted_mclmc", "blackjax adjusted MCLMC via probkit.infer.BlackJAXKernel"),
]:
    register(_algo, "mcmc", _desc)(_blackjax(_algo))


# -------------------------------------------------------------------- VI


def posterior_site_names(model, data: dict) -> list[str]:
    """Names of the latent sample sites and deterministic sites of ``model``."""
    from numpyro import handlers
    from numpyro.infer.initialization import init_to_uniform

    seeded = handlers.substitute(handlers.seed(model, jax.random.PRNGKey(0)), substitute_fn=init_to_uniform)
    trace = handlers.trace(seeded).get_trace(**data)
    return [
        name
        for name, site in trace.items()
        if (site["type"] == "sample" and not site["is_observed"]) or site["type"] == "deterministic"
    ]


def _vi_steps(cfg: RunConfig, particles: int, opts: dict) -> int:
    if "steps" in opts:
        return int(opts["steps"])
    if cfg.budget_grads is not None:
        return max(cfg.budget_grads // particles, 1)
    return 2000


def run_svi(key, target: Target, cfg: RunConfig, guide, opts: dict) -> SamplerOutput:
    """Fit ``guide`` by SVI (Trace_ELBO, Adam) and draw ``chains × draws`` samples."""
    import optax
    from numpyro.infer import SVI, Predictive, Trace_ELBO
    from numpyro.optim import optax_to_numpyro

    particles = int(opts.get("particles", 1))
    steps = _vi_steps(cfg, particles, opts)
    lr = float(opts.get("lr", 1e-2))
    svi = SVI(target.model, guide, optax_to_numpyro(optax.adam(lr)), Trace_ELBO(num_particles=particles))
    k_fit, k_draw = jax.random.split(key)
    result = svi.run(k_fit, steps, progress_bar=cfg.progress_bar, **target.data)
    n = cfg.chains * cfg.draws
    sites = posterior_site_names(target.model, target.data)
    pred = Predictive(target.model, guide=guide, params=result.params, num_samples=n, return_sites=sites)
    samples = pred(k_draw, **target.data)
    draws = {k: v.reshape(cfg.chains, cfg.draws) for k, v in flatten_sites(jax.device_get(samples)).items()}
    total = steps * particles
    losses = np.asarray(result.losses)
    return SamplerOutput(
        draws=draws,
        grads=np.full(cfg.draws, total),
        total_grads=total,
        iid=True,
        divergences=int(not np.isfinite(losses[-1])),
        info={"final_loss": float(losses[-1]), "steps": steps},
    )


def _autoguide(factory):
    def run(key, target, cfg, opts):
        opts = dict(opts)
        fit_opts = {k: opts.pop(k) for k in ("steps", "lr", "particles") if k in opts}
        return run_svi(key, target, cfg, factory(target.model, **opts), fit_opts)

    return run


def _automvn(model, **kw):
    from numpyro.infer.autoguide import AutoMultivariateNormal

    return AutoMultivariateNormal(model, **kw)


def _autoiaf(model, **kw):
    from numpyro.infer.autoguide import AutoIAFNormal

    kw.setdefault("num_flows", 2)
    return AutoIAFNormal(model, **kw)


def _autobnaf(model, **kw):
    from numpyro.infer.autoguide import AutoBNAFNormal

    kw.setdefault("num_flows", 1)
    kw.setdefault("hidden_factors", [8, 8])
    return AutoBNAFNormal(model, **kw)


def _autoflow(model, **kw):
    from ..infer import AutoFlow

    return AutoFlow(model, **kw)


def _mixflow(key, target, cfg, opts):
    """AutoMixFlow: reference chosen by ELBO, relative step size, i.i.d. draws from the mixture.

    Options: ``n_flow_steps`` (100), ``n_leapfrog`` (5), ``step_size`` (0.3, relative
    to the conditional sd), ``momentum`` ("laplace"), ``reference`` ("auto"),
    ``reference_steps`` (200), ``advi_samples`` (4), ``n_elbo`` (500), ``steps``
    (0: MixFlow ELBO tuning steps), ``n_samples`` (4).
    """
    from numpyro.infer import Predictive

    from ..infer import AutoMixFlow

    opts = dict(opts)
    n_flow, n_leap = int(opts.pop("n_flow_steps", 100)), int(opts.pop("n_leapfrog", 5))
    ref_steps, steps = int(opts.pop("reference_steps", 200)), int(opts.pop("steps", 0))
    n_samples = int(opts.pop("n_samples", 4))
    ref_kw = {"reference": str(opts.pop("reference", "auto")), "advi_samples": int(opts.pop("advi_samples", 4)),
              "n_elbo": int(opts.pop("n_elbo", 500))}
    guide = AutoMixFlow(target.model, n_flow_steps=n_flow, n_leapfrog=n_leap,
                        step_size=float(opts.pop("step_size", 0.3)), **opts)
    k_fit, k_draw = jax.random.split(key)
    guide.fit(k_fit, reference_steps=ref_steps, steps=steps, n_samples=n_samples,
              progress_bar=cfg.progress_bar, **ref_kw, **target.data)
    flow = guide.mixflow
    per_step = flow.grad_evals_per_step
    # the reference fit (AutoMixFlow's own bound), then the ELBO tuning:
    # n_samples trajectories of N steps, forward and backward
    fit_grads = guide.reference_grad_evals + 2 * steps * n_samples * n_flow * per_step
    # an i.i.d. draw pushes the reference K ~ Unif{burn_in..N-1} steps: (N-1)/2 on average
    per_draw = 0.5 * (n_flow - 1) * per_step
    sites = posterior_site_names(target.model, target.data)
    pred = Predictive(target.model, guide=guide, params={}, num_samples=cfg.chains * cfg.draws, return_sites=sites)
    samples = pred(k_draw, **target.data)
    draws = {k: v.reshape(cfg.chains, cfg.draws) for k, v in flatten_sites(jax.device_get(samples)).items()}
    grads = fit_grads + per_draw * cfg.chains * np.arange(1, cfg.draws + 1)
    return SamplerOutput(draws=draws, grads=grads.astype(np.int64), total_grads=int(grads[-1]), iid=True,
                         info={"fit_grads": int(fit_grads), "n_flow_steps": n_flow, "n_leapfrog": n_leap,
                               "reference": guide.reference_kind})


register("automvn", "vi", "NumPyro AutoMultivariateNormal (full-rank Gaussian VI)")(_autoguide(_automvn))
register("autoiaf", "vi", "NumPyro AutoIAFNormal (2 IAF layers)")(_autoguide(_autoiaf))
register("autobnaf", "vi", "NumPyro AutoBNAFNormal (1 BNAF layer, hidden factors 8, 8)")(_autoguide(_autobnaf))
register("autoflow", "vi", "probkit AutoFlow (neural spline flow guide)")(_autoguide(_autoflow))
register("mixflow", "vi", "probkit AutoMixFlow (MixFlow on uncorrected Hamiltonian dynamics)")(_mixflow)


__all__ = [
    "RunConfig",
    "SAMPLERS",
    "SamplerOutput",
    "SamplerSpec",
    "get_sampler",
    "parse_sampler_opts",
    "register",
    "run_mcmc_kernel",
    "run_svi",
]
