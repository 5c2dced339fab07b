"""Stan-style parameter names (``theta[1]``, ``L[2,1]``) for NumPyro sites."""

from __future__ import annotations

import itertools

import numpy as np


def flatten_sites(samples: dict, *, sample_ndim: int = 1) -> dict[str, np.ndarray]:
    """Split array-valued sites into scalar Stan-named entries (1-based indices).

    ``samples`` maps a site name to an array whose first ``sample_ndim`` axes
    index draws; a site of event shape ``(2, 3)`` gives ``name[1,1] .. name[2,3]``.
    """
    out = {}
    for name, value in samples.items():
        arr = np.asarray(value)
        event_shape = arr.shape[sample_ndim:]
        if not event_shape:
            out[name] = arr
            continue
        for idx in itertools.product(*(range(n) for n in event_shape)):
            label = ",".join(str(i + 1) for i in idx)
            out[f"{name}[{label}]"] = arr[(Ellipsis, *idx)] if sample_ndim else arr[idx]
    return out


def match_reference(reference: dict, samples: dict, *, source: str = "reference") -> list[str]:
    """Check every reference name has a site; return the names in reference order.

    Raises ``ValueError`` listing both sides when a name has no match.
    """
    missing = [n for n in reference if n not in samples]
    if missing:
        raise ValueError(
            f"{source}: reference names {missing} match no model site; "
            f"reference names: {sorted(reference)}; model sites: {sorted(samples)}"
        )
    return list(reference)


def model_sites(model, data: dict) -> dict:
    """``{name: value}`` of the latent sample and deterministic sites of one seeded run of ``model(**data)``.

    Latent values come from NumPyro's ``init_to_uniform``; one eager trace, no compilation.
    """
    import jax
    from numpyro import handlers
    from numpyro.infer.initialization import init_to_uniform

    seeded = handlers.substitute(handlers.seed(model, jax.random.PRNGKey(0)), substitute_fn=init_to_uniform)
    trace = handlers.trace(seeded).get_trace(**data)
    return {
        name: site["value"]
        for name, site in trace.items()
        if (site["type"] == "sample" and not site["is_observed"]) or site["type"] == "deterministic"
    }
