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

**Budget** (``--budget-grads``). MCMC runs sample in blocks after warm-up,
stop once the budget is spent and keep only the draws paid for within it; VI
spends the budget on optimisation steps; MixFlow keeps as many i.i.d. draws as
the budget left after its fit pays for. What cannot fit (a warm-up alone over
the budget, an explicit ``steps`` option) runs anyway and the record flags the
overrun (``budget_overrun``), as the report does.

**Options** (``--sampler-opt NAME.KEY=VALUE``) are declared per sampler
(:attr:`SamplerSpec.options`, listed by ``probkit bench samplers --options``);
unknown keys and values of the wrong type are refused before anything runs.
"""

from __future__ import annotations

import ast
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import numpy as np

from .._validate import check_positive_int
from .names import flatten_sites, model_sites
from .targets import BenchInputError, Target


@dataclass
class RunConfig:
    """Shared run settings: chains, draws per chain, warm-up, gradient budget (checked on creation)."""

    chains: int = 4
    draws: int = 1000
    warmup: int | None = None
    budget_grads: int | None = None
    progress_bar: bool = False

    def __post_init__(self):
        for name, value, minimum in (("chains", self.chains, 1), ("draws", self.draws, 1),
                                     ("warmup", self.warmup, 0), ("budget_grads", self.budget_grads, 1)):
            if value is None and name in ("warmup", "budget_grads"):
                continue
            try:
                check_positive_int(name, value, minimum=minimum)
            except ValueError as err:
                raise BenchInputError(f"--{name.replace('_', '-')}: {err}") from None

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


@dataclass(frozen=True)
class Option:
    """A sampler option: default (``None``: the library's own default, not passed), type and help."""

    default: Any
    type: type | tuple
    help: str

    @property
    def types(self) -> tuple:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_names(self) -> str:
        return "/".join("None" if t is type(None) else t.__name__ for t in self.types)

    def check(self, sampler: str, key: str, value):
        types = self.types
        ok = any(
            (t is float and isinstance(value, numbers.Real) and not isinstance(value, bool))
            or (t is int and isinstance(value, numbers.Integral) and not isinstance(value, bool))
            or (t not in (int, float) and isinstance(value, t))
            for t in types
        )
        if not ok:
            raise BenchInputError(f"--sampler-opt {sampler}.{key}: expected {self.type_names()}, got {value!r}")
        return float(value) if types == (float,) else value


@dataclass
class SamplerSpec:
    name: str
    kind: str  # "mcmc" or "vi"
    description: str
    run: Callable[[jax.Array, Target, RunConfig, dict], SamplerOutput]
    options: dict[str, Option] = field(default_factory=dict)

    def resolve(self, opts: dict | None) -> dict:
        """Check ``opts`` against the declared options; return them with the declared defaults filled in."""
        opts = dict(opts or {})
        unknown = sorted(set(opts) - set(self.options))
        if unknown:
            raise BenchInputError(
                f"--sampler-opt: unknown option(s) {unknown} for sampler {self.name!r}; "
                f"valid options: {sorted(self.options)}"
            )
        out = {k: o.default for k, o in self.options.items() if o.default is not None}
        out.update({k: self.options[k].check(self.name, k, v) for k, v in opts.items()})
        return out


SAMPLERS: dict[str, SamplerSpec] = {}


def register(name: str, kind: str, description: str, options: dict[str, Option] | None = None):
    def deco(fn):
        SAMPLERS[name] = SamplerSpec(name, kind, description, fn, dict(options or {}))
        return fn

    return deco


def get_sampler(name: str) -> SamplerSpec:
    if name not in SAMPLERS:
        raise BenchInputError(f"unknown sampler {name!r}; valid samplers: {sorted(SAMPLERS)}")
    return SAMPLERS[name]


def parse_sampler_opts(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``["nuts.step_size=0.1", "autoflow.lr=1e-3"]`` → ``{"nuts": {"step_size": 0.1}, ...}``, checked."""
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
    for sampler, opts in out.items():
        get_sampler(sampler).resolve(opts)
    return out


def format_options(names: list[str] | None = None) -> str:
    """Every sampler's options, one line each (``probkit bench samplers --options``)."""
    lines = []
    for name in names or list(SAMPLERS):
        spec = SAMPLERS[name]
        lines.append(f"{name} [{spec.kind}]: {spec.description}")
        for key, o in spec.options.items():
            default = "" if o.default is None else f" [default {o.default!r}]"
            lines.append(f"    {name}.{key}={o.type_names()}: {o.help}{default}")
    return "\n".join(lines)


def _trim_to_budget(out: SamplerOutput, budget: int | None) -> SamplerOutput:
    """Keep the draws paid for within ``budget`` (at least the first); flag an overrun in ``info``."""
    if budget is None:
        return out
    n_fit = int(np.searchsorted(out.grads, budget, side="right"))
    keep = max(n_fit, 1)
    if keep < len(out.grads):
        out.info["draws_discarded"] = len(out.grads) - keep
        out.draws = {k: v[:, :keep] for k, v in out.draws.items()}
        out.grads = out.grads[:keep]
        out.total_grads = int(out.grads[-1])
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
    grads = np.concatenate(grads)[: cfg.draws]
    out = SamplerOutput(draws=merged, grads=grads, total_grads=int(grads[-1]), warmup_grads=warmup_grads,
                        divergences=divergences)
    return _trim_to_budget(out, cfg.budget_grads)


_HMC_OPTIONS = {
    "step_size": Option(None, float, "initial step size (adapted unless adapt_step_size=False)"),
    "adapt_step_size": Option(None, bool, "adapt the step size during warm-up (True)"),
    "adapt_mass_matrix": Option(None, bool, "adapt the mass matrix during warm-up (True)"),
    "dense_mass": Option(None, bool, "dense instead of diagonal mass matrix (False)"),
    "target_accept_prob": Option(None, float, "acceptance rate the step size adaptation aims at (0.8)"),
    "find_heuristic_step_size": Option(None, bool, "heuristic initial step size (False)"),
    "regularize_mass_matrix": Option(None, bool, "regularise the adapted mass matrix (True)"),
}
_NUMPYRO_OPTIONS = {
    "NUTS": {**_HMC_OPTIONS, "max_tree_depth": Option(None, int, "largest tree depth (10)")},
    "HMC": {**_HMC_OPTIONS, "num_steps": Option(16, int, "leapfrog steps per transition"),
            "trajectory_length": Option(None, float, "trajectory length (instead of num_steps)")},
}


def _numpyro_kernel(algo):
    def run(key, target, cfg, opts):
        from numpyro.infer import HMC, NUTS

        kernel = (NUTS if algo == "NUTS" else HMC)(target.model, **opts)
        return run_mcmc_kernel(key, target, cfg, kernel, grad_field="num_steps", divergence_field="diverging")

    return run


register("numpyro_nuts", "mcmc", "NumPyro NUTS (window adaptation)", _NUMPYRO_OPTIONS["NUTS"])(_numpyro_kernel("NUTS"))
register("numpyro_hmc", "mcmc", "NumPyro HMC, 16 leapfrog steps (window adaptation)",
         _NUMPYRO_OPTIONS["HMC"])(_numpyro_kernel("HMC"))


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


_BJ = {  # probkit.infer.BlackJAXKernel keywords, per algorithm
    "adaptation": Option(None, (str, type(None)), "'auto' (tune during warm-up) or None (fixed parameters)"),
    "init_radius": Option(None, float, "initial points uniform in [-r, r] on the unconstrained space (2.0)"),
    "init_optimize_steps": Option(None, int, "Adam steps towards the mode before warm-up (0 NUTS/HMC, else 2000)"),
    "step_size": Option(None, float, "fixed step size (with adaptation=None) or the tuner's start"),
    "target_accept": Option(None, float, "acceptance rate the adaptation aims at"),
    "dense_mass": Option(None, bool, "dense inverse mass matrix"),
    "integrator": Option(None, str, "integrator name (velocity_verlet, mclachlan, ...)"),
    "max_num_doublings": Option(None, int, "NUTS: largest number of tree doublings (10)"),
    "num_integration_steps": Option(None, int, "HMC: leapfrog steps per transition (10)"),
    "L": Option(None, float, "MCLMC: fixed momentum decoherence length"),
    "diagonal_preconditioning": Option(None, bool, "MCLMC: diagonal preconditioning (True)"),
    "frac_tune": Option(None, tuple, "MCLMC: fractions of warm-up for the three tuning stages"),
}
_BJ_KEYS = {
    "nuts": ("max_num_doublings", "target_accept", "dense_mass", "integrator"),
    "hmc": ("num_integration_steps", "target_accept", "dense_mass", "integrator"),
    "mala": ("target_accept", "dense_mass"),
    "barker": ("target_accept", "dense_mass"),
    "mclmc": ("integrator", "diagonal_preconditioning", "frac_tune", "L"),
    "adjusted_mclmc": ("integrator", "target_accept", "diagonal_preconditioning", "frac_tune", "L"),
}

for _algo, _desc in [
    ("nuts", "blackjax NUTS via probkit.infer.BlackJAXKernel"),
    ("hmc", "blackjax HMC via probkit.infer.BlackJAXKernel"),
    ("mala", "blackjax MALA via probkit.infer.BlackJAXKernel"),
    ("barker", "blackjax Barker proposal via probkit.infer.BlackJAXKernel"),
    ("mclmc", "blackjax MCLMC (unadjusted) via probkit.infer.BlackJAXKernel"),
    ("adjusted_mclmc", "blackjax adjusted MCLMC via probkit.infer.BlackJAXKernel"),
]:
    _keys = ("adaptation", "init_radius", "init_optimize_steps", "step_size", *_BJ_KEYS[_algo])
    register(_algo, "mcmc", _desc, {k: _BJ[k] for k in _keys})(_blackjax(_algo))


# -------------------------------------------------------------------- VI


def posterior_site_names(model, data: dict) -> list[str]:
    """Names of the latent sample sites and deterministic sites of ``model``."""
    return list(model_sites(model, data))


def _vi_steps(cfg: RunConfig, particles: int, opts: dict) -> int:
    if opts.get("steps") is not None:
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
        fit_opts = {k: opts.pop(k) for k in _SVI_OPTIONS if k in opts}
        return run_svi(key, target, cfg, factory(target.model, **opts), fit_opts)

    return run


_SVI_OPTIONS = {
    "steps": Option(None, int, "optimisation steps (default: budget / particles, else 2000)"),
    "lr": Option(1e-2, float, "Adam learning rate"),
    "particles": Option(1, int, "ELBO particles per step (one model gradient each)"),
}


def _automvn(model, **kw):
    from numpyro.infer.autoguide import AutoMultivariateNormal

    return AutoMultivariateNormal(model, **kw)


def _autoiaf(model, **kw):
    from numpyro.infer.autoguide import AutoIAFNormal

    return AutoIAFNormal(model, **kw)


def _autobnaf(model, **kw):
    from numpyro.infer.autoguide import AutoBNAFNormal

    return AutoBNAFNormal(model, **kw)


def _autoflow(model, **kw):
    from ..infer import AutoFlow

    return AutoFlow(model, **kw)


_MIXFLOW_OPTIONS = {
    "n_flow_steps": Option(100, int, "MixFlow steps N"),
    "n_leapfrog": Option(5, int, "leapfrog steps per flow step"),
    "step_size": Option(0.3, float, "leapfrog step relative to the reference's conditional sd"),
    "momentum": Option(None, str, "momentum refresh ('laplace')"),
    "burn_in": Option(None, int, "flow steps skipped before averaging (0)"),
    "reference": Option("auto", str, "reference: auto (higher ELBO of laplace-full, advi), laplace, laplace-full, advi"),
    "reference_steps": Option(200, int, "L-BFGS iterations bound / ADVI steps of the reference fit"),
    "advi_samples": Option(4, int, "ADVI draws per step"),
    "n_elbo": Option(500, int, "draws estimating each candidate reference's ELBO"),
    "steps": Option(0, int, "MixFlow ELBO tuning steps"),
    "n_samples": Option(4, int, "trajectories per ELBO tuning step"),
}


def _mixflow(key, target, cfg, opts):
    """AutoMixFlow: reference chosen by ELBO, relative step size, i.i.d. draws from the mixture.

    Options: :data:`_MIXFLOW_OPTIONS`. Under a budget, the draws are as many
    per chain (at most ``cfg.draws``) as the budget left after the fit pays
    for at their expected cost; a fit over the budget keeps one draw per chain
    and is flagged as an overrun.
    """
    from numpyro.infer import Predictive

    from ..infer import AutoMixFlow

    opts = dict(opts)
    n_flow, n_leap = opts.pop("n_flow_steps"), opts.pop("n_leapfrog")
    ref_steps, steps, n_samples = opts.pop("reference_steps"), opts.pop("steps"), opts.pop("n_samples")
    ref_kw = {k: opts.pop(k) for k in ("reference", "advi_samples", "n_elbo")}
    guide = AutoMixFlow(target.model, n_flow_steps=n_flow, n_leapfrog=n_leap, **opts)
    k_fit, k_draw = jax.random.split(key)
    guide.fit(k_fit, reference_steps=ref_steps, steps=steps, n_samples=n_samples,
              progress_bar=cfg.progress_bar, **ref_kw, **target.data)
    flow = guide.mixflow
    per_step = flow.grad_evals_per_step
    # the reference fit (AutoMixFlow's own bound), then the ELBO tuning:
    # n_samples trajectories of N steps, forward and backward
    fit_grads = guide.reference_grad_evals + 2 * steps * n_samples * n_flow * per_step
    # an i.i.d. draw pushes the reference K ~ Unif{burn_in..N-1} steps: (N-1+burn_in)/2 on average
    per_draw = 0.5 * (n_flow - 1 + opts.get("burn_in", 0)) * per_step
    n = cfg.draws
    if cfg.budget_grads is not None:
        n = int(min(cfg.draws, max((cfg.budget_grads - fit_grads) // (per_draw * cfg.chains), 1)))
    sites = posterior_site_names(target.model, target.data)
    pred = Predictive(target.model, guide=guide, params={}, num_samples=cfg.chains * n, return_sites=sites)
    samples = pred(k_draw, **target.data)
    draws = {k: v.reshape(cfg.chains, n) for k, v in flatten_sites(jax.device_get(samples)).items()}
    grads = fit_grads + per_draw * cfg.chains * np.arange(1, n + 1)
    return SamplerOutput(draws=draws, grads=grads.astype(np.int64), total_grads=int(grads[-1]), iid=True,
                         info={"fit_grads": int(fit_grads), "n_flow_steps": n_flow, "n_leapfrog": n_leap,
                               "reference": guide.reference_kind})


_GUIDE_INIT = {"init_scale": Option(None, float, "initial scale of the guide (0.1 NumPyro, 1.0 AutoFlow)")}
register("automvn", "vi", "NumPyro AutoMultivariateNormal (full-rank Gaussian VI)",
         {**_SVI_OPTIONS, **_GUIDE_INIT})(_autoguide(_automvn))
register("autoiaf", "vi", "NumPyro AutoIAFNormal (2 IAF layers)", {
    **_SVI_OPTIONS, "num_flows": Option(2, int, "IAF layers"),
    "hidden_dims": Option(None, list, "hidden layer widths of each IAF layer ([2 d, 2 d])"),
    "skip_connections": Option(None, bool, "skip connections in the IAF networks (False)"),
})(_autoguide(_autoiaf))
register("autobnaf", "vi", "NumPyro AutoBNAFNormal (1 BNAF layer, hidden factors 8, 8)", {
    **_SVI_OPTIONS, "num_flows": Option(1, int, "BNAF layers"),
    "hidden_factors": Option([8, 8], list, "hidden factors of each BNAF layer"),
})(_autoguide(_autobnaf))
register("autoflow", "vi", "probkit AutoFlow (neural spline flow guide)", {
    **_SVI_OPTIONS, **_GUIDE_INIT,
    "center": Option(None, bool, "centre the flow at the initial point (True)"),
    "flow_kwargs": Option(None, dict, "keywords for the default flow (probkit.flows)"),
})(_autoguide(_autoflow))
register("mixflow", "vi", "probkit AutoMixFlow (MixFlow on uncorrected Hamiltonian dynamics)",
         _MIXFLOW_OPTIONS)(_mixflow)


__all__ = [
    "Option",
    "RunConfig",
    "SAMPLERS",
    "SamplerOutput",
    "SamplerSpec",
    "format_options",
    "get_sampler",
    "parse_sampler_opts",
    "register",
    "run_mcmc_kernel",
    "run_svi",
]
