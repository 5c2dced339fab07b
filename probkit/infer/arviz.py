"""ArviZ ``InferenceData`` from MCMC runs, guide samples and benchmark draws."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["to_arviz"]


def _import_arviz():
    try:
        import arviz
    except ImportError as err:  # pragma: no cover - exercised by monkeypatching sys.modules
        raise ImportError(
            "probkit.infer.to_arviz needs ArviZ, an optional dependency: "
            "install it with `pip install arviz` (or `pip install probkit[arviz]`)"
        ) from err
    return arviz


def _posterior_dict(samples: Mapping, chain_axis: bool, what: str) -> dict[str, np.ndarray]:
    out = {}
    n = None
    for name, value in samples.items():
        if not isinstance(name, str):
            raise TypeError(f"{what} keys must be site names (str), got {type(name).__name__}")
        arr = np.asarray(value)
        min_ndim = 2 if chain_axis else 1
        if arr.ndim < min_ndim:
            axes = "(chains, draws, ...)" if chain_axis else "(draws, ...)"
            raise ValueError(f"{what}[{name!r}] must have shape {axes}, got shape {arr.shape}")
        lead = arr.shape[:min_ndim]
        if n is not None and lead != n:
            raise ValueError(
                f"{what} entries disagree on their leading (chain/draw) shape: {n} vs {lead} at {name!r}"
            )
        n = lead
        out[name] = arr if chain_axis else arr[None]
    if not out:
        raise ValueError(f"{what} is empty: expected at least one site")
    return out


def _from_mcmc(az, mcmc, log_likelihood, coords, dims, **kwargs):
    from .blackjax_kernel import BlackJAXKernel

    idata = az.from_numpyro(mcmc, log_likelihood=log_likelihood, coords=coords, dims=dims, **kwargs)
    kernel = mcmc.sampler
    if isinstance(kernel, BlackJAXKernel) and "sample_stats" in idata.groups():
        stats = idata.sample_stats
        drop = []
        if kernel.algorithm != "nuts" and "tree_depth" in stats:
            drop.append("tree_depth")  # ArviZ derives it from n_steps, meaningful for NUTS only
        if "energy" in stats and bool(np.all(np.isnan(stats["energy"].values))):
            drop.append("energy")  # no energy for MALA, Barker, unadjusted MCLMC
        stats = stats.drop_vars(drop)
        stats.attrs["sampler"] = f"blackjax {kernel.algorithm} (probkit.infer.BlackJAXKernel)"
        last = mcmc.last_state
        if last is not None:
            stats.attrs["warmup_grad_evals"] = int(np.sum(np.asarray(last.warmup_grad_evals)))
        idata.sample_stats = stats
    return idata


def to_arviz(
    obj: Any,
    *,
    chain_axis: bool | None = None,
    names: list[str] | None = None,
    log_likelihood: bool | None = None,
    coords: dict | None = None,
    dims: dict | None = None,
    **kwargs: Any,
):
    """Convert ``obj`` to an ArviZ ``InferenceData``.

    ``obj`` may be

    - a ``numpyro.infer.MCMC`` run (any kernel; with :class:`BlackJAXKernel`
      the sample stats keep ``acceptance_rate``, ``n_steps``, ``diverging``,
      ``energy`` where defined and ``num_grad_evals``, plus the attribute
      ``warmup_grad_evals``), via ``arviz.from_numpyro``;
    - a dict ``{site: array}`` of posterior samples, e.g. from
      ``guide.sample_posterior`` of an ``AutoFlow`` / ``AutoMixFlow`` guide or
      ``Predictive``: shape ``(draws, ...)`` by default, ``(chains, draws, ...)``
      with ``chain_axis=True``;
    - a benchmark run's output (an object with a ``draws`` dict
      ``{name: (chains, n)}``, like ``probkit.bench`` samplers return; its
      ``total_grads`` / ``warmup_grads`` / ``divergences`` become attributes);
    - an array ``(chains, draws, D)`` with ``names`` (``D`` parameter names).

    ArviZ is an optional dependency; without it this raises ``ImportError``.
    """
    az = _import_arviz()
    from numpyro.infer import MCMC

    if isinstance(obj, MCMC):
        if getattr(obj, "_states", None) is None:
            raise ValueError("obj is an MCMC object that has not been run: call mcmc.run(...) first")
        return _from_mcmc(az, obj, log_likelihood, coords, dims, **kwargs)
    if log_likelihood:
        raise ValueError("log_likelihood=True needs an MCMC object (it replays the model)")
    attrs = {}
    if hasattr(obj, "draws") and isinstance(getattr(obj, "draws"), Mapping):
        for name in ("total_grads", "warmup_grads", "divergences"):
            if hasattr(obj, name):
                attrs[name] = int(getattr(obj, name))
        posterior = _posterior_dict(obj.draws, True, "draws")
    elif isinstance(obj, Mapping):
        posterior = _posterior_dict(obj, bool(chain_axis), "samples")
    elif hasattr(obj, "shape") and hasattr(obj, "__array__"):
        arr = np.asarray(obj)
        if arr.ndim != 3:
            raise ValueError(f"an array of draws must have shape (chains, draws, D), got shape {arr.shape}")
        if names is None:
            names = [f"x[{i + 1}]" for i in range(arr.shape[2])]
        if len(names) != arr.shape[2]:
            raise ValueError(f"names must have {arr.shape[2]} entries (one per column), got {len(names)}")
        posterior = {n: arr[:, :, i] for i, n in enumerate(names)}
    else:
        raise TypeError(
            "obj must be a numpyro MCMC run, a dict of samples, a benchmark output with `.draws`, "
            f"or an array (chains, draws, D); got {type(obj).__name__}"
        )
    idata = az.from_dict(posterior=posterior, coords=coords, dims=dims, **kwargs)
    idata.posterior.attrs.update(attrs)
    return idata
